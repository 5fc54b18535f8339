package graph

import (
	"net/http"

	"github.com/entra-go/secure-api/apiauth"
)

// Handler is the upstream service's whole HTTP stack: GET /v1.0/me behind v
// (delegated callers with scope only), /healthz and /readyz. No CORS: only
// servers call it. v should accept v1.0 tokens only, for the service's own
// audience, like Graph (the upstream command configures it so).
func Handler(v *apiauth.Validator, scope string, lookup LookupFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /v1.0/me", v.Protect(MeHandler(CallerFromPrincipal, lookup), apiauth.DelegatedOnly(), apiauth.RequireScope(scope)))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !v.Ready() {
			w.Header().Set("Retry-After", "5")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"signing keys not loaded"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	return mux
}

// CallerFromPrincipal reads the caller that apiauth validated.
func CallerFromPrincipal(r *http.Request) (Caller, bool) {
	p, ok := apiauth.PrincipalFrom(r.Context())
	if !ok || p.AppOnly {
		return Caller{}, false
	}
	c := Caller{OID: p.ObjectID, UPN: p.Username, Name: p.Name}
	_ = p.Claim("given_name", &c.GivenName)
	_ = p.Claim("family_name", &c.FamilyName)
	return c, true
}
