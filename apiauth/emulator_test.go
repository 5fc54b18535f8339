package apiauth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/entraemu"
)

// Integration with the emulator over real HTTPS: real tokens from the real
// token endpoint (ROPC, client credentials), real discovery and JWKS.

const apiScope = entraemu.APIAppIDURI + "/access_as_user"

func emuValidator(t *testing.T, ts *entraemu.TestServer, mod func(*apiauth.Config)) *apiauth.Validator {
	t.Helper()
	cfg := apiauth.Config{Authority: ts.Authority, ClientID: entraemu.APIClientID, HTTPClient: ts.Client, Logger: discardLogger()}
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

func secretOf(t *testing.T, clientID string) string {
	t.Helper()
	app := entraemu.DefaultDirectory().App(clientID)
	if app == nil || len(app.Secrets) == 0 {
		t.Fatalf("no secret for %s in the default directory", clientID)
	}
	return app.Secrets[0]
}

func serveWith(v *apiauth.Validator, reqs ...func(http.Handler) http.Handler) *httptest.Server {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := apiauth.PrincipalFrom(r.Context())
		_, _ = io.WriteString(w, p.ObjectID)
	})
	return httptest.NewServer(v.Protect(ok, reqs...))
}

func call(t *testing.T, url, token string) (int, string, string) {
	t.Helper()
	resp, b := getWithToken(t, url, token)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate"), string(b)
}

// getWithToken GETs url with the token as a Bearer credential and returns
// the response (body already read and closed) and its body.
func getWithToken(t *testing.T, url, token string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestEmulatorTokens(t *testing.T) {
	ts := entraemu.NewTestServer(t)
	v := emuValidator(t, ts, nil)
	waitReady(t, v)
	ctx := context.Background()

	// Delegated v2 token (ROPC through the CLI app), with an ID token.
	user := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", "openid", "profile", "offline_access", apiScope)
	p, err := v.Validate(ctx, user.AccessToken)
	if err != nil {
		t.Fatal("delegated v2 token:", err)
	}
	if p.ObjectID != entraemu.ReaderOID || p.TenantID != entraemu.DefaultTenantID || p.Version != "2.0" ||
		!p.HasScope("access_as_user") || p.AppOnly || p.AppID != entraemu.CLIClientID || p.Audience != entraemu.APIClientID {
		t.Fatalf("delegated principal: %+v", p)
	}
	if user.IDToken != "" {
		_, err := v.Validate(ctx, user.IDToken)
		if reasonOf(err) != apiauth.ReasonIDToken || !strings.Contains(hintOf(err), "ID token") {
			t.Fatal("ID token:", err)
		}
	} else {
		t.Error("the emulator returned no ID token for scope openid")
	}

	// App-only token (client credentials, daemon app).
	app := ts.ClientCredentialsToken(t, entraemu.DaemonClientID, secretOf(t, entraemu.DaemonClientID), entraemu.APIAppIDURI+"/.default")
	p, err = v.Validate(ctx, app.AccessToken)
	if err != nil {
		t.Fatal("app-only token:", err)
	}
	if !p.AppOnly || !p.HasRole("Demo.Read.All") || p.AppID != entraemu.DaemonClientID {
		t.Fatalf("app principal: %+v", p)
	}

	// Graph token sent to the API.
	// (the API's On-Behalf-Of exchange for Graph User.Read: a v1.0 token).
	graph := ts.OBOToken(t, entraemu.APIClientID, secretOf(t, entraemu.APIClientID), user.AccessToken, entraemu.GraphAppIDURI+"/User.Read")
	if _, err := v.Validate(ctx, graph.AccessToken); reasonOf(err) != apiauth.ReasonGraphToken || !strings.Contains(hintOf(err), "Graph") {
		t.Fatal("Graph token:", err)
	}

	// The same Graph-shaped token is a valid v1.0 token for a validator of
	// the upstream app (what upstream does).
	up := emuValidator(t, ts, func(c *apiauth.Config) {
		c.ClientID, c.Audiences, c.Versions = entraemu.GraphAppID, []string{entraemu.GraphAppIDURI}, []string{"1.0"}
	})
	waitReady(t, up)
	p, err = up.Validate(ctx, graph.AccessToken)
	if err != nil || p.Version != "1.0" || !p.HasScope("User.Read") || p.Username != "reader@dev.test" {
		t.Fatalf("v1 token for upstream: %+v %v", p, err)
	}
	// ... but a v2-only validator of that app says why it refuses it.
	up2 := emuValidator(t, ts, func(c *apiauth.Config) {
		c.ClientID, c.Audiences, c.Versions = entraemu.GraphAppID, []string{entraemu.GraphAppIDURI}, []string{"2.0"}
	})
	waitReady(t, up2)
	if _, err := up2.Validate(ctx, graph.AccessToken); reasonOf(err) != apiauth.ReasonVersion || !strings.Contains(hintOf(err), "accessTokenAcceptedVersion") {
		t.Fatal("v1 token to a v2-only API:", err)
	}

	// Crafted with the emulator's real key: another app, another tenant.
	now := time.Now().Unix()
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"aud": entraemu.APIClientID, "iss": ts.Authority + "/v2.0", "tid": entraemu.DefaultTenantID,
			"oid": entraemu.ReaderOID, "sub": "s", "azp": entraemu.SPAClientID, "scp": "access_as_user", "ver": "2.0",
			"iat": now, "nbf": now, "exp": now + 3600}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	if _, err := v.Validate(ctx, ts.SignJWT(t, nil, claims("aud", "0b5c6a5e-0000-4000-8000-000000000001"))); reasonOf(err) != apiauth.ReasonAudience {
		t.Fatal("token for another app:", err)
	}
	other := "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	if _, err := v.Validate(ctx, ts.SignJWT(t, nil, claims("iss", ts.URL+"/"+other+"/v2.0", "tid", other))); reasonOf(err) != apiauth.ReasonTenant {
		t.Fatal("token from another tenant:", err)
	}
	if _, err := v.Validate(ctx, ts.SignJWT(t, nil, claims())); err != nil {
		t.Fatal("crafted valid token:", err)
	}
}

