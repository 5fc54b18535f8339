package apiauth_test

import (
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

// The whole of what an API needs against a real tenant (compiled, not run:
// it needs Entra). Keys come from the tenant's discovery document and are
// refreshed in the background; until they arrive the middleware answers 503.
func Example_entraTenant() {
	v, err := apiauth.New(apiauth.Config{
		Authority: "https://login.microsoftonline.com/" + os.Getenv("TENANT_ID"),
		ClientID:  os.Getenv("API_CLIENT_ID"), // aud may be the GUID or api://GUID
	})
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /api", v.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := apiauth.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s", p.Username)
	}), apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"})))
	mux.Handle("GET /admin", v.Protect(http.NotFoundHandler(), apiauth.DelegatedOnly(), apiauth.RequireRole("Admin")))

	srv := &http.Server{
		Addr: ":5050", Handler: mux,
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second, MaxHeaderBytes: 32 << 10,
	}
	log.Fatal(srv.ListenAndServe())
}
