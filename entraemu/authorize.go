package entraemu

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// session is an SSO session behind the session cookie.
type session struct {
	who     principal
	expires time.Time
}

const (
	sessionCookie   = "devidp_session"
	csrfCookie      = "devidp_csrf_" // + flow id: parallel sign-ins in one browser keep their own token
	sessionLifetime = 12 * time.Hour
	flowLifetime    = 15 * time.Minute
	maxLoginTries   = 10
)

// authorizeParams is a validated authorize request.
type authorizeParams struct {
	tenant       string
	client       *App
	redirectURI  string
	kind         redirectKind
	responseMode string // query, fragment, form_post
	state        string
	nonce        string
	scope        string
	qs           []*scopeRequest // one per resource (consent up front may name several)
	claims       string
	rc           requestedClaims
	challenge    string
	prompt       string
	loginHint    string
	clientInfo   bool
}

// authzFlow is an interactive sign-in in progress (sign-in, consent and MFA
// pages). Its forms carry the flow id and a CSRF token that must match the
// CSRF cookie.
type authzFlow struct {
	id, csrf  string
	p         authorizeParams
	who       principal // set once the user signed in during this flow
	consented bool
	mfaCode   string
	tries     int
	expires   time.Time
}

// handleAuthorize is /{tenant}/oauth2/v2.0/authorize: errors before the
// client and redirect URI are known are shown on a page, later ones are
// sent to the redirect URI; then sign-in, consent and MFA pages as needed.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.errorPage(w, r, http.StatusMethodNotAllowed, invalidRequest(900561, "The endpoint only accepts GET and POST requests."))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, malformed("the request could not be parsed"))
		return
	}
	p, e := s.parseAuthorize(r)
	if e != nil {
		s.errorPage(w, r, http.StatusBadRequest, e)
		return
	}
	if e := s.validateAuthorize(r, &p); e != nil {
		s.redirectError(w, r, p, e)
		return
	}
	f := &authzFlow{p: p}
	if sess := s.sessionOf(r); sess != nil && p.prompt != "login" && p.prompt != "select_account" &&
		(p.loginHint == "" || strings.EqualFold(p.loginHint, sess.who.user.UPN)) {
		f.who = sess.who
	}
	s.advance(w, r, f)
}

