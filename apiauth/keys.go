package apiauth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/httprc/v3"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// Key management. jwx's jwk.Cache (httprc v3) owns fetching, parsing and the
// periodic background refresh of the JWKS. On top of it:
//   - a snapshot map kid → *rsa.PublicKey, rebuilt only when the key set
//     changes and read with one atomic load per token;
//   - an unknown kid triggers at most one refetch per MinRefreshInterval; all
//     requests arriving while that refetch runs wait for it, the others fail
//     fast, so a flood of bogus kids never multiplies fetches nor blocks;
//   - a failed fetch keeps the last good keys (jwk.Cache only stores on
//     success);
//   - until the first keys arrive the validator is not ready (503) and a
//     background loop retries with backoff.

type verifyKey struct {
	pub *rsa.PublicKey
	// tenant is the tenant id from the key's "issuer" property when it names
	// a specific tenant (Entra publishes it; "" when absent or templated).
	tenant string
}

type keySnapshot struct {
	keys map[string]*verifyKey
	set  jwk.Set // the jwk.Cache value it was built from
}

type issuerRule struct {
	iss      string // exact issuer or a template containing {tenantid}
	template bool
	version  string // "1.0", "2.0" or "" (any accepted)
}

type resolved struct {
	rules   []issuerRule
	jwksURL string
	// tenant is the API's tenant id when the issuers name one tenant (for
	// the "other tenant" hint); "" for multi-tenant configurations.
	tenant string
}

// configError is a discovery result that retrying cannot fix (the validator
// stays unready and says why).
type configError struct{ error }

type refreshCall struct{ done chan struct{} }

type keyProvider struct {
	cfg   *Config
	cache *jwk.Cache
	http  boundedClient // every discovery and JWKS fetch goes through it

	snap atomic.Pointer[keySnapshot]
	res  atomic.Pointer[resolved]

	syncMu sync.Mutex // serialises snapshot rebuilds

	mu      sync.Mutex // guards cur and last
	cur     *refreshCall
	last    time.Time
	onKeys  func() // called after the key set changed (clears the token cache)
	ctx     context.Context
	wg      sync.WaitGroup
	fetches atomic.Int64
	// fetchErr carries background fetch errors to a waiting start-up attempt.
	fetchErr chan error
}

func newKeyProvider(ctx context.Context, cfg *Config, onKeys func()) (*keyProvider, error) {
	p := &keyProvider{cfg: cfg, onKeys: onKeys, ctx: ctx, fetchErr: make(chan error, 1),
		http: boundedClient{c: cfg.HTTPClient, timeout: cfg.FetchTimeout}}
	cl := httprc.NewClient(httprc.WithHTTPClient(p.http), httprc.WithWorkers(1),
		httprc.WithErrorSink(errSink(p.backgroundError)))
	cache, err := jwk.NewCache(ctx, cl)
	if err != nil {
		return nil, err
	}
	p.cache = cache
	return p, nil
}

// boundedClient bounds every request (connection, headers and body) by its
// own timeout, whatever the underlying client's Timeout. httprc runs each
// fetch with its worker's lifetime context, not the caller's, and has one
// worker: without this bound a hanging JWKS endpoint would hold an unknown-kid
// refetch for as long as it hangs and queue every later refresh (and so every
// key rotation) behind it.
type boundedClient struct {
	c       *http.Client
	timeout time.Duration
}

func (b boundedClient) Do(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(req.Context(), b.timeout)
	resp, err := b.c.Do(req.WithContext(ctx))
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// cancelBody releases the request's timeout when the body is closed (the
// timeout keeps bounding the body read until then).
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// errSink receives the jwk.Cache's background fetch errors.
type errSink func(error)

func (f errSink) Put(_ context.Context, err error) { f(err) }

func (p *keyProvider) backgroundError(err error) {
	p.cfg.Logger.Warn("apiauth: background key-set refresh failed; keeping the last good keys", "err", err)
	select { // wake up a start-up attempt waiting for the first fetch
	case p.fetchErr <- err:
	default:
	}
}

// run resolves discovery and loads the first keys, retrying with backoff, then
// follows the jwk.Cache's background refreshes.
func (p *keyProvider) run() {
	defer p.wg.Done()
	backoff := 250 * time.Millisecond
	for {
		err := p.start()
		if err == nil {
			break
		}
		var ce configError
		if errors.As(err, &ce) {
			p.cfg.Logger.Error("apiauth: configuration does not match the authority; API answers 503", "err", err)
			return
		}
		p.cfg.Logger.Warn("apiauth: signing keys not loaded yet; API answers 503 until they are", "err", err, "retry_in", backoff)
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*3/2, 30*time.Second)
	}
	// The jwk.Cache refreshes in the background; pick its new sets up.
	every := max(min(p.cfg.MinRefreshInterval, 30*time.Second), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			if err := p.syncSnapshot(); err != nil {
				p.cfg.Logger.Debug("apiauth: key snapshot", "err", err)
			}
		}
	}
}

