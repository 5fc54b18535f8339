package entraemu

import (
	"slices"
	"strings"
)

// oidcScopes never name a resource; MSAL adds them to every request.
var oidcScopes = map[string]bool{"openid": true, "profile": true, "email": true, "offline_access": true}

// scopeRequest is a parsed scope parameter: OpenID scopes plus the scopes
// of exactly one resource (an authorize request may carry several).
type scopeRequest struct {
	oidc      map[string]bool
	resource  *App
	audience  string   // identifier the resource was named by (App ID URI or appId)
	values    []string // scope values on the resource, e.g. "access_as_user" or ".default"
	requested []string // the resource scopes as sent, echoed in "scope"
}

func (q *scopeRequest) isDefault() bool { return len(q.values) == 1 && q.values[0] == ".default" }

func invalidScope(aadsts int, format string, args ...any) *oauthError {
	return newErr(400, "invalid_scope", aadsts, format, args...)
}

// parseScopes resolves a scope parameter to one resource, as the token
// endpoint requires: scopes of two resources are AADSTS28000.
func (s *Server) parseScopes(raw string) (*scopeRequest, *oauthError) {
	qs, e := s.parseScopeSet(raw)
	if e != nil {
		return nil, e
	}
	if len(qs) > 1 {
		return nil, invalidScope(28000, "Provided value for the input parameter scope is not valid because it contains more than one resource. Scope %s is not valid.", truncate(raw, 256))
	}
	return qs[0], nil
}

// parseScopeSet resolves a scope parameter to one scopeRequest per
// resource, in the order the resources first appear; they share the OpenID
// scopes. The authorize endpoint takes several resources (consent up
// front: msal-browser's extraScopesToConsent). A scope without a resource
// prefix (e.g. "User.Read") belongs to Graph, as in Entra; a request of
// only OpenID scopes is for Graph too.
func (s *Server) parseScopeSet(raw string) ([]*scopeRequest, *oauthError) {
	oidc := map[string]bool{}
	var qs []*scopeRequest
	fields := strings.Fields(raw)
	if len(fields) == 0 {
		return nil, invalidScope(70011, "The provided request must include a 'scope' input parameter.")
	}
	if len(fields) > 64 {
		return nil, invalidScope(70011, "The provided value for the input parameter 'scope' is not valid: too many scopes.")
	}
	for _, f := range fields {
		if oidcScopes[strings.ToLower(f)] {
			oidc[strings.ToLower(f)] = true
			continue
		}
		resID, value := GraphAppIDURI, f
		if i := strings.LastIndexByte(f, '/'); i >= 0 {
			resID, value = f[:i], f[i+1:]
		}
		res := s.dir.appByIdentifier(resID)
		if res == nil {
			return nil, newErr(400, "invalid_resource", 500011, "The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.", truncate(resID, 128), s.dir.Tenant.DisplayName)
		}
		if value != ".default" && !res.hasScope(value) {
			return nil, invalidScope(70011, "The provided value for the input parameter 'scope' is not valid. The scope '%s' does not exist on the resource '%s'.", truncate(f, 128), res.AppID)
		}
		i := slices.IndexFunc(qs, func(q *scopeRequest) bool { return q.resource == res })
		if i < 0 {
			qs, i = append(qs, &scopeRequest{oidc: oidc, resource: res}), len(qs)
		}
		q := qs[i]
		q.audience = resID
		q.values = append(q.values, value)
		q.requested = append(q.requested, f)
	}
	for _, q := range qs {
		if slices.Contains(q.values, ".default") && len(q.values) > 1 {
			return nil, invalidScope(70011, "The provided value for the input parameter 'scope' is not valid. The scope '%s' is not valid: '.default' cannot be combined with other scopes of the same resource.", truncate(raw, 256))
		}
	}
	if len(qs) == 0 {
		graph := s.dir.App(GraphAppID)
		if graph == nil {
			return nil, invalidScope(70011, "The provided value for the input parameter 'scope' is not valid: no resource requested.")
		}
		qs = append(qs, &scopeRequest{oidc: oidc, resource: graph, audience: GraphAppIDURI})
	}
	return qs, nil
}

// canonicalScope normalises a scope value to the resource's spelling.
func canonicalScope(res *App, v string) string {
	if sc, ok := res.scope(v); ok {
		return sc.Value
	}
	return v
}

// consentedScopes is every delegated scope of res that client may use for
// user without asking: pre-authorization, admin consent, per-user consent
// (directory or given on the consent page).
func (s *Server) consentedScopes(client *App, user *User, res *App) map[string]bool {
	out := map[string]bool{}
	for _, pa := range res.PreAuthorizedApplications {
		if strings.EqualFold(pa.AppID, client.AppID) {
			for _, v := range pa.Scopes {
				out[canonicalScope(res, v)] = true
			}
		}
	}
	for _, g := range client.Grants {
		if !strings.EqualFold(g.ResourceAppID, res.AppID) {
			continue
		}
		if len(g.Users) > 0 && !slices.ContainsFunc(g.Users, func(u string) bool { return s.dir.User(u) == user }) {
			continue
		}
		for _, v := range g.Scopes {
			out[canonicalScope(res, v)] = true
		}
	}
	s.mu.Lock()
	for v := range s.consents[consentKey(user, client, res)] {
		out[v] = true
	}
	s.mu.Unlock()
	return out
}