// parseAuthorize validates what must be right before anything may be
// redirected: tenant, client and redirect URI (else an error page).
func (s *Server) parseAuthorize(r *http.Request) (authorizeParams, *oauthError) {
	var p authorizeParams
	for k, v := range r.Form {
		if len(v) > 1 {
			return p, malformed("parameter '" + truncate(k, 64) + "' is repeated")
		}
	}
	seg, _, e := s.tenantOf(r)
	if e != nil {
		return p, e
	}
	p.tenant = seg
	id := r.Form.Get("client_id")
	if id == "" {
		return p, invalidRequest(900144, "The request body must contain the following parameter: 'client_id'.")
	}
	if p.client = s.dir.App(id); p.client == nil {
		return p, newErr(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", truncate(id, 64), s.dir.Tenant.DisplayName)
	}
	p.redirectURI = r.Form.Get("redirect_uri")
	if p.redirectURI == "" {
		return p, invalidRequest(900144, "The request body must contain the following parameter: 'redirect_uri'.")
	}
	if p.kind = p.client.redirectKind(p.redirectURI); p.kind == redirectNone {
		return p, invalidRequest(50011, "The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.", truncate(p.redirectURI, 256), p.client.AppID)
	}
	p.responseMode = r.Form.Get("response_mode")
	switch p.responseMode {
	case "":
		p.responseMode = "query"
	case "query", "fragment", "form_post":
	default:
		p.responseMode = "query"
		return p, nil // reported by validateAuthorize through the redirect
	}
	return p, nil
}

// validateAuthorize checks the rest; errors are redirected.
func (s *Server) validateAuthorize(r *http.Request, p *authorizeParams) *oauthError {
	f := r.Form
	p.state, p.nonce, p.claims = f.Get("state"), f.Get("nonce"), f.Get("claims")
	p.prompt, p.loginHint, p.clientInfo = f.Get("prompt"), f.Get("login_hint"), f.Get("client_info") == "1"
	if rm := f.Get("response_mode"); rm != "" && rm != p.responseMode {
		return invalidRequest(9002313, "Invalid request. Request is malformed or invalid. [Reason - response_mode '%s' is not supported.]", truncate(rm, 32))
	}
	if rt := f.Get("response_type"); rt != "code" {
		if rt == "" {
			return invalidRequest(900144, "The request body must contain the following parameter: 'response_type'.")
		}
		return newErr(400, "unsupported_response_type", 700054, "response_type '%s' is not enabled for the application.", truncate(rt, 32))
	}
	switch p.prompt {
	case "", "none", "login", "consent", "select_account":
	default:
		return invalidRequest(90023, "Invalid prompt value '%s'. Use none, login, consent or select_account.", truncate(p.prompt, 32))
	}
	p.challenge = f.Get("code_challenge")
	method := f.Get("code_challenge_method")
	publicClient := p.kind == redirectSPA || p.kind == redirectPublic || !p.client.confidential()
	switch {
	case p.challenge == "" && p.kind == redirectSPA:
		return invalidRequest(9002325, "Proof Key for Code Exchange is required for cross-origin authorization code redemption.")
	case p.challenge == "" && publicClient:
		return invalidRequest(9002325, "Proof Key for Code Exchange is required for public clients.")
	case p.challenge != "" && method != "S256":
		return invalidRequest(501491, "The code_challenge_method '%s' is not supported: use S256.", truncate(method, 16))
	case p.challenge != "" && (len(p.challenge) != 43 || decodeThumbprint(p.challenge) == nil):
		return invalidRequest(501491, "The code_challenge is not a base64url SHA-256 value.")
	}
	qs, e := s.parseScopeSet(f.Get("scope"))
	if e != nil {
		return e
	}
	p.scope, p.qs = f.Get("scope"), qs
	if p.rc, e = parseClaims(p.claims); e != nil {
		return e
	}
	return nil
}

// advance moves a flow to its next page, or finishes it with a code.
func (s *Server) advance(w http.ResponseWriter, r *http.Request, f *authzFlow) {
	p := f.p
	if f.who.user == nil {
		if p.prompt == "none" {
			s.redirectError(w, r, p, newErr(400, "login_required", 50058, "A silent sign-in request was sent but no user is signed in."))
			return
		}
		s.showPage(w, r, f, pageLogin, "")
		return
	}
	needConsent := p.prompt == "consent" && !f.consented
	for _, q := range p.qs {
		if _, e := s.grantDelegated(p.client, f.who.user, q); e != nil {
			needConsent = true
		}
	}
	if needConsent {
		if p.prompt == "none" {
			e := consentRequired(p.client)
			e.Code, e.Suberror = "consent_required", ""
			s.redirectError(w, r, p, e)
			return
		}
		if !f.consented {
			s.showPage(w, r, f, pageConsent, "")
			return
		}
	}
	if s.needsMFA(f) {
		if p.prompt == "none" {
			res, pol := s.caPolicyAny(f.who.user, p.qs)
			e := errorForCode(50076, res.AppID, "")
			if pol != nil {
				e.Claims = mfaChallenge(pol.ID)
			}
			s.redirectError(w, r, p, e)
			return
		}
		if f.mfaCode == "" {
			f.mfaCode = oneTimeCode()
		}
		s.showPage(w, r, f, pageMFA, "")
		return
	}
	s.finish(w, r, f)
}

// needsMFA: the request asks for a CA policy (capolids) or auth context
// (acrs), or a policy requires MFA for any requested resource, and the user
// has not done MFA in this session.
func (s *Server) needsMFA(f *authzFlow) bool {
	if f.who.hasMFA() {
		return false
	}
	_, pol := s.caPolicyAny(f.who.user, f.p.qs)
	return len(f.p.rc.capolids) > 0 || len(f.p.rc.acrs) > 0 || pol != nil
}

func oneTimeCode() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%06d", binary.BigEndian.Uint32(b[:])%1_000_000)
}

