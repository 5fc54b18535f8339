package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/entraemu"
	"github.com/entra-go/secure-api/upstream/graph"
)

func TestLoadConfigDefaultsToGraphShape(t *testing.T) {
	c, err := LoadConfig(func(string) string { return "" })
	if err != nil || c.Mode != "local" || c.Authority != localAuthority || c.ClientID != graphAppID ||
		c.Scope != "User.Read" || c.Addr != "localhost:5051" || c.CAFile != ".devidp/ca.pem" {
		t.Fatalf("%+v %v", c, err)
	}
	if !slices.Contains(c.Audiences, "https://graph.microsoft.com") || !slices.Contains(c.Audiences, "https://graph.microsoft.com/") {
		t.Fatalf("audiences %v", c.Audiences)
	}
	env := map[string]string{"TENANT_ID": "t1", "UPSTREAM_AUDIENCE": "api://mine", "UPSTREAM_SCOPE": "Profile.Read"}
	c, _ = LoadConfig(func(k string) string { return env[k] })
	if c.Mode != "entra" || c.Authority != "https://login.microsoftonline.com/t1" || c.Scope != "Profile.Read" ||
		!slices.Equal(c.Audiences, []string{"api://mine"}) {
		t.Fatalf("%+v", c)
	}
}

// TestUpstreamAcceptsOnlyGraphShapedTokens runs upstream's own validator
// configuration against the emulator: a v1.0 delegated token for its audience
// with User.Read passes; anything else is refused.
func TestUpstreamAcceptsOnlyGraphShapedTokens(t *testing.T) {
	idp := entraemu.NewTestServer(t)
	cfg, err := LoadConfig(func(k string) string { return map[string]string{"AUTHORITY": idp.Authority}[k] })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := newValidator(cfg, idp.Client, log)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	lookup, err := directoryLookup("")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(graph.Handler(v, cfg.Scope, lookup))
	defer srv.Close()

	now := time.Now().Unix()
	claims := func(mod map[string]any) map[string]any { return graphClaims(idp, mod) }
	cases := []struct {
		name   string
		claims map[string]any
		status int
	}{
		{"v1 delegated User.Read", claims(nil), 200},
		{"app id audience", claims(map[string]any{"aud": entraemu.GraphAppID}), 200},
		{"v2 token", claims(map[string]any{"ver": "2.0", "iss": idp.Authority + "/v2.0", "aud": entraemu.GraphAppID}), 401},
		{"token for the API", claims(map[string]any{"aud": entraemu.APIAppIDURI}), 401},
		{"other scope", claims(map[string]any{"scp": "Mail.Read"}), 403},
		{"app-only", claims(map[string]any{"scp": nil, "roles": []string{"User.Read.All"}, "idtyp": "app"}), 403},
		{"expired", claims(map[string]any{"exp": now - 3600, "iat": now - 7200, "nbf": now - 7200}), 401},
	}
	for _, tc := range cases {
		tok := idp.SignJWT(t, map[string]any{"typ": "JWT"}, tc.claims)
		req, _ := http.NewRequest("GET", srv.URL+"/v1.0/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d (%v)", tc.name, resp.StatusCode, tc.status, body)
		}
		if tc.status == 200 && (body["id"] != "e35a8c02-2ed7-489f-ac07-c14c1234b3c6" || body["displayName"] != "Dev Reader") {
			t.Errorf("%s: %v", tc.name, body)
		}
	}
}

