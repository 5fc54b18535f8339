package entraemu_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
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

// serve runs one request in-process and fails on any 5xx.
func serveNo500(t *testing.T, srv http.Handler, method, path, query, body string) {
	t.Helper()
	target := path
	if query != "" {
		target += "?" + query
	}
	req := httptest.NewRequest(method, "https://localhost:8443/", strings.NewReader(body))
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return // not a request a server can receive
	}
	req.URL, req.RequestURI = u, target
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "127.0.0.1:1234"
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, req)
	if w.Code >= 500 {
		t.Fatalf("%s %s: %d %s", method, target, w.Code, w.Body.String())
	}
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
					serveNo500(t, srv, m, path, q, "")
				}
			}
			serveNo500(t, srv, "OPTIONS", path, "", "")
			serveNo500(t, srv, "PUT", path, queries[3], "x=1")
			for _, b := range bodies {
				serveNo500(t, srv, "POST", path, queries[3], b)
			}
		}
		for _, tenant := range []string{"organizations", "dev.test", "%00", "%2e%2e"} {
			serveNo500(t, srv, "GET", strings.ReplaceAll(p, "{t}", tenant), queries[4], "")
		}
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
