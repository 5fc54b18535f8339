package apiauth

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Validator validates Entra ID access tokens for one API. It is safe for
// concurrent use. Create it with New and stop its background work with Close.
type Validator struct {
	cfg       Config
	keys      *keyProvider
	cache     *tokenCache
	cancel    context.CancelFunc
	audiences map[string]bool
	audList   string // for hints
	algs      map[string]bool
	v1, v2    bool
	tenants   map[string]bool
	anyTenant bool
	// multi is true for a common/organizations/consumers authority: every
	// token's tid must then be on the allow-list.
	multi     bool
	skew      int64
	closeOnce sync.Once
	closeErr  error
	refusals  logLimiter
}

// New checks cfg and starts loading the signing keys in the background. It
// does not wait for the IdP: until the keys arrive Validate returns an error
// with Reason ReasonNotReady (the middleware answers 503). Use WaitReady to
// block until then.
func New(cfg Config) (*Validator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	v := &Validator{
		cfg:       cfg,
		audiences: map[string]bool{cfg.ClientID: true, "api://" + cfg.ClientID: true},
		algs:      map[string]bool{},
		tenants:   map[string]bool{},
		skew:      int64(cfg.ClockSkew / time.Second),
		refusals:  logLimiter{perSecond: cfg.RefusalLogsPerSecond},
	}
	for _, a := range cfg.Audiences {
		v.audiences[a] = true
	}
	auds := make([]string, 0, len(v.audiences))
	for a := range v.audiences {
		auds = append(auds, fmt.Sprintf("%q", a))
	}
	slices.Sort(auds)
	v.audList = strings.Join(auds, " or ")
	for _, a := range cfg.Algorithms {
		v.algs[a] = true
	}
	for _, ver := range cfg.Versions {
		v.v1 = v.v1 || ver == "1.0"
		v.v2 = v.v2 || ver == "2.0"
	}
	for _, t := range cfg.AllowedTenants {
		if t == "*" {
			v.anyTenant = true
			continue
		}
		if !isGUID(t) {
			return nil, fmt.Errorf("apiauth: allowed tenant %q is not a tenant id (GUID)", t)
		}
		v.tenants[strings.ToLower(t)] = true
	}
	// A multi-tenant configuration without an allow-list would refuse every
	// token (tenant_not_allowed): say so at start-up instead. A domain-name
	// or tenant-id authority is single-tenant; its tenant comes from the
	// discovered issuer (and a discovered {tenantid} issuer is checked the
	// same way once known, see keyProvider.resolve).
	noAllowList := len(v.tenants) == 0 && !v.anyTenant
	if cfg.Authority != "" && isMultiTenantSegment(tenantFromAuthority(cfg.Authority)) {
		v.multi = true
		if noAllowList {
			return nil, fmt.Errorf("apiauth: authority %q is multi-tenant: set AllowedTenants (tenant ids, or \"*\" for any tenant)", cfg.Authority)
		}
	}
	for _, iss := range cfg.Issuers {
		if strings.Contains(iss, "{tenantid}") && noAllowList {
			return nil, fmt.Errorf("apiauth: issuer %q is multi-tenant ({tenantid}): set AllowedTenants (tenant ids, or \"*\" for any tenant)", iss)
		}
	}
	if cfg.CacheBytes > 0 {
		v.cache = newTokenCache(cfg.CacheBytes)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v.cancel = cancel
	kp, err := newKeyProvider(ctx, &v.cfg, v.keysChanged)
	if err != nil {
		cancel()
		return nil, err
	}
	v.keys = kp
	kp.wg.Add(1)
	go kp.run()
	return v, nil
}

func (v *Validator) keysChanged() {
	if v.cache != nil {
		v.cache.clear()
	}
}

// Close stops the background key refresh and waits for it. It is safe to
// call more than once.
func (v *Validator) Close() error {
	v.closeOnce.Do(func() {
		v.cancel()
		v.keys.wg.Wait()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v.closeErr = v.keys.cache.Shutdown(sctx)
	})
	return v.closeErr
}

// Ready reports whether signing keys are loaded (for /readyz).
func (v *Validator) Ready() bool { return v.keys.snap.Load() != nil }

// WaitReady blocks until the keys are loaded or ctx ends.
func (v *Validator) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !v.Ready() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// KeyFetches returns how many key-set fetches were started (metrics, tests).
func (v *Validator) KeyFetches() int64 { return v.keys.fetches.Load() }

// Validate checks token and returns the caller. Errors are *Error values.
// A token seen before and still within exp costs one map lookup.
//
// The Principal of a cached token is shared by every request presenting that
// token: treat it and its slices as read-only. Authorization by the
// requirements (RequireScope, …) never reads it, so a handler that modifies
// it cannot change what a later request is allowed to do.
func (v *Validator) Validate(ctx context.Context, token string) (*Principal, error) {
	p, _, err := v.check(ctx, token)
	return p, err
}

// check is Validate also returning the grants the requirements check.
func (v *Validator) check(ctx context.Context, token string) (*Principal, *grants, error) {
	if len(token) > v.cfg.MaxTokenSize {
		return nil, nil, unauthorized(ReasonTooLarge, fmt.Sprintf("token of %d bytes exceeds the %d-byte cap", len(token), v.cfg.MaxTokenSize), "")
	}
	var gen uint64
	if v.cache != nil {
		if p, g, ok := v.cache.get(token, v.cfg.Now().Unix()); ok {
			return p, g, nil
		}
		gen = v.cache.generation()
	}
	p, until, err := v.validate(ctx, token)
	if err != nil {
		return nil, nil, err
	}
	g := newGrants(p)
	if v.cache != nil {
		v.cache.put(token, p, g, until, gen)
	}
	return p, g, nil
}

var b64 = base64.RawURLEncoding.Strict()

// b64url marks the base64url alphabet.
var b64url = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return
}()

