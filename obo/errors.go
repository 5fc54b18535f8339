package obo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// Kind classifies an OBO or downstream failure by what the caller must do.
type Kind int

const (
	// KindInternal: anything unexpected (500 server_error).
	KindInternal Kind = iota
	// KindClaimsChallenge: the IdP (conditional access, e.g. MFA:
	// interaction_required, AADSTS50076/50079) or the downstream API wants a
	// token with more claims. The caller must get a new token with Claims
	// (401 insufficient_claims).
	KindClaimsChallenge
	// KindConsentRequired: the user or an admin has not consented to the
	// downstream scopes for this API (consent_required, AADSTS65001)
	// (401 consent_required).
	KindConsentRequired
	// KindInvalidAssertion: the incoming token cannot be exchanged (expired,
	// wrong audience, revoked: invalid_grant) (401 invalid_token).
	KindInvalidAssertion
	// KindIdPUnavailable: the IdP could not be reached, timed out or failed
	// with 5xx/429 (503).
	KindIdPUnavailable
	// KindConfiguration: the IdP refused this API's own request
	// (invalid_client, unauthorized_client, invalid_scope, ...) (500).
	KindConfiguration
	// KindUpstream: the downstream API failed or answered something unusable
	// (502).
	KindUpstream
	// KindUpstreamTimeout: the downstream API did not answer within the
	// timeout (504).
	KindUpstreamTimeout
)

