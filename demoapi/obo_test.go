package main

// Integration tests of GET /api/obo: the emulator over real HTTPS, the real
// upstream service stack, demoapi's own wiring, real MSAL Go, and the local
// Redis for the shared cache.

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/entraemu"
	"github.com/entra-go/secure-api/internal/testkit"
	"github.com/entra-go/secure-api/internal/testkit/testredis"
	"github.com/entra-go/secure-api/obo"
	"github.com/entra-go/secure-api/upstream/graph"
)

const (
	oboGrant  = "token:urn:ietf:params:oauth:grant-type:jwt-bearer"
	apiScope  = "api://68fee0a8-293c-4256-8007-b5453b634b61/access_as_user"
	readerOID = "e35a8c02-2ed7-489f-ac07-c14c1234b3c6"
	redisAddr = testredis.Addr
)

// world is one emulator, one upstream and one or more demoapi instances.
type world struct {
	t        testing.TB
	idp      *entraemu.TestServer
	dir      *entraemu.Directory
	upstream *httptest.Server
	// upstreamFault, when set, answers instead of the real upstream.
	upstreamFault atomic.Pointer[http.HandlerFunc]
	idpProxy      *tcpProxy // the OBO client reaches the IdP through it
	logs          *syncBuffer
	// handler is the whole HTTP stack of the last instance api started.
	handler http.Handler
}

type worldOpts struct {
	dir *entraemu.Directory
}

func newWorld(t testing.TB, o worldOpts) *world {
	t.Helper()
	w := &world{t: t, logs: &syncBuffer{}}
	var opts []entraemu.TestOption
	w.dir = entraemu.DefaultDirectory()
	if o.dir != nil {
		w.dir = o.dir
		opts = append(opts, entraemu.WithDirectory(o.dir))
	}
	w.idp = entraemu.NewTestServer(t, opts...)
	// Whatever happened, no token, secret or password reached a log line.
	t.Cleanup(func() {
		logs := w.logs.String()
		for _, secret := range []string{"eyJ", "dev-api-secret", "dev-password"} {
			if strings.Contains(logs, secret) {
				t.Errorf("logs contain %q", secret)
			}
		}
	})
	w.idpProxy = newTCPProxy(t, strings.TrimPrefix(w.idp.URL, "https://localhost"))

	// The upstream service, configured as its command configures it. This
	// copies upstream's LoadConfig defaults, newValidator and directoryLookup:
	// they live in package main there and cannot be imported from here.
	uv, err := apiauth.New(apiauth.Config{Authority: w.idp.Authority, ClientID: entraemu.GraphAppID,
		Audiences: []string{"https://graph.microsoft.com", "https://graph.microsoft.com/"}, Versions: []string{"1.0"},
		HTTPClient: w.idp.Client, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = uv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := uv.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	lookup := func(oid string) (graph.User, bool) {
		u := w.dir.User(oid) // by UPN or oid: only an oid match counts, as in upstream's directoryLookup
		if u == nil || u.OID != oid {
			return graph.User{}, false
		}
		return graph.User{ID: u.OID, DisplayName: u.DisplayName, UserPrincipalName: u.UPN, Mail: u.Mail,
			GivenName: u.GivenName, Surname: u.Surname, JobTitle: u.JobTitle}, true
	}
	real := graph.Handler(uv, "User.Read", lookup)
	w.upstream = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if f := w.upstreamFault.Load(); f != nil {
			(*f)(rw, r)
			return
		}
		real.ServeHTTP(rw, r)
	}))
	t.Cleanup(w.upstream.Close)
	return w
}

type apiOpts struct {
	env map[string]string
}

