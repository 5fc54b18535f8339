package entraemu_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/entraemu"
)

// do sends one request through ts.Client's transport (not following
// redirects) and returns status, headers and body.
func do(t *testing.T, ts *entraemu.TestServer, method, path string, hdr http.Header) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	c := *ts.Client // the same transport, but redirects are answers here
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// CORS on the keys and logout endpoints: the SPA's origin (from its SPA
// redirect URIs) is echoed on preflights and actual requests; any other
// origin gets no CORS headers at all, and caches are told the answer
// depends on Origin.
func TestCORSKeysAndLogout(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	tid := entraemu.DefaultTenantID
	paths := []string{
		"/" + tid + "/discovery/v2.0/keys", "/" + tid + "/discovery/keys", "/common/discovery/v2.0/keys",
		"/" + tid + "/oauth2/v2.0/logout", "/" + tid + "/oauth2/logout",
	}
	foreign := []string{"https://evil.example", "http://localhost:30662.evil.example", "https://localhost:30662",
		"http://localhost:3066", "http://localhost:306620", "null"}
	corsHeaders := []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
		"Access-Control-Expose-Headers", "Access-Control-Max-Age", "Access-Control-Allow-Credentials"}
	noCORS := func(what string, h http.Header) {
		t.Helper()
		for _, k := range corsHeaders {
			if v := h.Get(k); v != "" {
				t.Errorf("%s: %s = %q", what, k, v)
			}
		}
		if !slices.Contains(h.Values("Vary"), "Origin") {
			t.Errorf("%s: no Vary: Origin (%v)", what, h.Values("Vary"))
		}
	}
	keysBefore := ts.Count("keys")
	for _, p := range paths {
		isKeys := strings.Contains(p, "/discovery/")
		// Preflight from the SPA origin.
		st, h, _ := do(t, ts, http.MethodOptions, p, http.Header{"Origin": {spaOrigin},
			"Access-Control-Request-Method": {"GET"}, "Access-Control-Request-Headers": {"client-request-id, x-client-sku, x-evil"}})
		if st != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != spaOrigin ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "GET") || !slices.Contains(h.Values("Vary"), "Origin") {
			t.Errorf("%s preflight: %d %v", p, st, h)
		}
		if got := h.Get("Access-Control-Allow-Headers"); got != "client-request-id, x-client-sku" {
			t.Errorf("%s preflight Allow-Headers = %q (x-evil must not be allowed)", p, got)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s preflight allows credentials", p)
		}
		// Actual request from the SPA origin.
		st, h, body := do(t, ts, http.MethodGet, p, http.Header{"Origin": {spaOrigin}})
		if st != http.StatusOK || h.Get("Access-Control-Allow-Origin") != spaOrigin || !slices.Contains(h.Values("Vary"), "Origin") {
			t.Errorf("%s actual: %d %v", p, st, h)
		}
		if isKeys && !strings.Contains(body, `"keys"`) {
			t.Errorf("%s: not a JWKS: %s", p, body)
		}
		if !isKeys && !strings.Contains(body, "signed out") {
			t.Errorf("%s: not the signed-out page", p)
		}
		// Unregistered origins: neither the preflight nor the request is allowed.
		for _, o := range foreign {
			st, h, _ := do(t, ts, http.MethodOptions, p, http.Header{"Origin": {o}, "Access-Control-Request-Method": {"GET"}})
			if st >= 300 {
				t.Errorf("%s preflight from %s: %d", p, o, st)
			}
			noCORS(p+" preflight from "+o, h)
			st, h, _ = do(t, ts, http.MethodGet, p, http.Header{"Origin": {o}})
			if st != http.StatusOK {
				t.Errorf("%s from %s: %d", p, o, st)
			}
			noCORS(p+" from "+o, h)
		}
		// No Origin at all (a server-side client): no CORS headers, still Vary.
		_, h, _ = do(t, ts, http.MethodGet, p, nil)
		noCORS(p+" without Origin", h)
	}
	// An error answer still carries the CORS header, so the SPA can read it
	// instead of seeing an opaque network failure.
	st, h, body := do(t, ts, http.MethodGet, "/nope.example/discovery/v2.0/keys", http.Header{"Origin": {spaOrigin}})
	if st != 400 || h.Get("Access-Control-Allow-Origin") != spaOrigin || !strings.Contains(body, "AADSTS90002") {
		t.Errorf("keys error: %d %v %s", st, h, body)
	}
	// Preflights are not requests for keys: 3 keys paths × (1 SPA + 6 foreign + 1 none) GETs + the error.
	if got := ts.Count("keys") - keysBefore; got != 3*8+1 {
		t.Errorf("keys counter moved by %d, want %d (preflights must not count)", got, 3*8+1)
	}
	// Logout through CORS still ends the session and returns to a registered
	// URI only.
	st, h, _ = do(t, ts, http.MethodGet, "/"+tid+"/oauth2/v2.0/logout?client_id="+entraemu.SPAClientID+"&post_logout_redirect_uri="+
		url.QueryEscape(spaOrigin+"/"), http.Header{"Origin": {spaOrigin}})
	if st != http.StatusFound || h.Get("Location") != spaOrigin+"/" || h.Get("Access-Control-Allow-Origin") != spaOrigin {
		t.Errorf("logout redirect: %d %v", st, h)
	}
	// The tenant-less /discovery/keys is not served by the emulator (the v1
	// keys live at /{tenant}/discovery/keys): an Entra-style 404, no CORS.
	st, h, body = do(t, ts, http.MethodGet, "/discovery/keys", http.Header{"Origin": {spaOrigin}})
	if st != http.StatusNotFound || h.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(body, "AADSTS900561") {
		t.Errorf("/discovery/keys: %d %v %s", st, h, body)
	}
}

