package apiauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/entraemu"
	"github.com/entra-go/secure-api/internal/testkit"
)

// Refusals of real emulator tokens as a caller sees them over HTTP: status,
// WWW-Authenticate and the JSON body's reason and hint.

const (
	wwwInvalidToken = `Bearer error="invalid_token", error_description="The access token is invalid"`
	// The audiences a validator for the demo API accepts, as its hints list them.
	demoAPIAudiences = `"` + entraemu.APIClientID + `" or "` + entraemu.APIAppIDURI + `"`
	otherAPIID       = "7d2c4b1a-5e6f-4a70-8b9c-0d1e2f3a4b5c"
)

type refusal struct {
	Status int
	WWW    string
	Body   struct {
		Error  string `json:"error"`
		Reason string `json:"reason"`
		Hint   string `json:"hint"`
		Scope  string `json:"scope"`
	}
}

// protectedServer serves v.Protect with reqs; the handler counts the
// requests that reach it.
func protectedServer(t *testing.T, v *apiauth.Validator, reached *atomic.Int32, reqs ...func(http.Handler) http.Handler) string {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		p, ok := apiauth.PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, p.ObjectID)
	})
	srv := httptest.NewServer(v.Protect(h, reqs...))
	t.Cleanup(srv.Close)
	return srv.URL
}

func callHTTP(t *testing.T, url, token string) refusal {
	t.Helper()
	resp, b := getWithToken(t, url, token)
	r := refusal{Status: resp.StatusCode, WWW: resp.Header.Get("WWW-Authenticate")}
	if resp.StatusCode != http.StatusOK {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("refusal Content-Type %q", ct)
		}
		if err := json.Unmarshal(b, &r.Body); err != nil {
			t.Fatalf("refusal body is not JSON: %q", b)
		}
		if strings.Contains(string(b), token) {
			t.Error("the refusal body contains the token")
		}
	}
	return r
}

// wantInvalidToken checks a 401 invalid_token refusal with this reason and
// exactly this hint; the handler must not have been reached.
func wantInvalidToken(t *testing.T, name string, got refusal, reason apiauth.Reason, hint string) {
	t.Helper()
	if got.Status != http.StatusUnauthorized || got.WWW != wwwInvalidToken || got.Body.Error != "invalid_token" ||
		got.Body.Reason != string(reason) || got.Body.Scope != "" {
		t.Errorf("%s: got %d %q %+v, want 401 %q reason %s", name, got.Status, got.WWW, got.Body, wwwInvalidToken, reason)
	}
	if got.Body.Hint != hint {
		t.Errorf("%s: hint\n got %q\nwant %q", name, got.Body.Hint, hint)
	}
}

func unverifiedClaims(t *testing.T, jwt string) map[string]any {
	return testkit.UnverifiedClaims(t, jwt)
}

func unixClaim(t *testing.T, c map[string]any, name string) string {
	t.Helper()
	f, ok := c[name].(float64)
	if !ok {
		t.Fatalf("claim %s: %v", name, c[name])
	}
	return time.Unix(int64(f), 0).UTC().Format(time.RFC3339)
}

