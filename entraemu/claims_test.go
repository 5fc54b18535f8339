package entraemu_test

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"

	"github.com/entra-go/secure-api/entraemu"
)

// A token request whose claims ask for an auth context (acrs) or a CA
// policy (capolids) the user has not satisfied (no MFA) is answered
// interaction_required + AADSTS50076 and a claims challenge, on the
// password, refresh_token and OBO grants; acrs is stamped only once MFA is
// done, after a step-up through the authorize page with those claims.
func TestClaimsChallengeAtTokenEndpoint(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	const acrs = `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}`
	const capolids = `{"access_token":{"capolids":{"essential":true,"values":["5a0b8d5c-7b8e-4a51-9b5a-6d2d6a1c0f11"]}}}`
	secret := secretOf(t, entraemu.APIClientID)

	refused := func(t *testing.T, what string, st int, b map[string]any, want string) {
		t.Helper()
		if st != 400 || b["error"] != "interaction_required" || !hasCode(b, 50076) {
			t.Fatalf("%s: want interaction_required AADSTS50076, got %d %v", what, st, b)
		}
		got, _ := b["claims"].(string)
		if mustCanon(t, got) != mustCanon(t, want) {
			t.Fatalf("%s: claims %s, want %s", what, got, want)
		}
	}

	// Password grant: ROPC can never do MFA.
	for _, c := range []string{acrs, capolids} {
		f := ropcForm("admin@dev.test", apiScope)
		f.Set("claims", c)
		st, b := ts.PostToken(t, f)
		refused(t, "ROPC", st, b, c)
	}

	// Refresh token of a password sign-in: refused, and the refresh token
	// stays valid (the same request without the claims works).
	pw := ts.PasswordToken(t, entraemu.CLIClientID, "admin@dev.test", "dev-password", apiScope)
	rf := url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.CLIClientID}, "refresh_token": {pw.RefreshToken},
		"scope": {apiScope + " openid offline_access profile"}, "claims": {acrs}}
	st, b := ts.PostToken(t, rf)
	refused(t, "refresh", st, b, acrs)
	rf.Del("claims")
	if st, b := ts.PostToken(t, rf); st != 200 {
		t.Fatalf("refresh without claims: %d %v", st, b)
	} else if _, ok := claimsOf(t, b["access_token"].(string))["acrs"]; ok {
		t.Fatal("acrs stamped without a request")
	}

	// OBO with an assertion that has no MFA.
	of := oboForm(secret, pw.AccessToken)
	of.Set("claims", acrs)
	st, b = ts.PostToken(t, of)
	refused(t, "OBO", st, b, acrs)
	challenge := b["claims"].(string)

	// Step up through the authorize page with the challenge: MFA page, then
	// a token carrying acrs and amr mfa.
	br := ts.NewBrowser("admin@dev.test", "dev-password")
	req := spaRequest()
	req.Claims = challenge
	res := br.Authorize(t, req)
	if !slices.Contains(res.Pages, "Approve sign-in request") {
		t.Fatalf("no MFA page on step-up: %v", res.Pages)
	}
	st, tok := br.Redeem(t, req, res, nil)
	if st != 200 {
		t.Fatalf("redeem after step-up: %d %v", st, tok)
	}
	c := claimsOf(t, tok["access_token"].(string))
	if a, _ := c["acrs"].([]any); len(a) != 1 || a[0] != "c1" {
		t.Fatalf("acrs after step-up = %v", c["acrs"])
	}

	// The stepped-up refresh token and access token now satisfy the claims.
	if st, b := spaRefreshClaims(t, ts, tok["refresh_token"].(string), acrs); st != 200 {
		t.Fatalf("refresh with claims after step-up: %d %v", st, b)
	} else if a, _ := claimsOf(t, b["access_token"].(string))["acrs"].([]any); len(a) != 1 || a[0] != "c1" {
		t.Fatalf("refreshed acrs = %v", a)
	}
	of = oboForm(secret, tok["access_token"].(string))
	of.Set("claims", acrs)
	st, b = ts.PostToken(t, of)
	if st != 200 {
		t.Fatalf("OBO with claims after step-up: %d %v", st, b)
	}
	if a, _ := claimsOf(t, b["access_token"].(string))["acrs"].([]any); len(a) != 1 || a[0] != "c1" {
		t.Fatalf("OBO acrs = %v", a)
	}
}

func mustCanon(t *testing.T, s string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func spaRefreshClaims(t *testing.T, ts *entraemu.TestServer, rt, claims string) (int, map[string]any) {
	t.Helper()
	st, raw := postRaw(t, ts, url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.SPAClientID},
		"refresh_token": {rt}, "scope": {apiScope + " openid offline_access profile"}, "claims": {claims}}.Encode(),
		map[string][]string{"Origin": {spaOrigin}})
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("refresh body not JSON: %q", raw)
	}
	return st, m
}
