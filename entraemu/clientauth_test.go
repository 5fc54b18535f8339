package entraemu_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/entraemu"
)

// assertion builds an RS256 client assertion with an x5t (SHA-1) header, as
// ADFS-style clients do (MSAL Go uses PS256 + x5t#S256, tested with MSAL).
func assertion(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	th := sha1.Sum(cert.Raw)
	h, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "x5t": base64.RawURLEncoding.EncodeToString(th[:])})
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestClientAuthentication(t *testing.T) {
	t.Parallel()
	cert, key, certPEM := newCert(t)
	dir := entraemu.DefaultDirectory()
	dir.App(entraemu.DaemonClientID).Certificates = []string{certPEM}
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	scope := entraemu.APIAppIDURI + "/.default"

	// client_secret_basic.
	req, _ := http.NewRequest(http.MethodPost, ts.TokenEndpoint(), strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(entraemu.DaemonClientID, secretOf(t, entraemu.DaemonClientID))
	resp, err := ts.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("basic auth: %d", resp.StatusCode)
	}

	now := time.Now().Unix()
	good := func() map[string]any {
		return map[string]any{"aud": ts.TokenEndpoint(), "iss": entraemu.DaemonClientID, "sub": entraemu.DaemonClientID,
			"jti": newID(), "nbf": now, "exp": now + 600}
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"client_credentials"}, "client_id": {entraemu.DaemonClientID}, "scope": {scope},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {a}}
	}
	ok := assertion(t, cert, key, good())
	status, body := ts.PostToken(t, form(ok))
	if status != 200 || claimsOf(t, body["access_token"].(string))["azpacr"] != "2" {
		t.Fatalf("RS256/x5t assertion: %d %v", status, body)
	}
	status, raw := postRaw(t, ts, form(ok).Encode(), nil)
	checkEntraError(t, status, raw, 401, "invalid_client", 700027) // replayed jti

	for name, c := range map[string]struct {
		edit func(m map[string]any)
		code int
	}{
		"wrong audience": {func(m map[string]any) { m["aud"] = "https://evil.example/token" }, 700027},
		"expired":        {func(m map[string]any) { m["exp"] = now - 3600 }, 700024},
		"not yet valid":  {func(m map[string]any) { m["nbf"] = now + 3600 }, 700024},
		"no exp":         {func(m map[string]any) { delete(m, "exp") }, 700024},
		"other issuer":   {func(m map[string]any) { m["iss"] = entraemu.APIClientID }, 700021},
	} {
		claims := good()
		c.edit(claims)
		status, raw := postRaw(t, ts, form(assertion(t, cert, key, claims)).Encode(), nil)
		t.Run(name, func(t *testing.T) { checkEntraError(t, status, raw, 401, "invalid_client", c.code) })
	}
	// Signed by a key whose certificate is not registered.
	other, otherKey, _ := newCert(t)
	status, raw = postRaw(t, ts, form(assertion(t, other, otherKey, good())).Encode(), nil)
	checkEntraError(t, status, raw, 401, "invalid_client", 700027)
	// Registered thumbprint, wrong key.
	status, raw = postRaw(t, ts, form(assertion(t, cert, otherKey, good())).Encode(), nil)
	checkEntraError(t, status, raw, 401, "invalid_client", 700027)
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
