package entraemu

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"time"
)

// refreshGrant is what a refresh token stands for. Refresh tokens are
// opaque, bound to their client, and rotated: each is redeemable once.
type refreshGrant struct {
	clientID string
	who      principal
	spa      bool // issued to a SPA redirect URI: 24 h fixed, cross-origin redemption only
	public   bool // issued without a client credential: none needed to redeem
	expires  time.Time
	used     bool
}

type refreshOptions struct {
	spa     bool
	public  bool
	expires time.Time // zero: a fresh lifetime
}

const (
	spaRefreshLifetime = 24 * time.Hour
	refreshLifetime    = 90 * 24 * time.Hour
	maxStoreEntries    = 200_000
)

func hashKey(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

func (s *Server) issueRefresh(client *App, who principal, opt refreshOptions) (string, time.Time) {
	now := s.now()
	exp := opt.expires
	if exp.IsZero() {
		exp = now.Add(refreshLifetime)
		if opt.spa {
			exp = now.Add(spaRefreshLifetime)
		}
	}
	v := "1.A" + randomB64(96)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(now)
	if len(s.refreshes) < maxStoreEntries {
		s.refreshes[hashKey(v)] = &refreshGrant{clientID: client.AppID, who: who, spa: opt.spa, public: opt.public, expires: exp}
	}
	return v, exp
}

// purgeLocked drops expired codes, refresh tokens and sessions, at most
// once a minute (so issuing stays O(1) amortised).
func (s *Server) purgeLocked(now time.Time) {
	if now.Sub(s.lastPurge) < time.Minute && now.After(s.lastPurge) {
		return
	}
	s.lastPurge = now
	for k, g := range s.refreshes {
		if now.After(g.expires) {
			delete(s.refreshes, k)
		}
	}
	for k, c := range s.codes {
		if now.After(c.expires) {
			delete(s.codes, k)
		}
	}
	for k, ss := range s.sessions {
		if now.After(ss.expires) {
			delete(s.sessions, k)
		}
	}
}

// grantPassword is ROPC: public clients with public client flows allowed,
// or confidential clients with their credential.
func (s *Server) grantPassword(t *tokenRequest) (map[string]any, *oauthError) {
	if t.tenant == "common" {
		return nil, invalidRequest(9001023, "The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.")
	}
	if !t.client.AllowPublicClientFlows {
		if e := t.requireCredential(); e != nil {
			return nil, e
		}
	}
	username, password := t.get("username"), t.get("password")
	if username == "" {
		return nil, missingParam("username")
	}
	if password == "" {
		return nil, missingParam("password")
	}
	user, e := s.checkPassword(username, password)
	if e != nil {
		return nil, e
	}
	q, e := s.parseScopes(t.get("scope"))
	if e != nil {
		return nil, e
	}
	rc, e := parseClaims(t.get("claims"))
	if e != nil {
		return nil, e
	}
	scp, e := s.grantDelegated(t.client, user, q)
	if e != nil {
		return nil, e
	}
	who := principal{user: user, amr: []string{"pwd"}, authTime: s.now()}
	if e := s.checkCA(who, rc, q.resource); e != nil {
		return nil, e
	}
	return s.delegatedResponse(t, q, scp, who, rc, refreshOptions{public: !t.authed}, "")
}

// checkPassword verifies a user's password in constant time.
func (s *Server) checkPassword(username, password string) (*User, *oauthError) {
	user := s.dir.User(username)
	if user == nil || !strings.EqualFold(user.UPN, username) {
		return nil, invalidGrant(50034, "The user account {EUII Hidden} does not exist in the %s directory. To sign into this application, the account must be added to the directory.", s.dir.Tenant.ID)
	}
	a, b := sha256.Sum256([]byte(user.Password)), sha256.Sum256([]byte(password))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return nil, invalidGrant(50126, "Error validating credentials due to invalid username or password.")
	}
	return user, nil
}