// bytesOf views s as bytes without copying; the result must not be modified.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// decodePart decodes canonical unpadded base64url: the alphabet was checked
// by the caller (no '=', no CR/LF, which base64 would otherwise skip) and the
// strict decoder refuses non-zero trailing bits, so exactly one encoding of
// each byte string is accepted.
func decodePart(dst []byte, s string) ([]byte, error) {
	n := b64.DecodedLen(len(s))
	if cap(dst) < n {
		dst = make([]byte, n)
	}
	m, err := b64.Decode(dst[:n], bytesOf(s))
	if err != nil {
		return nil, err
	}
	return dst[:m], nil
}

type header struct {
	alg, kid  []byte
	typ       []byte
	hasTyp    bool
	headerKey string
	crit      bool
	other     string // a member that makes this not a plain JWS (enc, zip, b64)
}

func parseHeader(b []byte) (header, error) {
	var h header
	err := parseObject(b, func(key []byte, esc bool, val []byte, kind byte) error {
		if esc {
			key = []byte(unescape(key, true))
		}
		switch string(key) {
		case "alg", "kid", "typ":
			if kind != kindString {
				return fmt.Errorf("header %s is not a string", key)
			}
			raw := val[1 : len(val)-1]
			if esc2 := slices.Contains(raw, '\\'); esc2 {
				raw = []byte(unescape(raw, true))
			}
			switch string(key) {
			case "alg":
				h.alg = raw
			case "kid":
				h.kid = raw
			default:
				h.typ, h.hasTyp = raw, true
			}
		case "jku", "x5u", "jwk", "x5c":
			h.headerKey = string(key)
		case "crit":
			h.crit = true
		case "enc", "zip", "b64":
			h.other = string(key)
		}
		return nil
	})
	return h, err
}

