package entraemu_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/entra-go/secure-api/entraemu"
)

const spaRedirect = "http://localhost:30662/redirect.html"

func spaRequest() entraemu.AuthorizeRequest {
	return entraemu.AuthorizeRequest{ClientID: entraemu.SPAClientID, RedirectURI: spaRedirect, Scopes: []string{apiScope}, ResponseMode: "fragment"}
}

func TestAuthCodePKCEThroughPages(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	req := spaRequest()
	res := b.Authorize(t, req)
	if res.Code == "" || res.Params.Get("state") == "" || res.Params.Get("client_info") == "" {
		t.Fatalf("authorize response: %v", res.Params)
	}
	if !slices.Equal(res.Pages, []string{"Sign in"}) {
		t.Fatalf("pages = %v (admin consent exists: no consent page expected)", res.Pages)
	}
	ci, _ := base64.RawURLEncoding.DecodeString(res.Params.Get("client_info"))
	if !strings.Contains(string(ci), entraemu.ReaderOID) {
		t.Fatalf("client_info %s", ci)
	}

	// A wrong verifier is refused and burns the code; a reused code is refused.
	status, body := b.Redeem(t, req, res, url.Values{"code_verifier": {"wrong-verifier-wrong-verifier-wrong-verifier"}})
	if status != 400 || body["error"] != "invalid_grant" || !hasCode(body, 501481) {
		t.Fatalf("wrong verifier: %d %v", status, body)
	}
	status, body = b.Redeem(t, req, res, nil)
	if status != 400 || body["error"] != "invalid_grant" || !hasCode(body, 54005) {
		t.Fatalf("reused code: %d %v", status, body)
	}

	// SSO: the second authorize skips the sign-in page.
	res2 := b.Authorize(t, req)
	if len(res2.Pages) != 0 || res2.Code == "" {
		t.Fatalf("SSO pages = %v", res2.Pages)
	}
	status, body = b.Redeem(t, req, res2, nil)
	if status != 200 {
		t.Fatalf("redeem: %d %v", status, body)
	}
	id := claimsOf(t, body["id_token"].(string))
	if id["nonce"] != res2.Nonce || id["aud"] != entraemu.SPAClientID {
		t.Fatalf("id token nonce/aud: %v", id)
	}
	at := claimsOf(t, body["access_token"].(string))
	if at["aud"] != entraemu.APIClientID || at["scp"] != "access_as_user" || at["azp"] != entraemu.SPAClientID || at["azpacr"] != "0" {
		t.Fatalf("access token: %v", at)
	}
	if exp, _ := body["refresh_token_expires_in"].(float64); exp < 86000 || exp > 86400 {
		t.Fatalf("SPA refresh token lifetime %v", body["refresh_token_expires_in"])
	}
	// The SPA refresh token redeems only cross-origin.
	rt := url.Values{"grant_type": {"refresh_token"}, "client_id": {entraemu.SPAClientID}, "refresh_token": {body["refresh_token"].(string)}, "scope": {apiScope + " openid offline_access profile"}}
	st, raw := postRaw(t, ts, rt.Encode(), nil)
	checkEntraError(t, st, raw, 400, "invalid_request", 9002327)

	// SPA code redeemed without Origin: AADSTS9002327.
	res3 := b.Authorize(t, req)
	st, raw = postRaw(t, ts, url.Values{"grant_type": {"authorization_code"}, "client_id": {entraemu.SPAClientID}, "code": {res3.Code},
		"redirect_uri": {spaRedirect}, "code_verifier": {res3.CodeVerifier}, "scope": {apiScope}}.Encode(), nil)
	checkEntraError(t, st, raw, 400, "invalid_request", 9002327)
}

