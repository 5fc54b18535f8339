package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/entra-go/secure-api/static"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigLocalDefaults(t *testing.T) {
	c, err := LoadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Page
	want := PageConfig{
		Mode:                  "local",
		ClientID:              "88374b94-683c-41e9-a4d0-40a9685e8661",
		Authority:             "https://localhost:8443/2dcbe9d9-33d9-44a7-b4e9-b846975b02ad",
		KnownAuthorities:      []string{"localhost:8443"},
		RedirectURI:           "http://localhost:30662/redirect.html",
		PostLogoutRedirectURI: "http://localhost:30662/",
		APIBaseURL:            "http://localhost:5050",
		APIScopes:             []string{"api://68fee0a8-293c-4256-8007-b5453b634b61/access_as_user"},
		DiscoveryURL:          "https://localhost:8443/2dcbe9d9-33d9-44a7-b4e9-b846975b02ad/v2.0/.well-known/openid-configuration",
	}
	p.TrustHelp = ""
	if got, _ := json.Marshal(p); string(got) != mustJSON(t, want) {
		t.Errorf("config\n got %s\nwant %s", got, mustJSON(t, want))
	}
	if c.Addr != "localhost:30662" {
		t.Errorf("addr %q", c.Addr)
	}
	// The dev CA path is set even before devidp has written it: demohost
	// may start first, and its probe picks the file up when it appears.
	if c.CAFile != ".devidp/ca.pem" {
		t.Errorf("CAFile %q: want the default dev CA path in local mode", c.CAFile)
	}
	if e, err := LoadConfig(envOf(map[string]string{"TENANT_ID": "t", "SPA_CLIENT_ID": "s", "API_CLIENT_ID": "a"})); err != nil || e.CAFile != "" {
		t.Errorf("Entra mode trusts a dev CA by default: %q %v", e.CAFile, err)
	}
	// Against a real tenant the local directory's ids are never defaults.
	for _, env := range []map[string]string{
		{"TENANT_ID": "t", "API_CLIENT_ID": "a"},
		{"TENANT_ID": "t", "SPA_CLIENT_ID": "s"},
		{"AUTHORITY": "https://login.microsoftonline.com/t", "API_CLIENT_ID": "a"},
	} {
		if _, err := LoadConfig(envOf(env)); err == nil || !strings.Contains(err.Error(), "required against a real tenant") {
			t.Errorf("%v: %v", env, err)
		}
	}
	if _, err := LoadConfig(envOf(map[string]string{"TENANT_ID": "t", "SPA_CLIENT_ID": "s", "API_SCOPES": "api://x/y"})); err != nil {
		t.Errorf("API_SCOPES without API_CLIENT_ID: %v", err)
	}
}