// finish issues the code, sets the SSO session and redirects.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, f *authzFlow) {
	p := f.p
	s.dropFlow(f)
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, hashKey(c.Value))
		s.mu.Unlock()
	}
	s.startSession(w, f.who)
	code := s.issueCode(&authCode{
		clientID: p.client.AppID, redirectURI: p.redirectURI, kind: p.kind, challenge: p.challenge,
		nonce: p.nonce, scope: p.scope, claims: p.claims, who: f.who,
	})
	v := url.Values{"code": {code}}
	if p.state != "" {
		v.Set("state", p.state)
	}
	if p.clientInfo {
		v.Set("client_info", s.clientInfo(f.who.user))
	}
	v.Set("session_state", f.who.sid)
	s.log.Info("authorization code issued", "client", p.client.AppID, "user_oid", f.who.user.OID)
	s.deliver(w, r, p, v)
}

// redirectError sends an error to the redirect URI like Entra.
func (s *Server) redirectError(w http.ResponseWriter, r *http.Request, p authorizeParams, e *oauthError) {
	b := s.errorBody(r, e)
	v := url.Values{"error": {b.Error}, "error_description": {b.ErrorDescription}, "error_uri": {b.ErrorURI},
		"trace_id": {b.TraceID}, "correlation_id": {b.CorrelationID}, "timestamp": {b.Timestamp}}
	if p.state != "" {
		v.Set("state", p.state)
	}
	if e.Suberror != "" {
		v.Set("suberror", e.Suberror)
	}
	if e.Claims != "" {
		v.Set("claims", e.Claims)
	}
	s.log.Info("authorize error", "error", e.Code, "aadsts", e.AADSTS, "client", p.client.AppID)
	s.deliver(w, r, p, v)
}

// deliver returns parameters to the redirect URI in the response mode.
func (s *Server) deliver(w http.ResponseWriter, r *http.Request, p authorizeParams, v url.Values) {
	switch p.responseMode {
	case "form_post":
		s.formPost(w, p.redirectURI, v)
	case "fragment":
		u, _ := url.Parse(p.redirectURI)
		u.Fragment = ""
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.String()+"#"+v.Encode(), http.StatusFound)
	default:
		u, _ := url.Parse(p.redirectURI)
		q := u.Query()
		for k, vals := range v {
			q[k] = vals
		}
		u.RawQuery = q.Encode()
		w.Header().Set("Cache-Control", "no-store")
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
}

// sessionOf returns the caller's live SSO session.
func (s *Server) sessionOf(r *http.Request) *session {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 256 {
		return nil
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[hashKey(c.Value)]
	if ss == nil || now.After(ss.expires) {
		return nil
	}
	return ss
}

func (s *Server) startSession(w http.ResponseWriter, who principal) {
	v := randomB64(32)
	now := s.now()
	s.mu.Lock()
	s.purgeLocked(now)
	if len(s.sessions) < maxStoreEntries {
		s.sessions[hashKey(v)] = &session{who: who, expires: now.Add(sessionLifetime)}
	}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteNoneMode, MaxAge: int(sessionLifetime / time.Second)})
}

// saveFlow stores a flow for its next form post.
func (s *Server) saveFlow(f *authzFlow) {
	if f.id == "" {
		f.id, f.csrf = randomB64(24), randomB64(24)
	}
	now := s.now()
	f.expires = now.Add(flowLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, x := range s.flows {
		if now.After(x.expires) {
			delete(s.flows, k)
		}
	}
	if len(s.flows) < maxStoreEntries {
		s.flows[f.id] = f
	}
}

// flowOf finds the flow a form post belongs to and checks its CSRF token
// against the form field and the cookie.
func (s *Server) flowOf(r *http.Request) (*authzFlow, *oauthError) {
	if err := r.ParseForm(); err != nil {
		return nil, malformed("the form could not be parsed")
	}
	id, token := r.PostForm.Get("flow"), r.PostForm.Get("csrf")
	c, err := r.Cookie(csrfCookie + cookieSafe(id))
	s.mu.Lock()
	f := s.flows[id]
	s.mu.Unlock()
	if f == nil || s.now().After(f.expires) {
		return nil, invalidRequest(50058, "The sign-in session has expired or is unknown. Start the sign-in again from the application.")
	}
	if err != nil || subtle.ConstantTimeCompare([]byte(token), []byte(f.csrf)) != 1 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(f.csrf)) != 1 {
		return nil, invalidRequest(90014, "The request is not valid: the form's CSRF token does not match. Start the sign-in again from the application.")
	}
	// Take the flow out while this request owns it (a double submit finds
	// nothing); showPage puts it back for the next form.
	s.mu.Lock()
	owned := s.flows[id] == f
	delete(s.flows, id)
	s.mu.Unlock()
	if !owned {
		return nil, invalidRequest(50058, "The sign-in session has expired or is unknown. Start the sign-in again from the application.")
	}
	return f, nil
}