func consentKey(u *User, client, res *App) string {
	return strings.ToLower(u.OID + "|" + client.AppID + "|" + res.AppID)
}

// grantDelegated decides the scp of a delegated token, or AADSTS65001 when
// consent is missing.
func (s *Server) grantDelegated(client *App, user *User, q *scopeRequest) ([]string, *oauthError) {
	oidcOnly := len(q.requested) == 0
	if oidcOnly {
		var scp []string
		for _, v := range []string{"openid", "profile", "email"} {
			if q.oidc[v] {
				scp = append(scp, v)
			}
		}
		return scp, nil
	}
	consented := s.consentedScopes(client, user, q.resource)
	self := strings.EqualFold(client.AppID, q.resource.AppID)
	var scp []string
	if q.isDefault() {
		for _, sc := range q.resource.Scopes {
			if consented[sc.Value] || self {
				scp = append(scp, sc.Value)
			}
		}
		if len(scp) == 0 {
			return nil, consentRequired(client)
		}
		return scp, nil
	}
	for _, v := range q.values {
		c := canonicalScope(q.resource, v)
		if !consented[c] && !self {
			return nil, consentRequired(client)
		}
		if !slices.Contains(scp, c) {
			scp = append(scp, c)
		}
	}
	return scp, nil
}

func consentRequired(client *App) *oauthError {
	e := invalidGrant(65001, "The user or administrator has not consented to use the application with ID '%s' named '%s'. Send an interactive authorization request for this user and resource.", client.AppID, client.DisplayName)
	e.Suberror = "consent_required"
	return e
}

// userRoles are the user's app roles on res (the roles claim of delegated
// tokens).
func userRoles(u *User, res *App) []string {
	var out []string
	for _, a := range u.AppRoles {
		if strings.EqualFold(a.ResourceAppID, res.AppID) && !slices.Contains(out, a.Role) {
			out = append(out, a.Role)
		}
	}
	return out
}

// appRoles are the application permissions granted to client on res.
func appRoles(client, res *App) []string {
	var out []string
	for _, g := range client.Grants {
		if strings.EqualFold(g.ResourceAppID, res.AppID) {
			for _, r := range g.Roles {
				if !slices.Contains(out, r) {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// echoScope is the "scope" of a delegated token response: every requested
// resource scope as sent (so MSAL sees none declined, including a literal
// ".default") plus, for ".default", the scopes it expanded to.
func echoScope(q *scopeRequest, scp []string) string {
	out := slices.Clone(q.requested)
	if q.isDefault() {
		for _, v := range scp {
			out = append(out, q.audience+"/"+v)
		}
	}
	if len(q.requested) == 0 {
		out = append(out, scp...)
	}
	return strings.Join(out, " ")
}

// caPolicy returns the first enabled conditional-access policy requiring
// MFA that applies to user signing in to res.
func (s *Server) caPolicy(user *User, res *App) *CAPolicy {
	for _, p := range s.dir.ConditionalAccess {
		if p.State == "disabled" || !slices.Contains(p.GrantControls, "mfa") {
			continue
		}
		userIn := slices.ContainsFunc(p.Users, func(u string) bool { return u == "All" || s.dir.User(u) == user })
		resIn := slices.ContainsFunc(p.Resources, func(r string) bool { return r == "All" || strings.EqualFold(r, res.AppID) })
		if userIn && resIn {
			return p
		}
	}
	return nil
}

// caPolicyAny returns the first MFA policy that applies to user for any of
// the requested resources, and that resource (a sign-in for several
// resources steps up if any of them requires it).
func (s *Server) caPolicyAny(user *User, qs []*scopeRequest) (*App, *CAPolicy) {
	for _, q := range qs {
		if p := s.caPolicy(user, q.resource); p != nil {
			return q.resource, p
		}
	}
	return qs[0].resource, nil
}

// mfaChallenge is the claims challenge naming the policy.
func mfaChallenge(policyID string) string {
	return requestedClaims{capolids: []string{policyID}}.challenge()
}

// checkCA refuses a token for res unless who satisfies both the directory's
// MFA policy for res and the token request's claims: a claims request naming
// an authentication context (acrs) or a conditional-access policy (capolids).
// The emulator's auth contexts and named policies all mean MFA: like Entra,
// the token endpoint cannot do the step-up itself, so it answers
// interaction_required with the claims the client must take to the
// authorize page (which then asks for MFA).
func (s *Server) checkCA(who principal, rc requestedClaims, res *App) *oauthError {
	if who.hasMFA() {
		return nil
	}
	code := 50076
	if !who.user.MFARegistered {
		code = 50079
	}
	if p := s.caPolicy(who.user, res); p != nil {
		return errorForCode(code, res.AppID, mfaChallenge(p.ID))
	}
	if len(rc.acrs) > 0 || len(rc.capolids) > 0 {
		return errorForCode(code, res.AppID, rc.challenge())
	}
	return nil
}