// graphClaims are the claims of a v1.0 delegated token for Graph with
// User.Read for the directory's reader, as the emulator's OBO grant issues
// them; mod overrides claims (nil deletes one).
func graphClaims(idp *entraemu.TestServer, mod map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"aud": "https://graph.microsoft.com", "iss": idp.Authority + "/", "tid": idp.TenantID,
		"oid": entraemu.ReaderOID, "sub": "s", "appid": entraemu.APIClientID, "appidacr": "1",
		"upn": "reader@dev.test", "unique_name": "reader@dev.test", "scp": "User.Read", "ver": "1.0",
		"iat": now, "nbf": now, "exp": now + 3600}
	for k, v := range mod {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// startUpstream serves upstream as run wires it (LoadConfig, directoryLookup,
// newValidator, graph.Handler) for authority, reaching the IdP with client.
// It does not wait for the signing keys.
func startUpstream(t *testing.T, authority string, client *http.Client) (*httptest.Server, *apiauth.Validator) {
	t.Helper()
	cfg, err := LoadConfig(func(k string) string { return map[string]string{"AUTHORITY": authority}[k] })
	if err != nil {
		t.Fatal(err)
	}
	lookup, err := directoryLookup(cfg.DirectoryFile)
	if err != nil {
		t.Fatal(err)
	}
	v, err := newValidator(cfg, client, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	srv := httptest.NewServer(graph.Handler(v, cfg.Scope, lookup))
	t.Cleanup(srv.Close)
	return srv, v
}

type probe struct {
	status     int
	retryAfter string
	body       map[string]any
}

func get(t *testing.T, url, bearer string) probe {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := probe{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After")}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &p.body); err != nil && resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET %s: %d, body is not JSON: %q", url, resp.StatusCode, raw)
	}
	return p
}

// TestUpstreamHealthAndReadiness: /healthz is 200 whatever the IdP does;
// /readyz is 503 (with Retry-After) until the validator has signing keys and
// 200 once it has them; meanwhile /v1.0/me answers 503, never 200.
func TestUpstreamHealthAndReadiness(t *testing.T) {
	idp := entraemu.NewTestServer(t)
	if err := idp.SetJWKSFault(entraemu.JWKSFault{Status: http.StatusServiceUnavailable}); err != nil {
		t.Fatal(err)
	}
	srv, v := startUpstream(t, idp.Authority, idp.Client)
	tok := idp.SignJWT(t, map[string]any{"typ": "JWT"}, graphClaims(idp, nil))

	// Discovery succeeded and the validator has asked for the key set, which
	// fails while the fault is set.
	deadline := time.Now().Add(10 * time.Second)
	for v.KeyFetches() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if v.KeyFetches() == 0 {
		t.Fatal("the validator never tried to load keys")
	}
	if p := get(t, srv.URL+"/healthz", ""); p.status != 200 || p.body["status"] != "ok" {
		t.Fatalf("healthz while the JWKS fails: %d %v", p.status, p.body)
	}
	if p := get(t, srv.URL+"/readyz", ""); p.status != 503 || p.retryAfter == "" || p.body["status"] != "signing keys not loaded" {
		t.Fatalf("readyz before keys: %d Retry-After %q %v", p.status, p.retryAfter, p.body)
	}
	if p := get(t, srv.URL+"/v1.0/me", tok); p.status != 503 {
		t.Fatalf("/v1.0/me before keys: %d %v", p.status, p.body)
	}

	if err := idp.SetJWKSFault(entraemu.JWKSFault{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal("keys never loaded after the JWKS recovered:", err)
	}
	if p := get(t, srv.URL+"/readyz", ""); p.status != 200 || p.retryAfter != "" || p.body["status"] != "ready" {
		t.Fatalf("readyz after keys: %d Retry-After %q %v", p.status, p.retryAfter, p.body)
	}
	if p := get(t, srv.URL+"/healthz", ""); p.status != 200 || p.body["status"] != "ok" {
		t.Fatalf("healthz when ready: %d %v", p.status, p.body)
	}
	if p := get(t, srv.URL+"/v1.0/me", tok); p.status != 200 || p.body["id"] != entraemu.ReaderOID {
		t.Fatalf("/v1.0/me when ready: %d %v", p.status, p.body)
	}
}

// TestUpstreamNotReadyWhileAuthorityDown: with an authority nobody listens
// on, upstream stays alive (/healthz 200) and not ready (/readyz 503).
func TestUpstreamNotReadyWhileAuthorityDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	client := &http.Client{Timeout: 2 * time.Second}
	srv, v := startUpstream(t, "https://"+addr+"/"+entraemu.DefaultTenantID, client)
	for i := 0; i < 2; i++ { // at once, then after failed discovery attempts (250 ms backoff)
		if p := get(t, srv.URL+"/healthz", ""); p.status != 200 {
			t.Fatalf("healthz with the authority down: %d %v", p.status, p.body)
		}
		if p := get(t, srv.URL+"/readyz", ""); p.status != 503 || p.retryAfter == "" {
			t.Fatalf("readyz with the authority down: %d %v", p.status, p.body)
		}
		time.Sleep(600 * time.Millisecond)
	}
	if v.Ready() {
		t.Fatal("ready without an authority")
	}
}