// A delegated user token that lacks the endpoint's scope: 403
// insufficient_scope naming the scope, over HTTP, the handler never reached.
func TestEmulatorMissingScopeOverHTTP(t *testing.T) {
	dir := entraemu.DefaultDirectory()
	api := dir.App(entraemu.APIClientID)
	api.Scopes = append(api.Scopes, entraemu.Scope{Value: "Demo.Write", ID: "5a1f0c3e-2b4d-4e6f-8a9b-0c1d2e3f4a5b", Type: "User"})
	cli := dir.App(entraemu.CLIClientID)
	cli.Grants = append(cli.Grants, entraemu.Grant{ResourceAppID: entraemu.APIClientID, Scopes: []string{"Demo.Write"}})
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	v := emuValidator(t, ts, nil)
	waitReady(t, v)

	tok := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", entraemu.APIAppIDURI+"/Demo.Write").AccessToken
	// Premise: a valid delegated token whose only scope is Demo.Write.
	p, err := v.Validate(context.Background(), tok)
	if err != nil || p.AppOnly || !slices.Equal(p.Scopes, []string{"Demo.Write"}) || len(p.Roles) != 0 {
		t.Fatalf("Demo.Write token: %+v %v", p, err)
	}

	var reached atomic.Int32
	scope := protectedServer(t, v, &reached, apiauth.RequireScope("access_as_user"))
	either := protectedServer(t, v, &reached, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))
	two := protectedServer(t, v, &reached, apiauth.RequireScope("access_as_user", "Demo.Admin"))
	write := protectedServer(t, v, &reached, apiauth.RequireScope("Demo.Write"))

	for _, tc := range []struct{ name, url, scope string }{
		{"RequireScope", scope, "access_as_user"},
		// A delegated caller is told the scope, not the app role.
		{"RequireScopeOrAppRole", either, "access_as_user"},
		{"RequireScope with two scopes", two, "access_as_user Demo.Admin"},
	} {
		got := callHTTP(t, tc.url, tok)
		wantWWW := `Bearer error="insufficient_scope", scope="` + tc.scope + `"`
		if got.Status != http.StatusForbidden || got.WWW != wantWWW || got.Body.Error != "insufficient_scope" ||
			got.Body.Reason != string(apiauth.ReasonInsufficientScope) || got.Body.Scope != tc.scope {
			t.Errorf("%s: got %d %q %+v, want 403 %q", tc.name, got.Status, got.WWW, got.Body, wantWWW)
		}
		if want := "Request a token with the scope " + tc.scope + " for this API."; got.Body.Hint != want {
			t.Errorf("%s: hint %q, want %q", tc.name, got.Body.Hint, want)
		}
	}
	if n := reached.Load(); n != 0 {
		t.Fatalf("the handler ran %d times for a token without the scope", n)
	}
	// The same token passes where its scope is what is required.
	if got := callHTTP(t, write, tok); got.Status != http.StatusOK || reached.Load() != 1 {
		t.Fatalf("Demo.Write endpoint: %d %+v (handler reached %d)", got.Status, got.Body, reached.Load())
	}
}