// api starts one demoapi instance (its real wiring: LoadConfig,
// LoadOBOConfig, newOBO, handler) and returns its base URL.
func (w *world) api(o apiOpts) string {
	t := w.t
	t.Helper()
	env := map[string]string{
		"AUTHORITY":      w.idp.Authority,
		"DEVIDP_CA_FILE": w.idp.CAFile(t),
		"UPSTREAM_URL":   w.upstream.URL + "/v1.0/me",
		"OBO_TIMEOUT":    "15s", // generous: -race on a loaded 2-core machine; the bounded cases set 3s
	}
	if sec := w.dir.App(entraemu.APIClientID).Secrets; len(sec) > 0 {
		env["API_CLIENT_SECRET"] = sec[0]
	}
	for k, v := range o.env {
		env[k] = v
		if v == "" {
			delete(env, k)
		}
	}
	getenv := func(k string) string { return env[k] }
	cfg, err := LoadConfig(getenv)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	v, err := apiauth.New(apiauth.Config{Authority: cfg.Authority, ClientID: cfg.ClientID, HTTPClient: w.idp.Client, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	oc, err := LoadOBOConfig(getenv, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The OBO client reaches the emulator through a proxy the test can cut.
	idpClient := w.idp.NewClient()
	tr := idpClient.Transport.(*http.Transport)
	proxyAddr := w.idpProxy.Addr()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, proxyAddr)
	}
	oboH, down, closeOBO, err := newOBO(cfg, oc, idpClient, log)
	if err != nil {
		t.Fatal(err)
	}
	w.handler = handler(cfg, v, oboH, down)
	srv := httptest.NewServer(w.handler)
	t.Cleanup(func() {
		srv.Close()
		closeOBO()
		idpClient.CloseIdleConnections()
	})
	return srv.URL
}

func (w *world) userToken(upn string) string {
	return w.idp.PasswordToken(w.t, entraemu.CLIClientID, upn, "dev-password", apiScope).AccessToken
}

func (w *world) oboGrants() int64 { return w.idp.Count(oboGrant) }

type oboAnswer struct {
	status int
	www    string
	body   map[string]any
}

func (a oboAnswer) upstreamID() string {
	u, _ := a.body["upstream"].(map[string]any)
	id, _ := u["id"].(string)
	return id
}

func (a oboAnswer) source() string {
	tk, _ := a.body["token"].(map[string]any)
	s, _ := tk["source"].(string)
	return s
}

var apiClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}

func callOBO(t testing.TB, base, token string) oboAnswer {
	req, _ := http.NewRequest("GET", base+"/api/obo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Error(err)
		return oboAnswer{}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := oboAnswer{status: resp.StatusCode, www: resp.Header.Get("WWW-Authenticate")}
	if err := json.Unmarshal(raw, &a.body); err != nil {
		t.Errorf("/api/obo %d: body is not JSON: %q", resp.StatusCode, raw)
	}
	return a
}

func TestOBOReaderGetsOwnProfileThenFromCache(t *testing.T) {
	w := newWorld(t, worldOpts{})
	api := w.api(apiOpts{})
	tok := w.userToken("reader@dev.test")
	a := callOBO(t, api, tok)
	if a.status != 200 || a.upstreamID() != readerOID || a.source() != "idp" {
		t.Fatalf("%d %v", a.status, a.body)
	}
	u := a.body["upstream"].(map[string]any)
	if u["userPrincipalName"] != "reader@dev.test" || u["displayName"] != "Dev Reader" ||
		!strings.HasSuffix(u["@odata.context"].(string), "/v1.0/$metadata#users/$entity") {
		t.Fatalf("upstream answer %v", u)
	}
	if a = callOBO(t, api, tok); a.status != 200 || a.source() != "cache" {
		t.Fatalf("second call: %d %v", a.status, a.body)
	}
	if n := w.oboGrants(); n != 1 {
		t.Fatalf("%d OBO grants", n)
	}
	// Zero configuration in local mode: the dev secret comes from the
	// emulator's directory data.
	zero := w.api(apiOpts{env: map[string]string{"API_CLIENT_SECRET": ""}})
	if a = callOBO(t, zero, tok); a.status != 200 || a.upstreamID() != readerOID {
		t.Fatalf("zero-config instance: %d %v", a.status, a.body)
	}
	// The upstream itself refuses the user's token for the API (wrong
	// audience): every hop is secured.
	req, _ := http.NewRequest("GET", w.upstream.URL+"/v1.0/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("upstream accepted a token for the API: %d", resp.StatusCode)
	}
}

// challengeParams parses a Bearer challenge's auth-params.
func challengeParams(t testing.TB, h string) map[string]string {
	t.Helper()
	if !strings.HasPrefix(h, "Bearer ") {
		t.Fatalf("not a Bearer challenge: %q", h)
	}
	out := map[string]string{}
	for _, part := range strings.Split(strings.TrimPrefix(h, "Bearer "), ", ") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			t.Fatalf("bad param %q in %q", part, h)
		}
		out[k] = strings.Trim(v, `"`)
	}
	return out
}