// grantClientCredentials issues app-only tokens: scope must be
// "{resource}/.default"; roles are the granted application permissions.
func (s *Server) grantClientCredentials(t *tokenRequest) (map[string]any, *oauthError) {
	if t.multi {
		return nil, invalidRequest(9001023, "The grant type is not supported over the /common or /organizations endpoints. Please use the tenant-specific endpoint.")
	}
	if e := t.requireCredential(); e != nil {
		return nil, e
	}
	raw := t.get("scope")
	if raw == "" {
		return nil, missingParam("scope")
	}
	var resourceScopes []string
	for _, f := range strings.Fields(raw) {
		if !oidcScopes[strings.ToLower(f)] {
			resourceScopes = append(resourceScopes, f)
		}
	}
	if len(resourceScopes) != 1 || !strings.HasSuffix(resourceScopes[0], "/.default") {
		return nil, invalidScope(1002012, "The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", truncate(raw, 256))
	}
	q, e := s.parseScopes(resourceScopes[0])
	if e != nil {
		return nil, e
	}
	at, err := s.mintAccessToken(accessTokenSpec{
		client: t.client, clientAcr: t.acr, resource: q.resource, audience: q.audience,
		roles: appRoles(t.client, q.resource), lifetime: appTokenLifetime,
	})
	if err != nil {
		return nil, newErr(500, "server_error", 90100, "Token signing failed.")
	}
	secs := int(appTokenLifetime / time.Second)
	return map[string]any{"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": at}, nil
}

// grantRefreshToken redeems (and rotates) a refresh token, for any resource
// the user has consented to for this client.
func (s *Server) grantRefreshToken(t *tokenRequest) (map[string]any, *oauthError) {
	rt := t.get("refresh_token")
	if rt == "" {
		return nil, missingParam("refresh_token")
	}
	now := s.now()
	key := hashKey(rt)
	s.mu.Lock()
	g := s.refreshes[key]
	var used bool
	if g != nil {
		used = g.used
	}
	s.mu.Unlock()
	switch {
	case g == nil:
		return nil, invalidGrant(9002313, "Invalid request. Request is malformed or invalid. [Reason - the refresh token is not valid.]")
	case !strings.EqualFold(g.clientID, t.client.AppID):
		return nil, invalidGrant(70000, "Provided grant is invalid or malformed: the refresh token was issued to a different client.")
	case !now.Before(g.expires) && !g.spa:
		return nil, invalidGrant(700082, "The refresh token has expired due to inactivity. The token was issued on %s and was inactive for 90.00:00:00.", g.who.authTime.UTC().Format(time.RFC3339))
	case !now.Before(g.expires):
		return nil, invalidGrant(700084, "The refresh token was issued to a single page app (SPA), and therefore has a fixed, limited lifetime of 1.00:00:00, which cannot be extended. It is now expired and a new sign in request must be sent by the SPA to the sign in page.")
	case used:
		return nil, refreshRedeemed()
	}
	if !g.public {
		if e := t.requireCredential(); e != nil {
			return nil, e
		}
	}
	if g.spa && t.r.Header.Get("Origin") == "" {
		return nil, invalidRequest(9002327, "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin requests.")
	}
	q, e := s.parseScopes(t.get("scope"))
	if e != nil {
		return nil, e
	}
	rc, e := parseClaims(t.get("claims"))
	if e != nil {
		return nil, e
	}
	scp, e := s.grantDelegated(t.client, g.who.user, q)
	if e != nil {
		return nil, e
	}
	if e := s.checkCA(g.who, rc, q.resource); e != nil {
		return nil, e
	}
	// Only now, with every check passed, is the token spent: Entra keeps a
	// refresh token valid after a failed redemption (a wrong scope, a
	// missing secret or Origin must not log the user out). The
	// compare-and-set under the lock makes a concurrent double redemption
	// fail for all but one.
	if !s.spendRefresh(key, g) {
		return nil, refreshRedeemed()
	}
	q.oidc["offline_access"] = true // a refresh grant always returns the rotated refresh token
	opt := refreshOptions{spa: g.spa, public: g.public}
	if g.spa {
		opt.expires = g.expires
	}
	return s.delegatedResponse(t, q, scp, g.who, rc, opt, "")
}

// refreshRedeemed is the refusal of a refresh token already redeemed.
func refreshRedeemed() *oauthError {
	return invalidGrant(70000, "Provided grant is invalid or malformed: the refresh token was already redeemed (devidp rotates refresh tokens).")
}

// spendRefresh marks g (stored under key) used; false if it already was.
func (s *Server) spendRefresh(key string, g *refreshGrant) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refreshes[key] != g || g.used {
		return false
	}
	g.used = true
	return true
}