var kindNames = [...]string{"internal", "claims_challenge", "consent_required", "invalid_assertion",
	"idp_unavailable", "configuration", "upstream", "upstream_timeout"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is the only error type Client and Downstream return. Its fields are
// safe to log; they never contain a token or a secret.
type Error struct {
	Kind Kind
	// Claims is the claims-challenge JSON (not base64) for KindClaimsChallenge
	// (and for KindConsentRequired when the IdP sent one).
	Claims string
	// Scopes are the downstream scopes needing consent (KindConsentRequired).
	Scopes []string
	// IdPError, IdPSubError, Codes and CorrelationID come from the IdP's error
	// body (OAuth error, suberror, AADSTS codes, correlation id).
	IdPError      string
	IdPSubError   string
	Codes         []int
	CorrelationID string
	// UpstreamStatus is the downstream API's status code, if it answered.
	UpstreamStatus int
	// Message is a short human-readable reason, safe to show.
	Message string
	// Err is the underlying error, for logs only (never shown to callers).
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("obo: ")
	b.WriteString(e.Kind.String())
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.IdPError != "" {
		fmt.Fprintf(&b, " (idp error=%s", e.IdPError)
		if e.IdPSubError != "" {
			fmt.Fprintf(&b, " suberror=%s", e.IdPSubError)
		}
		if len(e.Codes) > 0 {
			fmt.Fprintf(&b, " codes=%v", e.Codes)
		}
		if e.CorrelationID != "" {
			fmt.Fprintf(&b, " correlation_id=%s", e.CorrelationID)
		}
		b.WriteString(")")
	}
	if e.UpstreamStatus != 0 {
		fmt.Fprintf(&b, " (upstream status %d)", e.UpstreamStatus)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status the API answers for e.
func (e *Error) Status() int {
	switch e.Kind {
	case KindClaimsChallenge, KindConsentRequired, KindInvalidAssertion:
		return http.StatusUnauthorized
	case KindIdPUnavailable:
		return http.StatusServiceUnavailable
	case KindUpstream:
		return http.StatusBadGateway
	case KindUpstreamTimeout:
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// idpErrorBody is Entra's token error response.
type idpErrorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	SubError         string `json:"suberror"`
	Claims           string `json:"claims"`
	CorrelationID    string `json:"correlation_id"`
}

// AADSTS codes that mean "more authentication needed" (conditional access).
var claimsCodes = []int{50076, 50079, 50074, 50158, 53000, 53001, 53003, 50072}

// fallbackMFAClaims is used when the IdP says MFA is needed (50076/50079) but
// sends no claims: ask for a token whose amr contains "mfa".
const fallbackMFAClaims = `{"access_token":{"amr":{"essential":true,"values":["mfa"]}}}`

// classifyIdP turns an error from MSAL's AcquireTokenOnBehalfOf into *Error.
// ctxErr is the error of the context the call ran under (its timeout).
func classifyIdP(err error, ctxErr error, scopes []string) *Error {
	var oe *Error
	if errors.As(err, &oe) {
		return oe
	}
	var ce msalerrors.CallErr
	if errors.As(err, &ce) && ce.Resp != nil {
		status := ce.Resp.StatusCode
		var body idpErrorBody
		if ce.Resp.Body != nil {
			raw, _ := io.ReadAll(io.LimitReader(ce.Resp.Body, 64<<10))
			_ = json.Unmarshal(raw, &body)
		}
		e := &Error{IdPError: body.Error, IdPSubError: body.SubError, Codes: body.ErrorCodes,
			CorrelationID: body.CorrelationID, Err: errors.New("idp answered status " + strconv.Itoa(status))}
		has := func(codes ...int) bool {
			for _, c := range codes {
				if slices.Contains(body.ErrorCodes, c) {
					return true
				}
			}
			return false
		}
		switch {
		case status >= 500 || status == http.StatusTooManyRequests || body.Error == "temporarily_unavailable":
			e.Kind, e.Message = KindIdPUnavailable, "the identity provider is unavailable"
		case body.Error == "consent_required" || body.SubError == "consent_required" || has(65001):
			e.Kind, e.Message = KindConsentRequired, "consent is required for the downstream API"
			e.Scopes = append([]string(nil), scopes...)
			e.Claims = body.Claims
		case body.Error == "interaction_required" || has(claimsCodes...):
			e.Kind, e.Message = KindClaimsChallenge, "additional authentication is required (claims challenge)"
			e.Claims = body.Claims
			if e.Claims == "" && has(50076, 50079) {
				e.Claims = fallbackMFAClaims
			}
			if e.Claims == "" {
				// interaction_required without claims: nothing to replay; the
				// user must sign in again.
				e.Kind, e.Message = KindInvalidAssertion, "the user must sign in again"
			}
		case body.Error == "invalid_grant":
			e.Kind, e.Message = KindInvalidAssertion, "the access token cannot be exchanged (expired, revoked or for another audience)"
		case body.Error == "":
			e.Kind, e.Message = KindIdPUnavailable, "the identity provider answered unexpectedly"
		default: // invalid_client, unauthorized_client, invalid_scope, invalid_request, ...
			e.Kind, e.Message = KindConfiguration, "the identity provider refused this API's request"
		}
		return e
	}
	if ctxErr != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &Error{Kind: KindIdPUnavailable, Message: "the identity provider did not answer in time", Err: err}
	}
	// MSAL wraps transport failures (a *url.Error, which is a net.Error);
	// discovery failures are wrapped as text.
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "unable to resolve an endpoint") {
		return &Error{Kind: KindIdPUnavailable, Message: "the identity provider cannot be reached", Err: err}
	}
	return &Error{Kind: KindInternal, Message: "the downstream token could not be obtained", Err: err}
}

// ErrorBody is the JSON body of every /api/obo error (the page's contract).
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
	// Claims: standard base64 of the claims JSON (insufficient_claims, and
	// consent_required when the IdP sent claims), exactly as in the
	// WWW-Authenticate header; the page atob()s it for msal-browser's claims.
	Claims string `json:"claims,omitempty"`
	// Scopes: the downstream scopes to consent to (consent_required).
	Scopes []string `json:"scopes,omitempty"`
	// UpstreamStatus: the upstream's status code (upstream_error).
	UpstreamStatus int `json:"upstream_status,omitempty"`
	// CorrelationID: the IdP's correlation id, for support.
	CorrelationID string `json:"correlation_id,omitempty"`
}

var defaultMessages = map[string]string{
	"insufficient_claims":     "additional authentication is required: get a new token with these claims",
	"consent_required":        "consent is required for the downstream API",
	"invalid_token":           "the access token cannot be exchanged for the downstream API: sign in again",
	"temporarily_unavailable": "the identity provider is unavailable; try again later",
	"upstream_error":          "the upstream API failed",
	"upstream_timeout":        "the upstream API did not answer in time",
}

// WriteError answers err on w: status, WWW-Authenticate challenge and JSON
// body (ErrorBody). authorizeURL is the authority's authorize endpoint
// (Client.AuthorizeURL), put in challenges as authorization_uri. An error
// that is not an *Error answers 500. Nothing raw from the IdP or the upstream
// is passed on.
func WriteError(w http.ResponseWriter, err error, authorizeURL string) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Kind: KindInternal, Message: "internal error"}
	}
	body := ErrorBody{Message: e.Message, CorrelationID: e.CorrelationID}
	h := w.Header()
	switch e.Kind {
	case KindClaimsChallenge:
		body.Error = "insufficient_claims"
		body.Claims = base64.StdEncoding.EncodeToString([]byte(e.Claims))
		h.Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="", authorization_uri=%q, error="insufficient_claims", claims=%q`,
			authorizeURL, body.Claims))
	case KindConsentRequired:
		body.Error = "consent_required"
		body.Scopes = e.Scopes
		if e.Claims != "" {
			body.Claims = base64.StdEncoding.EncodeToString([]byte(e.Claims))
		}
		c := fmt.Sprintf(`Bearer realm="", authorization_uri=%q, error="consent_required", error_description="consent is required for the downstream API", scope=%q`,
			authorizeURL, strings.Join(e.Scopes, " "))
		if body.Claims != "" {
			c += fmt.Sprintf(`, claims=%q`, body.Claims)
		}
		h.Set("WWW-Authenticate", c)
	case KindInvalidAssertion:
		body.Error = "invalid_token"
		h.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="the access token cannot be exchanged for the downstream API"`)
	case KindIdPUnavailable:
		body.Error = "temporarily_unavailable"
		h.Set("Retry-After", "5")
	case KindUpstream:
		body.Error = "upstream_error"
		body.UpstreamStatus = e.UpstreamStatus
	case KindUpstreamTimeout:
		body.Error = "upstream_timeout"
	case KindConfiguration:
		body.Error = "server_error"
		body.Message = "the API is not configured correctly for the downstream call"
	default:
		body.Error = "server_error"
		body.Message = "internal error"
	}
	if body.Message == "" {
		body.Message = defaultMessages[body.Error]
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(e.Status())
	_ = json.NewEncoder(w).Encode(body)
}