func hintOf(err error) string {
	var e *apiauth.Error
	if errors.As(err, &e) {
		return e.Hint
	}
	return ""
}

func TestEmulatorMiddleware(t *testing.T) {
	ts := entraemu.NewTestServer(t)
	v := emuValidator(t, ts, nil)
	waitReady(t, v)
	either := serveWith(v, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))
	defer either.Close()
	delegated := serveWith(v, apiauth.RequireScope("access_as_user"))
	defer delegated.Close()
	role := serveWith(v, apiauth.RequireRole("Demo.Read.All"))
	defer role.Close()

	reader := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	admin := ts.PasswordToken(t, entraemu.CLIClientID, "admin@dev.test", "dev-password", apiScope).AccessToken
	app := ts.ClientCredentialsToken(t, entraemu.DaemonClientID, secretOf(t, entraemu.DaemonClientID), entraemu.APIAppIDURI+"/.default").AccessToken

	for _, tc := range []struct {
		name, url, tok string
		status         int
		www            string
	}{
		{"reader, scope or role", either.URL, reader, 200, ""},
		{"app, scope or role", either.URL, app, 200, ""},
		{"reader, scope", delegated.URL, reader, 200, ""},
		{"app on a delegated endpoint", delegated.URL, app, 403, `error="insufficient_scope", scope="access_as_user"`},
		{"admin holds the role", role.URL, admin, 200, ""},
		{"reader lacks the role", role.URL, reader, 403, `error="insufficient_scope", scope="Demo.Read.All"`},
		{"app holds the role", role.URL, app, 200, ""},
	} {
		st, www, body := call(t, tc.url, tc.tok)
		if st != tc.status || !strings.Contains(www, tc.www) {
			t.Errorf("%s: %d %q %s", tc.name, st, www, body)
		}
	}
}