// The demo API registered with accessTokenAcceptedVersion 1: the emulator
// issues v1.0 tokens for it (sts-style issuer, appid, upn).
func TestEmulatorV1TokenForTheAPI(t *testing.T) {
	dir := entraemu.DefaultDirectory()
	dir.App(entraemu.APIClientID).AccessTokenAcceptedVersion = 1
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	v1Issuer := ts.Authority + "/"

	user := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	app := ts.ClientCredentialsToken(t, entraemu.DaemonClientID, secretOf(t, entraemu.DaemonClientID), entraemu.APIAppIDURI+"/.default").AccessToken
	for _, tok := range []string{user, app} {
		if c := unverifiedClaims(t, tok); c["ver"] != "1.0" || c["iss"] != v1Issuer {
			t.Fatalf("premise: the emulator issued ver %v iss %v, want a v1.0 token from %s", c["ver"], c["iss"], v1Issuer)
		}
	}

	for _, versions := range [][]string{nil, {"1.0"}, {"1.0", "2.0"}} {
		v := emuValidator(t, ts, func(c *apiauth.Config) { c.Versions = versions })
		waitReady(t, v)
		p, err := v.Validate(context.Background(), user)
		if err != nil {
			t.Fatalf("versions %v: v1 user token: %v", versions, err)
		}
		if p.Version != "1.0" || p.Issuer != v1Issuer || p.ObjectID != entraemu.ReaderOID || p.TenantID != entraemu.DefaultTenantID ||
			p.Username != "reader@dev.test" || p.AppID != entraemu.CLIClientID || p.Audience != entraemu.APIAppIDURI ||
			!p.HasScope("access_as_user") || p.AppOnly {
			t.Errorf("versions %v: v1 user principal: %+v", versions, p)
		}
		p, err = v.Validate(context.Background(), app)
		if err != nil {
			t.Fatalf("versions %v: v1 app token: %v", versions, err)
		}
		if p.Version != "1.0" || !p.AppOnly || !p.HasRole("Demo.Read.All") || p.AppID != entraemu.DaemonClientID || p.HasScope("access_as_user") {
			t.Errorf("versions %v: v1 app principal: %+v", versions, p)
		}

		// Over HTTP, on the demo API's rule (scope or app role).
		var reached atomic.Int32
		url := protectedServer(t, v, &reached, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))
		for name, tok := range map[string]string{"user": user, "app": app} {
			if got := callHTTP(t, url, tok); got.Status != http.StatusOK {
				t.Errorf("versions %v: v1 %s token over HTTP: %d %+v", versions, name, got.Status, got.Body)
			}
		}
		if reached.Load() != 2 {
			t.Errorf("versions %v: handler reached %d times, want 2", versions, reached.Load())
		}
	}

	// A v2-only API refuses it and says how to fix the registration.
	v2only := emuValidator(t, ts, func(c *apiauth.Config) { c.Versions = []string{"2.0"} })
	waitReady(t, v2only)
	hint := `This is a v1.0 token (iss "` + v1Issuer + `") but this API accepts v2.0 tokens only: ` +
		`set "accessTokenAcceptedVersion": 2 in the API app registration's manifest, or accept version 1.0.`
	var reached atomic.Int32
	url := protectedServer(t, v2only, &reached, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))
	for name, tok := range map[string]string{"user": user, "app": app} {
		if _, err := v2only.Validate(context.Background(), tok); reasonOf(err) != apiauth.ReasonVersion || hintOf(err) != hint {
			t.Errorf("v2-only, v1 %s token: %v (hint %q)", name, err, hintOf(err))
		}
		wantInvalidToken(t, "v2-only, v1 "+name+" token", callHTTP(t, url, tok), apiauth.ReasonVersion, hint)
	}
	if reached.Load() != 0 {
		t.Errorf("the v2-only API's handler ran %d times", reached.Load())
	}

	// And the other way round: a v1-only API given a v2.0 token (the
	// default directory's API issues v2.0 tokens).
	ts2 := entraemu.NewTestServer(t)
	v1only := emuValidator(t, ts2, func(c *apiauth.Config) { c.Versions = []string{"1.0"} })
	waitReady(t, v1only)
	v2tok := ts2.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	url = protectedServer(t, v1only, &reached, apiauth.RequireScope("access_as_user"))
	wantInvalidToken(t, "v1-only, v2 token", callHTTP(t, url, v2tok), apiauth.ReasonVersion,
		`This is a v2.0 token (iss "`+ts2.Authority+`/v2.0") but this API accepts v1.0 tokens only: accept version 2.0 in the API configuration.`)
	if reached.Load() != 0 {
		t.Errorf("the v1-only API's handler ran %d times", reached.Load())
	}
}

