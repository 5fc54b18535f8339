package apiauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// Middleware authenticates every request with a bearer access token: the
// Principal goes into the request context (PrincipalFrom) or the request is
// refused — 401 invalid_token, 400 invalid_request, or 503 while no signing
// keys are loaded. Never 200 without a valid token.
func (v *Validator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, err := bearerToken(r)
		if err != nil {
			v.refuse(w, r, err, token)
			return
		}
		p, g, err := v.check(r.Context(), token)
		if err != nil {
			v.refuse(w, r, err, token)
			return
		}
		// The request gets its own copy of the (possibly cached, shared)
		// Principal, in the one allocation the context value costs anyway.
		ctx := context.WithValue(r.Context(), ctxKey{}, &authInfo{p: *p, g: g, token: token, v: v})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Protect wraps h with the authentication middleware followed by the given
// requirements (all must pass), e.g.
//
//	v.Protect(h, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"}))
func (v *Validator) Protect(h http.Handler, reqs ...func(http.Handler) http.Handler) http.Handler {
	for i := len(reqs) - 1; i >= 0; i-- {
		h = reqs[i](h)
	}
	return v.Middleware(h)
}

func bearerToken(r *http.Request) (string, error) {
	vals := r.Header["Authorization"]
	switch {
	case len(vals) == 0:
		return "", &Error{Reason: ReasonMissingToken, Status: http.StatusUnauthorized, Detail: "no Authorization header"}
	case len(vals) > 1:
		return "", &Error{Reason: ReasonBadRequest, Status: http.StatusBadRequest, Detail: "several Authorization headers"}
	}
	h := vals[0]
	if len(h) < 7 || !strings.EqualFold(h[:7], "Bearer ") {
		return "", &Error{Reason: ReasonMissingToken, Status: http.StatusUnauthorized, Detail: "Authorization is not a Bearer credential"}
	}
	t := h[7:]
	switch t {
	case "", "null", "undefined":
		return "", &Error{Reason: ReasonMissingToken, Status: http.StatusUnauthorized, Detail: "Bearer " + t,
			Hint: "The caller sent \"Bearer " + t + "\": it had no token yet (acquire one with MSAL before calling the API)."}
	}
	return t, nil
}

// requirement builds a middleware that checks the caller's grants (the
// private copy made at validation, not the Principal handlers see).
func requirement(check func(g *grants) *Error) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ai, _ := r.Context().Value(ctxKey{}).(*authInfo)
			if ai == nil || ai.g == nil {
				refuseWith(w, r, nil, &Error{Reason: ReasonNoPrincipal, Status: http.StatusUnauthorized,
					Detail: "requirement used without the authentication middleware"}, "")
				return
			}
			if e := check(ai.g); e != nil {
				refuseWith(w, r, ai.v, e, ai.token)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func forbidden(r Reason, detail, scope, hint string) *Error {
	return &Error{Reason: r, Status: http.StatusForbidden, Detail: detail, Scope: scope, Hint: hint}
}

// RequireScope lets delegated callers through that hold any of scopes.
// App-only callers are refused (403).
func RequireScope(scopes ...string) func(http.Handler) http.Handler {
	want := strings.Join(scopes, " ")
	return requirement(func(g *grants) *Error {
		if g.appOnly {
			return forbidden(ReasonDelegatedOnly, "app-only caller, scope required", want, "This endpoint needs a signed-in user (delegated token with scp).")
		}
		for _, s := range scopes {
			if g.hasScope(s) {
				return nil
			}
		}
		return forbidden(ReasonInsufficientScope, "scp "+strings.Join(g.scopes, " ")+" lacks "+want, want,
			"Request a token with the scope "+want+" for this API.")
	})
}

// RequireRole lets callers through that hold any of roles (app roles of a
// user or app permissions of an application).
func RequireRole(roles ...string) func(http.Handler) http.Handler {
	want := strings.Join(roles, " ")
	return requirement(func(g *grants) *Error {
		for _, r := range roles {
			if g.hasRole(r) {
				return nil
			}
		}
		return forbidden(ReasonInsufficientScope, "roles "+strings.Join(g.roles, " ")+" lack "+want, want,
			"The caller needs the app role "+want+" (assigned to the user or granted to the application).")
	})
}

// RequireScopeOrAppRole accepts delegated callers holding any of scopes and
// app-only callers holding any of appRoles (Identity.Web's
// RequiredScopeOrAppPermission).
func RequireScopeOrAppRole(scopes, appRoles []string) func(http.Handler) http.Handler {
	ws, wr := strings.Join(scopes, " "), strings.Join(appRoles, " ")
	return requirement(func(g *grants) *Error {
		if g.appOnly {
			if slices.ContainsFunc(appRoles, g.hasRole) {
				return nil
			}
			return forbidden(ReasonInsufficientScope, "app roles "+strings.Join(g.roles, " ")+" lack "+wr, wr,
				"Grant the application the app permission "+wr+" (admin consent), then request a new token (scope <api>/.default).")
		}
		if slices.ContainsFunc(scopes, g.hasScope) {
			return nil
		}
		return forbidden(ReasonInsufficientScope, "scp "+strings.Join(g.scopes, " ")+" lacks "+ws, ws,
			"Request a token with the scope "+ws+" for this API.")
	})
}

// DelegatedOnly refuses app-only callers (403).
func DelegatedOnly() func(http.Handler) http.Handler {
	return requirement(func(g *grants) *Error {
		if g.appOnly {
			return forbidden(ReasonDelegatedOnly, "app-only caller on a delegated-only endpoint", "", "This endpoint needs a signed-in user.")
		}
		return nil
	})
}

// AppOnly refuses callers with a user behind them (403).
func AppOnly() func(http.Handler) http.Handler {
	return requirement(func(g *grants) *Error {
		if !g.appOnly {
			return forbidden(ReasonAppOnly, "delegated caller on an app-only endpoint", "", "This endpoint accepts application (client credentials) tokens only.")
		}
		return nil
	})
}

func (v *Validator) refuse(w http.ResponseWriter, r *http.Request, err error, token string) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Reason: ReasonInternal, Status: http.StatusUnauthorized, Detail: err.Error()}
	}
	refuseWith(w, r, v, e, token)
}