func (p *keyProvider) start() error {
	r := p.res.Load()
	if r == nil {
		var err error
		r, err = p.resolve()
		if err != nil {
			return err
		}
		p.res.Store(r)
	}
	if !p.cache.IsRegistered(p.ctx, r.jwksURL) {
		// Registering starts the first fetch in the background; wait for
		// it to succeed or fail (the error sink), then retry with Refresh.
		err := p.cache.Register(p.ctx, r.jwksURL,
			jwk.WithHTTPClient(p.http),
			jwk.WithConstantInterval(p.cfg.RefreshInterval),
			jwk.WithMinInterval(p.cfg.MinRefreshInterval),
			jwk.WithWaitReady(false))
		if err != nil {
			return err
		}
		p.fetches.Add(1)
		res, err := p.cache.LookupResource(p.ctx, r.jwksURL)
		if err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(p.ctx, p.cfg.FetchTimeout+time.Second)
		defer cancel()
		ready := make(chan error, 1)
		go func() { ready <- res.Ready(wctx) }()
		select {
		case err = <-ready:
		case err = <-p.fetchErr:
			cancel()
			<-ready
		}
		if err != nil {
			return err
		}
		return p.syncSnapshot()
	}
	p.fetches.Add(1)
	if err := p.refresh(r.jwksURL); err != nil {
		return err
	}
	return p.syncSnapshot()
}

// refresh fetches the key set now. The fetch itself is bounded by
// FetchTimeout (boundedClient); the wait is bounded too, by twice that plus
// slack, because with one worker the fetch may first queue behind a
// background one.
func (p *keyProvider) refresh(jwksURL string) error {
	ctx, cancel := context.WithTimeout(p.ctx, 2*p.cfg.FetchTimeout+time.Second)
	defer cancel()
	_, err := p.cache.Refresh(ctx, jwksURL)
	return err
}

// resolve reads the discovery documents (or the explicit configuration).
func (p *keyProvider) resolve() (*resolved, error) {
	c := p.cfg
	r := &resolved{jwksURL: c.JWKSURL}
	for i, iss := range c.Issuers {
		ver := ""
		if len(c.IssuerVersions) > 0 {
			ver = c.IssuerVersions[i]
		}
		r.rules = append(r.rules, issuerRule{iss: iss, template: strings.Contains(iss, "{tenantid}"), version: ver})
	}
	defer func() { r.tenant = singleTenant(r.rules) }()
	if c.Authority == "" {
		return r, nil
	}
	for _, ver := range c.Versions {
		u := c.Authority + "/.well-known/openid-configuration"
		if ver == "2.0" {
			u = c.Authority + "/v2.0/.well-known/openid-configuration"
		}
		d, err := p.discover(u)
		if err != nil {
			return nil, err
		}
		tmpl := strings.Contains(d.Issuer, "{tenantid}")
		if tmpl && len(c.AllowedTenants) == 0 {
			return nil, configError{fmt.Errorf("discovery %s: issuer %q is multi-tenant ({tenantid}): set AllowedTenants", u, d.Issuer)}
		}
		r.rules = append(r.rules, issuerRule{iss: d.Issuer, template: tmpl, version: ver})
		if r.jwksURL == "" {
			if err := checkFetchURL(d.JWKSURI); err != nil {
				return nil, fmt.Errorf("discovery %s: jwks_uri: %w", u, err)
			}
			r.jwksURL = d.JWKSURI
		}
	}
	return r, nil
}

// singleTenant returns the tenant id all issuer rules name, or "".
func singleTenant(rules []issuerRule) string {
	t := ""
	for _, r := range rules {
		rt := strings.ToLower(tenantFromIssuer(r.iss))
		if r.template || !isGUID(rt) || (t != "" && rt != t) {
			return ""
		}
		t = rt
	}
	return t
}

type discoveryDoc struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

func (p *keyProvider) discover(u string) (*discoveryDoc, error) {
	req, err := http.NewRequestWithContext(p.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req) // bounded by FetchTimeout
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("discovery %s: %w", u, err)
	}
	var d discoveryDoc
	if err := json.Unmarshal(body, &d); err != nil {
		return nil, fmt.Errorf("discovery %s: %w", u, err)
	}
	if d.Issuer == "" || d.JWKSURI == "" {
		return nil, fmt.Errorf("discovery %s: issuer or jwks_uri missing", u)
	}
	return &d, nil
}

