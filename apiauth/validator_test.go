package apiauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func reasonOf(err error) apiauth.Reason {
	var e *apiauth.Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func TestAcceptsV2DelegatedV1AndAppOnly(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, nil)
	waitReady(t, v)
	ctx := context.Background()

	p, err := v.Validate(ctx, idp.sign(nil, idp.v2Claims(tenantA)))
	if err != nil {
		t.Fatal("v2:", err)
	}
	if p.ObjectID != userOID || p.TenantID != tenantA || p.AppOnly || !p.HasScope("access_as_user") ||
		p.Version != "2.0" || p.Audience != apiID || p.Username != "reader@dev.test" || p.AppID != spaID || p.KeyID != "kid-0" {
		t.Fatalf("v2 principal: %+v", p)
	}
	var aio string
	if err := p.Claim("aio", &aio); err != nil || aio != "x" {
		t.Fatalf("Claim(aio) = %q, %v", aio, err)
	}

	p, err = v.Validate(ctx, idp.sign(map[string]any{"x5t": "kid-0"}, idp.v1Claims(tenantA)))
	if err != nil {
		t.Fatal("v1:", err)
	}
	if p.Version != "1.0" || p.Audience != "api://"+apiID || p.AppID != spaID || p.Username != "reader@dev.test" {
		t.Fatalf("v1 principal: %+v", p)
	}

	p, err = v.Validate(ctx, idp.sign(nil, idp.appClaims(tenantA)))
	if err != nil {
		t.Fatal("app:", err)
	}
	if !p.AppOnly || !p.HasRole("Demo.Read.All") || p.HasScope("access_as_user") || p.AppID != daemonID {
		t.Fatalf("app principal: %+v", p)
	}
}

