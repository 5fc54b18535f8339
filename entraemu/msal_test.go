package entraemu_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/public"

	"github.com/entra-go/secure-api/entraemu"
	"github.com/entra-go/secure-api/internal/testkit"
)

const (
	apiScope   = entraemu.APIAppIDURI + "/access_as_user"
	graphScope = entraemu.GraphAppIDURI + "/User.Read"
)

func secretOf(t *testing.T, appID string) string {
	t.Helper()
	a := entraemu.DefaultDirectory().App(appID)
	if a == nil || len(a.Secrets) == 0 {
		t.Fatalf("no secret for %s", appID)
	}
	return a.Secrets[0]
}

func claimsOf(t *testing.T, jwt string) map[string]any { return testkit.UnverifiedClaims(t, jwt) }

func headerOf(t *testing.T, jwt string) map[string]any { return testkit.UnverifiedHeader(t, jwt) }

// ropc signs a user in through the CLI app with the real MSAL Go public client.
func ropc(t *testing.T, ts *entraemu.TestServer, user string) public.AuthResult {
	t.Helper()
	pca, err := public.New(entraemu.CLIClientID, public.WithAuthority(ts.Authority),
		public.WithInstanceDiscovery(false), public.WithHTTPClient(ts.Client))
	if err != nil {
		t.Fatal(err)
	}
	//lint:ignore SA1019 ROPC is what the CLI app is for.
	res, err := pca.AcquireTokenByUsernamePassword(context.Background(), []string{apiScope}, user, "dev-password")
	if err != nil {
		t.Fatalf("ROPC as %s: %v", user, err)
	}
	return res
}

func newAPIClient(t *testing.T, ts *entraemu.TestServer, cred confidential.Credential) confidential.Client {
	t.Helper()
	cca, err := confidential.New(ts.Authority, entraemu.APIClientID, cred,
		confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(ts.Client))
	if err != nil {
		t.Fatal(err)
	}
	return cca
}

func TestMSALPublicClientROPC(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	res := ropc(t, ts, "reader@dev.test")
	c := claimsOf(t, res.AccessToken)
	if c["aud"] != entraemu.APIClientID || c["ver"] != "2.0" || c["scp"] != "access_as_user" ||
		c["oid"] != entraemu.ReaderOID || c["azp"] != entraemu.CLIClientID || c["azpacr"] != "0" ||
		c["iss"] != ts.Authority+"/v2.0" || c["preferred_username"] != "reader@dev.test" {
		t.Fatalf("unexpected access token claims: %v", c)
	}
	if res.Account.HomeAccountID != entraemu.ReaderOID+"."+entraemu.DefaultTenantID {
		t.Fatalf("home account id from client_info = %q", res.Account.HomeAccountID)
	}
	if res.IDToken.Oid != entraemu.ReaderOID || res.IDToken.Audience != entraemu.CLIClientID {
		t.Fatalf("id token: %+v", res.IDToken)
	}
	if got := ts.Count("userrealm"); got != 1 {
		t.Fatalf("MSAL Go should do one user realm discovery, counted %d", got)
	}
}

