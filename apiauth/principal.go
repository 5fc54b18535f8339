package apiauth

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"time"
)

// Principal is the validated caller, read from the access token. A Principal
// returned by Validate may be shared between requests (validated-token cache):
// treat it and its slices as read-only. The middleware hands each request its
// own copy of the struct (PrincipalFrom), whose slices are still shared, so
// do not write into them (append copies: they are clipped). Authorization
// never depends on it: the requirements check a private copy of the scopes,
// roles and caller kind taken at validation.
type Principal struct {
	ObjectID string // oid: the user's or the calling service principal's object id
	TenantID string // tid
	Subject  string // sub (pairwise per application)
	Name     string // name (delegated tokens)
	// Username is preferred_username (v2), else upn or unique_name (v1).
	Username string
	// AppID is the calling client application: azp (v2) or appid (v1).
	AppID string
	// Scopes are the delegated permissions (scp), Roles the app roles
	// (app permissions for app-only callers, assigned roles for users).
	Scopes []string
	Roles  []string
	// AppOnly is true for an app-only (client credentials) caller:
	// idtyp=app, or roles without scp when idtyp is not emitted.
	AppOnly                        bool
	AMR                            []string // authentication methods (amr), e.g. ["pwd","mfa"]
	Version                        string   // ver: "1.0" or "2.0"
	Issuer                         string   // iss
	Audience                       string   // the aud value that matched
	IssuedAt, NotBefore, ExpiresAt time.Time
	// RawClaims is the decoded claims JSON (the token payload); use Claim to
	// read a claim that has no field here.
	RawClaims json.RawMessage
	// KeyID is the kid of the signing key.
	KeyID string
}

// Delegated reports whether a user is behind the call (the token carries scp).
func (p *Principal) Delegated() bool { return !p.AppOnly }

// HasScope reports whether the delegated scopes include s.
func (p *Principal) HasScope(s string) bool { return !p.AppOnly && slices.Contains(p.Scopes, s) }

// HasRole reports whether roles include r.
func (p *Principal) HasRole(r string) bool { return slices.Contains(p.Roles, r) }

// Claim decodes the named claim into v (encoding/json rules).
func (p *Principal) Claim(name string, v any) error {
	var found []byte
	err := parseObject(p.RawClaims, func(key []byte, esc bool, val []byte, _ byte) error {
		if unescape(key, esc) == name {
			found = val
		}
		return nil
	})
	if err != nil {
		return err
	}
	if found == nil {
		return errors.New("apiauth: claim " + name + " not present")
	}
	return json.Unmarshal(found, v)
}

// LogValue keeps log lines short and free of raw claims.
func (p *Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("oid", p.ObjectID), slog.String("tid", p.TenantID),
		slog.String("app", p.AppID), slog.Bool("app_only", p.AppOnly),
		slog.String("ver", p.Version))
}

// clip clips p's slices, so that an append by a handler copies instead of
// writing into a backing array other requests share.
func (p *Principal) clip() {
	p.Scopes, p.Roles, p.AMR, p.RawClaims = slices.Clip(p.Scopes), slices.Clip(p.Roles), slices.Clip(p.AMR), slices.Clip(p.RawClaims)
}

// grants is what the requirements check: a private copy of the
// authorization-relevant claims, made once per validated token and stored
// next to (not inside) the Principal, so that no code holding the Principal
// can change it.
type grants struct {
	scopes, roles []string
	appOnly       bool
}

func newGrants(p *Principal) *grants {
	return &grants{scopes: slices.Clone(p.Scopes), roles: slices.Clone(p.Roles), appOnly: p.AppOnly}
}

func (g *grants) hasScope(s string) bool { return !g.appOnly && slices.Contains(g.scopes, s) }
func (g *grants) hasRole(r string) bool  { return slices.Contains(g.roles, r) }

type ctxKey struct{}

// authInfo is what the middleware stores in the request context (one value,
// one allocation, which also holds the request's copy of the Principal).
type authInfo struct {
	p     Principal // this request's copy (PrincipalFrom)
	g     *grants   // nil: no principal
	token string
	v     *Validator
}

// PrincipalFrom returns the caller placed in ctx by the middleware: a copy
// for this request (see Principal for what stays shared).
func PrincipalFrom(ctx context.Context) (*Principal, bool) {
	ai, ok := ctx.Value(ctxKey{}).(*authInfo)
	if !ok || ai.g == nil {
		return nil, false
	}
	return &ai.p, true
}

// BearerTokenFrom returns the raw, validated access token of the request (for
// On-Behalf-Of exchanges). Never log it.
func BearerTokenFrom(ctx context.Context) (string, bool) {
	ai, ok := ctx.Value(ctxKey{}).(*authInfo)
	if !ok || ai.token == "" {
		return "", false
	}
	return ai.token, true
}

// WithPrincipal returns a context carrying p (and the raw token, which may be
// empty); for tests of handlers and for non-HTTP transports.
// The requirements check p as it is at this call.
func WithPrincipal(ctx context.Context, p *Principal, token string) context.Context {
	ai := &authInfo{token: token}
	if p != nil {
		ai.p, ai.g = *p, newGrants(p)
		ai.p.clip()
	}
	return context.WithValue(ctx, ctxKey{}, ai)
}