func TestRefusalsWithHints(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, nil)
	v2only := newValidator(t, idp, func(c *apiauth.Config) { c.Versions = []string{"2.0"} })
	waitReady(t, v)
	waitReady(t, v2only)
	now := time.Now().Unix()

	with := func(base map[string]any, kv ...any) map[string]any {
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(base, kv[i].(string))
			} else {
				base[kv[i].(string)] = kv[i+1]
			}
		}
		return base
	}
	cases := []struct {
		name   string
		v      *apiauth.Validator
		claims map[string]any
		reason apiauth.Reason
		hint   string // substring of the hint
	}{
		{"expired", v, with(idp.v2Claims(tenantA), "exp", now-3600), apiauth.ReasonExpired, "expired"},
		{"expired beyond skew", v, with(idp.v2Claims(tenantA), "exp", now-301), apiauth.ReasonExpired, ""},
		{"not yet valid", v, with(idp.v2Claims(tenantA), "nbf", now+3600), apiauth.ReasonNotYetValid, "clocks"},
		{"iat in the future", v, with(idp.v2Claims(tenantA), "iat", now+3600), apiauth.ReasonNotYetValid, ""},
		{"other app", v, with(idp.v2Claims(tenantA), "aud", "11111111-2222-3333-4444-555555555555"), apiauth.ReasonAudience, "api://"},
		{"audience form", v, with(idp.v2Claims(tenantA), "aud", "api://"+apiID+"/"), apiauth.ReasonAudience, "form"},
		{"graph token", v, with(idp.v1Claims(tenantA), "aud", "https://graph.microsoft.com", "scp", "User.Read"), apiauth.ReasonGraphToken, "Microsoft Graph"},
		{"graph token by id", v, with(idp.v2Claims(tenantA), "aud", "00000003-0000-0000-c000-000000000000"), apiauth.ReasonGraphToken, "Graph"},
		{"id token", v, with(idp.v2Claims(tenantA), "aud", spaID, "scp", nil, "nonce", "n-123"), apiauth.ReasonIDToken, "ID token"},
		{"other tenant", v, with(idp.v2Claims(tenantB), "iss", idp.IssuerV2(tenantB)), apiauth.ReasonTenant, tenantB},
		{"v1 token to v2-only API", v2only, idp.v1Claims(tenantA), apiauth.ReasonVersion, "accessTokenAcceptedVersion"},
		{"ver claim mismatching issuer", v, with(idp.v2Claims(tenantA), "ver", "1.0"), apiauth.ReasonVersion, ""},
		{"missing ver", v, with(idp.v2Claims(tenantA), "ver", nil), apiauth.ReasonClaims, ""},
		{"unknown issuer", v, with(idp.v2Claims(tenantA), "iss", "https://evil.example/"+tenantA+"/v2.0"), apiauth.ReasonIssuer, ""},
		{"tid not matching iss", v, with(idp.v2Claims(tenantA), "tid", tenantB), apiauth.ReasonIssuerTenant, ""},
		{"neither scp nor roles", v, with(idp.v2Claims(tenantA), "scp", nil), apiauth.ReasonNoScopeOrRoles, ""},
		{"empty scp", v, with(idp.v2Claims(tenantA), "scp", " "), apiauth.ReasonNoScopeOrRoles, ""},
		{"exp missing", v, with(idp.v2Claims(tenantA), "exp", nil), apiauth.ReasonClaims, ""},
		{"exp string", v, with(idp.v2Claims(tenantA), "exp", "4102444800"), apiauth.ReasonClaims, ""},
		{"exp float", v, with(idp.v2Claims(tenantA), "exp", float64(now)+3600.5), apiauth.ReasonClaims, ""},
		{"exp bool", v, with(idp.v2Claims(tenantA), "exp", true), apiauth.ReasonClaims, ""},
		{"nbf string", v, with(idp.v2Claims(tenantA), "nbf", "0"), apiauth.ReasonClaims, ""},
		{"aud number", v, with(idp.v2Claims(tenantA), "aud", 42), apiauth.ReasonClaims, ""},
		{"roles not strings", v, with(idp.appClaims(tenantA), "roles", []any{1, 2}), apiauth.ReasonClaims, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.v.Validate(context.Background(), idp.sign(nil, tc.claims))
			if err == nil {
				t.Fatal("accepted")
			}
			var e *apiauth.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *Error: %v", err)
			}
			if e.Reason != tc.reason || e.Status != http.StatusUnauthorized {
				t.Fatalf("reason %q status %d (%v), want %q", e.Reason, e.Status, err, tc.reason)
			}
			if !strings.Contains(e.Hint, tc.hint) {
				t.Fatalf("hint %q does not mention %q", e.Hint, tc.hint)
			}
		})
	}
	// Within the skew an expired token still passes (default 5 min).
	if _, err := v.Validate(context.Background(), idp.sign(nil, with(idp.v2Claims(tenantA), "exp", now-60))); err != nil {
		t.Fatal("exp 60 s ago within the 5 min skew:", err)
	}
	if !errors.Is(func() error {
		_, err := v.Validate(context.Background(), idp.sign(nil, with(idp.v2Claims(tenantA), "exp", now-3600)))
		return err
	}(), apiauth.ErrExpired) {
		t.Fatal("errors.Is(ErrExpired) failed")
	}
}

