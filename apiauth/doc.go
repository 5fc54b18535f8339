// Package apiauth validates Microsoft Entra ID access tokens for a Go web API
// and authorizes the caller.
//
// A Validator loads the tenant's signing keys through jwx's auto-refreshing
// jwk.Cache (discovery from the authority, refetch on an unknown kid merged and
// rate-limited, last good keys kept when the IdP is down) and checks each token
// strictly: compact JWS only, canonical base64url, strict JSON (no duplicate
// members, no trailing data, bounded nesting), an alg allow-list (RS256 by
// default), kid required, header-supplied keys (jku, x5u, jwk, x5c) refused and
// never fetched, crit refused, exp required, nbf/iat checked with a skew, the
// issuer exact (v1.0 and v2.0 forms, multi-tenant {tenantid} with an
// allow-list), the audience (client id or api://client-id) and scp or roles
// present. A validated token is cached until exp, so a repeat costs one map
// lookup.
//
// The net/http middleware puts the caller (Principal) in the request context
// and answers RFC 6750 errors: 401 invalid_token, 403 insufficient_scope,
// 503 while no keys are loaded; a JSON body carries a short reason and a hint
// for the common mistakes (ID token or Graph token sent, v1/v2 issuer,
// audience form, other tenant).
package apiauth
