package entraemu

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Grant types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantJWTBearer         = "urn:ietf:params:oauth:grant-type:jwt-bearer"

	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	clockSkew           = 5 * time.Minute
)

// tokenRequest is one parsed token request, handed to a grant handler.
type tokenRequest struct {
	r      *http.Request
	form   url.Values
	tenant string // path segment
	multi  bool   // common / organizations
	v1     bool   // the v1 endpoint (/oauth2/token)
	client *App
	acr    string // "0" public, "1" secret, "2" certificate
	authed bool   // the client authenticated with a credential
}

func (t *tokenRequest) get(name string) string { return t.form.Get(name) }

// grantHandler issues tokens for one grant type.
type grantHandler func(s *Server, t *tokenRequest) (map[string]any, *oauthError)

var grants = map[string]grantHandler{
	GrantPassword:          (*Server).grantPassword,
	GrantClientCredentials: (*Server).grantClientCredentials,
	GrantRefreshToken:      (*Server).grantRefreshToken,
	GrantJWTBearer:         (*Server).grantOnBehalfOf,
	GrantAuthorizationCode: (*Server).grantAuthorizationCode,
}

func (s *Server) handleTokenV2(w http.ResponseWriter, r *http.Request) { s.serveToken(w, r, false) }
func (s *Server) handleTokenV1(w http.ResponseWriter, r *http.Request) { s.serveToken(w, r, true) }

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, v1 bool) {
	resp, e := s.token(r, v1)
	if e != nil {
		s.writeError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) token(r *http.Request, v1 bool) (map[string]any, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, methodNotAllowed("POST, OPTIONS", r)
	}
	seg, multi, e := s.tenantOf(r)
	if e != nil {
		return nil, e
	}
	form, e := readForm(r)
	if e != nil {
		return nil, e
	}
	grant := form.Get("grant_type")
	if grant == "" {
		return nil, missingParam("grant_type")
	}
	h, ok := grants[grant]
	if !ok {
		return nil, newErr(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '%s'.", truncate(grant, 64))
	}
	s.count("token:" + grant)
	t := &tokenRequest{r: r, form: form, tenant: seg, multi: multi, v1: v1}
	if v1 {
		if e := v1Scope(form); e != nil {
			return nil, e
		}
	}
	if e := s.authenticateClient(t); e != nil {
		return nil, e
	}
	resp, e := h(s, t)
	if e != nil {
		return nil, e
	}
	if v1 {
		resp["resource"] = form.Get("resource")
		if n, ok := resp["expires_in"].(int); ok {
			resp["expires_on"] = s.now().Unix() + int64(n)
		}
	}
	s.log.Info("token issued", "grant", grant, "client", t.client.AppID, "correlation_id", correlationID(r))
	return resp, nil
}

// v1Scope maps the v1 endpoint's resource parameter to a v2 .default scope.
func v1Scope(form url.Values) *oauthError {
	if form.Get("scope") != "" && form.Get("resource") == "" {
		return nil
	}
	res := form.Get("resource")
	if res == "" && form.Get("grant_type") != GrantRefreshToken {
		return missingParam("resource")
	}
	if res != "" {
		form.Set("scope", strings.TrimSuffix(res, "/")+"/.default "+form.Get("scope"))
	}
	return nil
}

// readForm parses the urlencoded body only (never the query), refusing
// oversized bodies and repeated parameters.
func readForm(r *http.Request) (url.Values, *oauthError) {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return nil, missingParam("grant_type")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, malformed("the request body is larger than 64 KiB")
		}
		return nil, malformed("the request body could not be read")
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, malformed("the request body is not valid application/x-www-form-urlencoded")
	}
	for k, v := range form {
		if len(v) > 1 {
			return nil, malformed("parameter '" + truncate(k, 64) + "' is repeated")
		}
	}
	return form, nil
}