// cookieSafe keeps a flow id usable in a cookie name (ids are base64url).
func cookieSafe(id string) string {
	if len(id) > 64 || strings.ContainsFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return "invalid"
	}
	return id
}

func (s *Server) dropFlow(f *authzFlow) {
	s.mu.Lock()
	delete(s.flows, f.id)
	s.mu.Unlock()
}

// handleLogin processes the sign-in form.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	f, e := s.flowOf(r)
	if e != nil {
		s.errorPage(w, r, http.StatusBadRequest, e)
		return
	}
	if r.PostForm.Get("action") == "cancel" {
		s.dropFlow(f)
		s.redirectError(w, r, f.p, newErr(400, "access_denied", 50140, "The user canceled the sign-in."))
		return
	}
	f.tries++
	if f.tries > maxLoginTries {
		s.dropFlow(f)
		s.errorPage(w, r, http.StatusBadRequest, invalidGrant(50053, "Your account is locked because you've tried to sign in too many times with an incorrect user ID or password."))
		return
	}
	user, e := s.checkPassword(strings.TrimSpace(r.PostForm.Get("username")), r.PostForm.Get("password"))
	if e != nil {
		msg := "Your account or password is incorrect. (AADSTS50126)"
		if e.AADSTS == 50034 {
			msg = "We couldn't find an account with that username. (AADSTS50034)"
		}
		s.showPage(w, r, f, pageLogin, msg)
		return
	}
	f.who = principal{user: user, amr: []string{"pwd"}, authTime: s.now(), sid: newGUID()}
	s.advance(w, r, f)
}

// handleConsent processes the consent page: accept records the user's
// consent (and, for a known client asking for ".default", consent to what
// the resource itself needs downstream: combined consent).
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	f, e := s.flowOf(r)
	if e != nil {
		s.errorPage(w, r, http.StatusBadRequest, e)
		return
	}
	if f.who.user == nil {
		s.showPage(w, r, f, pageLogin, "")
		return
	}
	if r.PostForm.Get("action") != "accept" {
		s.dropFlow(f)
		s.redirectError(w, r, f.p, newErr(400, "access_denied", 65004, "User declined to consent to access the app."))
		return
	}
	if e := s.recordConsent(f.p.client, f.who.user, f.p.qs); e != nil {
		s.dropFlow(f)
		s.redirectError(w, r, f.p, e)
		return
	}
	f.consented = true
	s.advance(w, r, f)
}

// recordConsent records the user's consent to every requested resource, or
// none of them when one needs an administrator.
//
// Combined consent (the resource lists the client in knownClientApplications)
// also records the user's consent to what the resource itself needs
// downstream (its requiredResourceAccess), but only when the client asked
// for the resource's ".default": Entra extends consent that way only for
// ".default" (protocol facts §9). A request for a specific scope, even with
// prompt=consent, consents the client to that scope alone, so the resource's
// On-Behalf-Of exchange keeps failing with AADSTS65001.
func (s *Server) recordConsent(client *App, user *User, qs []*scopeRequest) *oauthError {
	scopes := make([][]string, len(qs))
	for i, q := range qs {
		scopes[i] = consentScopes(client, q)
		for _, v := range scopes[i] {
			if sc, ok := q.resource.scope(v); ok && sc.Type == "Admin" && !s.consentedScopes(client, user, q.resource)[sc.Value] {
				return invalidGrant(90094, "The grant requires admin permission: scope '%s' of '%s' needs an administrator's consent.", sc.Value, q.resource.AppID)
			}
		}
	}
	for i, q := range qs {
		res := q.resource
		s.addConsent(user, client, res, scopes[i])
		if q.isDefault() && slices.ContainsFunc(res.KnownClientApplications, func(k string) bool { return strings.EqualFold(k, client.AppID) }) {
			for _, ra := range res.RequiredResourceAccess {
				if down := s.dir.App(ra.ResourceAppID); down != nil {
					s.addConsent(user, res, down, ra.Scopes)
				}
			}
		}
	}
	return nil
}