func TestLoadOBOConfig(t *testing.T) {
	local := Config{Mode: "local"}
	c, err := LoadOBOConfig(func(string) string { return "" }, local)
	if err != nil || c.UpstreamURL != "http://localhost:5051/v1.0/me" || len(c.Scopes) != 1 ||
		c.Scopes[0] != "https://graph.microsoft.com/User.Read" || c.Timeout != 10*time.Second || !c.LocalDevSecret {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	if c, _ := LoadOBOConfig(func(string) string { return "" }, Config{Mode: "entra"}); c.LocalDevSecret {
		t.Fatal("the dev secret must never be used against a real tenant")
	}
	if _, err := (OBOConfig{}).credential("x"); err == nil {
		t.Fatal("no credential accepted")
	}
	for name, env := range map[string]map[string]string{
		"redis without key": {"OBO_REDIS_ADDR": "127.0.0.1:6379"},
		"cert without key":  {"API_CLIENT_CERT_FILE": "c.pem"},
		"bad timeout":       {"OBO_TIMEOUT": "soon"},
		"bad cache size":    {"OBO_CACHE_SIZE": "-1"},
		"missing file":      {"API_CLIENT_SECRET_FILE": "/nonexistent/secret"},
		"relative upstream": {"UPSTREAM_URL": "/v1.0/me"},
		"no scopes":         {"UPSTREAM_SCOPES": " , "},
	} {
		if _, err := LoadOBOConfig(func(k string) string { return env[k] }, local); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	secretFile := t.TempDir() + "/s"
	_ = os.WriteFile(secretFile, []byte("from-file\n"), 0o600)
	c, err = LoadOBOConfig(func(k string) string {
		return map[string]string{"API_CLIENT_SECRET_FILE": secretFile, "UPSTREAM_SCOPES": "a b,c", "OBO_TIMEOUT": "3s"}[k]
	}, local)
	if err != nil || c.Secret != "from-file" || len(c.Scopes) != 3 || c.Timeout != 3*time.Second || c.LocalDevSecret {
		t.Fatalf("%+v %v", c, err)
	}
}

// TestLoadOBOConfigUpstreamByMode: with no UPSTREAM_URL, local mode calls
// the local upstream service and Entra mode Microsoft Graph over https (never
// a local port that would receive a real Graph token in cleartext), both with
// Graph's User.Read; explicit values win, and Entra mode refuses cleartext
// http to anything but loopback.
func TestLoadOBOConfigUpstreamByMode(t *testing.T) {
	for _, tc := range []struct {
		env      map[string]string
		url      string
		scope    string
		mode     string
		rejected bool
	}{
		{env: nil, url: "http://localhost:5051/v1.0/me", scope: "https://graph.microsoft.com/User.Read", mode: "local"},
		{env: map[string]string{"TENANT_ID": "t1"}, url: "https://graph.microsoft.com/v1.0/me", scope: "https://graph.microsoft.com/User.Read", mode: "entra"},
		{env: map[string]string{"AUTHORITY": "https://login.microsoftonline.com/t1"}, url: "https://graph.microsoft.com/v1.0/me", scope: "https://graph.microsoft.com/User.Read", mode: "entra"},
		{env: map[string]string{"TENANT_ID": "t1", "UPSTREAM_URL": "https://orders.example/api/me", "UPSTREAM_SCOPES": "api://orders/Orders.Read"},
			url: "https://orders.example/api/me", scope: "api://orders/Orders.Read", mode: "entra"},
		{env: map[string]string{"TENANT_ID": "t1", "UPSTREAM_URL": "http://localhost:5051/v1.0/me"}, url: "http://localhost:5051/v1.0/me", scope: "https://graph.microsoft.com/User.Read", mode: "entra"},
		{env: map[string]string{"TENANT_ID": "t1", "UPSTREAM_URL": "http://127.0.0.1:9000/me"}, url: "http://127.0.0.1:9000/me", scope: "https://graph.microsoft.com/User.Read", mode: "entra"},
		{env: map[string]string{"TENANT_ID": "t1", "UPSTREAM_URL": "http://orders.example/me"}, mode: "entra", rejected: true},
		{env: map[string]string{"UPSTREAM_URL": "http://upstream:5051/v1.0/me"}, url: "http://upstream:5051/v1.0/me", scope: "https://graph.microsoft.com/User.Read", mode: "local"},
	} {
		getenv := func(k string) string {
			if k == "API_CLIENT_ID" && tc.mode == "entra" {
				return "11111111-2222-3333-4444-555555555555" // required in Entra mode
			}
			return tc.env[k]
		}
		cfg, err := LoadConfig(getenv)
		if err != nil || cfg.Mode != tc.mode {
			t.Fatalf("%v: mode %q %v", tc.env, cfg.Mode, err)
		}
		c, err := LoadOBOConfig(getenv, cfg)
		if tc.rejected {
			if err == nil {
				t.Errorf("%v: accepted", tc.env)
			}
			continue
		}
		if err != nil || c.UpstreamURL != tc.url || len(c.Scopes) != 1 || c.Scopes[0] != tc.scope {
			t.Errorf("%v: %q %v %v", tc.env, c.UpstreamURL, c.Scopes, err)
		}
	}
}

// TestOBOCertificateAndFederatedCredentials: the API authenticates to the
// IdP with a certificate (MSAL's PS256 client assertion), then with a
// federated token file (a pre-signed client assertion, as a platform would
// project it), instead of a secret.
func TestOBOCertificateAndFederatedCredentials(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "demoapi"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	var m map[string]any
	_ = json.Unmarshal(entraemu.DefaultDirectoryJSON(), &m)
	for _, a := range m["apps"].([]any) {
		if app := a.(map[string]any); app["appId"] == entraemu.APIClientID {
			delete(app, "secrets")
			app["certificates"] = []string{string(certPEM)}
		}
	}
	raw, _ := json.Marshal(m)
	dir, err := entraemu.ParseDirectory(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, worldOpts{dir: dir})
	tmp := t.TempDir()
	_ = os.WriteFile(tmp+"/cert.pem", certPEM, 0o600)
	_ = os.WriteFile(tmp+"/key.pem", keyPEM, 0o600)
	api := w.api(apiOpts{env: map[string]string{"API_CLIENT_SECRET": "",
		"API_CLIENT_CERT_FILE": tmp + "/cert.pem", "API_CLIENT_KEY_FILE": tmp + "/key.pem"}})
	if a := callOBO(t, api, w.userToken("reader@dev.test")); a.status != 200 || a.upstreamID() != readerOID {
		t.Fatalf("certificate credential: %d %v", a.status, a.body)
	}

	sum := sha1.Sum(der)
	now := time.Now().Unix()
	assertion := w.idp.SignJWT(t, map[string]any{"alg": "RS256", "typ": "JWT", "x5t": base64.RawURLEncoding.EncodeToString(sum[:])},
		map[string]any{"aud": w.idp.Authority + "/oauth2/v2.0/token", "iss": entraemu.APIClientID, "sub": entraemu.APIClientID,
			"jti": "fed-1", "nbf": now, "iat": now, "exp": now + 600})
	// SignJWT signs with the emulator's key; re-sign with the app's key.
	parts := strings.Split(assertion, ".")
	h := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	_ = os.WriteFile(tmp+"/federated-token", []byte(parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sig)+"\n"), 0o600)
	fed := w.api(apiOpts{env: map[string]string{"API_CLIENT_SECRET": "", "AZURE_FEDERATED_TOKEN_FILE": tmp + "/federated-token"}})
	if a := callOBO(t, fed, w.userToken("admin@dev.test")); a.status != 200 || a.upstreamID() != "74b3dcd2-d9b5-42bb-be4c-ac96ec17444b" {
		t.Fatalf("federated token file: %d %v", a.status, a.body)
	}
	// A wrong secret is the API's misconfiguration: 500, nothing leaked.
	bad := w.api(apiOpts{env: map[string]string{"API_CLIENT_SECRET": "not-the-secret"}})
	if a := callOBO(t, bad, w.userToken("admin@dev.test")); a.status != 500 || a.body["error"] != "server_error" ||
		strings.Contains(fmt.Sprint(a.body), "not-the-secret") {
		t.Fatalf("wrong secret: %d %v", a.status, a.body)
	}
}

func TestOBOMFAUserGetsClaimsChallenge(t *testing.T) {
	w := newWorld(t, worldOpts{})
	api := w.api(apiOpts{})
	a := callOBO(t, api, w.userToken("mfa@dev.test"))
	if a.status != 401 || a.body["error"] != "insufficient_claims" {
		t.Fatalf("%d %v", a.status, a.body)
	}
	p := challengeParams(t, a.www)
	if p["error"] != "insufficient_claims" || p["realm"] != "" || p["authorization_uri"] != w.idp.Authority+"/oauth2/v2.0/authorize" {
		t.Fatalf("challenge %q", a.www)
	}
	raw, err := base64.StdEncoding.DecodeString(p["claims"])
	if err != nil || p["claims"] != a.body["claims"] {
		t.Fatalf("claims %q: %v", p["claims"], err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil || claims["access_token"] == nil {
		t.Fatalf("claims JSON %s: %v", raw, err)
	}
	// Nothing was cached: the next call asks the IdP again.
	before := w.oboGrants()
	callOBO(t, api, w.userToken("mfa@dev.test"))
	if w.oboGrants() != before+1 {
		t.Fatal("a failed exchange was cached")
	}
	// The page replays the claims through the emulator's real sign-in and
	// MFA step-up pages (as acquireTokenPopup({claims}) does), gets a token
	// whose amr carries mfa, and the same call now succeeds.
	stepped := w.idp.AuthCodeToken(t, entraemu.SPAClientID, "http://localhost:30662/redirect.html",
		"mfa@dev.test", "dev-password", []string{apiScope}, string(raw))
	a = callOBO(t, api, stepped.AccessToken)
	if a.status != 200 || a.upstreamID() != "38605525-eb95-41ed-8e86-ae2dabdce1b8" || a.source() != "idp" {
		t.Fatalf("after step-up: %d %v", a.status, a.body)
	}
	if strings.Contains(w.logs.String(), "eyJ") {
		t.Fatal("a token appears in the logs")
	}
}

func TestOBOConsentMissing(t *testing.T) {
	// A directory whose API app was never granted the upstream's User.Read.
	var m map[string]any
	if err := json.Unmarshal(entraemu.DefaultDirectoryJSON(), &m); err != nil {
		t.Fatal(err)
	}
	for _, a := range m["apps"].([]any) {
		app := a.(map[string]any)
		if app["appId"] == entraemu.APIClientID {
			delete(app, "grants")
		}
	}
	raw, _ := json.Marshal(m)
	dir, err := entraemu.ParseDirectory(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, worldOpts{dir: dir})
	api := w.api(apiOpts{})
	a := callOBO(t, api, w.userToken("reader@dev.test"))
	if a.status != 401 || a.body["error"] != "consent_required" {
		t.Fatalf("%d %v", a.status, a.body)
	}
	p := challengeParams(t, a.www)
	if p["error"] != "consent_required" || p["scope"] != "https://graph.microsoft.com/User.Read" ||
		p["authorization_uri"] != w.idp.Authority+"/oauth2/v2.0/authorize" {
		t.Fatalf("challenge %q", a.www)
	}
	if sc, _ := a.body["scopes"].([]any); len(sc) != 1 || sc[0] != "https://graph.microsoft.com/User.Read" {
		t.Fatalf("scopes %v", a.body["scopes"])
	}
}

func TestOBOFailuresAreBounded(t *testing.T) {
	w := newWorld(t, worldOpts{})
	api := w.api(apiOpts{env: map[string]string{"OBO_TIMEOUT": "3s"}})
	const bound = 7 * time.Second // the 3s timeout plus slack for a loaded machine; the faults last 30s
	tok := w.userToken("reader@dev.test")
	tok2 := w.userToken("admin@dev.test")

	// Upstream failing → 502; slow → 504 within the timeout.
	fail := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { http.Error(rw, "boom", 500) })
	w.upstreamFault.Store(&fail)
	if a := callOBO(t, api, tok); a.status != 502 || a.body["error"] != "upstream_error" || a.body["upstream_status"] != float64(500) {
		t.Fatalf("upstream 500: %d %v", a.status, a.body)
	}
	slow := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(30 * time.Second):
		case <-r.Context().Done():
		}
	})
	w.upstreamFault.Store(&slow)
	start := time.Now()
	if a := callOBO(t, api, tok); a.status != 504 || a.body["error"] != "upstream_timeout" {
		t.Fatalf("upstream slow: %d %v", a.status, a.body)
	}
	if d := time.Since(start); d > bound {
		t.Fatalf("slow upstream took %v with a 3s timeout", d)
	}
	w.upstreamFault.Store(nil)

	// IdP hanging → 503 within the timeout; IdP refusing connections → 503.
	w.idpProxy.setMode(proxyHang)
	start = time.Now()
	if a := callOBO(t, api, tok2); a.status != 503 || a.body["error"] != "temporarily_unavailable" {
		t.Fatalf("IdP hanging: %d %v", a.status, a.body)
	}
	if d := time.Since(start); d > bound {
		t.Fatalf("hanging IdP took %v with a 3s timeout", d)
	}
	w.idpProxy.setMode(proxyRefuse)
	if a := callOBO(t, api, tok2); a.status != 503 {
		t.Fatalf("IdP down: %d %v", a.status, a.body)
	}
	// A cached token still works while the IdP is down.
	if a := callOBO(t, api, tok); a.status != 200 || a.source() != "cache" {
		t.Fatalf("cached while IdP down: %d %v", a.status, a.body)
	}
	w.idpProxy.setMode(proxyForward)
	if a := callOBO(t, api, tok2); a.status != 200 {
		t.Fatalf("IdP back: %d %v", a.status, a.body)
	}

	// Injected Entra errors map to the contract.
	for code, want := range map[int]struct {
		status int
		err    string
	}{50076: {401, "insufficient_claims"}, 65001: {401, "consent_required"}, 500133: {401, "invalid_token"}} {
		fresh := w.userToken("admin@dev.test")
		w.idp.FailNextOBO("admin@dev.test", code)
		if a := callOBO(t, api, fresh); a.status != want.status || a.body["error"] != want.err {
			t.Errorf("AADSTS%d: %d %v", code, a.status, a.body)
		}
	}
	// The upstream's own claims challenge (e.g. continuous access
	// evaluation) is relayed as ours, with our authorization_uri.
	upClaims := `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	challenge := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.example/authorize", error="insufficient_claims", claims="`+
			base64.StdEncoding.EncodeToString([]byte(upClaims))+`"`)
		rw.WriteHeader(401)
	})
	w.upstreamFault.Store(&challenge)
	if a := callOBO(t, api, tok); a.status != 401 || a.body["error"] != "insufficient_claims" ||
		a.body["claims"] != base64.StdEncoding.EncodeToString([]byte(upClaims)) ||
		challengeParams(t, a.www)["authorization_uri"] != w.idp.Authority+"/oauth2/v2.0/authorize" {
		t.Fatalf("upstream claims challenge: %d %v %q", a.status, a.body, a.www)
	}
	w.upstreamFault.Store(nil)
}