// authenticateClient identifies the client and checks its credential when
// one is presented. Whether a credential is required depends on the grant
// and is checked by requireCredential.
func (s *Server) authenticateClient(t *tokenRequest) *oauthError {
	id := t.get("client_id")
	bu, bp, basic := t.r.BasicAuth()
	if basic {
		bu, _ = url.QueryUnescape(bu)
		bp, _ = url.QueryUnescape(bp)
		if id != "" && !strings.EqualFold(id, bu) {
			return invalidClient(700021, "The client_id in the Authorization header does not match the client_id parameter.")
		}
		id = bu
	}
	if id == "" {
		return missingParam("client_id")
	}
	app := s.dir.App(id)
	if app == nil {
		return newErr(400, "unauthorized_client", 700016, "Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.", truncate(id, 64), s.dir.Tenant.DisplayName)
	}
	t.client, t.acr = app, "0"
	secret, assertion := t.get("client_secret"), t.get("client_assertion")
	if basic {
		if secret != "" {
			return malformed("more than one client authentication method was presented")
		}
		secret = bp
	}
	switch {
	case secret != "" && assertion != "":
		return malformed("more than one client authentication method was presented")
	case secret != "":
		if !app.confidential() {
			return invalidClient(700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
		}
		if !secretMatches(app.Secrets, secret) {
			return invalidClient(7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app.AppID)
		}
		t.acr, t.authed = "1", true
	case assertion != "" || t.get("client_assertion_type") != "":
		if !app.confidential() {
			return invalidClient(700025, "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.")
		}
		if e := s.verifyClientAssertion(t, app, assertion); e != nil {
			return e
		}
		t.acr, t.authed = "2", true
	}
	return nil
}

// requireCredential refuses an unauthenticated confidential request.
func (t *tokenRequest) requireCredential() *oauthError {
	if t.authed {
		return nil
	}
	return invalidClient(7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
}

// secretMatches compares in constant time (over sha256 digests, so the
// length of the configured secret does not leak either).
func secretMatches(secrets []string, presented string) bool {
	p := sha256.Sum256([]byte(presented))
	ok := 0
	for _, s := range secrets {
		h := sha256.Sum256([]byte(s))
		ok |= subtle.ConstantTimeCompare(h[:], p[:])
	}
	return ok == 1
}

// verifyClientAssertion validates a certificate client assertion
// (private_key_jwt): RS256/PS256 by a registered certificate named by x5t
// or x5t#S256, aud = the token endpoint, iss = sub = client_id, in its time
// range, jti never seen before.
func (s *Server) verifyClientAssertion(t *tokenRequest, app *App, assertion string) *oauthError {
	if t.get("client_assertion_type") != clientAssertionType {
		return invalidClient(700027, "Client assertion type must be '%s'.", clientAssertionType)
	}
	if assertion == "" {
		return missingParam("client_assertion")
	}
	jwt, err := parseJWT(assertion)
	if err != nil {
		return invalidClient(50027, "JWT token is invalid or malformed.")
	}
	x5t, x5t256 := decodeThumbprint(jwt.headerStr("x5t")), decodeThumbprint(jwt.headerStr("x5t#S256"))
	cert := app.certByThumbprint(x5t, x5t256)
	if cert == nil {
		return invalidClient(700027, "Client assertion failed signature validation. [Reason - The key was not found.] Register the certificate on app '%s'.", app.AppID)
	}
	if err := jwt.verify(cert.PublicKey.(*rsa.PublicKey), "RS256", "PS256"); err != nil {
		return invalidClient(700027, "Client assertion contains an invalid signature. [Reason - %s]", err.Error())
	}
	if !strings.EqualFold(jwt.str("iss"), app.AppID) || !strings.EqualFold(jwt.str("sub"), app.AppID) {
		return invalidClient(700021, "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")
	}
	if !s.isTokenEndpoint(jwt.strs("aud"), t.tenant) {
		return invalidClient(700027, "Client assertion failed: the audience must be the token endpoint '%s'.", s.baseURL()+"/"+s.dir.Tenant.ID+"/oauth2/v2.0/token")
	}
	now := s.now()
	exp, hasExp := jwt.num("exp")
	nbf, hasNbf := jwt.num("nbf")
	if !hasExp || now.After(time.Unix(exp, 0).Add(clockSkew)) || (hasNbf && now.Add(clockSkew).Before(time.Unix(nbf, 0))) {
		return invalidClient(700024, "Client assertion is not within its valid time range. Current time: %s.", now.UTC().Format(time.RFC3339))
	}
	if jti := jwt.str("jti"); jti != "" {
		if !s.rememberJTI(app.AppID+"|"+jti, time.Unix(exp, 0).Add(clockSkew)) {
			return invalidClient(700027, "Client assertion has already been used (replayed jti).")
		}
	}
	return nil
}

func (s *Server) isTokenEndpoint(auds []string, seg string) bool {
	base := strings.ToLower(s.baseURL())
	ok := map[string]bool{}
	for _, t := range []string{s.dir.Tenant.ID, strings.ToLower(seg)} {
		ok[base+"/"+strings.ToLower(t)+"/oauth2/v2.0/token"] = true
		ok[base+"/"+strings.ToLower(t)+"/oauth2/token"] = true
	}
	for _, a := range auds {
		if ok[strings.ToLower(a)] {
			return true
		}
	}
	return false
}

// rememberJTI records a jti until exp; false if already seen.
func (s *Server) rememberJTI(key string, exp time.Time) bool {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.jtis) > 1000 {
		for k, e := range s.jtis {
			if now.After(e) {
				delete(s.jtis, k)
			}
		}
	}
	if _, seen := s.jtis[key]; seen {
		return false
	}
	if len(s.jtis) < 100_000 {
		s.jtis[key] = exp
	}
	return true
}

// delegatedResponse issues the access token (and refresh token, id token,
// client_info as requested) of a delegated grant.
func (s *Server) delegatedResponse(t *tokenRequest, q *scopeRequest, scp []string, who principal, rc requestedClaims, rt refreshOptions, nonce string) (map[string]any, *oauthError) {
	lifetime := s.userLifetime()
	var acrs []string
	if who.hasMFA() { // an auth context is stamped only when satisfied
		acrs = rc.acrs
	}
	at, err := s.mintAccessToken(accessTokenSpec{
		client: t.client, clientAcr: t.acr, resource: q.resource, audience: q.audience, who: who,
		scp: scp, roles: userRoles(who.user, q.resource), xmsCC: rc.xmsCC, acrs: acrs, lifetime: lifetime,
	})
	if err != nil {
		return nil, newErr(500, "server_error", 90100, "Token signing failed.")
	}
	secs := int(lifetime / time.Second)
	resp := map[string]any{
		"token_type": "Bearer", "scope": echoScope(q, scp), "expires_in": secs, "ext_expires_in": secs,
		"access_token": at,
	}
	if q.oidc["offline_access"] {
		rtv, exp := s.issueRefresh(t.client, who, rt)
		resp["refresh_token"] = rtv
		if rt.spa {
			resp["refresh_token_expires_in"] = int(exp.Sub(s.now()) / time.Second)
		}
	}
	if q.oidc["openid"] {
		idt, err := s.mintIDToken(t.client, who, nonce, q.oidc["email"])
		if err != nil {
			return nil, newErr(500, "server_error", 90100, "Token signing failed.")
		}
		resp["id_token"] = idt
	}
	if t.get("client_info") == "1" {
		resp["client_info"] = s.clientInfo(who.user)
	}
	return resp, nil
}