func TestMSALOnBehalfOfWithSecretAndCache(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	user := ropc(t, ts, "reader@dev.test")
	cred, err := confidential.NewCredFromSecret(secretOf(t, entraemu.APIClientID))
	if err != nil {
		t.Fatal(err)
	}
	cca := newAPIClient(t, ts, cred)
	ctx := context.Background()
	res, err := cca.AcquireTokenOnBehalfOf(ctx, user.AccessToken, []string{graphScope})
	if err != nil {
		t.Fatalf("OBO: %v", err)
	}
	c := claimsOf(t, res.AccessToken)
	if c["aud"] != entraemu.GraphAppIDURI || c["ver"] != "1.0" || c["scp"] != "User.Read" || c["appid"] != entraemu.APIClientID ||
		c["appidacr"] != "1" || c["upn"] != "reader@dev.test" || c["iss"] != ts.URL+"/"+entraemu.DefaultTenantID+"/" {
		t.Fatalf("unexpected OBO token claims: %v", c)
	}
	if _, ok := headerOf(t, res.AccessToken)["x5t"]; !ok {
		t.Fatal("v1 token header lacks x5t")
	}
	before := ts.Counters()
	again, err := cca.AcquireTokenOnBehalfOf(ctx, user.AccessToken, []string{graphScope})
	if err != nil {
		t.Fatalf("second OBO: %v", err)
	}
	if again.AccessToken != res.AccessToken {
		t.Fatal("second identical OBO was not served from MSAL's cache")
	}
	if after := ts.Counters(); !mapsEqual(before, after) {
		t.Fatalf("second OBO made HTTP requests: before %v after %v", before, after)
	}
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// newCert makes an RSA key and self-signed certificate in the test; only the
// public certificate is registered in the (test) directory.
func newCert(t *testing.T) (*x509.Certificate, *rsa.PrivateKey, string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "api test credential"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestMSALOnBehalfOfWithCertificate(t *testing.T) {
	t.Parallel()
	cert, key, certPEM := newCert(t)
	dir := entraemu.DefaultDirectory()
	dir.App(entraemu.APIClientID).Certificates = []string{certPEM}
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	user := ropc(t, ts, "reader@dev.test")
	cred, err := confidential.NewCredFromCert([]*x509.Certificate{cert}, key)
	if err != nil {
		t.Fatal(err)
	}
	cca := newAPIClient(t, ts, cred)
	res, err := cca.AcquireTokenOnBehalfOf(context.Background(), user.AccessToken, []string{graphScope})
	if err != nil {
		t.Fatalf("OBO with certificate: %v", err)
	}
	if c := claimsOf(t, res.AccessToken); c["appidacr"] != "2" {
		t.Fatalf("appidacr = %v, want 2 (certificate)", c["appidacr"])
	}

	// A certificate the app does not have is refused as Entra refuses it.
	other, otherKey, _ := newCert(t)
	bad, _ := confidential.NewCredFromCert([]*x509.Certificate{other}, otherKey)
	_, err = newAPIClient(t, ts, bad).AcquireTokenOnBehalfOf(context.Background(), user.AccessToken, []string{graphScope})
	body := callErrBody(t, err)
	if body["error"] != "invalid_client" || !hasCode(body, 700027) {
		t.Fatalf("unregistered certificate: %v", body)
	}
}

func TestMSALClientCredentials(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	cred, _ := confidential.NewCredFromSecret(secretOf(t, entraemu.DaemonClientID))
	cca, err := confidential.New(ts.Authority, entraemu.DaemonClientID, cred,
		confidential.WithInstanceDiscovery(false), confidential.WithHTTPClient(ts.Client))
	if err != nil {
		t.Fatal(err)
	}
	res, err := cca.AcquireTokenByCredential(context.Background(), []string{entraemu.APIAppIDURI + "/.default"})
	if err != nil {
		t.Fatal(err)
	}
	c := claimsOf(t, res.AccessToken)
	roles, _ := c["roles"].([]any)
	if len(roles) != 1 || roles[0] != "Demo.Read.All" || c["idtyp"] != "app" || c["aud"] != entraemu.APIClientID {
		t.Fatalf("app-only claims: %v", c)
	}
	if _, ok := c["scp"]; ok {
		t.Fatalf("app-only token carries scp: %v", c)
	}
	if c["oid"] != c["sub"] || c["azp"] != entraemu.DaemonClientID || c["azpacr"] != "1" {
		t.Fatalf("app-only identity claims: %v", c)
	}
}

func callErrBody(t *testing.T, err error) map[string]any {
	t.Helper()
	var ce msalerrors.CallErr
	if !errors.As(err, &ce) {
		t.Fatalf("want msal CallErr, got %T %v", err, err)
	}
	b, rerr := io.ReadAll(ce.Resp.Body)
	if rerr != nil {
		t.Fatal(rerr)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("error body not JSON: %q", b)
	}
	return m
}

func hasCode(body map[string]any, code int) bool {
	codes, _ := body["error_codes"].([]any)
	return slices.ContainsFunc(codes, func(c any) bool { f, _ := c.(float64); return int(f) == code })
}

func TestMSALOnBehalfOfMFAChallenge(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	user := ropc(t, ts, "mfa@dev.test") // the API itself has no MFA policy
	cred, _ := confidential.NewCredFromSecret(secretOf(t, entraemu.APIClientID))
	_, err := newAPIClient(t, ts, cred).AcquireTokenOnBehalfOf(context.Background(), user.AccessToken, []string{graphScope})
	body := callErrBody(t, err)
	if body["error"] != "interaction_required" || !hasCode(body, 50076) {
		t.Fatalf("want interaction_required AADSTS50076: %v", body)
	}
	var claims struct {
		AccessToken struct {
			Capolids struct {
				Essential bool     `json:"essential"`
				Values    []string `json:"values"`
			} `json:"capolids"`
		} `json:"access_token"`
	}
	if err := json.Unmarshal([]byte(body["claims"].(string)), &claims); err != nil {
		t.Fatalf("claims not JSON: %v", err)
	}
	if !claims.AccessToken.Capolids.Essential || !slices.Equal(claims.AccessToken.Capolids.Values, []string{entraemu.MFAPolicyID}) {
		t.Fatalf("claims challenge: %+v", claims)
	}
	if d, _ := body["error_description"].(string); !strings.HasPrefix(d, "AADSTS50076: ") || !strings.Contains(d, "\r\nTrace ID: ") {
		t.Fatalf("error_description shape: %q", d)
	}
}
