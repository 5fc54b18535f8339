package entraemu_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/entra-go/secure-api/entraemu"
)

var endpointPaths = []string{
	"/{t}/v2.0/.well-known/openid-configuration", "/{t}/.well-known/openid-configuration",
	"/{t}/discovery/v2.0/keys", "/{t}/discovery/keys", "/{t}/discovery/instance", "/{t}/UserRealm/x@dev.test",
	"/{t}/oauth2/v2.0/token", "/{t}/oauth2/token", "/{t}/oauth2/v2.0/authorize", "/{t}/oauth2/v2.0/logout",
	"/{t}/login", "/{t}/consent", "/{t}/mfa", "/error", "/healthz", "/", "/nope/nope",
	"/_emulator/keys/rotate", "/_emulator/keys/revoke", "/_emulator/jwks-fault", "/_emulator/fail-next-obo", "/_emulator/counters",
}

// serveNo500 runs one request in-process, fails on any 5xx and returns the
// answer (nil for a target no server can receive).
func serveNo500(t *testing.T, srv http.Handler, method, path, query, body string) *httptest.ResponseRecorder {
	t.Helper()
	target := path
	if query != "" {
		target += "?" + query
	}
	req := httptest.NewRequest(method, "https://localhost:8443/", strings.NewReader(body))
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil // not a request a server can receive
	}
	req.URL, req.RequestURI = u, target
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "127.0.0.1:1234"
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code >= 500 {
		t.Fatalf("%s %s: %d %s", method, target, w.Code, w.Body.String())
	}
	return w
}

// Endpoint kinds: Entra's JSON endpoints answer errors with Entra's error
// body; the browser endpoints answer pages, or redirect to a registered URI.
const (
	kindOther = iota
	kindJSON
	kindPage
)

var endpointKind = map[string]int{
	"/{t}/v2.0/.well-known/openid-configuration": kindJSON, "/{t}/.well-known/openid-configuration": kindJSON,
	"/{t}/discovery/v2.0/keys": kindJSON, "/{t}/discovery/keys": kindJSON, "/{t}/discovery/instance": kindJSON,
	"/{t}/UserRealm/x@dev.test": kindJSON, "/{t}/oauth2/v2.0/token": kindJSON, "/{t}/oauth2/token": kindJSON, "/nope/nope": kindJSON,
	"/{t}/oauth2/v2.0/authorize": kindPage, "/{t}/oauth2/v2.0/logout": kindPage,
	"/{t}/login": kindPage, "/{t}/consent": kindPage, "/{t}/mfa": kindPage,
}

// tenantChecked are the JSON endpoints that refuse an unknown tenant.
var tenantChecked = map[string]bool{
	"/{t}/v2.0/.well-known/openid-configuration": true, "/{t}/.well-known/openid-configuration": true,
	"/{t}/discovery/v2.0/keys": true, "/{t}/discovery/keys": true, "/{t}/oauth2/v2.0/token": true, "/{t}/oauth2/token": true,
}

// wantAADSTS is the error a request must get: an AADSTS code, -1 for "an
// Entra error, any code", 0 when it may succeed.
func wantAADSTS(p, tenant, method, query string) int {
	kind := endpointKind[p]
	token := strings.Contains(p, "/token")
	switch {
	case kind == kindOther:
		return 0
	case len(query) > 16<<10:
		return 90015 // query string too long
	case p == "/nope/nope":
		return 900561
	case kind == kindPage:
		if tenant == "nope.example" && method == "GET" && query == "" && (strings.HasSuffix(p, "/authorize") || strings.HasSuffix(p, "/logout")) {
			return 90002
		}
		return 0
	case method == "OPTIONS":
		return 0 // a preflight
	case token && method != "POST", !token && method != "GET":
		return 900561
	case tenant == "nope.example" && tenantChecked[p]:
		return 90002
	case token:
		return -1 // none of these requests is a valid grant
	case strings.HasSuffix(p, "/discovery/instance"):
		return 50049 // no valid authorization_endpoint
	}
	return 0
}