// Counters: per endpoint and per grant type, each request counted once
// under its own grant (failures included, unknown grants not given a
// counter), and reset both from Go and over the loopback admin endpoint.
func TestCountersPerGrantAndReset(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	if c := ts.Counters(); len(c) != 0 {
		t.Fatalf("fresh server counters: %v", c)
	}
	apiSecret, daemonSecret := secretOf(t, entraemu.APIClientID), secretOf(t, entraemu.DaemonClientID)

	user := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	ts.ClientCredentialsToken(t, entraemu.DaemonClientID, daemonSecret, entraemu.APIAppIDURI+"/.default")
	ts.OBOToken(t, entraemu.APIClientID, apiSecret, user.AccessToken, graphScope)
	if user.RefreshToken == "" {
		t.Fatal("ROPC with offline_access returned no refresh token")
	}
	if st, b := ts.PostToken(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.CLIClientID},
		"refresh_token": {user.RefreshToken}, "scope": {apiScope + " offline_access"}}); st != 200 {
		t.Fatalf("refresh: %d %v", st, b)
	}
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	req := spaRequest()
	res := b.Authorize(t, req)
	if st, body := b.Redeem(t, req, res, nil); st != 200 {
		t.Fatalf("redeem: %d %v", st, body)
	}
	// Failures count under their grant too (a request is a request).
	if st, _ := ts.PostToken(t, url.Values{"grant_type": {"client_credentials"}, "client_id": {entraemu.DaemonClientID},
		"client_secret": {"wrong"}, "scope": {entraemu.APIAppIDURI + "/.default"}}); st != 401 {
		t.Fatalf("wrong secret answered %d", st)
	}
	// The v1 endpoint counts under the same names.
	resp, err := ts.Client.PostForm(ts.Authority+"/oauth2/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {entraemu.DaemonClientID}, "client_secret": {daemonSecret}, "resource": {entraemu.APIAppIDURI}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("v1 client credentials: %d", resp.StatusCode)
	}
	// An unknown or missing grant counts as a token request, under no grant.
	for _, g := range []string{"urn:made:up", ""} {
		if st, _ := ts.PostToken(t, url.Values{"grant_type": {g}, "client_id": {entraemu.CLIClientID}}); st != 400 {
			t.Fatalf("grant %q answered %d", g, st)
		}
	}
	// A preflight is not a token request.
	if st, _, _ := do(t, ts, http.MethodOptions, "/"+entraemu.DefaultTenantID+"/oauth2/v2.0/token",
		http.Header{"Origin": {spaOrigin}, "Access-Control-Request-Method": {"POST"}}); st != 204 {
		t.Fatalf("preflight: %d", st)
	}
	want := map[string]int64{
		"token":                            9,
		"token:password":                   1,
		"token:client_credentials":         3,
		"token:" + entraemu.GrantJWTBearer: 1,
		"token:refresh_token":              1,
		"token:authorization_code":         1,
		"authorize":                        1,
	}
	if got := ts.Counters(); !mapsEqual(got, want) {
		t.Fatalf("counters = %v\nwant       %v", got, want)
	}
	for name, n := range want {
		if ts.Count(name) != n {
			t.Errorf("Count(%q) = %d, want %d", name, ts.Count(name), n)
		}
	}

	// Reset from Go: every counter is zero, and counting goes on.
	ts.ResetCounters()
	for name, n := range ts.Counters() {
		if n != 0 {
			t.Errorf("after ResetCounters %s = %d", name, n)
		}
	}
	ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	if ts.Count("token:password") != 1 || ts.Count("token") != 1 || ts.Count("token:client_credentials") != 0 {
		t.Fatalf("after reset and one ROPC: %v", ts.Counters())
	}

	// Refused resets change nothing: a browser request (Origin) from
	// loopback, a non-loopback caller, a GET.
	for _, c := range []struct {
		method, addr string
		hdr          http.Header
	}{
		{http.MethodPost, "127.0.0.1:40000", http.Header{"Origin": {spaOrigin}}},
		{http.MethodPost, "127.0.0.1:40000", http.Header{"Sec-Fetch-Mode": {"no-cors"}}},
		{http.MethodPost, "10.0.0.7:40000", nil},
		{http.MethodGet, "127.0.0.1:40000", nil},
	} {
		r := httptest.NewRequest(c.method, "https://localhost/_emulator/counters/reset", nil)
		r.RemoteAddr = c.addr
		for k, v := range c.hdr {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, r)
		if w.Code == 200 || ts.Count("token:password") != 1 {
			t.Errorf("%s reset from %s %v: %d, token:password = %d", c.method, c.addr, c.hdr, w.Code, ts.Count("token:password"))
		}
	}

	// Reset over the admin endpoint (the test client dials loopback).
	st, _, body := do(t, ts, http.MethodPost, "/_emulator/counters/reset", nil)
	if st != 200 || !strings.Contains(body, `"reset":true`) {
		t.Fatalf("admin reset: %d %s", st, body)
	}
	if ts.Count("token:password") != 0 || ts.Count("token") != 0 {
		t.Fatalf("after admin reset: %v", ts.Counters())
	}
	st, _, snap := getJSON(t, ts, "/_emulator/counters", nil)
	if st != 200 || snap["token"] != float64(0) || snap["token:password"] != float64(0) || snap["token:client_credentials"] != float64(0) {
		t.Fatalf("counters over HTTP after reset: %d %v", st, snap)
	}
	ts.ClientCredentialsToken(t, entraemu.DaemonClientID, daemonSecret, entraemu.APIAppIDURI+"/.default")
	if _, _, snap = getJSON(t, ts, "/_emulator/counters", nil); snap["token:client_credentials"] != float64(1) || snap["token:password"] != float64(0) {
		t.Fatalf("counters over HTTP: %v", snap)
	}
}

