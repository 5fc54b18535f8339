package entraemu

import (
	"fmt"
	"strings"
	"time"
)

// grantOnBehalfOf is the jwt-bearer grant with requested_token_use =
// on_behalf_of. The assertion is fully validated: our signature, issuer,
// time range, aud = the calling app, a delegated user token; then consent
// and conditional access for the downstream resource.
func (s *Server) grantOnBehalfOf(t *tokenRequest) (map[string]any, *oauthError) {
	if e := t.requireCredential(); e != nil {
		return nil, e
	}
	switch use := t.get("requested_token_use"); use {
	case "on_behalf_of":
	case "":
		return nil, missingParam("requested_token_use")
	default:
		return nil, invalidRequest(9002313, "Invalid request. Request is malformed or invalid. [Reason - requested_token_use '%s' is not supported; use 'on_behalf_of'.]", truncate(use, 32))
	}
	assertion := t.get("assertion")
	if assertion == "" {
		return nil, missingParam("assertion")
	}
	who, e := s.validateAssertion(t.client, assertion)
	if e != nil {
		return nil, e
	}
	if code, ok := s.takeFailOBO(who.user); ok {
		res := t.get("scope")
		claims := ""
		if q, e := s.parseScopes(res); e == nil {
			res = q.resource.AppID
			if p := s.caPolicy(who.user, q.resource); p != nil {
				claims = mfaChallenge(p.ID)
			}
		}
		if claims == "" {
			claims = mfaChallenge(injectedPolicyID)
		}
		return nil, errorForCode(code, res, claims)
	}
	q, e := s.parseScopes(t.get("scope"))
	if e != nil {
		return nil, e
	}
	rc, e := parseClaims(t.get("claims"))
	if e != nil {
		return nil, e
	}
	scp, e := s.grantDelegated(t.client, who.user, q)
	if e != nil {
		return nil, e
	}
	if e := s.checkCA(who, rc, q.resource); e != nil {
		return nil, e
	}
	// Entra's OBO response has no id token (the middle tier is not the
	// user's client), even though MSAL asks for openid.
	delete(q.oidc, "openid")
	return s.delegatedResponse(t, q, scp, who, rc, refreshOptions{}, "")
}

// injectedPolicyID names the policy of an injected MFA failure when no
// directory policy applies.
const injectedPolicyID = "00000000-0000-0000-0000-00000000cafe"

// validateAssertion checks an incoming user token for OBO.
func (s *Server) validateAssertion(caller *App, assertion string) (principal, *oauthError) {
	jwt, err := parseJWT(assertion)
	if err != nil {
		return principal{}, invalidRequest(50027, "JWT token is invalid or malformed.")
	}
	kid := jwt.headerStr("kid")
	key := s.keys.lookup(kid)
	if key == nil {
		return principal{}, invalidGrant(50013, "Assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '%s']", truncate(kid, 64))
	}
	if err := jwt.verify(key.publicKey, "RS256"); err != nil {
		return principal{}, invalidGrant(50013, "Assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value.]")
	}
	if iss := jwt.str("iss"); iss != s.IssuerV2() && iss != s.IssuerV1() {
		return principal{}, invalidGrant(50013, "Assertion failed signature validation. [Reason - The issuer '%s' is not this tenant's issuer.]", truncate(iss, 128))
	}
	now := s.now()
	exp, okExp := jwt.num("exp")
	nbf, okNbf := jwt.num("nbf")
	if !okExp || now.After(time.Unix(exp, 0).Add(clockSkew)) || (okNbf && now.Add(clockSkew).Before(time.Unix(nbf, 0))) {
		return principal{}, invalidGrant(500133, "Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: %s, expiry time of assertion %s.",
			now.UTC().Format(time.RFC3339Nano), time.Unix(exp, 0).UTC().Format(time.RFC3339Nano))
	}
	auds := jwt.strs("aud")
	if len(auds) != 1 || !isAudienceOf(caller, auds[0]) {
		got := strings.Join(auds, ",")
		return principal{}, invalidGrant(500131, "Assertion audience does not match the Client app presenting the assertion. The audience in the assertion was '%s' and the expected audience is '%s' or one of the Application Id URIs of this application.", truncate(got, 128), caller.AppID)
	}
	if jwt.str("idtyp") == "app" || jwt.str("scp") == "" {
		return principal{}, invalidRequest(50027, "Invalid JWT token. On-Behalf-Of needs a delegated user token (with 'scp'); the assertion is an app-only token.")
	}
	if !strings.EqualFold(jwt.str("tid"), s.dir.Tenant.ID) {
		return principal{}, invalidGrant(50013, "Assertion failed signature validation. [Reason - The token was issued for another tenant.]")
	}
	user := s.dir.User(jwt.str("oid"))
	if user == nil || !strings.EqualFold(user.OID, jwt.str("oid")) {
		return principal{}, invalidGrant(50034, "The user account {EUII Hidden} does not exist in the %s directory.", s.dir.Tenant.ID)
	}
	who := principal{user: user, amr: jwt.strs("amr"), sid: jwt.str("sid")}
	if iat, ok := jwt.num("iat"); ok {
		who.authTime = time.Unix(iat, 0)
	}
	return who, nil
}

// isAudienceOf: the app's client id or one of its identifier URIs.
func isAudienceOf(app *App, aud string) bool {
	if strings.EqualFold(aud, app.AppID) {
		return true
	}
	for _, u := range app.IdentifierURIs {
		if strings.TrimSuffix(u, "/") == strings.TrimSuffix(aud, "/") {
			return true
		}
	}
	return false
}

// FailNextOBO makes the next On-Behalf-Of request for user (UPN or oid)
// fail with the Entra error of the AADSTS code (50076/50079 →
// interaction_required with a claims challenge, 65001 → invalid_grant +
// consent_required, 500011 → invalid_resource, 700024/50013/500133 →
// invalid_grant, ...). It fires after client and assertion validation.
// An unknown user or a code ≤ 0 is an error (and arms nothing): a typo in
// a test must not silently leave OBO working.
func (s *Server) FailNextOBO(user string, aadsts int) error {
	u := s.dir.User(user)
	if u == nil {
		return fmt.Errorf("entraemu: FailNextOBO: no user %q (UPN or oid) in the directory", user)
	}
	if aadsts <= 0 {
		return fmt.Errorf("entraemu: FailNextOBO: AADSTS code must be positive, got %d", aadsts)
	}
	s.mu.Lock()
	s.failOBO[strings.ToLower(u.OID)] = aadsts
	s.mu.Unlock()
	return nil
}

func (s *Server) takeFailOBO(u *User) (int, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := strings.ToLower(u.OID)
	code, ok := s.failOBO[key]
	delete(s.failOBO, key)
	return code, ok
}
