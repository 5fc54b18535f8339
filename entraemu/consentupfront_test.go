package entraemu_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/entra-go/secure-api/entraemu"
)

const spaOrigin = "http://localhost:30662"

// spaRefresh redeems a SPA refresh token (cross-origin, as the browser does).
func spaRefresh(t *testing.T, ts *entraemu.TestServer, rt, scope string) (int, map[string]any) {
	t.Helper()
	st, raw := postRaw(t, ts, url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.SPAClientID},
		"refresh_token": {rt}, "scope": {scope + " openid offline_access profile"}}.Encode(), http.Header{"Origin": {spaOrigin}})
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("refresh body not JSON: %q", raw)
	}
	return st, m
}

// Consent up front (msal-browser's extraScopesToConsent): one authorize
// request names the API and Graph, one consent page lists both, the code is
// redeemed for one resource at a time, and the other needs no new consent.
func TestConsentUpFrontSeveralResources(t *testing.T) {
	t.Parallel()
	dir := entraemu.DefaultDirectory()
	api := dir.App(entraemu.APIClientID)
	api.Scopes = append(api.Scopes, entraemu.Scope{Value: "Notes.Read", ID: "0d5e7c41-7b4f-4c1e-9a55-2f1f0c3b9a10", Type: "User"})
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	b := ts.NewBrowser("reader@dev.test", "dev-password")

	// Sign in, then one consent page listing both resources' permissions
	// (the SPA has admin consent for the API only: Graph needs the user's).
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{"client_id": {entraemu.SPAClientID}, "redirect_uri": {spaRedirect}, "response_type": {"code"},
		"scope": {apiScope + " " + graphScope + " openid profile offline_access"}, "nonce": {"n1"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"}}
	_, page := authorizeRaw(t, b, ts, q)
	resp, err := b.Client.PostForm(ts.Authority+"/login", url.Values{"flow": {hidden(page, "flow")}, "csrf": {hidden(page, "csrf")},
		"username": {"reader@dev.test"}, "password": {"dev-password"}})
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	list := page[strings.Index(page, `<ul id="scopes">`)+1:]
	list = list[:strings.Index(list, "</ul>")]
	if resp.StatusCode != 200 || !strings.Contains(list, "(Demo API: access_as_user)") || !strings.Contains(list, "(Graph-compatible upstream: User.Read)") {
		t.Fatalf("consent page: %d %s", resp.StatusCode, list)
	}
	resp, err = b.Client.PostForm(ts.Authority+"/consent", url.Values{"flow": {hidden(page, "flow")}, "csrf": {hidden(page, "csrf")}, "action": {"accept"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	first := entraemu.AuthorizeResult{Code: loc.Query().Get("code"), CodeVerifier: verifier}
	if resp.StatusCode != 302 || first.Code == "" {
		t.Fatalf("after consent: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// Redeemed for the API (the token request names one resource).
	st, tok := b.Redeem(t, spaRequest(), first, nil)
	if st != 200 {
		t.Fatalf("redeem for the API: %d %v", st, tok)
	}
	if at := claimsOf(t, tok["access_token"].(string)); at["aud"] != entraemu.APIClientID || at["scp"] != "access_as_user" {
		t.Fatalf("API token: %v", at)
	}
	if id := claimsOf(t, tok["id_token"].(string)); id["nonce"] != "n1" || id["aud"] != entraemu.SPAClientID || tok["client_info"] == "" {
		t.Fatalf("id token / client_info: %v %v", id, tok["client_info"])
	}
	// The refresh token serves Graph without a consent prompt.
	st, g := spaRefresh(t, ts, tok["refresh_token"].(string), graphScope)
	if st != 200 {
		t.Fatalf("refresh for Graph: %d %v", st, g)
	}
	if at := claimsOf(t, g["access_token"].(string)); at["aud"] != entraemu.GraphAppIDURI || at["scp"] != "User.Read" || at["ver"] != "1.0" {
		t.Fatalf("Graph token: %v", at)
	}
	// A new authorize for Graph alone shows no page (consent and SSO).
	if r := b.Authorize(t, entraemu.AuthorizeRequest{ClientID: entraemu.SPAClientID, RedirectURI: spaRedirect, Scopes: []string{graphScope}}); len(r.Pages) != 0 || r.Code == "" {
		t.Fatalf("Graph authorize after consent: pages %v %v", r.Pages, r.Params)
	}

	// Each redemption below gets a fresh code for both resources (no page now).
	for _, c := range []struct {
		name     string
		authz    []string // resource scopes of the authorize request (default: API, Graph)
		scope    string   // token request's scope
		status   int
		aud      string
		err      string
		aadsts   int
		wantEcho string
	}{
		{name: "Graph from the same code", scope: graphScope, status: 200, aud: entraemu.GraphAppIDURI, wantEcho: graphScope},
		{name: "OpenID only: first resource", scope: "openid profile offline_access", status: 200, aud: entraemu.APIClientID, wantEcho: apiScope},
		{name: "OpenID only, Graph first", authz: []string{graphScope, apiScope}, scope: "openid profile offline_access", status: 200, aud: entraemu.GraphAppIDURI},
		{name: ".default of a resource in the code", scope: entraemu.APIAppIDURI + "/.default", status: 200, aud: entraemu.APIClientID},
		{name: "both resources", scope: apiScope + " " + graphScope, status: 400, err: "invalid_scope", aadsts: 28000},
		{name: "resource not in the code", authz: []string{apiScope}, scope: graphScope, status: 400, err: "invalid_scope", aadsts: 70011},
		{name: "scope the code does not grant", scope: entraemu.APIAppIDURI + "/Notes.Read", status: 400, err: "invalid_scope", aadsts: 70011},
		{name: "unknown resource", scope: "api://nope/x", status: 400, err: "invalid_resource", aadsts: 500011},
	} {
		authz := c.authz
		if authz == nil {
			authz = []string{apiScope, graphScope}
		}
		req := entraemu.AuthorizeRequest{ClientID: entraemu.SPAClientID, RedirectURI: spaRedirect, Scopes: authz}
		res := b.Authorize(t, req)
		if len(res.Pages) != 0 || res.Code == "" {
			t.Fatalf("%s: authorize pages %v %v", c.name, res.Pages, res.Params)
		}
		st, body := b.Redeem(t, req, res, url.Values{"scope": {c.scope}})
		if st != c.status {
			t.Errorf("%s: %d %v", c.name, st, body)
			continue
		}
		if c.status != 200 {
			if body["error"] != c.err || !hasCode(body, c.aadsts) {
				t.Errorf("%s: want %s AADSTS%d: %v", c.name, c.err, c.aadsts, body)
			}
			continue
		}
		if at := claimsOf(t, body["access_token"].(string)); at["aud"] != c.aud {
			t.Errorf("%s: aud %v, want %s", c.name, at["aud"], c.aud)
		}
		if c.wantEcho != "" && body["scope"] != c.wantEcho {
			t.Errorf("%s: scope %q, want %q", c.name, body["scope"], c.wantEcho)
		}
		if body["id_token"] == nil || body["refresh_token"] == nil {
			t.Errorf("%s: id/refresh token missing: %v", c.name, body)
		}
	}
}

// Conditional access at authorize looks at every requested resource: the
// MFA user steps up when Graph (policy) rides along with the API (none),
// and the code's tokens then satisfy the policy for either resource.
func TestConsentUpFrontConditionalAccess(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)

	// The API alone: no step-up; Graph through that refresh token is refused.
	api := ts.NewBrowser("mfa@dev.test", "dev-password")
	res := api.Authorize(t, spaRequest())
	if !slices.Equal(res.Pages, []string{"Sign in"}) {
		t.Fatalf("API alone pages %v", res.Pages)
	}
	st, tok := api.Redeem(t, spaRequest(), res, nil)
	if st != 200 {
		t.Fatalf("redeem: %v", tok)
	}

	both := entraemu.AuthorizeRequest{ClientID: entraemu.SPAClientID, RedirectURI: spaRedirect, Scopes: []string{apiScope, graphScope}}
	b := ts.NewBrowser("mfa@dev.test", "dev-password")
	res = b.Authorize(t, both)
	if !slices.Equal(res.Pages, []string{"Sign in", "Permissions requested", "Approve sign-in request"}) || res.Code == "" {
		t.Fatalf("both resources pages %v %v", res.Pages, res.Params)
	}
	// Consent is now on record, but the first session has no MFA: the
	// Graph token is refused with the policy's claims challenge.
	st, g := spaRefresh(t, ts, tok["refresh_token"].(string), graphScope)
	if st != 400 || g["error"] != "interaction_required" || !hasCode(g, 50076) || !strings.Contains(g["claims"].(string), entraemu.MFAPolicyID) {
		t.Fatalf("Graph without MFA: %d %v", st, g)
	}

	st, tok = b.Redeem(t, spaRequest(), res, nil)
	if st != 200 {
		t.Fatalf("redeem after step-up: %v", tok)
	}
	at := claimsOf(t, tok["access_token"].(string))
	if amr, _ := at["amr"].([]any); at["aud"] != entraemu.APIClientID || !slices.Contains(amr, any("mfa")) {
		t.Fatalf("API token after step-up: %v", at)
	}
	st, g = spaRefresh(t, ts, tok["refresh_token"].(string), graphScope)
	if st != 200 {
		t.Fatalf("Graph after step-up: %d %v", st, g)
	}
	if gat := claimsOf(t, g["access_token"].(string)); gat["aud"] != entraemu.GraphAppIDURI {
		t.Fatalf("Graph token: %v", gat)
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Combined consent is for ".default" only (protocol facts §9): the API lists
// the SPA in knownClientApplications, yet consenting to the specific scope
// access_as_user (even with prompt=consent) consents the SPA to the API and
// nothing more, so the API's On-Behalf-Of exchange for Graph still answers
// AADSTS65001. Asking for "api://…/.default" shows the consent page again
// and this time also records the user's consent to the API's own required
// permissions (Graph User.Read): OBO then works, and the .default token
// still carries scp access_as_user (the SPA's requiredResourceAccess).
func TestCombinedConsentNeedsDefault(t *testing.T) {
	t.Parallel()
	dir := entraemu.DefaultDirectory()
	for _, id := range []string{entraemu.SPAClientID, entraemu.APIClientID, entraemu.CLIClientID} {
		dir.App(id).Grants = nil // no admin consent anywhere: only the user's
	}
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	secret := secretOf(t, entraemu.APIClientID)
	obo := func(at string) (int, map[string]any) {
		t.Helper()
		return ts.PostToken(t, oboForm(secret, at))
	}
	// errOf is what a failure message shows of a token response (no token).
	errOf := func(body map[string]any) string {
		return fmt.Sprintf("error=%v suberror=%v codes=%v scope=%v", body["error"], body["suberror"], body["error_codes"], body["scope"])
	}
	consentAndRedeem := func(b *entraemu.Browser, req entraemu.AuthorizeRequest) string {
		t.Helper()
		res := b.Authorize(t, req)
		if !slices.Contains(res.Pages, "Permissions requested") || res.Code == "" {
			t.Fatalf("%v: pages %v params %v", req.Scopes, res.Pages, res.Params)
		}
		st, tok := b.Redeem(t, req, res, nil)
		if st != 200 {
			t.Fatalf("%v: redeem %d %s", req.Scopes, st, errOf(tok))
		}
		at := tok["access_token"].(string)
		if c := claimsOf(t, at); c["aud"] != entraemu.APIClientID || c["scp"] != "access_as_user" {
			t.Fatalf("%v: API token %v", req.Scopes, c)
		}
		return at
	}
	apiDefault := entraemu.APIAppIDURI + "/.default"

	// The specific scope with prompt=consent: what re-consenting to the API
	// alone achieves at Entra. The SPA's token works, OBO does not.
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	at := consentAndRedeem(b, entraemu.AuthorizeRequest{ClientID: entraemu.SPAClientID, RedirectURI: spaRedirect,
		Scopes: []string{apiScope}, Prompt: "consent"})
	if st, body := obo(at); st != 400 || body["error"] != "invalid_grant" || !hasCode(body, 65001) || body["suberror"] != "consent_required" {
		t.Fatalf("OBO after consenting to the specific scope: %d %s", st, errOf(body))
	}

	// ".default" for the API with prompt=consent: combined consent.
	at = consentAndRedeem(b, entraemu.AuthorizeRequest{ClientID: entraemu.SPAClientID, RedirectURI: spaRedirect,
		Scopes: []string{apiDefault}, Prompt: "consent"})
	st, body := obo(at)
	if st != 200 {
		t.Fatalf("OBO after .default consent: %d %s", st, errOf(body))
	}
	if g := claimsOf(t, body["access_token"].(string)); g["aud"] != entraemu.GraphAppIDURI || g["scp"] != "User.Read" {
		t.Fatalf("Graph token: %v", g)
	}

	// ".default" from a client the API does not list as known: consent to
	// the API only, no combined consent.
	cli := ts.NewBrowser("admin@dev.test", "dev-password")
	at = consentAndRedeem(cli, entraemu.AuthorizeRequest{ClientID: entraemu.CLIClientID, RedirectURI: "http://localhost",
		Scopes: []string{apiDefault}, Prompt: "consent"})
	if st, body := obo(at); st != 400 || !hasCode(body, 65001) {
		t.Fatalf("OBO for a client that is not a known client application: %d %s", st, errOf(body))
	}
}