func TestMultiTenantAllowList(t *testing.T) {
	idp := newTestIDP(t)
	if _, err := apiauth.New(apiauth.Config{Authority: idp.Authority("common"), ClientID: apiID, HTTPClient: idp.Client}); err == nil {
		t.Fatal("multi-tenant authority without AllowedTenants accepted")
	}
	v := newValidator(t, idp, func(c *apiauth.Config) {
		c.Authority = idp.Authority("organizations")
		c.AllowedTenants = []string{tenantA}
	})
	waitReady(t, v)
	ctx := context.Background()
	if _, err := v.Validate(ctx, idp.sign(nil, idp.v2Claims(tenantA))); err != nil {
		t.Fatal("allowed tenant:", err)
	}
	if _, err := v.Validate(ctx, idp.sign(nil, idp.v1Claims(tenantA))); err != nil {
		t.Fatal("allowed tenant, v1:", err)
	}
	if _, err := v.Validate(ctx, idp.sign(nil, idp.v2Claims(tenantB))); reasonOf(err) != apiauth.ReasonTenantNotAllowed {
		t.Fatal("tenant not on the allow-list:", err)
	}
	c := idp.v2Claims(tenantA)
	c["tid"] = tenantB // iss says A, tid says B
	if _, err := v.Validate(ctx, idp.sign(nil, c)); reasonOf(err) != apiauth.ReasonIssuer {
		t.Fatal("tid not matching iss:", err)
	}
	c = idp.v2Claims("not-a-guid")
	if _, err := v.Validate(ctx, idp.sign(nil, c)); reasonOf(err) != apiauth.ReasonIssuer {
		t.Fatal("non-GUID tid:", err)
	}
}

func TestExplicitJWKSAndIssuers(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, func(c *apiauth.Config) {
		c.Authority = ""
		c.JWKSURL = idp.URL + "/" + tenantA + "/discovery/v2.0/keys"
		c.Issuers = []string{idp.IssuerV2(tenantA)}
		c.IssuerVersions = []string{"2.0"}
		c.Audiences = []string{"https://api.example.com"}
	})
	waitReady(t, v)
	c := idp.v2Claims(tenantA)
	c["aud"] = "https://api.example.com"
	if _, err := v.Validate(context.Background(), idp.sign(nil, c)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Validate(context.Background(), idp.sign(nil, idp.v1Claims(tenantA))); err == nil {
		t.Fatal("v1 issuer accepted without being configured")
	}
	if idp.discHits.Load() != 0 {
		t.Fatal("discovery fetched although JWKSURL and Issuers were given")
	}
}

func TestTokenCache(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, nil)
	waitReady(t, v)
	ctx := context.Background()
	tok := idp.sign(nil, idp.v2Claims(tenantA))
	p1, err := v.Validate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := v.Validate(ctx, tok)
	if err != nil || p1 != p2 {
		t.Fatal("repeat token not served from the cache", err)
	}
	allocs := testing.AllocsPerRun(100, func() { _, _ = v.Validate(ctx, tok) })
	if allocs != 0 {
		t.Fatalf("cache hit allocates %v times", allocs)
	}
}

