package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

// miniIDP serves discovery and an Entra-shaped JWKS over TLS and signs
// tokens; the emulator-backed end-to-end test is in emulator_test.go.
type miniIDP struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	down atomic.Bool
}

func newMiniIDP(t *testing.T) *miniIDP {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	m := &miniIDP{key: k}
	m.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		base := m.srv.URL + "/" + defaultTenantID
		switch r.URL.Path {
		case "/" + defaultTenantID + "/v2.0/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": base + "/v2.0", "jwks_uri": base + "/discovery/v2.0/keys"})
		case "/" + defaultTenantID + "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": base + "/", "jwks_uri": base + "/discovery/keys"})
		case "/" + defaultTenantID + "/discovery/v2.0/keys", "/" + defaultTenantID + "/discovery/keys":
			_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
				"kty": "RSA", "use": "sig", "kid": "k1",
				"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes()),
			}}})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (m *miniIDP) token(claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"})
	c, _ := json.Marshal(claims)
	in := b64(h) + "." + b64(c)
	d := sha256.Sum256([]byte(in))
	sig, _ := rsa.SignPKCS1v15(nil, m.key, crypto.SHA256, d[:])
	return in + "." + b64(sig)
}

func (m *miniIDP) claims(scp string, roles []string) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{
		"aud": defaultAPIClientID, "iss": m.srv.URL + "/" + defaultTenantID + "/v2.0", "tid": defaultTenantID,
		"oid": "e35a8c02-2ed7-489f-ac07-c14c1234b3c6", "sub": "s", "azp": "88374b94-683c-41e9-a4d0-40a9685e8661",
		"name": "Reader", "preferred_username": "reader@dev.test", "ver": "2.0",
		"iat": now, "nbf": now, "exp": now + 3600,
	}
	if scp != "" {
		c["scp"] = scp
	}
	if roles != nil {
		c["roles"] = roles
		c["idtyp"] = "app"
	}
	return c
}