// TestOBORefusedTokenIsReplaced: when the upstream refuses the downstream
// token, the next request exchanges again at the emulator instead of getting
// the refused token back from MSAL's own cache.
func TestOBORefusedTokenIsReplaced(t *testing.T) {
	w := newWorld(t, worldOpts{})
	api := w.api(apiOpts{})
	tok := w.userToken("reader@dev.test")
	var mu sync.Mutex
	seen := map[string]bool{}
	refuse := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Header.Get("Authorization")] = true
		mu.Unlock()
		rw.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		rw.WriteHeader(401)
	})
	w.upstreamFault.Store(&refuse)
	for i := 0; i < 3; i++ {
		if a := callOBO(t, api, tok); a.status != 502 || a.body["upstream_status"] != float64(401) {
			t.Fatalf("refusal %d: %d %v", i, a.status, a.body)
		}
	}
	if n := w.oboGrants(); n != 3 {
		t.Fatalf("three refusals: %d OBO grants at the emulator, want 3", n)
	}
	mu.Lock()
	if len(seen) != 3 {
		t.Fatalf("the upstream got %d distinct tokens in 3 calls: a refused token was sent again", len(seen))
	}
	mu.Unlock()
	w.upstreamFault.Store(nil)
	if a := callOBO(t, api, tok); a.status != 200 || a.source() != "idp" || a.upstreamID() != readerOID {
		t.Fatalf("after the refusals: %d %v", a.status, a.body)
	}
	if a := callOBO(t, api, tok); a.status != 200 || a.source() != "cache" {
		t.Fatalf("then cached: %d %v", a.status, a.body)
	}
	if n := w.oboGrants(); n != 4 {
		t.Fatalf("%d OBO grants, want 4", n)
	}
}