func TestEmulatorLifetime(t *testing.T) {
	past := entraemu.NewTestServer(t, entraemu.WithClock(func() time.Time { return time.Now().Add(-3 * time.Hour) }))
	future := entraemu.NewTestServer(t, entraemu.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	for _, tc := range []struct {
		ts     *entraemu.TestServer
		reason apiauth.Reason
	}{{past, apiauth.ReasonExpired}, {future, apiauth.ReasonNotYetValid}} {
		v := emuValidator(t, tc.ts, nil)
		waitReady(t, v)
		tok := tc.ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
		_, err := v.Validate(context.Background(), tok)
		if reasonOf(err) != tc.reason || hintOf(err) == "" {
			t.Errorf("want %s: %v", tc.reason, err)
		}
	}
}

func TestEmulatorMultiTenant(t *testing.T) {
	ts := entraemu.NewTestServer(t)
	tok := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	for _, authority := range []string{"organizations", "common"} {
		allowed := emuValidator(t, ts, func(c *apiauth.Config) {
			c.Authority = ts.URL + "/" + authority
			c.AllowedTenants = []string{entraemu.DefaultTenantID}
		})
		other := emuValidator(t, ts, func(c *apiauth.Config) {
			c.Authority = ts.URL + "/" + authority
			c.AllowedTenants = []string{"3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}
		})
		waitReady(t, allowed)
		waitReady(t, other)
		if _, err := allowed.Validate(context.Background(), tok); err != nil {
			t.Errorf("%s, tenant allowed: %v", authority, err)
		}
		if _, err := other.Validate(context.Background(), tok); reasonOf(err) != apiauth.ReasonTenantNotAllowed {
			t.Errorf("%s, tenant not allowed: %v", authority, err)
		}
	}
}

func TestEmulatorKeyRotationAndOutage(t *testing.T) {
	ts := entraemu.NewTestServer(t)
	ts.SetJWKSFault(entraemu.JWKSFault{Status: http.StatusServiceUnavailable})
	v := emuValidator(t, ts, nil)
	srv := serveWith(v)
	defer srv.Close()
	tok := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken

	// JWKS down at start: 503, then 200 once it is up.
	time.Sleep(200 * time.Millisecond)
	if st, _, _ := call(t, srv.URL, tok); st != 503 {
		t.Fatal("JWKS down at start:", st)
	}
	ts.SetJWKSFault(entraemu.JWKSFault{})
	waitReady(t, v)
	if st, _, body := call(t, srv.URL, tok); st != 200 {
		t.Fatal("after the JWKS came up:", st, body)
	}

	// Rotation: picked up with one refetch.
	before := ts.Count("keys")
	newKID, err := ts.RotateKeys(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	rotated := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	p, err := v.Validate(context.Background(), rotated)
	if err != nil || p.KeyID != newKID {
		t.Fatal("token signed with the rotated key:", err)
	}
	if n := ts.Count("keys") - before; n != 1 {
		t.Fatalf("%d JWKS fetches for one rotation, want 1", n)
	}

	// JWKS down later: valid tokens keep working (last good keys).
	ts.SetJWKSFault(entraemu.JWKSFault{Status: http.StatusInternalServerError})
	fresh := ts.PasswordToken(t, entraemu.CLIClientID, "admin@dev.test", "dev-password", apiScope).AccessToken
	if st, _, body := call(t, srv.URL, fresh); st != 200 {
		t.Fatal("valid token while the JWKS is down:", st, body)
	}
	ts.SetJWKSFault(entraemu.JWKSFault{})
}

// A single-tenant authority given by domain name (as the Azure portal often
// shows it) or with the v2.0 issuer pasted as the authority is single-tenant:
// its tenant comes from the discovered issuer, no AllowedTenants needed.
func TestEmulatorDomainAndV2Authority(t *testing.T) {
	ts := entraemu.NewTestServer(t)
	tok := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	for _, authority := range []string{ts.URL + "/dev.test", ts.URL + "/DEV.TEST/", ts.Authority + "/v2.0", ts.URL + "/dev.test/v2.0/"} {
		v := emuValidator(t, ts, func(c *apiauth.Config) { c.Authority = authority })
		waitReady(t, v)
		p, err := v.Validate(context.Background(), tok)
		if err != nil {
			t.Errorf("%s: %v", authority, err)
			continue
		}
		if p.TenantID != entraemu.DefaultTenantID {
			t.Errorf("%s: tenant %q", authority, p.TenantID)
		}
		// The discovered tenant still drives the "other tenant" hint.
		other := ts.SignJWT(t, nil, map[string]any{"aud": entraemu.APIClientID, "iss": "https://login.microsoftonline.com/" + tenantB + "/v2.0",
			"tid": tenantB, "ver": "2.0", "scp": "access_as_user", "exp": time.Now().Add(time.Hour).Unix()})
		if _, err := v.Validate(context.Background(), other); reasonOf(err) != apiauth.ReasonTenant || !strings.Contains(hintOf(err), entraemu.DefaultTenantID) {
			t.Errorf("%s: other tenant: %v (hint %q)", authority, err, hintOf(err))
		}
	}
}