func TestCachedTokenExpires(t *testing.T) {
	idp := newTestIDP(t)
	var now atomicTime
	now.set(time.Now())
	v := newValidator(t, idp, func(c *apiauth.Config) { c.Now = now.get })
	waitReady(t, v)
	tok := idp.sign(nil, idp.v2Claims(tenantA))
	if _, err := v.Validate(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	now.set(time.Now().Add(2 * time.Hour))
	if _, err := v.Validate(context.Background(), tok); reasonOf(err) != apiauth.ReasonExpired {
		t.Fatal("cached token past exp:", err)
	}
}

// TestMiddleware covers the status codes, headers and bodies.
func TestMiddleware(t *testing.T) {
	idp := newTestIDP(t)
	logs := &logBuffer{}
	v := newValidator(t, idp, func(c *apiauth.Config) { c.Logger = slogTo(logs) })
	waitReady(t, v)

	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := apiauth.PrincipalFrom(r.Context())
		tok, _ := apiauth.BearerTokenFrom(r.Context())
		_, _ = io.WriteString(w, p.ObjectID+" "+apiauth.TokenHash(tok))
	})
	mux := http.NewServeMux()
	mux.Handle("/delegated", v.Protect(ok, apiauth.RequireScope("access_as_user")))
	mux.Handle("/either", v.Protect(ok, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"})))
	mux.Handle("/role", v.Protect(ok, apiauth.RequireRole("Demo.Read.All")))
	mux.Handle("/apponly", v.Protect(ok, apiauth.AppOnly()))
	mux.Handle("/delegatedonly", v.Protect(ok, apiauth.DelegatedOnly()))
	mux.Handle("/noauth", apiauth.RequireScope("x")(ok))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	user := idp.sign(nil, idp.v2Claims(tenantA))
	app := idp.sign(nil, idp.appClaims(tenantA))
	noScope := idp.v2Claims(tenantA)
	noScope["scp"] = "other"
	other := idp.sign(nil, noScope)
	exp := idp.v2Claims(tenantA)
	exp["exp"] = time.Now().Add(-time.Hour).Unix()
	expired := idp.sign(nil, exp)

	cases := []struct {
		path, auth string
		status     int
		www        string
		reason     apiauth.Reason
	}{
		{"/delegated", "Bearer " + user, 200, "", ""},
		{"/delegated", "bearer " + user, 200, "", ""},
		{"/delegated", "", 401, "Bearer", apiauth.ReasonMissingToken},
		{"/delegated", "Basic dXNlcjpwYXNz", 401, "Bearer", apiauth.ReasonMissingToken},
		{"/delegated", "Bearer null", 401, "Bearer", apiauth.ReasonMissingToken},
		{"/delegated", "Bearer " + expired, 401, `Bearer error="invalid_token"`, apiauth.ReasonExpired},
		{"/delegated", "Bearer " + app, 403, `Bearer error="insufficient_scope", scope="access_as_user"`, apiauth.ReasonDelegatedOnly},
		{"/delegated", "Bearer " + other, 403, `Bearer error="insufficient_scope", scope="access_as_user"`, apiauth.ReasonInsufficientScope},
		{"/either", "Bearer " + user, 200, "", ""},
		{"/either", "Bearer " + app, 200, "", ""},
		{"/either", "Bearer " + other, 403, `scope="access_as_user"`, apiauth.ReasonInsufficientScope},
		{"/role", "Bearer " + app, 200, "", ""},
		{"/role", "Bearer " + user, 403, `scope="Demo.Read.All"`, apiauth.ReasonInsufficientScope},
		{"/apponly", "Bearer " + app, 200, "", ""},
		{"/apponly", "Bearer " + user, 403, `Bearer error="insufficient_scope"`, apiauth.ReasonAppOnly},
		{"/delegatedonly", "Bearer " + user, 200, "", ""},
		{"/delegatedonly", "Bearer " + app, 403, `Bearer error="insufficient_scope"`, apiauth.ReasonDelegatedOnly},
		{"/noauth", "Bearer " + user, 401, "", apiauth.ReasonNoPrincipal},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", srv.URL+tc.path, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %q: status %d, want %d (%s)", tc.path, tc.auth[:min(len(tc.auth), 12)], resp.StatusCode, tc.status, body)
		}
		if tc.status == 200 {
			if !strings.HasPrefix(string(body), userOID) && !strings.HasPrefix(string(body), "sp-oid") {
				t.Fatalf("%s: body %q", tc.path, body)
			}
			continue
		}
		if got := resp.Header.Get("WWW-Authenticate"); !strings.Contains(got, tc.www) {
			t.Fatalf("%s: WWW-Authenticate %q, want %q", tc.path, got, tc.www)
		} else if !strings.Contains(tc.www, "scope=") && strings.Contains(got, "scope=") {
			t.Fatalf("%s: WWW-Authenticate %q names a scope (none applies)", tc.path, got)
		}
		var eb struct {
			Error  string `json:"error"`
			Reason string `json:"reason"`
			Hint   string `json:"hint"`
		}
		if err := json.Unmarshal(body, &eb); err != nil || eb.Reason != string(tc.reason) || eb.Error == "" {
			t.Fatalf("%s: body %s (%v), want reason %q", tc.path, body, err, tc.reason)
		}
	}
	// Two Authorization headers: 400.
	req, _ := http.NewRequest("GET", srv.URL+"/delegated", nil)
	req.Header.Add("Authorization", "Bearer "+user)
	req.Header.Add("Authorization", "Bearer "+user)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Fatal("two Authorization headers:", resp.StatusCode)
	}
	assertNoTokenInLogs(t, logs.String(), user, app, other, expired)
	if !strings.Contains(logs.String(), "token_sha256="+apiauth.TokenHash(expired)) {
		t.Fatal("refusal log lacks the token hash")
	}
}