// registeredTargets are every redirect and post-logout URI of the default
// directory: the only places the browser endpoints may send anyone.
func registeredTargets() []string {
	var out []string
	for _, a := range entraemu.DefaultDirectory().Apps {
		out = append(out, a.RedirectURIs.SPA...)
		out = append(out, a.RedirectURIs.Web...)
		out = append(out, a.RedirectURIs.PublicClient...)
		out = append(out, a.PostLogoutRedirectURIs...)
	}
	return out
}

// checkAnswer asserts the answer's shape for the endpoint's kind.
func checkAnswer(t *testing.T, p, tenant, method, query string, w *httptest.ResponseRecorder) {
	t.Helper()
	if w == nil {
		return
	}
	what := method + " " + strings.ReplaceAll(p, "{t}", tenant) + "?" + truncateQ(query)
	ct := w.Header().Get("Content-Type")
	want := wantAADSTS(p, tenant, method, query)
	switch endpointKind[p] {
	case kindJSON:
		if want != 0 && w.Code < 400 {
			t.Errorf("%s: %d, want an Entra error (AADSTS%d)", what, w.Code, want)
			return
		}
		if w.Code < 400 {
			if w.Code == 200 && !strings.HasPrefix(ct, "application/json") || w.Code != 200 && w.Code != 204 {
				t.Errorf("%s: %d %q", what, w.Code, ct)
			}
			return
		}
		m := checkEntraErrorBody(t, what, w)
		if want > 0 && m != nil && !hasCode(m, want) {
			t.Errorf("%s: error_codes %v, want AADSTS%d", what, m["error_codes"], want)
		}
	case kindPage:
		if method == "OPTIONS" && w.Code == 204 && strings.HasSuffix(p, "/logout") {
			return // logout answers CORS preflights
		}
		if w.Code >= 300 && w.Code < 400 {
			loc := w.Header().Get("Location")
			if !slices.ContainsFunc(registeredTargets(), func(r string) bool {
				return loc == r || strings.HasPrefix(loc, r+"?") || strings.HasPrefix(loc, r+"#")
			}) {
				t.Errorf("%s: redirected to an unregistered URI %q", what, loc)
			}
			return
		}
		if !strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s: %d answered %q, not a page: %.200s", what, w.Code, ct, w.Body.String())
			return
		}
		page := w.Body.String()
		if w.Code >= 400 && !strings.Contains(page, `id="error"`) {
			t.Errorf("%s: %d page shows no error", what, w.Code)
		}
		if want > 0 && (w.Code != 400 || !strings.Contains(page, "AADSTS"+strconv.Itoa(want)+":")) {
			t.Errorf("%s: %d page without AADSTS%d", what, w.Code, want)
		}
	}
}

func truncateQ(q string) string {
	if len(q) > 80 {
		return q[:80] + "..."
	}
	return q
}

// checkEntraErrorBody asserts Entra's error body: JSON with error,
// error_description "AADSTSnnnn: ..." (trace and correlation ids and
// timestamp repeated in it), error_codes [nnnn], timestamp, trace_id,
// correlation_id.
func checkEntraErrorBody(t *testing.T, what string, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: %d error with Content-Type %q", what, w.Code, ct)
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Errorf("%s: error body not JSON: %.200s", what, w.Body.String())
		return nil
	}
	d, _ := m["error_description"].(string)
	sm := descRE.FindStringSubmatch(d)
	if e, _ := m["error"].(string); e == "" || sm == nil {
		t.Errorf("%s: error %q, error_description %q", what, m["error"], d)
		return m
	}
	codes, _ := m["error_codes"].([]any)
	if len(codes) != 1 || strconv.FormatFloat(codes[0].(float64), 'f', -1, 64) != sm[1] {
		t.Errorf("%s: error_codes %v do not match %q", what, m["error_codes"], sm[1])
	}
	for _, k := range []string{"timestamp", "trace_id", "correlation_id"} {
		if s, _ := m[k].(string); s == "" || !strings.Contains(d, s) {
			t.Errorf("%s: %s %q missing or not in the description", what, k, m[k])
		}
	}
	return m
}