func TestLoadConfigEntra(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{
		"TENANT_ID":     "11111111-2222-3333-4444-555555555555",
		"SPA_CLIENT_ID": "aaaaaaaa-0000-0000-0000-000000000001",
		"API_CLIENT_ID": "bbbbbbbb-0000-0000-0000-000000000002",
		"API_BASE_URL":  "https://api.example.test:8080/",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Page
	if p.Mode != "entra" || p.Authority != "https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555" {
		t.Errorf("mode %q authority %q", p.Mode, p.Authority)
	}
	if len(p.KnownAuthorities) != 0 {
		t.Errorf("knownAuthorities for a Microsoft host must be empty (cloud discovery works): %v", p.KnownAuthorities)
	}
	if p.ClientID != "aaaaaaaa-0000-0000-0000-000000000001" || p.APIBaseURL != "https://api.example.test:8080" {
		t.Errorf("client %q api %q", p.ClientID, p.APIBaseURL)
	}
	if len(p.APIScopes) != 1 || p.APIScopes[0] != "api://bbbbbbbb-0000-0000-0000-000000000002/access_as_user" {
		t.Errorf("scopes %v", p.APIScopes)
	}
	if p.TrustHelp != "" {
		t.Errorf("trust help in Entra mode: %q", p.TrustHelp)
	}
}

func TestLoadConfigOverrides(t *testing.T) {
	c, err := LoadConfig(envOf(map[string]string{
		"ADDR":              "127.0.0.1:40000",
		"AUTHORITY":         "https://localhost:9443/t1/",
		"KNOWN_AUTHORITIES": "localhost:9443, other:1",
		"API_SCOPES":        "api://x/a api://x/b",
	}))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Page
	if p.Authority != "https://localhost:9443/t1" || p.Mode != "local" {
		t.Errorf("authority %q mode %q", p.Authority, p.Mode)
	}
	if strings.Join(p.KnownAuthorities, "|") != "localhost:9443|other:1" {
		t.Errorf("known %v", p.KnownAuthorities)
	}
	if strings.Join(p.APIScopes, "|") != "api://x/a|api://x/b" {
		t.Errorf("scopes %v", p.APIScopes)
	}
	if p.RedirectURI != "http://127.0.0.1:40000/redirect.html" || p.PostLogoutRedirectURI != "http://127.0.0.1:40000/" {
		t.Errorf("redirect %q logout %q", p.RedirectURI, p.PostLogoutRedirectURI)
	}
}

func TestLoadConfigRejects(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"http authority": {"AUTHORITY": "http://localhost:8443/t"},
		"relative":       {"AUTHORITY": "/t"},
		"bad api":        {"API_BASE_URL": "ftp://x"},
		"bad redirect":   {"REDIRECT_URI": "/redirect.html"},
	} {
		if _, err := LoadConfig(envOf(env)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func newTestHost(t *testing.T, probeErr error) http.Handler {
	t.Helper()
	c, err := LoadConfig(envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	h, err := newHost(c, static.Files, func(context.Context) error { return probeErr }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func TestServesPageWithSecurityHeaders(t *testing.T) {
	h := newTestHost(t, nil)
	for _, path := range []string{"/", "/index.html", "/app.js", "/app.css", "/redirect.html", "/redirect.js", "/vendor/msal-browser.min.js", "/vendor/msal-redirect-bridge.min.js", "/vendor/LICENSE", "/favicon.svg"} {
		res := get(t, h, "GET", path)
		if res.StatusCode != 200 {
			t.Errorf("%s: %d", path, res.StatusCode)
			continue
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s: X-Content-Type-Options %q", path, got)
		}
		if got := res.Header.Get("Referrer-Policy"); got != "no-referrer" {
			t.Errorf("%s: Referrer-Policy %q", path, got)
		}
		if res.Header.Get("Cross-Origin-Opener-Policy") != "" {
			t.Errorf("%s: COOP set; the redirect bridge and popups need none", path)
		}
		if res.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: no CSP", path)
		}
	}
	ct := map[string]string{"/": "text/html", "/app.js": "javascript", "/app.css": "text/css", "/vendor/msal-browser.min.js": "javascript"}
	for path, want := range ct {
		if got := get(t, h, "GET", path).Header.Get("Content-Type"); !strings.Contains(got, want) {
			t.Errorf("%s: Content-Type %q, want %s", path, got, want)
		}
	}
	idx := get(t, h, "GET", "/")
	body, _ := io.ReadAll(idx.Body)
	if !strings.Contains(string(body), `src="/vendor/msal-browser.min.js"`) {
		t.Error("index.html does not load the vendored msal-browser")
	}
	if idx.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(idx.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("index.html framing: %q / %q", idx.Header.Get("X-Frame-Options"), idx.Header.Get("Content-Security-Policy"))
	}
	// The redirect bridge is framed by our own page in the silent flow.
	br := get(t, h, "GET", "/redirect.html")
	if br.Header.Get("X-Frame-Options") != "SAMEORIGIN" || !strings.Contains(br.Header.Get("Content-Security-Policy"), "frame-ancestors 'self'") {
		t.Errorf("redirect.html framing: %q / %q", br.Header.Get("X-Frame-Options"), br.Header.Get("Content-Security-Policy"))
	}
}

func TestCSPListsExactlyAuthorityAndAPI(t *testing.T) {
	csp := get(t, newTestHost(t, nil), "GET", "/").Header.Get("Content-Security-Policy")
	d := map[string]string{}
	for _, part := range strings.Split(csp, ";") {
		f := strings.Fields(part)
		if len(f) > 0 {
			d[f[0]] = strings.Join(f[1:], " ")
		}
	}
	want := map[string]string{
		"default-src":     "'none'",
		"script-src":      "'self'",
		"style-src":       "'self'",
		"connect-src":     "'self' https://localhost:8443 http://localhost:5050",
		"frame-src":       "'self' https://localhost:8443",
		"form-action":     "'self' https://localhost:8443",
		"frame-ancestors": "'none'",
		"base-uri":        "'none'",
		"object-src":      "'none'",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %q, want %q (CSP %q)", k, d[k], v, csp)
		}
	}
	if strings.Contains(csp, "unsafe") || strings.Contains(csp, "*") {
		t.Errorf("CSP too loose: %q", csp)
	}
}

func TestStaticHasNoInlineScriptOrStyle(t *testing.T) {
	// The CSP has no 'unsafe-inline': an inline script or style would be
	// silently blocked in the browser.
	for _, name := range []string{"index.html", "redirect.html"} {
		b, err := static.Files.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for i := 0; ; {
			j := strings.Index(s[i:], "<script")
			if j < 0 {
				break
			}
			tag := s[i+j : i+j+strings.Index(s[i+j:], ">")]
			if !strings.Contains(tag, "src=") {
				t.Errorf("%s: inline script %q", name, tag)
			}
			i += j + 1
		}
		if strings.Contains(s, "<style") || strings.Contains(s, "style=") || strings.Contains(s, "onclick") {
			t.Errorf("%s: inline style or handler", name)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	res := get(t, newTestHost(t, nil), "GET", "/config.json")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("config.json: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	var p PageConfig
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.ClientID != "88374b94-683c-41e9-a4d0-40a9685e8661" || p.Authority != "https://localhost:8443/2dcbe9d9-33d9-44a7-b4e9-b846975b02ad" ||
		len(p.KnownAuthorities) != 1 || p.KnownAuthorities[0] != "localhost:8443" || p.APIBaseURL != "http://localhost:5050" {
		t.Errorf("config.json = %+v", p)
	}
}

func TestNotFoundAndNoListing(t *testing.T) {
	h := newTestHost(t, nil)
	for _, path := range []string{"/vendor/", "/vendor", "/nope.html", "/static.go", "/../go.mod", "/.git/config", "/index.html/", "/%2e%2e/go.mod"} {
		res := get(t, h, "GET", path)
		if res.StatusCode != 404 {
			t.Errorf("%s: %d, want 404", path, res.StatusCode)
		}
		body, _ := io.ReadAll(res.Body)
		if strings.Contains(string(body), "<a href") {
			t.Errorf("%s: looks like a directory listing", path)
		}
	}
	// A folder on disk (STATIC_DIR mode) is not listed either.
	fsys := fstest.MapFS{"index.html": {Data: []byte("hi")}, "sub/a.txt": {Data: []byte("a")}}
	c, _ := LoadConfig(envOf(nil))
	dh, _ := newHost(c, fsys, func(context.Context) error { return nil }, slog.New(slog.DiscardHandler))
	for _, path := range []string{"/sub", "/sub/"} {
		if res := get(t, dh, "GET", path); res.StatusCode != 404 {
			t.Errorf("disk %s: %d", path, res.StatusCode)
		}
	}
	if res := get(t, dh, "GET", "/sub/a.txt"); res.StatusCode != 200 {
		t.Errorf("disk file: %d", res.StatusCode)
	}
}

func TestMethods(t *testing.T) {
	h := newTestHost(t, nil)
	if res := get(t, h, "POST", "/"); res.StatusCode != 405 || res.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d allow %q", res.StatusCode, res.Header.Get("Allow"))
	}
	if res := get(t, h, "HEAD", "/app.js"); res.StatusCode != 200 {
		t.Errorf("HEAD: %d", res.StatusCode)
	}
}

func TestAuthorityProbe(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{{nil, true}, {errors.New("connection refused"), false}} {
		res := get(t, newTestHost(t, tc.err), "GET", "/status/authority")
		var got struct{ Reachable bool }
		if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Reachable != tc.want {
			t.Errorf("probe err %v: reachable %v", tc.err, got.Reachable)
		}
	}
}

func TestDiscoveryProbeAgainstServer(t *testing.T) {
	ok := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/t/v2.0/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	defer ok.Close()
	ctx := context.Background()
	if err := probe(ctx, ok.Client(), ok.URL+"/t/v2.0/.well-known/openid-configuration"); err != nil {
		t.Errorf("trusted server: %v", err)
	}
	if err := probe(ctx, ok.Client(), ok.URL+"/other"); err == nil {
		t.Error("404 counted as reachable")
	}
	// A client without the server's CA must fail: that is the "not trusted" case.
	if err := discoveryProbe("/nonexistent/ca.pem", ok.URL+"/t/v2.0/.well-known/openid-configuration")(ctx); err == nil {
		t.Error("untrusted certificate accepted")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestProberPicksUpCAFileAndReusesSuccess(t *testing.T) {
	var hits atomic.Int64
	var down atomic.Bool
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	p := &prober{caFile: caFile, url: srv.URL + "/t/v2.0/.well-known/openid-configuration"}
	ctx := context.Background()
	if err := p.check(ctx); err == nil {
		t.Fatal("trusted before the CA file exists")
	}
	// devidp writes its CA after demohost started; a failure is not reused.
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.check(ctx); err != nil {
		t.Fatalf("CA file not picked up: %v", err)
	}
	before := hits.Load()
	for i := 0; i < 50; i++ {
		if err := p.check(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := hits.Load() - before; got != 0 {
		t.Errorf("50 probes within probeReuse made %d requests, want 0", got)
	}
	// Once the reuse window has passed, a failing IdP is reported at once.
	down.Store(true)
	p.mu.Lock()
	p.okAt = time.Now().Add(-probeReuse)
	p.mu.Unlock()
	if err := p.check(ctx); err == nil {
		t.Fatal("a failing IdP reported reachable after the reuse window")
	}
	if err := p.check(ctx); err == nil {
		t.Fatal("a failure was reused as a success")
	}
}