// consentScopes is what consenting to q grants: the requested scopes, or
// for ".default" the client's required permissions on the resource.
func consentScopes(client *App, q *scopeRequest) []string {
	if !q.isDefault() {
		return q.values
	}
	var out []string
	for _, ra := range client.RequiredResourceAccess {
		if strings.EqualFold(ra.ResourceAppID, q.resource.AppID) {
			out = append(out, ra.Scopes...)
		}
	}
	return out
}

func (s *Server) addConsent(user *User, client, res *App, scopes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := consentKey(user, client, res)
	if s.consents[k] == nil {
		s.consents[k] = map[string]bool{}
	}
	for _, v := range scopes {
		s.consents[k][canonicalScope(res, v)] = true
	}
}

// handleMFA processes the step-up page: the one-time code shown there.
func (s *Server) handleMFA(w http.ResponseWriter, r *http.Request) {
	f, e := s.flowOf(r)
	if e != nil {
		s.errorPage(w, r, http.StatusBadRequest, e)
		return
	}
	if f.who.user == nil || f.mfaCode == "" {
		s.advance(w, r, f)
		return
	}
	if r.PostForm.Get("action") == "cancel" {
		s.dropFlow(f)
		s.redirectError(w, r, f.p, newErr(400, "access_denied", 500121, "Authentication failed during strong authentication request."))
		return
	}
	got := strings.TrimSpace(r.PostForm.Get("otc"))
	if subtle.ConstantTimeCompare([]byte(got), []byte(f.mfaCode)) != 1 {
		f.tries++
		if f.tries > maxLoginTries {
			s.dropFlow(f)
			s.redirectError(w, r, f.p, newErr(400, "access_denied", 500121, "Authentication failed during strong authentication request."))
			return
		}
		s.showPage(w, r, f, pageMFA, "That code didn't work. Check the code and try again. (AADSTS50012)")
		return
	}
	f.who.amr = []string{"pwd", "mfa"}
	f.mfaCode = ""
	s.advance(w, r, f)
}

// handleLogout ends the SSO session and returns to a registered
// post_logout_redirect_uri, or shows a signed-out page.
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		s.errorPage(w, r, http.StatusMethodNotAllowed, invalidRequest(900561, "The endpoint only accepts GET and POST requests."))
		return
	}
	if _, _, e := s.tenantOf(r); e != nil {
		s.errorPage(w, r, http.StatusBadRequest, e)
		return
	}
	_ = r.ParseForm()
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.mu.Lock()
		delete(s.sessions, hashKey(c.Value))
		s.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode, MaxAge: -1})
	target := r.Form.Get("post_logout_redirect_uri")
	if target != "" && s.logoutURIAllowed(r.Form.Get("client_id"), target) {
		u, _ := url.Parse(target)
		if st := r.Form.Get("state"); st != "" {
			q := u.Query()
			q.Set("state", st)
			u.RawQuery = q.Encode()
		}
		http.Redirect(w, r, u.String(), http.StatusFound)
		return
	}
	s.renderPage(w, http.StatusOK, pageData{Title: "You signed out of your account", Message: "It's a good idea to close all browser windows."})
}

// logoutURIAllowed: registered as a post-logout or redirect URI of the
// client (or of any app when no client_id is given).
func (s *Server) logoutURIAllowed(clientID, uri string) bool {
	apps := s.dir.Apps
	if clientID != "" {
		a := s.dir.App(clientID)
		if a == nil {
			return false
		}
		apps = []*App{a}
	}
	for _, a := range apps {
		if slices.Contains(a.PostLogoutRedirectURIs, uri) || a.redirectKind(uri) != redirectNone {
			return true
		}
	}
	return false
}
