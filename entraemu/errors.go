package entraemu

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// oauthError is an Entra error response: HTTP status, OAuth error code and
// the AADSTS code with its message.
type oauthError struct {
	Status   int
	Code     string // "invalid_grant", ...
	AADSTS   int
	Desc     string // message after "AADSTSnnnn: "
	Suberror string
	Claims   string // JSON text of a claims challenge
}

func (e *oauthError) Error() string { return fmt.Sprintf("%s: AADSTS%d: %s", e.Code, e.AADSTS, e.Desc) }

func newErr(status int, code string, aadsts int, format string, args ...any) *oauthError {
	return &oauthError{Status: status, Code: code, AADSTS: aadsts, Desc: fmt.Sprintf(format, args...)}
}

func invalidRequest(aadsts int, format string, args ...any) *oauthError {
	return newErr(http.StatusBadRequest, "invalid_request", aadsts, format, args...)
}

func invalidGrant(aadsts int, format string, args ...any) *oauthError {
	return newErr(http.StatusBadRequest, "invalid_grant", aadsts, format, args...)
}

func invalidClient(aadsts int, format string, args ...any) *oauthError {
	return newErr(http.StatusUnauthorized, "invalid_client", aadsts, format, args...)
}

func missingParam(name string) *oauthError {
	return invalidRequest(900144, "The request body must contain the following parameter: '%s'.", name)
}

func malformed(reason string) *oauthError {
	return invalidRequest(9002313, "Invalid request. Request is malformed or invalid. [Reason - %s]", reason)
}

// errorBody is the JSON Entra returns on the token endpoint.
type errorBody struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
	ErrorURI         string `json:"error_uri,omitempty"`
	Suberror         string `json:"suberror,omitempty"`
	Claims           string `json:"claims,omitempty"`
}

const entraTime = "2006-01-02 15:04:05Z"

func (s *Server) errorBody(r *http.Request, e *oauthError) errorBody {
	ts := s.now().UTC().Format(entraTime)
	trace, corr := newGUID(), correlationID(r)
	return errorBody{
		Error: e.Code,
		ErrorDescription: fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s",
			e.AADSTS, e.Desc, trace, corr, ts),
		ErrorCodes:    []int{e.AADSTS},
		Timestamp:     ts,
		TraceID:       trace,
		CorrelationID: corr,
		ErrorURI:      s.baseURL() + "/error?code=" + fmt.Sprint(e.AADSTS),
		Suberror:      e.Suberror,
		Claims:        e.Claims,
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *oauthError) {
	body := s.errorBody(r, e)
	if e.Code == "invalid_client" && r.Header.Get("Authorization") != "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.baseURL()+`"`)
	}
	s.log.Info("entra error", "path", r.URL.Path, "error", e.Code, "aadsts", e.AADSTS, "correlation_id", body.CorrelationID)
	writeJSON(w, e.Status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// correlationID echoes the client's client-request-id (header, or query as
// msal-browser sends it) when it is a GUID.
func correlationID(r *http.Request) string {
	for _, c := range []string{r.Header.Get("client-request-id"), r.URL.Query().Get("client-request-id")} {
		if isGUID(c) {
			return strings.ToLower(c)
		}
	}
	return newGUID()
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40
	b[8] = (b[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// errorForCode builds the error Entra sends for an AADSTS code (used by
// FailNextOBO). resource names the downstream app in messages.
func errorForCode(code int, resource, claims string) *oauthError {
	switch code {
	case 50076:
		e := newErr(400, "interaction_required", code, "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '%s'.", resource)
		e.Claims = claims
		return e
	case 50079:
		e := newErr(400, "interaction_required", code, "Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication to access '%s'.", resource)
		e.Claims = claims
		return e
	case 50158:
		e := newErr(400, "interaction_required", code, "External security challenge not satisfied. User will be redirected to another page or authentication provider to satisfy additional authentication challenges.")
		e.Claims = claims
		return e
	case 65001:
		e := invalidGrant(code, "The user or administrator has not consented to use the application with ID '%s'. Send an interactive authorization request for this user and resource.", resource)
		e.Suberror = "consent_required"
		return e
	case 500011:
		return newErr(400, "invalid_resource", code, "The resource principal named %s was not found in the tenant. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", resource)
	case 50013:
		return invalidGrant(code, "Assertion failed signature validation.")
	case 700024:
		return invalidGrant(code, "Client assertion is not within its valid time range.")
	case 500133:
		return invalidGrant(code, "Assertion is not within its valid time range.")
	case 53003:
		return invalidGrant(code, "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
	case 70011:
		return newErr(400, "invalid_scope", code, "The provided value for the input parameter 'scope' is not valid.")
	case 7000215:
		return invalidClient(code, "Invalid client secret provided.")
	case 90033, 90100:
		return newErr(400, "temporarily_unavailable", code, "A transient error has occurred. Please try again.")
	}
	return invalidGrant(code, "Injected failure (devidp FailNextOBO).")
}