func TestOBOCacheCountsGrants(t *testing.T) {
	dir, upns := directoryWithUsers(t, 50)
	w := newWorld(t, worldOpts{dir: dir})
	api := w.api(apiOpts{})

	tok := w.userToken(upns[0])
	for i := 0; i < 100; i++ {
		if a := callOBO(t, api, tok); a.status != 200 {
			t.Fatalf("%d %v", a.status, a.body)
		}
	}
	if n := w.oboGrants(); n != 1 {
		t.Fatalf("100 sequential calls with one token: %d OBO grants, want 1", n)
	}

	tok = w.userToken(upns[1])
	wantOID := dir.User(upns[1]).OID
	var wg sync.WaitGroup
	// Each goroutine writes only its own slot; read after wg.Wait.
	answers := make([]oboAnswer, 100)
	for i := range answers {
		wg.Add(1)
		go func(i int) { defer wg.Done(); answers[i] = callOBO(t, api, tok) }(i)
	}
	wg.Wait()
	fromIdP, leaders := 0, 0
	for i, a := range answers {
		if a.status != 200 || a.upstreamID() != wantOID {
			t.Errorf("concurrent call %d: %d id %q, want 200 id %q (%v)", i, a.status, a.upstreamID(), wantOID, a.body)
			continue
		}
		switch a.source() {
		case "idp":
			fromIdP++
			if tk, _ := a.body["token"].(map[string]any); tk["coalesced"] != true {
				leaders++
			}
		case "cache":
		default:
			t.Errorf("concurrent call %d: token source %q", i, a.source())
		}
	}
	// Whoever did not find the token cached shared the one exchange: an
	// "idp" answer that did not coalesce with others is an exchange of its own.
	if !t.Failed() && (fromIdP == 0 || (fromIdP > 1 && leaders > 0)) {
		t.Errorf("100 concurrent cold calls: %d answers from the IdP, %d of them not coalesced", fromIdP, leaders)
	}
	if n := w.oboGrants(); n != 2 {
		t.Fatalf("100 concurrent cold calls with one token: %d OBO grants, want 1", n-1)
	}

	w2 := newWorld(t, worldOpts{dir: dir})
	api2 := w2.api(apiOpts{})
	toks := make([]string, len(upns))
	for i, u := range upns {
		toks[i] = w2.userToken(u)
	}
	for i := range toks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if a := callOBO(t, api2, toks[i]); a.status != 200 || a.upstreamID() != dir.User(upns[i]).OID {
					t.Errorf("user %d: %d %v", i, a.status, a.body)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	if n := w2.oboGrants(); n != 50 {
		t.Fatalf("50 users × 20 calls: %d OBO grants, want 50", n)
	}
}

// directoryWithUsers is the default directory plus n users.
func directoryWithUsers(t testing.TB, n int) (*entraemu.Directory, []string) {
	var m map[string]any
	if err := json.Unmarshal(entraemu.DefaultDirectoryJSON(), &m); err != nil {
		t.Fatal(err)
	}
	users := m["users"].([]any)
	var upns []string
	for i := 0; i < n; i++ {
		upn := fmt.Sprintf("user%02d@dev.test", i)
		upns = append(upns, upn)
		users = append(users, map[string]any{"upn": upn, "oid": fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
			"displayName": fmt.Sprintf("User %02d", i), "password": "dev-password"})
	}
	m["users"] = users
	raw, _ := json.Marshal(m)
	dir, err := entraemu.ParseDirectory(raw)
	if err != nil {
		t.Fatal(err)
	}
	return dir, upns
}

// testRedis skips when the local Redis is unreachable and returns a unique
// key prefix whose keys are deleted at cleanup.
func testRedis(t testing.TB) (*redis.Client, string) { return testredis.Open(t, "obo-it:") }

func TestOBOSharedRedisAcrossInstances(t *testing.T) {
	rdb, prefix := testRedis(t)
	dir, upns := directoryWithUsers(t, 50)
	w := newWorld(t, worldOpts{dir: dir})
	key := obo.NewRandomKey()
	// A slow Redis counts as down (then the IdP is asked): generous on a
	// loaded machine so that the count is exact.
	env := map[string]string{"OBO_REDIS_ADDR": redisAddr, "OBO_REDIS_PREFIX": prefix, "OBO_CACHE_KEY": key, "OBO_REDIS_TIMEOUT": "5s"}
	apis := []string{w.api(apiOpts{env: env}), w.api(apiOpts{env: env}), w.api(apiOpts{env: env})}
	toks := make([]string, len(upns))
	for i, u := range upns {
		toks[i] = w.userToken(u)
	}
	var wg sync.WaitGroup
	for i := range toks {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 20; j++ { // round-robin over the instances
				if a := callOBO(t, apis[(i+j)%3], toks[i]); a.status != 200 || a.upstreamID() != dir.User(upns[i]).OID {
					t.Errorf("user %d call %d: %d %v", i, j, a.status, a.body)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	if n := w.oboGrants(); n != 50 {
		t.Fatalf("3 instances sharing Redis, 50 users × 20 calls: %d OBO grants, want 50", n)
	}
	// Concurrent cold calls spread over the instances: still one grant (the
	// instances agree through a short Redis lock).
	tok := w.userToken("reader@dev.test")
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if a := callOBO(t, apis[i%3], tok); a.status != 200 || a.upstreamID() != readerOID {
				t.Errorf("%d %v", a.status, a.body)
			}
		}(i)
	}
	wg.Wait()
	if n := w.oboGrants(); n != 51 {
		t.Fatalf("60 concurrent cold calls over 3 instances: %d OBO grants, want 1", n-50)
	}
	// What Redis holds is not usable without the key: hashed keys, sealed values.
	var keys []string
	for _, k := range rdb.Keys(context.Background(), prefix+"*").Val() {
		if strings.HasPrefix(k, prefix+"lock:") {
			t.Fatalf("lock left behind: %s", k)
		}
		keys = append(keys, k)
	}
	if len(keys) != 51 {
		t.Fatalf("%d Redis keys, want 51", len(keys))
	}
	kr, _ := obo.KeyringFromBase64(key)
	withKey := obo.NewRedisStore(rdb, prefix, kr)
	otherKR, _ := obo.KeyringFromBase64(obo.NewRandomKey())
	withoutKey := obo.NewRedisStore(rdb, prefix, otherKR)
	for _, rk := range keys {
		var k obo.Key
		if b, err := hex.DecodeString(strings.TrimPrefix(rk, prefix)); err != nil || len(b) != len(k) {
			t.Fatalf("Redis key %q is not prefix + hex(sha256)", rk)
		} else {
			copy(k[:], b)
		}
		e, ok, err := withKey.Get(context.Background(), k)
		if err != nil || !ok || strings.Count(e.AccessToken, ".") != 2 {
			t.Fatalf("entry unreadable with the key: %v %v", ok, err)
		}
		v := rdb.Get(context.Background(), rk).Val()
		payload := strings.Split(e.AccessToken, ".")[1]
		if strings.Contains(v, payload[:40]) || strings.Contains(rk, "dev.test") {
			t.Fatalf("Redis entry reveals the token or the user: %s", rk)
		}
		if _, ok, _ := withoutKey.Get(context.Background(), k); ok {
			t.Fatal("entry usable without the key")
		}
		if ttl := rdb.TTL(context.Background(), rk).Val(); ttl <= 0 || ttl > 90*time.Minute {
			t.Fatalf("TTL %v", ttl)
		}
	}
	// An instance with another key cannot use them: it asks the IdP.
	other := w.api(apiOpts{env: map[string]string{"OBO_REDIS_ADDR": redisAddr, "OBO_REDIS_PREFIX": prefix, "OBO_CACHE_KEY": obo.NewRandomKey()}})
	if a := callOBO(t, other, toks[0]); a.status != 200 || a.source() != "idp" {
		t.Fatalf("instance with a different key: %d %v", a.status, a.body)
	}
}

func TestOBORedisStoppedMidRunKeepsServing(t *testing.T) {
	_, prefix := testRedis(t)
	proxy := newTCPProxy(t, redisAddr)
	dir, upns := directoryWithUsers(t, 10)
	w := newWorld(t, worldOpts{dir: dir})
	api := w.api(apiOpts{env: map[string]string{"OBO_REDIS_ADDR": proxy.Addr(), "OBO_REDIS_PREFIX": prefix, "OBO_CACHE_KEY": obo.NewRandomKey()}})
	toks := make([]string, len(upns))
	for i, u := range upns {
		toks[i] = w.userToken(u)
	}
	for i := 0; i < 5; i++ {
		if a := callOBO(t, api, toks[i]); a.status != 200 {
			t.Fatalf("%d %v", a.status, a.body)
		}
	}
	proxy.setMode(proxyRefuse) // Redis "stops": connections dropped and refused
	for round := 0; round < 3; round++ {
		for i := range toks {
			if a := callOBO(t, api, toks[i]); a.status != 200 || a.upstreamID() != dir.User(upns[i]).OID {
				t.Fatalf("Redis down, user %d: %d %v", i, a.status, a.body)
			}
		}
	}
	if n := w.oboGrants(); n != 10 {
		t.Fatalf("%d OBO grants: memory tier must keep serving cached tokens", n)
	}
	logs := w.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "shared token cache unavailable") {
		t.Fatalf("no warning logged:\n%s", logs)
	}
}

func TestOBOIsolationUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	dir, upns := directoryWithUsers(t, 50)
	apiClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	t.Run("50 users x 200 concurrent", func(t *testing.T) {
		w := newWorld(t, worldOpts{dir: dir})
		api := w.api(apiOpts{})
		toks := make([]string, len(upns))
		for i, u := range upns {
			toks[i] = w.userToken(u)
		}
		const workers, perWorker = 200, 50 // 10,000 requests, 200 at a time
		var wg sync.WaitGroup
		var bad atomic.Int64
		for g := 0; g < workers; g++ {
			wg.Add(1)
			go func(g int) {
				defer wg.Done()
				for j := 0; j < perWorker; j++ {
					i := (g*7 + j) % len(toks)
					if a := callOBO(t, api, toks[i]); a.status != 200 || a.upstreamID() != dir.User(upns[i]).OID {
						if bad.Add(1) < 5 {
							t.Errorf("user %d got %d %q %v", i, a.status, a.upstreamID(), a.body)
						}
					}
				}
			}(g)
		}
		wg.Wait()
		if n := w.oboGrants(); n != 50 {
			t.Errorf("%d OBO grants for 50 users", n)
		}
		if bad.Load() != 0 {
			t.Fatalf("%d answers for the wrong user or failed", bad.Load())
		}
	}) // the subtest's cleanups closed every server, client and validator
	apiClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+5 {
			t.Logf("goroutines: %d before, %d after", before, n)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutine leak: %d before, %d after the run\n%s", before, n, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Helpers shared with the tests of other packages (internal/testkit).
var discard = testkit.DiscardLogger

type syncBuffer = testkit.SyncBuffer

// tcpProxy forwards to a target; the test switches it to refuse (drop every
// connection and refuse new ones) or hang (accept, never answer).
type tcpProxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
	closed chan struct{}
}

const (
	proxyForward int32 = iota
	proxyRefuse
	proxyHang
)

// newTCPProxy forwards to target ("host:port" or ":port" on 127.0.0.1).
func newTCPProxy(t testing.TB, target string) *tcpProxy {
	if strings.HasPrefix(target, ":") {
		target = "127.0.0.1" + target
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) track(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		switch p.mode.Load() {
		case proxyRefuse:
			c.Close()
			continue
		case proxyHang:
			p.track(c, true)
			p.wg.Add(1)
			go func() { // hold it open, say nothing, until closed
				defer p.wg.Done()
				_, _ = io.Copy(io.Discard, c)
				c.Close()
				p.track(c, false)
			}()
			continue
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.track(c, true)
		p.track(u, true)
		p.wg.Add(2)
		go func() { defer p.wg.Done(); _, _ = io.Copy(u, c); u.Close(); p.track(u, false) }()
		go func() { defer p.wg.Done(); _, _ = io.Copy(c, u); c.Close(); p.track(c, false) }()
	}
}

// setMode switches the mode; leaving forward drops the open connections.
func (p *tcpProxy) setMode(m int32) {
	p.mode.Store(m)
	if m != proxyForward {
		p.dropAll()
	}
}

func (p *tcpProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) close() {
	_ = p.ln.Close()
	p.dropAll()
	p.wg.Wait()
}