// syncSnapshot rebuilds the kid map when the jwk.Cache holds a new set, and
// clears the validated-token cache when the keys really changed.
func (p *keyProvider) syncSnapshot() error {
	r := p.res.Load()
	if r == nil {
		return errors.New("not resolved")
	}
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	set, err := p.cache.Lookup(p.ctx, r.jwksURL)
	if err != nil {
		return err
	}
	old := p.snap.Load()
	if old != nil && old.set == set {
		return nil
	}
	next := &keySnapshot{keys: make(map[string]*verifyKey, set.Len()), set: set}
	for i := 0; i < set.Len(); i++ {
		k, _ := set.Key(i)
		kid, ok := k.KeyID()
		if !ok || kid == "" {
			continue
		}
		if use, ok := k.KeyUsage(); ok && use != "sig" {
			continue
		}
		var pub rsa.PublicKey
		if err := jwk.Export(k, &pub); err != nil {
			continue // not an RSA public key
		}
		if pub.N.BitLen() < 2048 {
			p.cfg.Logger.Warn("apiauth: ignoring RSA key shorter than 2048 bits", "kid", kid)
			continue
		}
		vk := &verifyKey{pub: &pub}
		var iss string
		if k.Get("issuer", &iss) == nil {
			if t := tenantFromIssuer(iss); isGUID(t) {
				vk.tenant = t
			}
		}
		next.keys[kid] = vk
	}
	if len(next.keys) == 0 {
		return errors.New("key set has no usable RSA signing key")
	}
	changed := old == nil || !sameKeys(old.keys, next.keys)
	p.snap.Store(next)
	if changed {
		kids := make([]string, 0, len(next.keys))
		for kid := range next.keys {
			kids = append(kids, kid)
		}
		slices.Sort(kids)
		p.cfg.Logger.Info("apiauth: signing keys loaded", "kids", kids, "jwks", r.jwksURL)
		if p.onKeys != nil {
			p.onKeys()
		}
	}
	return nil
}

func sameKeys(a, b map[string]*verifyKey) bool {
	if len(a) != len(b) {
		return false
	}
	for kid, ka := range a {
		kb, ok := b[kid]
		if !ok || !ka.pub.Equal(kb.pub) || ka.tenant != kb.tenant {
			return false
		}
	}
	return true
}

// tenantFromIssuer extracts the tenant segment of an Entra issuer
// (https://host/{tid}/v2.0 or https://sts.windows.net/{tid}/).
func tenantFromIssuer(iss string) string {
	s := strings.TrimSuffix(iss, "/")
	s = strings.TrimSuffix(s, "/v2.0")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return ""
}

// key returns the verification key for kid. On a miss it joins the refetch in
// flight, or starts one if the last was at least MinRefreshInterval ago, or
// fails fast.
func (p *keyProvider) key(ctx context.Context, kid string) (*verifyKey, error) {
	s := p.snap.Load()
	if s == nil {
		return nil, &Error{Reason: ReasonNotReady, Status: http.StatusServiceUnavailable, Detail: "no signing keys loaded yet"}
	}
	if k := s.keys[kid]; k != nil {
		return k, nil
	}
	p.refreshForUnknownKid(ctx)
	if k := p.snap.Load().keys[kid]; k != nil {
		return k, nil
	}
	return nil, unauthorized(ReasonUnknownKey, fmt.Sprintf("kid %q not in the key set", truncate(kid, 64)), hintUnknownKey)
}

func (p *keyProvider) refreshForUnknownKid(ctx context.Context) {
	p.mu.Lock()
	c := p.cur
	if c == nil {
		now := time.Now()
		if !p.last.IsZero() && now.Sub(p.last) < p.cfg.MinRefreshInterval {
			p.mu.Unlock()
			return // fail fast: a refetch happened recently
		}
		p.last = now
		c = &refreshCall{done: make(chan struct{})}
		p.cur = c
		p.wg.Add(1)
		go p.refetch(c)
	}
	p.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
	case <-p.ctx.Done():
	}
}

func (p *keyProvider) refetch(c *refreshCall) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		p.cur = nil
		p.mu.Unlock()
		close(c.done)
	}()
	r := p.res.Load()
	if r == nil || !p.cache.IsRegistered(p.ctx, r.jwksURL) {
		return // the start-up loop is still trying
	}
	p.fetches.Add(1)
	if err := p.refresh(r.jwksURL); err != nil {
		p.cfg.Logger.Warn("apiauth: key set refetch failed; keeping the last good keys", "err", err)
		return
	}
	if err := p.syncSnapshot(); err != nil {
		p.cfg.Logger.Warn("apiauth: key set refetch unusable; keeping the last good keys", "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
