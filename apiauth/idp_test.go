package apiauth_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/internal/testkit"
)

// A minimal in-test identity provider: discovery (v1, v2, common), JWKS
// shaped like Entra's (no alg, with issuer), key rotation and faults. It lets
// the validator be tested without the emulator; the emulator tests are in
// emulator_test.go.

const (
	tenantA  = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"
	tenantB  = "0f0e0d0c-1111-4222-8333-444455556666"
	apiID    = "68fee0a8-293c-4256-8007-b5453b634b61"
	spaID    = "88374b94-683c-41e9-a4d0-40a9685e8661"
	daemonID = "e3a89aa0-95e6-48ac-b4d4-ed40a5372267"
	userOID  = "e35a8c02-2ed7-489f-ac07-c14c1234b3c6"
)

// templatedDomain is a domain-name tenant segment for which the in-test IdP
// publishes a {tenantid} issuer (a multi-tenant issuer behind a single-tenant
// looking authority).
const templatedDomain = "multi.example"

var (
	keyPoolOnce sync.Once
	keyPool     []*rsa.PrivateKey
)

// testKeys returns n pre-generated RSA-2048 keys (generated once per binary).
func testKeys(n int) []*rsa.PrivateKey {
	keyPoolOnce.Do(func() {
		var wg sync.WaitGroup
		keyPool = make([]*rsa.PrivateKey, 6)
		for i := range keyPool {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := rsa.GenerateKey(rand.Reader, 2048)
				if err != nil {
					panic(err)
				}
				keyPool[i] = k
			}()
		}
		wg.Wait()
	})
	return keyPool[:n]
}

type idpKey struct {
	kid  string
	priv *rsa.PrivateKey
}

type testIDP struct {
	srv    *httptest.Server
	URL    string
	Client *http.Client

	mu        sync.Mutex
	published []idpKey
	active    idpKey
	nextKey   int

	jwksHits  atomic.Int64
	discHits  atomic.Int64
	otherHits atomic.Int64
	down      atomic.Bool // JWKS and discovery answer 503
	jwksDelay atomic.Int64
	jwksHang  atomic.Bool // JWKS requests hang until the client gives up
}

func newTestIDP(t testing.TB) *testIDP {
	t.Helper()
	idp := startIDP()
	t.Cleanup(idp.srv.Close)
	return idp
}

// startIDP starts the in-test IdP; the caller closes idp.srv.
func startIDP() *testIDP {
	keys := testKeys(6)
	idp := &testIDP{}
	idp.active = idpKey{kid: "kid-0", priv: keys[0]}
	idp.published = []idpKey{idp.active, {kid: "kid-1", priv: keys[1]}}
	idp.nextKey = 2
	idp.srv = httptest.NewTLSServer(http.HandlerFunc(idp.serve))
	idp.URL = idp.srv.URL
	idp.Client = idp.srv.Client()
	idp.Client.Timeout = 5 * time.Second
	return idp
}

func (idp *testIDP) Authority(tenant string) string { return idp.URL + "/" + tenant }
func (idp *testIDP) IssuerV2(tenant string) string  { return idp.URL + "/" + tenant + "/v2.0" }
func (idp *testIDP) IssuerV1(tenant string) string  { return idp.URL + "/" + tenant + "/" }

func (idp *testIDP) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	parts := strings.SplitN(strings.TrimPrefix(p, "/"), "/", 2)
	if len(parts) != 2 {
		idp.otherHits.Add(1)
		http.NotFound(w, r)
		return
	}
	tenant, rest := parts[0], parts[1]
	issTenant := tenant
	if tenant == "common" || tenant == "organizations" || tenant == templatedDomain {
		issTenant = "{tenantid}"
	}
	switch rest {
	case "v2.0/.well-known/openid-configuration", ".well-known/openid-configuration":
		idp.discHits.Add(1)
		if idp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		doc := map[string]any{"issuer": idp.URL + "/" + issTenant + "/", "jwks_uri": idp.URL + "/" + tenant + "/discovery/keys"}
		if strings.HasPrefix(rest, "v2.0") {
			doc = map[string]any{"issuer": idp.URL + "/" + issTenant + "/v2.0", "jwks_uri": idp.URL + "/" + tenant + "/discovery/v2.0/keys"}
		}
		_ = json.NewEncoder(w).Encode(doc)
	case "discovery/v2.0/keys", "discovery/keys":
		idp.jwksHits.Add(1)
		if d := idp.jwksDelay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if idp.jwksHang.Load() {
			select { // until the client cancels (or a generous cap, so Close returns)
			case <-r.Context().Done():
				return
			case <-time.After(time.Minute):
			}
		}
		if idp.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		idp.mu.Lock()
		var keys []map[string]any
		for _, k := range idp.published {
			keys = append(keys, map[string]any{
				"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid,
				"n":      b64(k.priv.N.Bytes()),
				"e":      b64(big.NewInt(int64(k.priv.E)).Bytes()),
				"issuer": idp.URL + "/" + issTenant + "/v2.0",
			})
		}
		idp.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	default:
		idp.otherHits.Add(1)
		http.NotFound(w, r)
	}
}

