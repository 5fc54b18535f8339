package entraemu

import (
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"
)

func (s *Server) onlyGET(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	s.writeError(w, r, methodNotAllowed("GET, OPTIONS", r))
	return false
}

// pathTenant is the tenant segment used in endpoint URLs: the tenant id for
// the tenant (even when addressed by domain, as Entra does), or
// common/organizations as addressed.
func (s *Server) pathTenant(seg string, multi bool) string {
	if multi {
		return seg
	}
	return s.dir.Tenant.ID
}

func (s *Server) handleDiscoveryV2(w http.ResponseWriter, r *http.Request) {
	if !s.onlyGET(w, r) {
		return
	}
	seg, multi, e := s.tenantOf(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	t := s.pathTenant(seg, multi)
	base := s.baseURL() + "/" + t
	issuer := s.IssuerV2()
	if multi {
		issuer = s.baseURL() + "/{tenantid}/v2.0"
	}
	doc := map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                issuer,
		"request_uri_parameter_supported":       false,
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  base + "/oauth2/v2.0/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"},
		"code_challenge_methods_supported": []string{"S256"},
		"tenant_region_scope":              "NA",
		"cloud_instance_name":              "microsoftonline.com",
		"cloud_graph_host_name":            "graph.windows.net",
		"msgraph_host":                     "graph.microsoft.com",
	}
	writeCacheableJSON(w, doc)
}

func (s *Server) handleDiscoveryV1(w http.ResponseWriter, r *http.Request) {
	if !s.onlyGET(w, r) {
		return
	}
	seg, multi, e := s.tenantOf(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	t := s.pathTenant(seg, multi)
	base := s.baseURL() + "/" + t
	issuer := s.IssuerV1()
	if multi {
		issuer = s.baseURL() + "/{tenantid}/"
	}
	doc := map[string]any{
		"token_endpoint":                        base + "/oauth2/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              base + "/discovery/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code"},
		"scopes_supported":                      []string{"openid"},
		"issuer":                                issuer,
		"microsoft_multi_refresh_token":         true,
		// The emulator has one authorize endpoint (v2 parameters).
		"authorization_endpoint":        s.baseURL() + "/" + t + "/oauth2/v2.0/authorize",
		"http_logout_supported":         true,
		"frontchannel_logout_supported": true,
		"end_session_endpoint":          base + "/oauth2/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"},
		"tenant_region_scope":   "NA",
		"cloud_instance_name":   "microsoftonline.com",
		"cloud_graph_host_name": "graph.windows.net",
		"msgraph_host":          "graph.microsoft.com",
	}
	writeCacheableJSON(w, doc)
}

// writeCacheableJSON serves discovery documents and keys, which Entra lets
// clients cache for a day.
func writeCacheableJSON(w http.ResponseWriter, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "max-age=86400, private")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func (s *Server) handleKeysV2(w http.ResponseWriter, r *http.Request) {
	s.serveKeys(w, r, true)
}

func (s *Server) handleKeysV1(w http.ResponseWriter, r *http.Request) {
	s.serveKeys(w, r, false)
}

func (s *Server) serveKeys(w http.ResponseWriter, r *http.Request, v2 bool) {
	if !s.onlyGET(w, r) {
		return
	}
	seg, multi, e := s.tenantOf(r)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	_ = seg
	s.mu.Lock()
	f := s.fault
	s.mu.Unlock()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if f.Status != 0 {
		s.writeError(w, r, newErr(f.Status, "temporarily_unavailable", 90033, "A transient error has occurred (devidp JWKS fault injection)."))
		return
	}
	issuer := s.IssuerV2()
	switch {
	case multi && v2:
		issuer = s.baseURL() + "/{tenantid}/v2.0"
	case multi:
		issuer = s.baseURL() + "/{tenantid}/"
	case !v2:
		issuer = s.IssuerV1()
	}
	writeCacheableJSON(w, s.keys.jwks(issuer))
}

// handleInstanceDiscovery answers MSAL's instance discovery for this host
// only (AADSTS50049 for any other authority).
func (s *Server) handleInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	if !s.onlyGET(w, r) {
		return
	}
	ae := r.URL.Query().Get("authorization_endpoint")
	u, err := url.Parse(ae)
	if ae == "" || err != nil || u.Scheme != "https" || !strings.EqualFold(u.Host, s.host) {
		s.writeError(w, r, newErr(http.StatusBadRequest, "invalid_instance", 50049, "Unknown or invalid instance."))
		return
	}
	tenant := strings.SplitN(strings.TrimPrefix(u.Path, "/"), "/", 2)[0]
	if tenant == "" {
		tenant = "common"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"tenant_discovery_endpoint": s.baseURL() + "/" + url.PathEscape(tenant) + "/v2.0/.well-known/openid-configuration",
		"api-version":               "1.1",
		"metadata": []map[string]any{{
			"preferred_network": s.host,
			"preferred_cache":   s.host,
			"aliases":           []string{s.host},
		}},
	})
}

// handleUserRealm is the realm discovery MSAL Go performs before ROPC.
func (s *Server) handleUserRealm(w http.ResponseWriter, r *http.Request) {
	if !s.onlyGET(w, r) {
		return
	}
	user := r.PathValue("user")
	dom := userDomain(user)
	resp := map[string]any{"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com"}
	for _, d := range s.dir.Tenant.Domains {
		if strings.EqualFold(d, dom) {
			resp["account_type"] = "Managed"
			resp["domain_name"] = d
			resp["cloud_audience_urn"] = "urn:federation:MicrosoftOnline"
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devidp error {{.}}</title></head>
<body><h1>AADSTS{{.}}</h1><p>This is the devidp Entra ID emulator. Look the code up in the
Microsoft Entra authentication and authorization error codes reference.</p></body></html>`))

func (s *Server) handleErrorPage(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	for _, c := range code {
		if c < '0' || c > '9' {
			code = ""
			break
		}
	}
	setPageHeaders(w)
	_ = errorPage.Execute(w, truncate(code, 12))
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>devidp</title></head>
<body><h1>devidp — local Entra ID emulator</h1>
<p>Authority: <code>{{.}}</code></p>
<p>If you can read this page without a certificate warning, your browser trusts the devidp development CA.</p>
</body></html>`))

func (s *Server) handleIndex(w http.ResponseWriter, r *http.Request) {
	setPageHeaders(w)
	_ = indexPage.Execute(w, s.baseURL()+"/"+s.dir.Tenant.ID)
}

// setPageHeaders are the security headers of every HTML page.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}
