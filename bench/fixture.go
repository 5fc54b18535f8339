// Package bench holds the validation benchmarks (apiauth against the
// standard-library floor, jwx v3 and golang-jwt v5) and the fixtures of the
// HTTP load harness (cmd/apibench). See docs/BENCHMARKS.md.
package bench

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Fixed ids of the token shape (DESIGN §3).
const (
	Tenant   = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"
	APIID    = "68fee0a8-293c-4256-8007-b5453b634b61"
	SPAID    = "88374b94-683c-41e9-a4d0-40a9685e8661"
	userOID  = "e35a8c02-2ed7-489f-ac07-c14c1234b3c6"
	signerIx = 1 // the signing key is the second of three, as in perf-baseline.md
)

// Fixture is an Entra-shaped IdP for benchmarks: three RSA-2048 keys in a
// JWKS without alg (signing key second), discovery, v2.0 access tokens of
// about 1.4 KB.
type Fixture struct {
	Keys      []*rsa.PrivateKey
	KIDs      []string
	JWKS      []byte
	Server    *httptest.Server // TLS: discovery and keys
	Client    *http.Client
	Authority string
	Issuer    string
	Exp       time.Time
}

// NewFixture generates the keys and starts the IdP; Close it.
func NewFixture() *Fixture {
	f := &Fixture{Exp: time.Now().Add(3 * time.Hour)}
	var keys []map[string]string
	for i := 0; i < 3; i++ {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		kid := fmt.Sprintf("bench-key-%d-%x", i, sha256.Sum256(k.N.Bytes()))[:36]
		f.Keys, f.KIDs = append(f.Keys, k), append(f.KIDs, kid)
		keys = append(keys, map[string]string{"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
			"n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
	}
	f.Server = httptest.NewTLSServer(http.HandlerFunc(f.serve))
	f.Client = f.Server.Client()
	f.Client.Timeout = 10 * time.Second
	f.Authority = f.Server.URL + "/" + Tenant
	f.Issuer = f.Authority + "/v2.0"
	for _, k := range keys {
		k["issuer"] = f.Issuer
	}
	f.JWKS, _ = json.Marshal(map[string]any{"keys": keys})
	return f
}

func (f *Fixture) Close() { f.Server.Close() }

func (f *Fixture) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/" + Tenant + "/v2.0/.well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": f.Issuer, "jwks_uri": f.Authority + "/discovery/v2.0/keys"})
	case "/" + Tenant + "/.well-known/openid-configuration":
		_ = json.NewEncoder(w).Encode(map[string]string{"issuer": f.Server.URL + "/" + Tenant + "/", "jwks_uri": f.Authority + "/discovery/keys"})
	case "/" + Tenant + "/discovery/v2.0/keys", "/" + Tenant + "/discovery/keys":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(f.JWKS)
	default:
		http.NotFound(w, r)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Token returns a distinct v2.0 delegated access token for each i, in the
// claim order Entra uses.
func (f *Fixture) Token(i int) string {
	now := time.Now().Unix()
	hb := fmt.Sprintf(`{"typ":"JWT","alg":"RS256","kid":%q}`, f.KIDs[signerIx])
	cb := fmt.Sprintf(`{"aud":%q,"iss":%q,"iat":%d,"nbf":%d,"exp":%d,`+
		`"aio":"AWQAm/8ZAAAAGk3QyD6Ff9t3xTj0x3fK2nlJjQQbKt6o7lRZ5tm4Y+rOUf3dWgBhT8u5kPzLQhp2yYnmP3JvB1H3MpiN0LyRxE8nyb7mOHdEAfSsGKZ8X8Mi+SDLtEfL",`+
		`"azp":%q,"azpacr":"0","name":"Reader Example","oid":%q,"preferred_username":"reader@dev.test",`+
		`"rh":"1.AXEA2eO9Lckz00-06bhGl1sCraigzt-oKVZCgAe1RTtjO2EOAPBxAA.","scp":"access_as_user",`+
		`"sub":"Xy7bF1cGkq4mR0sN8pD2wE5tH3jL6vA9zU1iO4yT7uQ","tid":%q,"uti":"bench-%08d-Zq0aYl3dBk6xNwHrT2","ver":"2.0"}`,
		APIID, f.Issuer, now-60, now-60, f.Exp.Unix(), SPAID, userOID, Tenant, i)
	in := b64([]byte(hb)) + "." + b64([]byte(cb))
	d := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, f.Keys[signerIx], crypto.SHA256, d[:])
	if err != nil {
		panic(err)
	}
	return in + "." + b64(sig)
}

// Tokens signs n distinct tokens on all cores.
func (f *Fixture) Tokens(n int) []string {
	out := make([]string, n)
	var wg sync.WaitGroup
	const workers = 4
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				out[i] = f.Token(i)
			}
		}()
	}
	wg.Wait()
	return out
}