func authorizeRaw(t *testing.T, b *entraemu.Browser, ts *entraemu.TestServer, q url.Values) (*http.Response, string) {
	t.Helper()
	resp, err := b.Client.Get(ts.Authority + "/oauth2/v2.0/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func TestAuthorizeRefusals(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	base := url.Values{"client_id": {entraemu.SPAClientID}, "redirect_uri": {spaRedirect}, "response_type": {"code"},
		"scope": {apiScope + " openid"}, "state": {"s1"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	with := func(k, v string) url.Values {
		q := url.Values{}
		for kk, vv := range base {
			q[kk] = vv
		}
		if v == "" {
			q.Del(k)
		} else {
			q.Set(k, v)
		}
		return q
	}

	// An unregistered redirect URI is shown on a page, never redirected to.
	resp, page := authorizeRaw(t, b, ts, with("redirect_uri", "https://evil.example/cb"))
	if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(page, "AADSTS50011") || !strings.Contains(page, "https://evil.example/cb") {
		t.Fatalf("unregistered redirect: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if strings.Contains(page, "<script") {
		t.Fatal("error page contains script")
	}
	resp, page = authorizeRaw(t, b, ts, with("client_id", "11111111-1111-1111-1111-111111111111"))
	if resp.StatusCode != 400 || !strings.Contains(page, "AADSTS700016") {
		t.Fatalf("unknown client: %d", resp.StatusCode)
	}

	// Errors after client and redirect URI are known go to the redirect URI.
	for name, c := range map[string]struct {
		q    url.Values
		err  string
		code string
	}{
		"no PKCE for SPA":     {with("code_challenge", ""), "invalid_request", "AADSTS9002325"},
		"plain PKCE":          {with("code_challenge_method", "plain"), "invalid_request", "AADSTS501491"},
		"bad scope":           {with("scope", "api://nope/x openid"), "invalid_resource", "AADSTS500011"},
		"bad second resource": {with("scope", apiScope+" api://nope/x openid"), "invalid_resource", "AADSTS500011"},
		"bad second scope":    {with("scope", apiScope+" "+entraemu.GraphAppIDURI+"/Nope.Read openid"), "invalid_scope", "AADSTS70011"},
		".default and more":   {with("scope", graphScope+" "+entraemu.APIAppIDURI+"/.default "+apiScope), "invalid_scope", "AADSTS70011"},
		"token response":      {with("response_type", "token"), "unsupported_response_type", "AADSTS700054"},
		"prompt none":         {with("prompt", "none"), "login_required", "AADSTS50058"},
		"bad prompt":          {with("prompt", "always"), "invalid_request", "AADSTS90023"},
	} {
		resp, _ := authorizeRaw(t, b, ts, c.q)
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != 302 || err != nil || !strings.HasPrefix(loc.String(), spaRedirect) {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("Location"))
			continue
		}
		p := loc.Query()
		if p.Get("error") != c.err || !strings.HasPrefix(p.Get("error_description"), c.code+": ") || p.Get("state") != "s1" {
			t.Errorf("%s: %v", name, p)
		}
	}

	// A wrong password re-shows the sign-in page with Entra's message.
	bad := ts.NewBrowser("reader@dev.test", "wrong")
	resp, page = authorizeRaw(t, bad, ts, base)
	if resp.StatusCode != 200 || !strings.Contains(page, `action="/`+entraemu.DefaultTenantID+`/login"`) {
		t.Fatalf("sign-in page: %d", resp.StatusCode)
	}
	flow := hidden(page, "flow")
	csrf := hidden(page, "csrf")
	post := func(form url.Values) (*http.Response, string) {
		resp, err := bad.Client.PostForm(ts.Authority+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, page = post(url.Values{"flow": {flow}, "csrf": {csrf}, "username": {"reader@dev.test"}, "password": {"wrong"}})
	if resp.StatusCode != 200 || !strings.Contains(page, "Your account or password is incorrect. (AADSTS50126)") || resp.Header.Get("Location") != "" {
		t.Fatalf("wrong password: %d %s", resp.StatusCode, page)
	}
	// A forged form (wrong CSRF token) is refused.
	resp, page = post(url.Values{"flow": {flow}, "csrf": {"forged"}, "username": {"reader@dev.test"}, "password": {"dev-password"}})
	if resp.StatusCode != 400 || !strings.Contains(page, "AADSTS90014") {
		t.Fatalf("forged CSRF: %d", resp.StatusCode)
	}
	// The right password now finishes the flow.
	resp, _ = post(url.Values{"flow": {flow}, "csrf": {csrf}, "username": {"reader@dev.test"}, "password": {"dev-password"}})
	if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "code=") {
		t.Fatalf("after retry: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func hidden(page, name string) string {
	i := strings.Index(page, `name="`+name+`" value="`)
	if i < 0 {
		return ""
	}
	rest := page[i+len(`name="`+name+`" value="`):]
	return rest[:strings.IndexByte(rest, '"')]
}

func TestConsentPageAndCombinedConsent(t *testing.T) {
	t.Parallel()
	dir := entraemu.DefaultDirectory()
	dir.App(entraemu.SPAClientID).Grants = nil // no admin consent: the user must consent
	dir.App(entraemu.APIClientID).Grants = nil
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	// Combined consent (knownClientApplications) happens only for a
	// .default request, as at Entra; consentupfront_test.go covers the
	// specific-scope case.
	req := spaRequest()
	req.Scopes = []string{entraemu.APIAppIDURI + "/.default"}
	declined := ts.NewBrowser("reader@dev.test", "dev-password")
	declined.DeclineConsent = true
	res := declined.Authorize(t, req)
	if res.Params.Get("error") != "access_denied" || !strings.HasPrefix(res.Params.Get("error_description"), "AADSTS65004") {
		t.Fatalf("declined consent: %v", res.Params)
	}
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	res = b.Authorize(t, req)
	if !slices.Equal(res.Pages, []string{"Sign in", "Permissions requested"}) || res.Code == "" {
		t.Fatalf("pages %v params %v", res.Pages, res.Params)
	}
	status, body := b.Redeem(t, req, res, nil)
	if status != 200 {
		t.Fatalf("redeem: %v", body)
	}
	// The SPA is a known client of the API: consenting covered the API's
	// Graph permission too, so OBO works.
	ts.OBOToken(t, entraemu.APIClientID, secretOf(t, entraemu.APIClientID), body["access_token"].(string), graphScope)
	// Once consented, no consent page.
	if res := b.Authorize(t, req); len(res.Pages) != 0 {
		t.Fatalf("pages after consent %v", res.Pages)
	}
	// prompt=none for a user who has not consented → consent_required.
	other := ts.NewBrowser("admin@dev.test", "dev-password")
	other.Authorize(t, entraemu.AuthorizeRequest{ClientID: entraemu.CLIClientID, RedirectURI: "http://localhost", Scopes: []string{apiScope}})
	r2 := other.Authorize(t, entraemu.AuthorizeRequest{ClientID: entraemu.SPAClientID, RedirectURI: spaRedirect, Scopes: []string{apiScope}, Prompt: "none"})
	if r2.Params.Get("error") != "consent_required" {
		t.Fatalf("prompt=none without consent: %v", r2.Params)
	}
}

// The MFA user: OBO fails with a claims challenge; stepping up through the
// authorize page with those claims yields a token that OBO accepts.
func TestMFAStepUpThenOBO(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	secret := secretOf(t, entraemu.APIClientID)
	cred, _ := confidential.NewCredFromSecret(secret)
	cca := newAPIClient(t, ts, cred)

	first := ts.AuthCodeToken(t, entraemu.SPAClientID, spaRedirect, "mfa@dev.test", "dev-password", []string{apiScope}, "")
	_, err := cca.AcquireTokenOnBehalfOf(context.Background(), first.AccessToken, []string{graphScope})
	body := callErrBody(t, err)
	claims, _ := body["claims"].(string)
	if body["error"] != "interaction_required" || claims == "" {
		t.Fatalf("first OBO: %v", body)
	}

	b := ts.NewBrowser("mfa@dev.test", "dev-password")
	req := spaRequest()
	req.Claims = claims
	res := b.Authorize(t, req)
	if !slices.Equal(res.Pages, []string{"Sign in", "Approve sign-in request"}) {
		t.Fatalf("step-up pages %v", res.Pages)
	}
	status, tok := b.Redeem(t, req, res, nil)
	if status != 200 {
		t.Fatalf("redeem: %v", tok)
	}
	at := tok["access_token"].(string)
	if amr := claimsOf(t, at)["amr"].([]any); !slices.Contains(amr, any("mfa")) {
		t.Fatalf("amr after step-up = %v", amr)
	}
	obo, err := cca.AcquireTokenOnBehalfOf(context.Background(), at, []string{graphScope})
	if err != nil {
		t.Fatalf("OBO after step-up: %v", err)
	}
	if amr := claimsOf(t, obo.AccessToken)["amr"].([]any); !slices.Contains(amr, any("mfa")) {
		t.Fatalf("downstream amr = %v", amr)
	}
	// The session now has MFA: a new authorize needs no page at all.
	if r := b.Authorize(t, req); len(r.Pages) != 0 {
		t.Fatalf("pages after step-up %v", r.Pages)
	}
	// The helper does the same in one call.
	stepped := ts.AuthCodeToken(t, entraemu.SPAClientID, spaRedirect, "mfa@dev.test", "dev-password", []string{apiScope}, claims)
	if _, err := cca.AcquireTokenOnBehalfOf(context.Background(), stepped.AccessToken, []string{graphScope}); err != nil {
		t.Fatalf("OBO with AuthCodeToken step-up: %v", err)
	}
}

func TestResponseModesAndLogout(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	req := spaRequest()
	req.ResponseMode = "form_post"
	q := url.Values{"client_id": {req.ClientID}, "redirect_uri": {spaRedirect}, "response_type": {"code"}, "response_mode": {"form_post"},
		"scope": {apiScope + " openid"}, "state": {"st"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	b.Authorize(t, spaRequest()) // sign in (SSO for the next request)
	resp, page := authorizeRaw(t, b, ts, q)
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(page, `action="`+spaRedirect+`"`) || !strings.Contains(page, `name="code"`) ||
		!strings.Contains(page, "<noscript>") || !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(csp, "form-action http://localhost:30662") {
		t.Fatalf("form_post: %d %s\n%s", resp.StatusCode, csp, page)
	}
	q.Set("response_mode", "query")
	resp, _ = authorizeRaw(t, b, ts, q)
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, spaRedirect+"?") || !strings.Contains(loc, "code=") {
		t.Fatalf("query mode: %q", loc)
	}

	// Logout clears the session and returns to a registered URI.
	resp, err := b.Client.Get(ts.Authority + "/oauth2/v2.0/logout?post_logout_redirect_uri=" + url.QueryEscape("http://localhost:30662/") + "&client_id=" + entraemu.SPAClientID + "&state=z")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "http://localhost:30662/?state=z" {
		t.Fatalf("logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	q.Set("prompt", "none")
	resp, _ = authorizeRaw(t, b, ts, q)
	if !strings.Contains(resp.Header.Get("Location"), "error=login_required") {
		t.Fatalf("after logout prompt=none: %q", resp.Header.Get("Location"))
	}
	// An unregistered post-logout URI is not redirected to.
	resp, err = b.Client.Get(ts.Authority + "/oauth2/v2.0/logout?post_logout_redirect_uri=" + url.QueryEscape("https://evil.example/"))
	if err != nil {
		t.Fatal(err)
	}
	page2, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || !strings.Contains(string(page2), "signed out") {
		t.Fatalf("unregistered logout target: %d", resp.StatusCode)
	}
}

func TestCodeBindingAndLifetime(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ts := entraemu.NewTestServer(t, entraemu.WithClock(clock))
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	req := spaRequest()

	// Bound to the client.
	res := b.Authorize(t, req)
	other := req
	other.ClientID = entraemu.CLIClientID
	if st, body := b.Redeem(t, other, res, url.Values{"client_id": {entraemu.CLIClientID}}); st != 400 || !hasCode(body, 70000) {
		t.Fatalf("code for another client: %d %v", st, body)
	}
	// Bound to the redirect URI.
	res = b.Authorize(t, req)
	if st, body := b.Redeem(t, req, res, url.Values{"redirect_uri": {"http://localhost:30662/"}}); st != 400 || !hasCode(body, 70000) {
		t.Fatalf("code with another redirect_uri: %d %v", st, body)
	}
	// Ten minutes.
	res = b.Authorize(t, req)
	mu.Lock()
	now = now.Add(10*time.Minute + time.Second)
	mu.Unlock()
	if st, body := b.Redeem(t, req, res, nil); st != 400 || !hasCode(body, 70008) {
		t.Fatalf("expired code: %d %v", st, body)
	}
	// Without the verifier.
	res = b.Authorize(t, req)
	if st, body := b.Redeem(t, req, res, url.Values{"code_verifier": {""}}); st != 400 || !hasCode(body, 900144) {
		t.Fatalf("no verifier: %d %v", st, body)
	}
	// prompt=login shows the sign-in page despite the session.
	req.Prompt = "login"
	if r := b.Authorize(t, req); !slices.Equal(r.Pages, []string{"Sign in"}) || r.Code == "" {
		t.Fatalf("prompt=login pages %v", r.Pages)
	}
}

// A confidential web app (MSAL Go AuthCodeURL + AcquireTokenByAuthCode,
// response_mode=form_post, client secret at redemption).
func TestMSALConfidentialWebAuthCode(t *testing.T) {
	t.Parallel()
	const redirect = "https://localhost:5050/signin-oidc"
	dir := entraemu.DefaultDirectory()
	dir.App(entraemu.APIClientID).RedirectURIs.Web = []string{redirect}
	ts := entraemu.NewTestServer(t, entraemu.WithDirectory(dir))
	cred, _ := confidential.NewCredFromSecret(secretOf(t, entraemu.APIClientID))
	cca := newAPIClient(t, ts, cred)
	ctx := context.Background()
	u, err := cca.AuthCodeURL(ctx, entraemu.APIClientID, redirect, []string{graphScope})
	if err != nil {
		t.Fatal(err)
	}
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	res := b.Follow(t, u, redirect)
	if res.Code == "" {
		t.Fatalf("no code: %v", res.Params)
	}
	ar, err := cca.AcquireTokenByAuthCode(ctx, res.Code, redirect, []string{graphScope})
	if err != nil {
		t.Fatalf("AcquireTokenByAuthCode: %v", err)
	}
	c := claimsOf(t, ar.AccessToken)
	if c["aud"] != entraemu.GraphAppIDURI || c["appid"] != entraemu.APIClientID || c["appidacr"] != "1" || ar.Account.PreferredUsername != "reader@dev.test" {
		t.Fatalf("claims %v account %+v", c, ar.Account)
	}
	// Without the secret the web code is refused (it is a confidential client).
	res = b.Follow(t, u, redirect)
	st, raw := postRaw(t, ts, url.Values{"grant_type": {"authorization_code"}, "client_id": {entraemu.APIClientID}, "code": {res.Code},
		"redirect_uri": {redirect}, "scope": {graphScope}}.Encode(), nil)
	checkEntraError(t, st, raw, 401, "invalid_client", 7000218)
}

func TestParallelSignInsInOneBrowser(t *testing.T) {
	t.Parallel()
	ts := entraemu.NewTestServer(t)
	b := ts.NewBrowser("reader@dev.test", "dev-password")
	q := url.Values{"client_id": {entraemu.SPAClientID}, "redirect_uri": {spaRedirect}, "response_type": {"code"},
		"scope": {apiScope + " openid"}, "code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}}
	_, first := authorizeRaw(t, b, ts, q)
	_, second := authorizeRaw(t, b, ts, q)
	for i, page := range []string{first, second} {
		resp, err := b.Client.PostForm(ts.Authority+"/login", url.Values{"flow": {hidden(page, "flow")}, "csrf": {hidden(page, "csrf")},
			"username": {"reader@dev.test"}, "password": {"dev-password"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 302 || !strings.Contains(resp.Header.Get("Location"), "code=") {
			t.Fatalf("flow %d: %d %q", i, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
}
