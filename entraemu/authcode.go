package entraemu

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"slices"
	"strings"
	"time"
)

// authCode is an issued authorization code: single use, 10 minutes, bound
// to client, redirect URI and PKCE challenge.
type authCode struct {
	clientID    string
	redirectURI string
	kind        redirectKind
	challenge   string // S256 code_challenge ("" when none was sent)
	nonce       string
	scope       string // the scope parameter of the authorize request
	claims      string
	who         principal
	expires     time.Time
	redeemed    bool
}

const codeLifetime = 10 * time.Minute

// issueCode stores a code and returns its value.
func (s *Server) issueCode(c *authCode) string {
	v := "1.A" + randomB64(64)
	now := s.now()
	c.expires = now.Add(codeLifetime)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(now)
	if len(s.codes) < maxStoreEntries {
		s.codes[hashKey(v)] = c
	}
	return v
}

// grantAuthorizationCode redeems a code.
func (s *Server) grantAuthorizationCode(t *tokenRequest) (map[string]any, *oauthError) {
	code := t.get("code")
	if code == "" {
		return nil, missingParam("code")
	}
	redirect := t.get("redirect_uri")
	if redirect == "" {
		return nil, missingParam("redirect_uri")
	}
	now := s.now()
	s.mu.Lock()
	c := s.codes[hashKey(code)]
	var reused bool
	if c != nil && strings.EqualFold(c.clientID, t.client.AppID) {
		reused = c.redeemed
		c.redeemed = true // a failed redemption burns the code too
	}
	s.mu.Unlock()
	switch {
	case c == nil || !now.Before(c.expires):
		return nil, invalidGrant(70008, "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.")
	case !strings.EqualFold(c.clientID, t.client.AppID):
		return nil, invalidGrant(70000, "Provided grant is invalid or malformed: the code was issued to a different client.")
	case reused:
		return nil, invalidGrant(54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
	case c.redirectURI != redirect:
		return nil, invalidGrant(70000, "Provided grant is invalid or malformed: redirect_uri does not match the one used in the authorization request.")
	}
	if e := s.checkRedemptionClient(t, c); e != nil {
		return nil, e
	}
	if e := checkPKCE(c.challenge, t.get("code_verifier")); e != nil {
		return nil, e
	}
	q, scp, e := s.codeScopes(t.client, c.who.user, c.scope, t.get("scope"))
	if e != nil {
		return nil, e
	}
	rc, e := parseClaims(c.claims)
	if e != nil {
		return nil, e
	}
	if e := s.checkCA(c.who, rc, q.resource); e != nil {
		return nil, e
	}
	opt := refreshOptions{spa: c.kind == redirectSPA, public: !t.authed}
	return s.delegatedResponse(t, q, scp, c.who, rc, opt, c.nonce)
}

// codeScopes picks the resource a code is redeemed for. The code stands for
// every resource of its authorize request (consent up front); the token
// request's scope names one of them (its scopes among those the code grants
// on it), or only OpenID scopes: then the first resource of the authorize
// request, as Entra does. The token carries what the code grants on that
// resource; two resources are AADSTS28000, as on every token request.
func (s *Server) codeScopes(client *App, user *User, codeScope, reqScope string) (*scopeRequest, []string, *oauthError) {
	qs, e := s.parseScopeSet(codeScope)
	if e != nil {
		return nil, nil, e
	}
	q, want := qs[0], &scopeRequest{}
	if strings.TrimSpace(reqScope) != "" {
		if want, e = s.parseScopes(reqScope); e != nil {
			return nil, nil, e
		}
		for v := range want.oidc { // MSAL adds openid offline_access profile here
			q.oidc[v] = true // shared by every resource of the code
		}
		if len(want.requested) > 0 {
			i := slices.IndexFunc(qs, func(c *scopeRequest) bool { return c.resource == want.resource })
			if i < 0 {
				return nil, nil, invalidScope(70011, "The provided value for the input parameter 'scope' is not valid. The authorization code was not issued for the resource '%s'; send an authorization request that includes it.", want.resource.AppID)
			}
			q = qs[i]
		}
	}
	scp, e := s.grantDelegated(client, user, q)
	if e != nil {
		return nil, nil, e
	}
	for i, v := range want.values {
		if v != ".default" && !slices.Contains(scp, canonicalScope(q.resource, v)) {
			return nil, nil, invalidScope(70011, "The provided value for the input parameter 'scope' is not valid. The scope '%s' was not granted by the authorization code.", truncate(want.requested[i], 128))
		}
	}
	return q, scp, nil
}

// checkRedemptionClient: SPA codes only cross-origin; web codes need the
// client credential; public-client codes need none.
func (s *Server) checkRedemptionClient(t *tokenRequest, c *authCode) *oauthError {
	switch c.kind {
	case redirectSPA:
		if t.r.Header.Get("Origin") == "" {
			return invalidRequest(9002327, "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.")
		}
	case redirectWeb:
		if t.client.confidential() {
			return t.requireCredential()
		}
	}
	return nil
}

// checkPKCE verifies code_verifier against an S256 challenge.
func checkPKCE(challenge, verifier string) *oauthError {
	if challenge == "" {
		if verifier != "" {
			return invalidGrant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
		}
		return nil
	}
	if verifier == "" {
		return missingParam("code_verifier")
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) != 1 {
		return invalidGrant(501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
	}
	return nil
}
