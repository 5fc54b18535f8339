package entraemu

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// Browser drives the emulator's real authorize pages over HTTP with a
// cookie jar, the way a person in a browser would (for tests). Its SSO
// session persists across Authorize calls.
type Browser struct {
	ts     *TestServer
	Client *http.Client // cookie jar; does not follow redirects
	// Username and Password are typed into the sign-in page when it appears.
	Username, Password string
	// DeclineConsent cancels the consent page instead of accepting it.
	DeclineConsent bool
}

// NewBrowser returns a browser with an empty cookie jar.
func (ts *TestServer) NewBrowser(username, password string) *Browser {
	jar, _ := cookiejar.New(nil)
	c := ts.NewClient()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Browser{ts: ts, Client: c, Username: username, Password: password}
}

// AuthorizeRequest is an authorization request as msal-browser sends it.
type AuthorizeRequest struct {
	ClientID, RedirectURI string
	Scopes                []string // OpenID scopes are added
	Claims                string   // JSON text, e.g. a claims challenge
	Prompt, LoginHint     string
	ResponseMode          string // default "query"
	State, Nonce          string // defaults: random
	CodeVerifier          string // default: random; PKCE S256 is always used unless NoPKCE
	NoPKCE                bool
	ChallengeMethod       string // default "S256"
}

// AuthorizeResult is what came back to the redirect URI.
type AuthorizeResult struct {
	Params       url.Values // code, state, client_info or error, error_description, ...
	Code         string
	CodeVerifier string
	Nonce        string
	Pages        []string // titles of the pages passed through
}

var (
	formActionRE = regexp.MustCompile(`<form method="post" action="([^"]+)">`)
	hiddenRE     = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	titleRE      = regexp.MustCompile(`<h1>([^<]*)</h1>`)
	otcRE        = regexp.MustCompile(`<code class="otc" id="otc">(\d+)</code>`)
	errRE        = regexp.MustCompile(`<p class="err" role="alert" id="error">([^<]*)</p>`)
)

// Authorize runs the request through sign-in, consent and MFA pages until
// the emulator redirects to the redirect URI. A page it cannot get past
// (e.g. a wrong password shown again) fails with its error text.
func (b *Browser) Authorize(t testing.TB, req AuthorizeRequest) AuthorizeResult {
	t.Helper()
	res, err := b.authorize(req)
	if err != nil {
		t.Fatalf("entraemu: authorize: %v", err)
	}
	return res
}

func (b *Browser) authorize(req AuthorizeRequest) (AuthorizeResult, error) {
	res := AuthorizeResult{Nonce: req.Nonce, CodeVerifier: req.CodeVerifier}
	if res.Nonce == "" {
		res.Nonce = newGUID()
	}
	if req.State == "" {
		req.State = randomB64(12)
	}
	q := url.Values{
		"client_id": {req.ClientID}, "redirect_uri": {req.RedirectURI}, "response_type": {"code"},
		"scope": {strings.Join(append(req.Scopes, "openid", "profile", "offline_access"), " ")},
		"state": {req.State}, "nonce": {res.Nonce}, "client_info": {"1"},
		"response_mode": {req.ResponseMode},
	}
	if req.ResponseMode == "" {
		q.Set("response_mode", "query")
	}
	if !req.NoPKCE {
		if res.CodeVerifier == "" {
			res.CodeVerifier = randomB64(32)
		}
		sum := sha256.Sum256([]byte(res.CodeVerifier))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		q.Set("code_challenge_method", "S256")
		if req.ChallengeMethod != "" {
			q.Set("code_challenge_method", req.ChallengeMethod)
			if req.ChallengeMethod == "plain" {
				q.Set("code_challenge", res.CodeVerifier)
			}
		}
	}
	for k, v := range map[string]string{"claims": req.Claims, "prompt": req.Prompt, "login_hint": req.LoginHint} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return res, b.follow(b.ts.Authority+"/oauth2/v2.0/authorize?"+q.Encode(), req.RedirectURI, &res)
}

// Follow drives any authorize URL (e.g. one built by MSAL's AuthCodeURL)
// through the pages until the emulator returns to redirectURI (by redirect
// or form_post).
func (b *Browser) Follow(t testing.TB, authorizeURL, redirectURI string) AuthorizeResult {
	t.Helper()
	var res AuthorizeResult
	if err := b.follow(authorizeURL, redirectURI, &res); err != nil {
		t.Fatalf("entraemu: authorize: %v", err)
	}
	return res
}

func (b *Browser) follow(authorizeURL, redirectURI string, res *AuthorizeResult) error {
	resp, err := b.Client.Get(authorizeURL)
	for step := 0; step < 8; step++ {
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusFound && strings.HasPrefix(loc, redirectURI) {
			return res.parseRedirect(loc)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, pageError(body))
		}
		page := string(body)
		if m := formActionRE.FindStringSubmatch(page); m != nil && html.UnescapeString(m[1]) == redirectURI {
			res.Params = url.Values{} // response_mode=form_post
			for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
				res.Params.Set(h[1], html.UnescapeString(h[2]))
			}
			res.Code = res.Params.Get("code")
			return nil
		}
		title := ""
		if m := titleRE.FindStringSubmatch(page); m != nil {
			title = html.UnescapeString(m[1])
		}
		res.Pages = append(res.Pages, title)
		form, action, ferr := b.nextForm(page, title)
		if ferr != nil {
			return ferr
		}
		resp, err = b.Client.PostForm(b.ts.URL+action, form)
	}
	return errors.New("too many pages")
}