// validate is the full check of a token not in the cache. It returns the
// principal and the last unix second at which it stays acceptable.
func (v *Validator) validate(ctx context.Context, token string) (*Principal, int64, error) {
	// 1. Shape: exactly three non-empty base64url parts, checked before any decoding.
	n := len(token)
	if n == 0 {
		return nil, 0, unauthorized(ReasonMissingToken, "empty token", "")
	}
	d1, d2 := -1, -1
	for i := 0; i < n; i++ {
		c := token[i]
		if c == '.' {
			switch {
			case d1 < 0:
				d1 = i
			case d2 < 0:
				d2 = i
			default:
				return nil, 0, unauthorized(ReasonTokenKind, "more than 3 parts (JWE or nested token)", "Encrypted (JWE) tokens are not accepted; send a signed access token.")
			}
			continue
		}
		if !b64url[c] {
			return nil, 0, malformed(fmt.Sprintf("byte 0x%02x at offset %d is not base64url", c, i))
		}
	}
	if d2 < 0 {
		return nil, 0, malformed("not a compact JWS (needs 3 parts)")
	}
	if d1 == 0 || d2 == d1+1 || d2 == n-1 {
		return nil, 0, malformed("empty JWS part")
	}

	// 2. Header: strict JSON, alg allow-list, kid required, no header keys, no crit.
	var hbuf [512]byte
	hb, err := decodePart(hbuf[:0], token[:d1])
	if err != nil {
		return nil, 0, malformed("header: non-canonical base64url")
	}
	h, err := parseHeader(hb)
	if err != nil {
		return nil, 0, malformed("header: " + err.Error())
	}
	if h.other != "" {
		return nil, 0, unauthorized(ReasonTokenKind, "header member "+h.other+" not supported", "")
	}
	if !v.algs[string(h.alg)] {
		return nil, 0, unauthorized(ReasonAlgorithm, fmt.Sprintf("alg %q not allowed", truncate(string(h.alg), 32)), "")
	}
	if len(h.kid) == 0 {
		return nil, 0, unauthorized(ReasonMissingKeyID, "no kid in the header", "")
	}
	if len(h.kid) > 256 {
		return nil, 0, malformed("kid longer than 256 bytes")
	}
	if h.headerKey != "" {
		return nil, 0, unauthorized(ReasonHeaderKey, "header carries "+h.headerKey+" (header-supplied keys are never used)", "")
	}
	if h.crit {
		return nil, 0, unauthorized(ReasonCritical, "crit header present; no extension is understood", "")
	}
	if h.hasTyp && !strings.EqualFold(string(h.typ), "JWT") && !strings.EqualFold(string(h.typ), "at+jwt") && !strings.EqualFold(string(h.typ), "application/at+jwt") {
		return nil, 0, unauthorized(ReasonType, fmt.Sprintf("typ %q", truncate(string(h.typ), 32)), "")
	}

	// 3. Key by kid (unknown kid → rate-limited refetch).
	key, err := v.keys.key(ctx, string(h.kid))
	if err != nil {
		return nil, 0, err
	}

	// 4. Signature.
	var sbuf [1024]byte
	sig, err := decodePart(sbuf[:0], token[d2+1:])
	if err != nil {
		return nil, 0, malformed("signature: non-canonical base64url")
	}
	if err := verify(string(h.alg), key.pub, token[:d2], sig); err != nil {
		e := unauthorized(ReasonSignature, "signature does not verify", "")
		// A Graph token cannot be verified by design (nonce); say so. The
		// payload is unverified here, so the answer uses fixed text only:
		// nothing the sender chose (its aud) is echoed.
		if pb, err := decodePart(nil, token[d1+1:d2]); err == nil {
			if c, err := parseClaims(pb); err == nil && isGraphAud(c.aud) {
				e.Hint = hintGraphUnverified
				e.Reason = ReasonGraphToken
				e.Detail = "signature does not verify; unverified aud names Microsoft Graph"
			}
		}
		return nil, 0, e
	}

	// 5. Claims.
	payload, err := decodePart(nil, token[d1+1:d2])
	if err != nil {
		return nil, 0, malformed("payload: non-canonical base64url")
	}
	c, err := parseClaims(payload)
	if err != nil {
		return nil, 0, unauthorized(ReasonClaims, err.Error(), "")
	}
	until, err := v.checkClaims(&c, key)
	if err != nil {
		return nil, 0, err
	}
	return c.principal(payload, string(h.kid)), until, nil
}

func verify(alg string, pub *rsa.PublicKey, signingInput string, sig []byte) error {
	in := bytesOf(signingInput)
	switch alg {
	case "RS256", "PS256":
		d := sha256.Sum256(in)
		if alg == "RS256" {
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig)
		}
		return rsa.VerifyPSS(pub, crypto.SHA256, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "RS384", "PS384":
		d := sha512.Sum384(in)
		if alg == "RS384" {
			return rsa.VerifyPKCS1v15(pub, crypto.SHA384, d[:], sig)
		}
		return rsa.VerifyPSS(pub, crypto.SHA384, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	case "RS512", "PS512":
		d := sha512.Sum512(in)
		if alg == "RS512" {
			return rsa.VerifyPKCS1v15(pub, crypto.SHA512, d[:], sig)
		}
		return rsa.VerifyPSS(pub, crypto.SHA512, d[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return fmt.Errorf("unsupported alg")
}

// ErrorStatus returns the HTTP status for err (401 unless err is an *Error
// saying otherwise).
func ErrorStatus(err error) int {
	if e, ok := err.(*Error); ok && e.Status != 0 {
		return e.Status
	}
	return http.StatusUnauthorized
}
