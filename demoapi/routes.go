package main

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/rs/cors"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/obo"
)

// Scope and app role of the API registration (DESIGN §3).
const (
	scopeAccessAsUser = "access_as_user"
	roleDemoReadAll   = "Demo.Read.All"
)

// routes wires demoapi's endpoints. New protected endpoints are one more
// mux.Handle line here. oboH (nil: not mounted) serves /api/obo, for
// delegated callers only: On-Behalf-Of needs a user. down is the
// downstream client behind oboH, whose counters /metrics reports (nil: none).
func routes(mux *http.ServeMux, v *apiauth.Validator, oboH http.Handler, down *obo.Downstream) {
	readers := apiauth.RequireScopeOrAppRole([]string{scopeAccessAsUser}, []string{roleDemoReadAll})
	mux.Handle("GET /api", v.Protect(http.HandlerFunc(handleAPI), readers))
	if oboH != nil {
		mux.Handle("GET /api/obo", v.Protect(oboH, apiauth.DelegatedOnly(), apiauth.RequireScope(scopeAccessAsUser)))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !v.Ready() {
			w.Header().Set("Retry-After", "5")
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "signing keys not loaded"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", metricsHandler(v, down))
}

// handler is the whole HTTP stack: CORS outermost, so that 401/403/503
// answers carry the CORS headers and the page can read WWW-Authenticate.
func handler(cfg Config, v *apiauth.Validator, oboH http.Handler, down *obo.Downstream) http.Handler {
	mux := http.NewServeMux()
	routes(mux, v, oboH, down)
	c := cors.New(cors.Options{
		AllowedOrigins:   cfg.AllowedOrigins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost},
		AllowedHeaders:   []string{"Authorization", "Content-Type"},
		ExposedHeaders:   []string{"WWW-Authenticate"},
		AllowCredentials: false,
		MaxAge:           600,
	})
	return c.Handler(mux)
}

// apiResponse is what GET /api read from the token (Milestone 2).
type apiResponse struct {
	Message   string    `json:"message"`
	Name      string    `json:"name,omitempty"`
	Username  string    `json:"username,omitempty"`
	ObjectID  string    `json:"oid"`
	TenantID  string    `json:"tid"`
	AppID     string    `json:"appId"`
	Caller    string    `json:"caller"` // "user" (delegated) or "app" (app-only)
	Scopes    []string  `json:"scopes,omitempty"`
	Roles     []string  `json:"roles,omitempty"`
	Audience  string    `json:"aud"`
	Issuer    string    `json:"iss"`
	Version   string    `json:"ver"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func handleAPI(w http.ResponseWriter, r *http.Request) {
	p, ok := apiauth.PrincipalFrom(r.Context())
	if !ok { // cannot happen behind Protect; fail closed
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "unauthorized"})
		return
	}
	resp := apiResponse{
		Message: "The web API received and read your access token.",
		Name:    p.Name, Username: p.Username, ObjectID: p.ObjectID, TenantID: p.TenantID, AppID: p.AppID,
		Caller: "user", Scopes: p.Scopes, Roles: p.Roles, Audience: p.Audience, Issuer: p.Issuer,
		Version: p.Version, ExpiresAt: p.ExpiresAt.UTC(),
	}
	if p.AppOnly {
		resp.Caller = "app"
	}
	writeJSON(w, http.StatusOK, resp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
