package entraemu_test

import (
	"net/url"
	"testing"

	"github.com/entra-go/secure-api/entraemu"
)

func ropcForm(user, scope string) url.Values {
	return url.Values{"grant_type": {"password"}, "client_id": {entraemu.CLIClientID}, "username": {user},
		"password": {"dev-password"}, "scope": {scope + " openid offline_access profile"}}
}

func TestConsentSources(t *testing.T) {
	t.Parallel()
	dir := entraemu.DefaultDirectory()
	cli := dir.App(entraemu.CLIClientID)
	cli.Grants = []entraemu.Grant{{ResourceAppID: entraemu.APIClientID, Scopes: []string{"access_as_user"}, Users: []string{"reader@dev.test"}}}
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))

	// Per-user consent: reader yes, admin no.
	if st, b := ts.PostToken(t, ropcForm("reader@dev.test", apiScope)); st != 200 {
		t.Fatalf("per-user consent: %v", b)
	}
	if st, b := ts.PostToken(t, ropcForm("admin@dev.test", apiScope)); st != 400 || b["suberror"] != "consent_required" || !hasCode(b, 65001) {
		t.Fatalf("no consent for admin: %d %v", st, b)
	}
	// .default expands to what is consented and echoes the literal scope.
	st, b := ts.PostToken(t, ropcForm("reader@dev.test", entraemu.APIAppIDURI+"/.default"))
	if st != 200 || claimsOf(t, b["access_token"].(string))["scp"] != "access_as_user" {
		t.Fatalf(".default: %d %v", st, b)
	}
	if s, _ := b["scope"].(string); s != entraemu.APIAppIDURI+"/.default "+entraemu.APIAppIDURI+"/access_as_user" {
		t.Fatalf(".default scope echo %q", s)
	}

	// Pre-authorization needs no consent.
	dir2 := entraemu.DefaultDirectory()
	dir2.App(entraemu.CLIClientID).Grants = nil
	dir2.App(entraemu.APIClientID).PreAuthorizedApplications = []entraemu.PreAuthorized{{AppID: entraemu.CLIClientID, Scopes: []string{"access_as_user"}}}
	ts2 := entraemu.NewTestServer(t, entraemu.WithDirectory(dir2))
	if st, b := ts2.PostToken(t, ropcForm("admin@dev.test", apiScope)); st != 200 {
		t.Fatalf("pre-authorized: %v", b)
	}
	// A scope given by GUID resource gets a v2 token all the same.
	if st, b := ts2.PostToken(t, ropcForm("admin@dev.test", entraemu.APIClientID+"/access_as_user")); st != 200 || claimsOf(t, b["access_token"].(string))["aud"] != entraemu.APIClientID {
		t.Fatalf("GUID resource: %v", b)
	}
}

func TestConditionalAccessEvaluation(t *testing.T) {
	t.Parallel()
	dir := entraemu.DefaultDirectory()
	dir.Users[0].MFARegistered = false // reader
	cli := dir.App(entraemu.CLIClientID)
	cli.Grants = append(cli.Grants, entraemu.Grant{ResourceAppID: entraemu.GraphAppID, Scopes: []string{"User.Read"}})
	dir.ConditionalAccess = []*entraemu.CAPolicy{
		{ID: "11111111-2222-4333-8444-555555555555", Users: []string{"All"}, Resources: []string{entraemu.APIClientID}, GrantControls: []string{"mfa"}, State: "disabled"},
		{ID: "66666666-2222-4333-8444-555555555555", Users: []string{"All"}, Resources: []string{entraemu.GraphAppID}, GrantControls: []string{"mfa"}},
	}
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	// The disabled policy on the API does nothing.
	reader := ts.PasswordToken(t, entraemu.CLIClientID, "reader@dev.test", "dev-password", apiScope)
	admin := ts.PasswordToken(t, entraemu.CLIClientID, "admin@dev.test", "dev-password", apiScope)
	secret := secretOf(t, entraemu.APIClientID)
	// "All" users: reader (not registered for MFA) → 50079, admin → 50076.
	for _, c := range []struct {
		tok  string
		code int
	}{{reader.AccessToken, 50079}, {admin.AccessToken, 50076}} {
		st, b := ts.PostToken(t, oboForm(secret, c.tok))
		if st != 400 || b["error"] != "interaction_required" || !hasCode(b, c.code) ||
			b["claims"] != `{"access_token":{"capolids":{"essential":true,"values":["66666666-2222-4333-8444-555555555555"]}}}` {
			t.Errorf("AADSTS%d expected: %d %v", c.code, st, b)
		}
	}
	// ROPC straight to the protected resource is refused the same way.
	if st, b := ts.PostToken(t, ropcForm("admin@dev.test", graphScope)); st != 400 || !hasCode(b, 50076) {
		t.Errorf("ROPC to an MFA-protected resource: %d %v", st, b)
	}
}