func newTestAPI(t *testing.T, m *miniIDP) (*httptest.Server, *apiauth.Validator) {
	cfg, err := LoadConfig(func(k string) string {
		if k == "AUTHORITY" {
			return m.srv.URL + "/" + defaultTenantID
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := m.srv.Client()
	cl.Timeout = 5 * time.Second
	v, err := apiauth.New(apiauth.Config{Authority: cfg.Authority, ClientID: cfg.ClientID, HTTPClient: cl,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	srv := httptest.NewServer(handler(cfg, v, nil, nil))
	t.Cleanup(srv.Close)
	return srv, v
}

func do(t *testing.T, method, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestLoadConfig(t *testing.T) {
	c, err := LoadConfig(func(string) string { return "" })
	if err != nil || c.Mode != "local" || c.Authority != localAuthority || c.CAFile != ".devidp/ca.pem" ||
		c.Addr != "localhost:5050" || c.AllowedOrigins[0] != "http://localhost:30662" || c.ClientID != defaultAPIClientID {
		t.Fatalf("zero config: %+v %v", c, err)
	}
	env := map[string]string{"TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47", "API_CLIENT_ID": "x", "ALLOWED_ORIGIN": "https://app.example.com"}
	c, err = LoadConfig(func(k string) string { return env[k] })
	if err != nil || c.Mode != "entra" || c.Authority != "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47" || c.CAFile != "" {
		t.Fatalf("entra config: %+v %v", c, err)
	}
	// Against a real tenant the local directory's API id is never a default.
	delete(env, "API_CLIENT_ID")
	if _, err := LoadConfig(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "API_CLIENT_ID") {
		t.Fatalf("Entra mode without API_CLIENT_ID: %v", err)
	}
	if _, err := LoadConfig(func(k string) string { return map[string]string{"ALLOWED_ORIGIN": "*"}[k] }); err == nil {
		t.Fatal("wildcard origin accepted")
	}
	// A set but blank list must not become rs/cors' "allow every origin".
	for _, blank := range []string{" ", ",", " , "} {
		if _, err := LoadConfig(func(k string) string { return map[string]string{"ALLOWED_ORIGIN": blank}[k] }); err == nil {
			t.Fatalf("ALLOWED_ORIGIN=%q accepted", blank)
		}
	}
}

func TestAPIAndHealth(t *testing.T) {
	m := newMiniIDP(t)
	m.down.Store(true)
	srv, v := newTestAPI(t, m)

	// IdP down at start: not ready, /api answers 503 (never 200), /healthz 200.
	if resp, _ := do(t, "GET", srv.URL+"/readyz", nil); resp.StatusCode != 503 {
		t.Fatal("readyz before keys:", resp.StatusCode)
	}
	tok := m.token(m.claims("access_as_user", nil))
	if resp, _ := do(t, "GET", srv.URL+"/api", map[string]string{"Authorization": "Bearer " + tok}); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatal("api before keys:", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", srv.URL+"/healthz", nil); resp.StatusCode != 200 {
		t.Fatal("healthz:", resp.StatusCode)
	}
	m.down.Store(false)
	ctx, cancel := contextTimeout(10 * time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, "GET", srv.URL+"/readyz", nil); resp.StatusCode != 200 {
		t.Fatal("readyz after keys:", resp.StatusCode)
	}

	resp, body := do(t, "GET", srv.URL+"/api", map[string]string{"Authorization": "Bearer " + tok})
	if resp.StatusCode != 200 {
		t.Fatal("delegated:", resp.StatusCode, body)
	}
	var got apiResponse
	if err := json.Unmarshal([]byte(body), &got); err != nil || got.Caller != "user" || got.TenantID != defaultTenantID ||
		got.Scopes[0] != "access_as_user" || got.Audience != defaultAPIClientID || got.Version != "2.0" || got.Username != "reader@dev.test" {
		t.Fatalf("delegated body: %s", body)
	}
	resp, body = do(t, "GET", srv.URL+"/api", map[string]string{"Authorization": "Bearer " + m.token(m.claims("", []string{"Demo.Read.All"}))})
	if resp.StatusCode != 200 || !strings.Contains(body, `"caller":"app"`) {
		t.Fatal("app:", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", srv.URL+"/api", map[string]string{"Authorization": "Bearer " + m.token(m.claims("User.Read", nil))})
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="access_as_user"`) {
		t.Fatal("missing scope:", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", srv.URL+"/api", map[string]string{"Authorization": "Bearer " + m.token(m.claims("", []string{"Other"}))})
	if resp.StatusCode != 403 {
		t.Fatal("app without role:", resp.StatusCode)
	}
}

func TestCORS(t *testing.T) {
	m := newMiniIDP(t)
	srv, v := newTestAPI(t, m)
	ctx, cancel := contextTimeout(10 * time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	page := "http://localhost:30662"

	// Allowed preflight.
	resp, _ := do(t, "OPTIONS", srv.URL+"/api", map[string]string{"Origin": page,
		"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != page ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "authorization") ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// Preflight from another origin: no CORS headers.
	resp, _ = do(t, "OPTIONS", srv.URL+"/api", map[string]string{"Origin": "https://evil.example",
		"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Headers") != "" {
		t.Fatalf("preflight from another origin got CORS headers: %v", resp.Header)
	}
	// Actual request from the page: allowed, WWW-Authenticate exposed.
	tok := m.token(m.claims("access_as_user", nil))
	resp, _ = do(t, "GET", srv.URL+"/api", map[string]string{"Origin": page, "Authorization": "Bearer " + tok})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != page {
		t.Fatalf("actual: %d %v", resp.StatusCode, resp.Header)
	}
	// 401 and 403 carry the CORS headers and expose WWW-Authenticate.
	for _, auth := range []string{"Bearer x.y.z", "Bearer " + m.token(m.claims("User.Read", nil))} {
		resp, _ = do(t, "GET", srv.URL+"/api", map[string]string{"Origin": page, "Authorization": auth})
		if resp.StatusCode != 401 && resp.StatusCode != 403 {
			t.Fatal("status", resp.StatusCode)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != page ||
			!strings.EqualFold(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") ||
			resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("%d without CORS/expose headers: %v", resp.StatusCode, resp.Header)
		}
	}
	// Actual request from another origin: no CORS headers.
	resp, _ = do(t, "GET", srv.URL+"/api", map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer " + tok})
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("other origin got Access-Control-Allow-Origin")
	}
}

func contextTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func newServer(t *testing.T, h http.Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