func (r *AuthorizeResult) parseRedirect(loc string) error {
	u, err := url.Parse(loc)
	if err != nil {
		return err
	}
	r.Params = u.Query()
	if u.Fragment != "" {
		if r.Params, err = url.ParseQuery(u.Fragment); err != nil {
			return err
		}
	}
	r.Code = r.Params.Get("code")
	return nil
}

// nextForm fills the page's form.
func (b *Browser) nextForm(page, title string) (url.Values, string, error) {
	m := formActionRE.FindStringSubmatch(page)
	if m == nil {
		return nil, "", fmt.Errorf("page %q has no form: %s", title, pageError([]byte(page)))
	}
	form := url.Values{}
	for _, h := range hiddenRE.FindAllStringSubmatch(page, -1) {
		form.Set(h[1], html.UnescapeString(h[2]))
	}
	action := html.UnescapeString(m[1])
	switch {
	case strings.HasSuffix(action, "/login"):
		if e := errRE.FindStringSubmatch(page); e != nil {
			return nil, "", fmt.Errorf("sign-in refused: %s", html.UnescapeString(e[1]))
		}
		form.Set("username", b.Username)
		form.Set("password", b.Password)
		form.Set("action", "signin")
	case strings.HasSuffix(action, "/consent"):
		form.Set("action", "accept")
		if b.DeclineConsent {
			form.Set("action", "cancel")
		}
	case strings.HasSuffix(action, "/mfa"):
		c := otcRE.FindStringSubmatch(page)
		if c == nil {
			return nil, "", errors.New("MFA page shows no code")
		}
		form.Set("otc", c[1])
		form.Set("action", "verify")
	default:
		return nil, "", fmt.Errorf("unknown form action %q", action)
	}
	return form, action, nil
}

func pageError(body []byte) string {
	if m := errRE.FindSubmatch(body); m != nil {
		return html.UnescapeString(string(m[1]))
	}
	return strings.TrimSpace(string(body[:min(len(body), 300)]))
}

// Redeem posts the authorization_code grant for res (with the Origin
// header a browser sends when the redirect URI is a SPA one). It returns
// the status and the decoded body.
func (b *Browser) Redeem(t testing.TB, req AuthorizeRequest, res AuthorizeResult, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{
		"grant_type": {GrantAuthorizationCode}, "client_id": {req.ClientID}, "code": {res.Code},
		"redirect_uri": {req.RedirectURI}, "code_verifier": {res.CodeVerifier}, "client_info": {"1"},
		"scope": {strings.Join(append(req.Scopes, "openid", "profile", "offline_access"), " ")},
	}
	if app := b.ts.dir.App(req.ClientID); app != nil && app.redirectKind(req.RedirectURI) == redirectWeb && len(app.Secrets) > 0 {
		form.Set("client_secret", app.Secrets[0])
	}
	for k, v := range extra {
		form[k] = v
	}
	hr, _ := http.NewRequest(http.MethodPost, b.ts.TokenEndpoint(), strings.NewReader(form.Encode()))
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded;charset=utf-8")
	if app := b.ts.dir.App(req.ClientID); app != nil && app.redirectKind(req.RedirectURI) == redirectSPA {
		hr.Header.Set("Origin", originOf(req.RedirectURI))
	}
	resp, err := b.Client.Do(hr)
	if err != nil {
		t.Fatalf("entraemu: redeem: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("entraemu: redeem: %v", err)
	}
	return resp.StatusCode, m
}

// AuthCodeToken signs username in through the real authorize pages (sign-in,
// consent, MFA step-up when claims or policy require it) with PKCE, then
// redeems the code. claims is JSON text or "" (e.g. the claims challenge
// of an AADSTS50076 error, to step up).
func (ts *TestServer) AuthCodeToken(t testing.TB, clientID, redirectURI, username, password string, scopes []string, claims string) TokenResponse {
	t.Helper()
	b := ts.NewBrowser(username, password)
	req := AuthorizeRequest{ClientID: clientID, RedirectURI: redirectURI, Scopes: scopes, Claims: claims}
	res := b.Authorize(t, req)
	if res.Code == "" {
		t.Fatalf("entraemu: authorize returned no code: %v", res.Params)
	}
	status, body := b.Redeem(t, req, res, nil)
	if status != http.StatusOK {
		t.Fatalf("entraemu: code redemption: %d %v", status, body)
	}
	raw, _ := json.Marshal(body)
	var tr TokenResponse
	_ = json.Unmarshal(raw, &tr)
	return tr
}