type errorBody struct {
	Error  string `json:"error"`
	Reason Reason `json:"reason"`
	Hint   string `json:"hint,omitempty"`
	Scope  string `json:"scope,omitempty"`
}

// refuseWith writes the RFC 6750 answer and logs the precise reason with a
// short hash of the token (never the token).
func refuseWith(w http.ResponseWriter, r *http.Request, v *Validator, e *Error, token string) {
	status := e.Status
	if status == 0 {
		status = http.StatusUnauthorized
	}
	body := errorBody{Reason: e.Reason, Hint: e.Hint}
	hdr := w.Header()
	switch status {
	case http.StatusServiceUnavailable:
		body.Error = "temporarily_unavailable"
		hdr.Set("Retry-After", "5")
	case http.StatusForbidden:
		body.Error = "insufficient_scope"
		body.Scope = e.Scope
		// RFC 6750 §3: scope only when there is one to name (DelegatedOnly
		// and AppOnly refuse the kind of caller, not a missing scope).
		if sc := quoteSafe(e.Scope); sc != "" {
			hdr.Set("WWW-Authenticate", `Bearer error="insufficient_scope", scope="`+sc+`"`)
		} else {
			hdr.Set("WWW-Authenticate", `Bearer error="insufficient_scope"`)
		}
	case http.StatusBadRequest:
		body.Error = "invalid_request"
		hdr.Set("WWW-Authenticate", `Bearer error="invalid_request"`)
	default:
		status = http.StatusUnauthorized
		if e.Reason == ReasonMissingToken {
			// RFC 6750 §3.1: no error code when no credentials were sent.
			body.Error = "unauthorized"
			hdr.Set("WWW-Authenticate", `Bearer`)
		} else {
			body.Error = "invalid_token"
			hdr.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The access token is invalid"`)
		}
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)

	logger := slog.Default()
	var suppressed int64
	if v != nil {
		logger = v.cfg.Logger
		var ok bool
		if ok, suppressed = v.refusals.allow(v.cfg.Now()); !ok {
			return
		}
	}
	attrs := []any{
		slog.Int("status", status), slog.String("reason", string(e.Reason)), slog.String("detail", e.Detail),
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("remote", r.RemoteAddr),
	}
	if token != "" {
		attrs = append(attrs, slog.String("token_sha256", TokenHash(token)))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int64("suppressed_since_last", suppressed))
	}
	logger.Info("apiauth: request refused", attrs...)
}

// TokenHash returns a short sha256 prefix of a token, safe to log to
// correlate requests.
func TokenHash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:6])
}

// quoteSafe keeps a header parameter value inside its quotes.
func quoteSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, s)
}