func assertNoTokenInLogs(t *testing.T, logs string, tokens ...string) {
	t.Helper()
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			if len(part) >= 16 && strings.Contains(logs, part) {
				t.Fatalf("a token part appears in the logs")
			}
		}
	}
}

// A key published with a tenant-specific issuer (Entra's per-key "issuer")
// only signs for that tenant.
func TestKeyIssuerTenant(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, func(c *apiauth.Config) {
		c.Authority = ""
		c.JWKSURL = idp.URL + "/" + tenantB + "/discovery/v2.0/keys" // keys say issuer …/tenantB/v2.0
		c.Issuers = []string{idp.URL + "/{tenantid}/v2.0"}
		c.AllowedTenants = []string{tenantA, tenantB}
	})
	waitReady(t, v)
	if _, err := v.Validate(context.Background(), idp.sign(nil, idp.v2Claims(tenantB))); err != nil {
		t.Fatal("tenant B with tenant B's keys:", err)
	}
	if _, err := v.Validate(context.Background(), idp.sign(nil, idp.v2Claims(tenantA))); reasonOf(err) != apiauth.ReasonKeyIssuer {
		t.Fatal("tenant A with tenant B's keys:", err)
	}
}

// Multi-tenant configurations need an allow-list, checked where it is known:
// explicit {tenantid} issuers at New, a discovered {tenantid} issuer behind a
// domain-name authority once discovered (the validator then stays unready,
// 503, and logs why, instead of refusing every token as tenant_not_allowed).
func TestTemplatedIssuerNeedsAllowList(t *testing.T) {
	idp := newTestIDP(t)
	_, err := apiauth.New(apiauth.Config{JWKSURL: idp.URL + "/" + tenantA + "/discovery/v2.0/keys",
		Issuers: []string{idp.URL + "/{tenantid}/v2.0"}, ClientID: apiID, HTTPClient: idp.Client})
	if err == nil || !strings.Contains(err.Error(), "AllowedTenants") {
		t.Fatal("explicit {tenantid} issuer without AllowedTenants:", err)
	}
	for _, seg := range []string{"common", "organizations", "consumers", "Common"} {
		if _, err := apiauth.New(apiauth.Config{Authority: idp.Authority(seg), ClientID: apiID, HTTPClient: idp.Client}); err == nil {
			t.Errorf("%s authority without AllowedTenants accepted", seg)
		}
	}
	if _, err := apiauth.New(apiauth.Config{Authority: idp.URL, ClientID: apiID, HTTPClient: idp.Client}); err == nil {
		t.Error("authority without a tenant segment accepted")
	}

	var logs logBuffer
	v := newValidator(t, idp, func(c *apiauth.Config) {
		c.Authority = idp.Authority(templatedDomain)
		c.Logger = slogTo(&logs)
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "{tenantid}") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "set AllowedTenants") {
		t.Fatalf("no configuration error logged: %s", logs.String())
	}
	if v.Ready() {
		t.Fatal("ready with a {tenantid} issuer and no allow-list")
	}
	if _, err := v.Validate(context.Background(), idp.sign(nil, idp.v2Claims(tenantA))); reasonOf(err) != apiauth.ReasonNotReady {
		t.Fatal("want keys_not_loaded:", err)
	}

	// With an allow-list the same authority works and the list is enforced.
	v = newValidator(t, idp, func(c *apiauth.Config) {
		c.Authority = idp.Authority(templatedDomain)
		c.AllowedTenants = []string{tenantA}
	})
	waitReady(t, v)
	if _, err := v.Validate(context.Background(), idp.sign(nil, idp.v2Claims(tenantA))); err != nil {
		t.Fatal("allowed tenant:", err)
	}
	if _, err := v.Validate(context.Background(), idp.sign(nil, idp.v2Claims(tenantB))); reasonOf(err) != apiauth.ReasonTenantNotAllowed {
		t.Fatal("tenant not on the list:", err)
	}
}