func TestNoEndpointAnswers500(t *testing.T) {
	t.Parallel()
	srv, err := entraemu.New(entraemu.Config{IssuerHost: "localhost:8443"})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 70<<10)
	queries := []string{"", "client_id=&redirect_uri=", "client_id=" + entraemu.SPAClientID + "&client_id=" + entraemu.SPAClientID,
		"client_id=" + entraemu.SPAClientID + "&redirect_uri=" + url.QueryEscape(spaRedirect) + "&response_type=code&scope=%00&claims=%7B",
		"client_id=" + entraemu.SPAClientID + "&redirect_uri=" + url.QueryEscape(spaRedirect) + "&response_type=code&scope=openid&code_challenge=" + strings.Repeat("A", 43) + "&code_challenge_method=S256&claims=%7B%22access_token%22%3A5%7D",
		"authorization_endpoint=%zz", "grace=-1&kid=&delay=1h&status=999&user=&aadsts=x", "post_logout_redirect_uri=javascript:alert(1)",
		"q=" + strings.Repeat("y", 20<<10)}
	bodies := []string{"", "flow=x&csrf=y", "grant_type=password&grant_type=x", "a=%zz", big}
	for _, p := range endpointPaths {
		for _, tenant := range []string{entraemu.DefaultTenantID, "common", "nope.example"} {
			path := strings.ReplaceAll(p, "{t}", tenant)
			for _, m := range []string{"GET", "POST"} {
				for _, q := range queries {
					checkAnswer(t, p, tenant, m, q, serveNo500(t, srv, m, path, q, ""))
				}
			}
			checkAnswer(t, p, tenant, "OPTIONS", "", serveNo500(t, srv, "OPTIONS", path, "", ""))
			checkAnswer(t, p, tenant, "PUT", queries[3], serveNo500(t, srv, "PUT", path, queries[3], "x=1"))
			for _, b := range bodies {
				checkAnswer(t, p, tenant, "POST", queries[3], serveNo500(t, srv, "POST", path, queries[3], b))
			}
		}
		for _, tenant := range []string{"organizations", "dev.test", "%00"} {
			checkAnswer(t, p, tenant, "GET", queries[4], serveNo500(t, srv, "GET", strings.ReplaceAll(p, "{t}", tenant), queries[4], ""))
		}
		serveNo500(t, srv, "GET", strings.ReplaceAll(p, "{t}", "%2e%2e"), queries[4], "") // cleaned by the mux
	}
}

// FuzzAuthorize: the authorize, sign-in and logout endpoints never answer 5xx.
func FuzzAuthorize(f *testing.F) {
	f.Add(0, "client_id="+entraemu.SPAClientID+"&redirect_uri="+url.QueryEscape(spaRedirect)+"&response_type=code&scope=openid+"+url.QueryEscape(apiScope)+"&code_challenge="+strings.Repeat("A", 43)+"&code_challenge_method=S256&prompt=none&response_mode=form_post", "")
	f.Add(1, "", "flow=abc&csrf=abc&username=reader@dev.test&password=dev-password")
	f.Add(2, "post_logout_redirect_uri=http%3A%2F%2Flocalhost%3A30662%2F&state=x", "")
	srv, err := entraemu.New(entraemu.Config{IssuerHost: "localhost:8443"})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"/" + entraemu.DefaultTenantID + "/oauth2/v2.0/authorize", "/" + entraemu.DefaultTenantID + "/login",
		"/common/oauth2/v2.0/logout", "/" + entraemu.DefaultTenantID + "/mfa", "/" + entraemu.DefaultTenantID + "/consent"}
	f.Fuzz(func(t *testing.T, which int, query, body string) {
		i := uint(which)
		serveNo500(t, srv, []string{"GET", "POST"}[i%2], paths[i%uint(len(paths))], query, body)
	})
}
