package apiauth

import (
	"fmt"
	"net/http"
)

// Reason is a short, stable, machine-readable refusal code. It appears in the
// JSON error body and in logs; it never contains token material.
type Reason string

// Refusal reasons.
const (
	ReasonMissingToken      Reason = "missing_token"      // no bearer token in the request
	ReasonMalformed         Reason = "malformed"          // not a strict compact JWS / bad JSON / bad base64url
	ReasonTooLarge          Reason = "too_large"          // over the size cap
	ReasonAlgorithm         Reason = "algorithm"          // header alg not on the allow-list
	ReasonMissingKeyID      Reason = "missing_kid"        // no kid in the header
	ReasonHeaderKey         Reason = "header_key"         // jku / x5u / jwk / x5c in the header
	ReasonCritical          Reason = "crit"               // crit header present (no extension is understood)
	ReasonType              Reason = "typ"                // typ is not JWT / at+jwt
	ReasonUnknownKey        Reason = "unknown_key"        // kid not in the key set, even after a refetch
	ReasonSignature         Reason = "signature"          // signature does not verify
	ReasonClaims            Reason = "claims"             // missing or mistyped registered claim
	ReasonExpired           Reason = "expired"            // exp in the past (beyond skew)
	ReasonNotYetValid       Reason = "not_yet_valid"      // nbf or iat in the future (beyond skew)
	ReasonIssuer            Reason = "issuer"             // iss not accepted
	ReasonTenant            Reason = "tenant"             // tid missing, not a GUID, not allowed or not matching iss
	ReasonVersion           Reason = "version"            // ver not accepted or not matching the issuer form
	ReasonAudience          Reason = "audience"           // aud not accepted
	ReasonIDToken           Reason = "id_token"           // an ID token was sent instead of an access token
	ReasonGraphToken        Reason = "graph_token"        // a token for Microsoft Graph was sent
	ReasonNoScopeOrRoles    Reason = "no_scope_or_roles"  // neither scp nor roles
	ReasonInsufficientScope Reason = "insufficient_scope" // valid token, missing scope/role (403)
	ReasonDelegatedOnly     Reason = "delegated_only"     // app-only caller on a delegated-only endpoint (403)
	ReasonAppOnly           Reason = "app_only"           // user caller on an app-only endpoint (403)
	ReasonNotReady          Reason = "keys_not_loaded"    // no signing keys yet (503)
	ReasonNoPrincipal       Reason = "no_principal"       // requirement used without the authentication middleware
	ReasonBadRequest        Reason = "invalid_request"    // several Authorization headers, wrong scheme
	ReasonTokenKind         Reason = "unsupported_token"  // e.g. a JWE (5 parts)
	ReasonKeyIssuer         Reason = "key_issuer"         // key's published issuer does not match the token
	ReasonInternal          Reason = "internal"           // should not happen
	ReasonTenantNotAllowed  Reason = "tenant_not_allowed" // multi-tenant: tid not on the allow-list
	ReasonIssuerTenant      Reason = "issuer_tenant_mismatch"
)

// Error is the typed refusal returned by Validate and the requirements. Use
// errors.As to get it; errors.Is(err, apiauth.ErrExpired) and friends compare
// the Reason only.
type Error struct {
	Reason Reason
	// Status is the HTTP status the middleware answers with (401, 403 or 503).
	Status int
	// Detail is the precise cause, for logs only (never sent to the caller).
	// It never contains the token; it may contain claim values such as aud.
	Detail string
	// Hint explains a common mistake to the developer calling the API; it is
	// sent in the JSON body.
	Hint string
	// Scope lists the scopes or roles that would satisfy a 403.
	Scope string
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("apiauth: %s: %s", e.Reason, e.Detail)
	}
	return "apiauth: " + string(e.Reason)
}

// Is reports whether target is an *Error with the same Reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// Sentinels for errors.Is.
var (
	ErrMissingToken      = &Error{Reason: ReasonMissingToken}
	ErrMalformed         = &Error{Reason: ReasonMalformed}
	ErrTooLarge          = &Error{Reason: ReasonTooLarge}
	ErrAlgorithm         = &Error{Reason: ReasonAlgorithm}
	ErrHeaderKey         = &Error{Reason: ReasonHeaderKey}
	ErrUnknownKey        = &Error{Reason: ReasonUnknownKey}
	ErrSignature         = &Error{Reason: ReasonSignature}
	ErrExpired           = &Error{Reason: ReasonExpired}
	ErrNotYetValid       = &Error{Reason: ReasonNotYetValid}
	ErrIssuer            = &Error{Reason: ReasonIssuer}
	ErrAudience          = &Error{Reason: ReasonAudience}
	ErrIDToken           = &Error{Reason: ReasonIDToken}
	ErrGraphToken        = &Error{Reason: ReasonGraphToken}
	ErrNotReady          = &Error{Reason: ReasonNotReady}
	ErrInsufficientScope = &Error{Reason: ReasonInsufficientScope}
)

func unauthorized(r Reason, detail, hint string) *Error {
	return &Error{Reason: r, Status: http.StatusUnauthorized, Detail: detail, Hint: hint}
}

func malformed(detail string) *Error {
	return unauthorized(ReasonMalformed, detail, "")
}

// Hints for the common mistakes (anchors.md pain points 1–3, 5, 6, 15).
const (
	hintGraph = "This is a token for Microsoft Graph (aud %q). Graph tokens are not meant to be validated by your API; " +
		"request a token for this API's scope instead (e.g. api://<api-client-id>/access_as_user)."
	// hintGraphUnverified is hintGraph for a token whose signature failed:
	// its aud is not trusted, so it is not quoted.
	hintGraphUnverified = "This looks like a token for Microsoft Graph. Graph tokens are not meant to be validated by your API; " +
		"request a token for this API's scope instead (e.g. api://<api-client-id>/access_as_user)."
	hintIDToken = "This looks like an ID token (aud is a client application id%s, no scp/roles). " +
		"Send the access token for this API (MSAL: acquireTokenSilent with the API scope), not the ID token."
	hintAudience = "The token was issued for audience %q; this API accepts %s. " +
		"Request a token for this API's scope (api://<api-client-id>/<scope>)."
	hintAudienceForm = "The token's audience %q differs only in form from an accepted one (%s): " +
		"the App ID URI must match exactly (no trailing slash, same case), or use the client id."
	hintV1 = "This is a v1.0 token (iss %q) but this API accepts v2.0 tokens only: " +
		"set \"accessTokenAcceptedVersion\": 2 in the API app registration's manifest, or accept version 1.0."
	hintV2         = "This is a v2.0 token (iss %q) but this API accepts v1.0 tokens only: accept version 2.0 in the API configuration."
	hintTenant     = "The token was issued by tenant %q; this API accepts %s."
	hintExpired    = "The access token expired at %s; acquire a new one (MSAL acquireTokenSilent refreshes it)."
	hintNotYet     = "The token is not valid before %s; check the clocks of the caller and the API."
	hintUnknownKey = "The token is signed with a key the API does not know. It may come from another tenant or authority, " +
		"or the keys just rotated (the API refetches them at most once per minimum interval)."
	hintNoScp = "The token has neither scp nor roles: it is not an access token for an API (an ID token?)."
)
