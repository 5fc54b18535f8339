package entraemu

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/internal/devtls"
)

// TestServer is an emulator serving real HTTPS on 127.0.0.1 (URL with
// "localhost") for Go tests, closed by t.Cleanup.
type TestServer struct {
	*Server
	URL       string // "https://localhost:<port>"
	Authority string // URL + "/" + tenant id
	TenantID  string
	CAPool    *x509.CertPool
	CAPEM     []byte
	Client    *http.Client // trusts the CA, has a timeout
	TLS       *devtls.Bundle

	httpServer *httptest.Server
}

// TestOption configures NewTestServer.
type TestOption func(*testConfig)

type testConfig struct {
	cfg Config
}

// WithDirectory serves d instead of the default directory.
func WithDirectory(d *Directory) TestOption { return func(c *testConfig) { c.cfg.Directory = d } }

// WithClock sets the emulator's clock.
func WithClock(now func() time.Time) TestOption { return func(c *testConfig) { c.cfg.Now = now } }

// WithLogger sets the emulator's logger (default: discard).
func WithLogger(l *slog.Logger) TestOption { return func(c *testConfig) { c.cfg.Logger = l } }

// NewTestServer starts an emulator over HTTPS with an in-memory CA.
func NewTestServer(t testing.TB, opts ...TestOption) *TestServer {
	t.Helper()
	var tc testConfig
	for _, o := range opts {
		o(&tc)
	}
	bundle, err := devtls.NewInMemory()
	if err != nil {
		t.Fatalf("entraemu: dev TLS: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("entraemu: listen: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	tc.cfg.IssuerHost = fmt.Sprintf("localhost:%d", port)
	srv, err := New(tc.cfg)
	if err != nil {
		ln.Close()
		t.Fatalf("entraemu: %v", err)
	}
	hs := httptest.NewUnstartedServer(srv)
	hs.Listener.Close()
	hs.Listener = ln
	hs.TLS = bundle.TLSConfig()
	hs.EnableHTTP2 = true
	hs.Config.MaxHeaderBytes = 64 << 10
	hs.Config.ReadHeaderTimeout = 10 * time.Second
	hs.StartTLS()
	pool := bundle.CertPool()
	ts := &TestServer{
		Server:     srv,
		URL:        "https://" + tc.cfg.IssuerHost,
		TenantID:   srv.dir.Tenant.ID,
		CAPool:     pool,
		CAPEM:      bundle.CAPEM,
		TLS:        bundle,
		httpServer: hs,
	}
	ts.Authority = ts.URL + "/" + ts.TenantID
	ts.Client = ts.NewClient()
	t.Cleanup(ts.Close)
	return ts
}

// NewClient returns a fresh HTTP client trusting the emulator's CA (10 s
// timeout). "localhost" always dials 127.0.0.1, where the server listens.
func (ts *TestServer) NewClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ts.CAPool, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, port, err := net.SplitHostPort(addr); err == nil && host == "localhost" {
				addr = net.JoinHostPort("127.0.0.1", port)
			}
			return d.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: tr}
}

// TokenEndpoint is the v2 token endpoint of the tenant.
func (ts *TestServer) TokenEndpoint() string { return ts.Authority + "/oauth2/v2.0/token" }

// TokenResponse is a successful token response.
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ClientInfo   string `json:"client_info"`
	ExpiresIn    int    `json:"expires_in"`
}

// PostToken posts form to the token endpoint and returns the status and
// decoded JSON body (success or Entra error) without failing the test.
func (ts *TestServer) PostToken(t testing.TB, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := ts.Client.Post(ts.TokenEndpoint(), "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("entraemu: token request: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("entraemu: token response (%d) is not JSON: %q", resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

func (ts *TestServer) mustToken(t testing.TB, form url.Values) TokenResponse {
	t.Helper()
	resp, err := ts.Client.Post(ts.TokenEndpoint(), "application/x-www-form-urlencoded; charset=utf-8", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("entraemu: token request: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("entraemu: %s grant failed: %d %s", form.Get("grant_type"), resp.StatusCode, body)
	}
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatalf("entraemu: token response: %v", err)
	}
	return tr
}

// PasswordToken signs username in with ROPC through the real token endpoint
// as the public client clientID (e.g. CLIClientID), adding the OpenID
// scopes MSAL adds.
func (ts *TestServer) PasswordToken(t testing.TB, clientID, username, password string, scopes ...string) TokenResponse {
	t.Helper()
	return ts.mustToken(t, url.Values{
		"grant_type": {GrantPassword}, "client_id": {clientID}, "username": {username}, "password": {password},
		"scope": {strings.Join(append(scopes, "openid", "offline_access", "profile"), " ")}, "client_info": {"1"},
	})
}

// ClientCredentialsToken gets an app-only token with a client secret;
// scope is "{resource}/.default".
func (ts *TestServer) ClientCredentialsToken(t testing.TB, clientID, secret, scope string) TokenResponse {
	t.Helper()
	return ts.mustToken(t, url.Values{
		"grant_type": {GrantClientCredentials}, "client_id": {clientID}, "client_secret": {secret}, "scope": {scope},
	})
}

// OBOToken exchanges assertion On-Behalf-Of as clientID with a secret.
func (ts *TestServer) OBOToken(t testing.TB, clientID, secret, assertion string, scopes ...string) TokenResponse {
	t.Helper()
	return ts.mustToken(t, url.Values{
		"grant_type": {GrantJWTBearer}, "requested_token_use": {"on_behalf_of"}, "client_id": {clientID},
		"client_secret": {secret}, "assertion": {assertion}, "scope": {strings.Join(scopes, " ")},
	})
}

// SignJWT signs arbitrary claims with the active signing key (for crafting
// test tokens); the header gets typ/alg/kid unless given.
func (ts *TestServer) SignJWT(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	k := ts.keys.active()
	h := map[string]any{}
	for n, v := range header {
		h[n] = v
	}
	s, err := signRS256(k, h, claims)
	if err != nil {
		t.Fatalf("entraemu: sign: %v", err)
	}
	return s
}

// CAFile writes the CA certificate to a file in t.TempDir() and returns its
// path (for code configured with a CA file, e.g. DEVIDP_CA_FILE).
func (ts *TestServer) CAFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "devidp-ca.pem")
	if err := os.WriteFile(p, ts.CAPEM, 0o600); err != nil {
		t.Fatalf("entraemu: %v", err)
	}
	return p
}

// Close stops serving (the IdP goes down: connections are refused from
// now on). NewTestServer's cleanup calls it too; calling it twice is fine.
func (ts *TestServer) Close() {
	ts.Client.CloseIdleConnections()
	ts.httpServer.Close()
}