// login_hint and prompt=select_account through the real pages: the hint
// prefills the sign-in page; a session for another user is never used
// silently for it; prompt=none with a non-matching hint is login_required
// (AADSTS50058), with a matching one (any case) it is SSO, as msal-browser's
// ssoSilent expects; select_account always lets the user pick an account.
func TestLoginHintAndSelectAccount(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	base := url.Values{"client_id": {entraemu.SPAClientID}, "redirect_uri": {spaRedirect}, "response_type": {"code"},
		"scope": {apiScope + " openid"}, "state": {"s1"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	with := func(kv ...string) url.Values {
		q := url.Values{}
		for k, v := range base {
			q[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return q
	}
	usernameField := func(page string) string {
		const marker = `id="username" name="username" value="`
		i := strings.Index(page, marker)
		if i < 0 {
			t.Fatalf("no username field on the page: %s", page)
		}
		rest := page[i+len(marker):]
		return rest[:strings.IndexByte(rest, '"')]
	}
	signedInAs := func(req entraemu.AuthorizeRequest, res entraemu.AuthorizeResult) map[string]any {
		t.Helper()
		if res.Code == "" {
			t.Fatalf("no code: %v", res.Params)
		}
		st, body := b.Redeem(t, req, res, nil)
		if st != 200 {
			t.Fatalf("redeem: %d %v", st, body)
		}
		return claimsOf(t, body["id_token"].(string))
	}

	// No session: the hint prefills the sign-in page (escaped).
	resp, page := authorizeRaw(t, b, ts, with("login_hint", "reader@dev.test"))
	if resp.StatusCode != 200 || usernameField(page) != "reader@dev.test" {
		t.Fatalf("sign-in page with login_hint: %d", resp.StatusCode)
	}
	resp, page = authorizeRaw(t, b, ts, with("login_hint", `x"><script>alert(1)</script>`))
	if resp.StatusCode != 200 || strings.Contains(page, "<script>") || usernameField(page) != "x&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" {
		t.Fatalf("login_hint not escaped: %q", usernameField(page))
	}
	resp, page = authorizeRaw(t, b, ts, base)
	if resp.StatusCode != 200 || usernameField(page) != "" {
		t.Fatalf("sign-in page without login_hint prefilled %q", usernameField(page))
	}
	req := spaRequest()
	req.LoginHint = "reader@dev.test"
	res := b.Authorize(t, req)
	if !slices.Equal(res.Pages, []string{"Sign in"}) {
		t.Fatalf("pages = %v", res.Pages)
	}
	if id := signedInAs(req, res); id["oid"] != entraemu.ReaderOID {
		t.Fatalf("signed in as %v", id["preferred_username"])
	}

	// A session for reader, a hint for admin: the sign-in page, prefilled
	// with admin, never a code for reader.
	resp, page = authorizeRaw(t, b, ts, with("login_hint", "admin@dev.test"))
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || usernameField(page) != "admin@dev.test" {
		t.Fatalf("hint for another user than the session's: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// prompt=none with that hint: login_required, to the redirect URI.
	resp, _ = authorizeRaw(t, b, ts, with("login_hint", "admin@dev.test", "prompt", "none"))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || !strings.HasPrefix(resp.Header.Get("Location"), spaRedirect) || loc.Query().Get("code") != "" ||
		loc.Query().Get("error") != "login_required" || !strings.HasPrefix(loc.Query().Get("error_description"), "AADSTS50058: ") || loc.Query().Get("state") != "s1" {
		t.Fatalf("prompt=none with a hint for another user: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// prompt=none with the session user's hint (other case): silent SSO.
	silent := spaRequest()
	silent.Prompt, silent.LoginHint = "none", "Reader@Dev.Test"
	res = b.Authorize(t, silent)
	if len(res.Pages) != 0 {
		t.Fatalf("ssoSilent with the session's user showed %v", res.Pages)
	}
	if id := signedInAs(silent, res); id["oid"] != entraemu.ReaderOID {
		t.Fatalf("ssoSilent signed in as %v", id["preferred_username"])
	}
	// The user signs in as the hinted admin.
	b.Username = "admin@dev.test"
	req.LoginHint = "admin@dev.test"
	res = b.Authorize(t, req)
	if !slices.Equal(res.Pages, []string{"Sign in"}) {
		t.Fatalf("pages = %v", res.Pages)
	}
	if id := signedInAs(req, res); id["oid"] != entraemu.AdminOID || id["preferred_username"] != "admin@dev.test" {
		t.Fatalf("hinted sign-in as %v", id["preferred_username"])
	}
	// The session is admin's now: no hint is SSO as admin.
	b.Username = ""
	plain := spaRequest()
	res = b.Authorize(t, plain)
	if len(res.Pages) != 0 {
		t.Fatalf("SSO pages %v", res.Pages)
	}
	if id := signedInAs(plain, res); id["oid"] != entraemu.AdminOID {
		t.Fatalf("SSO as %v", id["preferred_username"])
	}

	// prompt=select_account never signs in silently, even with a session
	// and a matching hint; the user may pick another account.
	resp, page = authorizeRaw(t, b, ts, with("prompt", "select_account", "login_hint", "admin@dev.test"))
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || !strings.Contains(page, `action="/`+entraemu.DefaultTenantID+`/login"`) ||
		usernameField(page) != "admin@dev.test" {
		t.Fatalf("select_account with a session: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	b.Username = "reader@dev.test"
	pick := spaRequest()
	pick.Prompt = "select_account"
	res = b.Authorize(t, pick)
	if !slices.Equal(res.Pages, []string{"Sign in"}) {
		t.Fatalf("select_account pages = %v", res.Pages)
	}
	if id := signedInAs(pick, res); id["oid"] != entraemu.ReaderOID {
		t.Fatalf("select_account picked %v", id["preferred_username"])
	}
}

// h1Client is a client that speaks HTTP/1.1 only (the Go HTTP/2 client
// refuses to send a header list above the server's advertised limit, so the
// server's own answer is only observable over HTTP/1.1).
func h1Client(ts *entraemu.TestServer) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ts.CAPool, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// A request header block over MaxHeaderBytes (64 KiB) is answered 431 and
// the server keeps serving; a large header under the limit is fine.
func TestOversizedHeaderGets431(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	h1 := h1Client(ts)
	t.Cleanup(h1.CloseIdleConnections)
	send := func(c *http.Client, path string, hdr http.Header) (*http.Response, error) {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := c.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	healthy := func(when string) {
		t.Helper()
		for name, c := range map[string]*http.Client{"HTTP/1.1": h1, "HTTP/2": ts.NewClient()} {
			resp, err := send(c, "/healthz", nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s: %s /healthz: %v %v", when, name, err, resp)
			}
		}
	}
	healthy("before")
	keys := "/" + entraemu.DefaultTenantID + "/discovery/v2.0/keys"
	for name, hdr := range map[string]http.Header{
		"one 80 KiB header": {"X-Big": {strings.Repeat("a", 80<<10)}},
		"a 96 KiB cookie":   {"Cookie": {"devidp_session=" + strings.Repeat("b", 96<<10)}},
		"100 headers of 1 KiB": func() http.Header {
			h := http.Header{}
			for i := range 100 {
				h.Set("X-H"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("c", 1<<10))
			}
			return h
		}(),
	} {
		for _, path := range []string{keys, ts.TokenEndpoint()[len(ts.URL):], "/healthz"} {
			resp, err := send(h1, path, hdr)
			if err != nil {
				t.Fatalf("%s to %s over HTTP/1.1: %v", name, path, err)
			}
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Errorf("%s to %s over HTTP/1.1: %d, want 431", name, path, resp.StatusCode)
			}
		}
		// Over HTTP/2 the server advertises the limit: the Go client refuses
		// to send, or the server answers 431. Either way, no crash.
		if resp, err := send(ts.NewClient(), keys, hdr); err == nil && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s over HTTP/2: %d", name, resp.StatusCode)
		}
		healthy("after " + name)
	}
	// Big but under the limit: served normally, over both protocols.
	for proto, c := range map[string]*http.Client{"HTTP/1.1": h1, "HTTP/2": ts.NewClient()} {
		resp, err := send(c, keys, http.Header{"X-Big": {strings.Repeat("d", 32<<10)}})
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("32 KiB header over %s: %v %v", proto, err, resp)
		}
	}
	if n := ts.Count("keys"); n != 2 {
		t.Errorf("keys counter = %d: refused requests reached the handler", n)
	}
	var m map[string]any
	resp, err := ts.Client.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || m["status"] != "ok" {
		t.Fatalf("healthz: %v %v", err, m)
	}
}
