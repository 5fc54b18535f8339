package apiauth_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

// Protect an API handler: delegated callers need the scope access_as_user,
// app-only callers the app role Demo.Read.All.
func Example() {
	idp := startIDP() // stands in for https://login.microsoftonline.com/{tenant}
	defer idp.srv.Close()

	v, err := apiauth.New(apiauth.Config{
		Authority:  idp.Authority(tenantA), // e.g. https://login.microsoftonline.com/<tenant-id>
		ClientID:   apiID,                  // the API's client id (aud: id or api://id)
		HTTPClient: idp.Client,             // timeouts; trusts the IdP's CA
		Logger:     discardLogger(),
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	hello := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := apiauth.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "hello %s from tenant %s", p.Username, p.TenantID)
	})
	api := v.Protect(hello, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = v.WaitReady(ctx) // optional: until then the middleware answers 503

	for _, auth := range []string{"", "Bearer " + idp.sign(nil, idp.v2Claims(tenantA))} {
		req := httptest.NewRequest("GET", "/api", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"), string(body))
	}
	// Output:
	// 401 Bearer {"error":"unauthorized","reason":"missing_token"}
	//
	// 200  hello reader@dev.test from tenant 2dcbe9d9-33d9-44a7-b4e9-b846975b02ad
}