// A cached Principal is shared by the requests presenting the same token. A
// handler writing into it (its own copy's fields, or the shared slices) must
// not change what a later request with that token is allowed to do.
func TestPrincipalMutationCannotChangeAuthorization(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, nil)
	waitReady(t, v)
	tok := idp.sign(nil, idp.v2Claims(tenantA)) // scp access_as_user, delegated
	var sawAppOnly bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := apiauth.PrincipalFrom(r.Context())
		sawAppOnly = p.AppOnly
		if r.URL.Query().Has("mutate") {
			p.Scopes = append(p.Scopes[:0], "admin") // writes the shared backing array
			p.Roles = append(p.Roles, "Demo.Admin")
			p.AppOnly = true
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux := http.NewServeMux()
	mux.Handle("/user", v.Protect(h, apiauth.RequireScope("access_as_user")))
	mux.Handle("/admin-scope", v.Protect(h, apiauth.RequireScope("admin")))
	mux.Handle("/admin-role", v.Protect(h, apiauth.RequireRole("Demo.Admin")))
	mux.Handle("/app", v.Protect(h, apiauth.AppOnly()))
	status := func(path string) int {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, req)
		return w.Code
	}
	if st := status("/user?mutate"); st != http.StatusNoContent {
		t.Fatal("first request:", st)
	}
	for _, path := range []string{"/admin-scope", "/admin-role", "/app"} {
		if st := status(path); st != http.StatusForbidden {
			t.Errorf("%s after a handler mutated the principal: %d, want 403", path, st)
		}
	}
	if st := status("/user"); st != http.StatusNoContent {
		t.Error("the genuine scope no longer authorizes after the mutation:", st)
	}
	if sawAppOnly {
		t.Error("a handler's change to its Principal's fields leaked into a later request")
	}

	// The same through the *Principal returned by Validate (the cached one).
	p, err := v.Validate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	p.Scopes = []string{"admin"}
	p.Roles = []string{"Demo.Admin"}
	p.AppOnly = true
	for _, path := range []string{"/admin-scope", "/admin-role", "/app"} {
		if st := status(path); st != http.StatusForbidden {
			t.Errorf("%s after the cached principal was mutated: %d, want 403", path, st)
		}
	}
	if st := status("/user"); st != http.StatusNoContent {
		t.Error("/user after the cached principal was mutated:", st)
	}
}

// A token whose signature fails is unverified: its claims must not reach the
// response, even on the path that recognises a Graph audience for the hint.
func TestForgedGraphTokenAudNotEchoed(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, nil)
	waitReady(t, v)
	const marker = "EVIL-MARKER-<script>alert(1)</script>"
	c := idp.v2Claims(tenantA)
	c["aud"] = []string{"https://graph.microsoft.com", marker}
	hb, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "kid-0", "typ": "JWT"})
	cb, _ := json.Marshal(c)
	forged := signRaw(testKeys(6)[5], hb, cb) // not the key published as kid-0
	srv := httptest.NewServer(v.Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer srv.Close()
	st, www, body := call(t, srv.URL, forged)
	if st != http.StatusUnauthorized || !strings.Contains(body, string(apiauth.ReasonGraphToken)) || !strings.Contains(body, "Graph") {
		t.Fatalf("forged Graph token: %d %s", st, body)
	}
	if strings.Contains(body+www, "EVIL") || strings.Contains(body+www, "graph.microsoft.com") {
		t.Fatalf("unverified aud echoed in the response: %s / %s", www, body)
	}
}