// The 401 refusals of TestEmulatorTokens and TestEmulatorLifetime, over HTTP
// with their hints.
func TestEmulatorRefusalHintsOverHTTP(t *testing.T) {
	// A second API in the tenant that the CLI app may call: its real tokens
	// are "a token for another app".
	dir := entraemu.DefaultDirectory()
	dir.Apps = append(dir.Apps, &entraemu.App{
		AppID: otherAPIID, DisplayName: "Other API", IdentifierURIs: []string{"api://" + otherAPIID},
		AccessTokenAcceptedVersion: 2,
		Scopes:                     []entraemu.Scope{{Value: "access_as_user", ID: "6b2e1d4f-3c5a-4b7d-9e8f-1a2b3c4d5e6f", Type: "User"}},
	})
	cli := dir.App(entraemu.CLIClientID)
	cli.Grants = append(cli.Grants, entraemu.Grant{ResourceAppID: otherAPIID, Scopes: []string{"access_as_user"}})
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	v := emuValidator(t, ts, nil)
	waitReady(t, v)
	var reached atomic.Int32
	url := protectedServer(t, v, &reached, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))

	// Control: the demo API's own token passes.
	if got := callHTTP(t, url, ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken); got.Status != http.StatusOK {
		t.Fatalf("valid token: %d %+v", got.Status, got.Body)
	}

	// Another app: a real token for the other API.
	other := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", "api://"+otherAPIID+"/access_as_user").AccessToken
	if c := unverifiedClaims(t, other); c["aud"] != otherAPIID || c["scp"] != "access_as_user" {
		t.Fatalf("premise: other API token aud %v scp %v", c["aud"], c["scp"])
	}
	wantInvalidToken(t, "another app (real token)", callHTTP(t, url, other), apiauth.ReasonAudience,
		`The token was issued for audience "`+otherAPIID+`"; this API accepts `+demoAPIAudiences+
			`. Request a token for this API's scope (api://<api-client-id>/<scope>).`)

	// Crafted with the emulator's real key, as in TestEmulatorTokens.
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
	const otherApp = "0b5c6a5e-0000-4000-8000-000000000001"
	wantInvalidToken(t, "another app (crafted)", callHTTP(t, url, ts.SignJWT(t, nil, claims("aud", otherApp))), apiauth.ReasonAudience,
		`The token was issued for audience "`+otherApp+`"; this API accepts `+demoAPIAudiences+
			`. Request a token for this API's scope (api://<api-client-id>/<scope>).`)
	otherTenant := "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
	wantInvalidToken(t, "another tenant", callHTTP(t, url, ts.SignJWT(t, nil, claims("iss", ts.URL+"/"+otherTenant+"/v2.0", "tid", otherTenant))),
		apiauth.ReasonTenant, `The token was issued by tenant "`+otherTenant+`"; this API accepts tenant `+entraemu.DefaultTenantID+` only.`)

	// Another tenant served by another emulator (other keys): the key is
	// unknown even after a refetch.
	dirB := entraemu.DefaultDirectory()
	dirB.Tenant.ID = otherTenant
	tsB := entraemu.NewTestServer(t, entraemu.WithDirectory(dirB))
	fromB := tsB.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken
	wantInvalidToken(t, "another tenant's emulator", callHTTP(t, url, fromB), apiauth.ReasonUnknownKey,
		"The token is signed with a key the API does not know. It may come from another tenant or authority, "+
			"or the keys just rotated (the API refetches them at most once per minimum interval).")

	if n := reached.Load(); n != 1 {
		t.Errorf("handler reached %d times, want 1 (the control)", n)
	}

	// Expired and not yet valid: real tokens from emulators whose clocks
	// are 3 h behind and 1 h ahead.
	past := entraemu.NewTestServer(t, entraemu.WithClock(func() time.Time { return time.Now().Add(-3 * time.Hour) }))
	future := entraemu.NewTestServer(t, entraemu.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	for _, tc := range []struct {
		name   string
		ts     *entraemu.TestServer
		reason apiauth.Reason
		hint   func(c map[string]any) string
	}{
		{"expired", past, apiauth.ReasonExpired, func(c map[string]any) string {
			return fmt.Sprintf("The access token expired at %s; acquire a new one (MSAL acquireTokenSilent refreshes it).", unixClaim(t, c, "exp"))
		}},
		{"not yet valid", future, apiauth.ReasonNotYetValid, func(c map[string]any) string {
			return fmt.Sprintf("The token is not valid before %s; check the clocks of the caller and the API.", unixClaim(t, c, "nbf"))
		}},
	} {
		v := emuValidator(t, tc.ts, nil)
		waitReady(t, v)
		var reached atomic.Int32
		url := protectedServer(t, v, &reached, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))
		for name, tok := range map[string]string{
			"user": tc.ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope).AccessToken,
			"app":  tc.ts.ClientCredentialsToken(t, entraemu.DaemonClientID, secretOf(t, entraemu.DaemonClientID), entraemu.APIAppIDURI+"/.default").AccessToken,
		} {
			wantInvalidToken(t, tc.name+" "+name, callHTTP(t, url, tok), tc.reason, tc.hint(unverifiedClaims(t, tok)))
		}
		if reached.Load() != 0 {
			t.Errorf("%s: handler reached %d times", tc.name, reached.Load())
		}
	}
}