// rotate publishes a new key and makes it the active signing key; the old
// ones stay published (grace).
func (idp *testIDP) rotate() string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	k := idpKey{kid: fmt.Sprintf("kid-%d", idp.nextKey), priv: testKeys(6)[idp.nextKey%6]}
	idp.nextKey++
	idp.published = append(idp.published, k)
	idp.active = k
	return k.kid
}

// unpublish removes a key from the JWKS (revocation).
func (idp *testIDP) unpublish(kid string) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	var keep []idpKey
	for _, k := range idp.published {
		if k.kid != kid {
			keep = append(keep, k)
		}
	}
	idp.published = keep
}

// signWith signs with the active key unless header has a kid naming another.
func (idp *testIDP) sign(header, claims map[string]any) string {
	idp.mu.Lock()
	k := idp.active
	idp.mu.Unlock()
	if header == nil {
		header = map[string]any{}
	}
	if _, ok := header["alg"]; !ok {
		header["alg"] = "RS256"
	}
	if _, ok := header["kid"]; !ok {
		header["kid"] = k.kid
	}
	if _, ok := header["typ"]; !ok {
		header["typ"] = "JWT"
	}
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	return signRaw(k.priv, hb, cb)
}

func signRaw(priv *rsa.PrivateKey, header, claims []byte) string {
	in := b64(header) + "." + b64(claims)
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	return in + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// v2Claims are the claims of a delegated v2.0 access token for the API.
func (idp *testIDP) v2Claims(tenant string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"aud": apiID, "iss": idp.IssuerV2(tenant), "iat": now - 10, "nbf": now - 10, "exp": now + 3600,
		"aio": "x", "azp": spaID, "azpacr": "0", "name": "Reader", "oid": userOID,
		"preferred_username": "reader@dev.test", "rh": "r", "scp": "access_as_user", "sub": "pairwise-sub",
		"tid": tenant, "uti": "u", "ver": "2.0",
	}
}

func (idp *testIDP) v1Claims(tenant string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"aud": "api://" + apiID, "iss": idp.IssuerV1(tenant), "iat": now - 10, "nbf": now - 10, "exp": now + 3600,
		"appid": spaID, "appidacr": "0", "name": "Reader", "oid": userOID, "upn": "reader@dev.test",
		"unique_name": "reader@dev.test", "scp": "access_as_user", "sub": "pairwise-sub", "tid": tenant, "ver": "1.0",
	}
}

func (idp *testIDP) appClaims(tenant string) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"aud": apiID, "iss": idp.IssuerV2(tenant), "iat": now - 10, "nbf": now - 10, "exp": now + 3600,
		"azp": daemonID, "azpacr": "1", "oid": "sp-oid", "sub": "sp-oid", "idtyp": "app",
		"roles": []string{"Demo.Read.All"}, "tid": tenant, "ver": "2.0",
	}
}

// Helpers shared with the tests of other packages (internal/testkit).

// logBuffer collects log output to check that no token leaks into logs.
type logBuffer = testkit.SyncBuffer

var discardLogger = testkit.DiscardLogger

// newValidator builds a validator against idp and waits for its keys.
func newValidator(t testing.TB, idp *testIDP, mod func(*apiauth.Config)) *apiauth.Validator {
	t.Helper()
	cfg := apiauth.Config{
		Authority:          idp.Authority(tenantA),
		ClientID:           apiID,
		HTTPClient:         idp.Client,
		Logger:             discardLogger(),
		MinRefreshInterval: time.Minute,
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := apiauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

func waitReady(t testing.TB, v *apiauth.Validator) {
	t.Helper()
	ctx, cancel := contextWithTimeout(10 * time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		t.Fatal("validator not ready:", err)
	}
}

type atomicTime struct{ v atomic.Int64 }

func (a *atomicTime) set(t time.Time) { a.v.Store(t.UnixNano()) }
func (a *atomicTime) get() time.Time  { return time.Unix(0, a.v.Load()) }

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
