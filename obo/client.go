package obo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"golang.org/x/sync/singleflight"
)

// Credential is how the API authenticates itself to the IdP when it redeems
// an assertion: a client secret, a certificate, or a client-assertion callback
// (federated credentials, workload identity).
type Credential struct {
	cred confidential.Credential
	kind string
}

// Kind is "secret", "certificate" or "assertion" ("" for the zero value).
func (c Credential) Kind() string { return c.kind }

// SecretCredential authenticates with a client secret.
func SecretCredential(secret string) (Credential, error) {
	c, err := confidential.NewCredFromSecret(secret)
	if err != nil {
		return Credential{}, fmt.Errorf("obo: client secret: %w", err)
	}
	return Credential{cred: c, kind: "secret"}, nil
}

// CertificateCredential authenticates with a signed client assertion
// (PS256, x5t#S256 header, as MSAL Go sends to Entra) from a PEM certificate
// chain and an unencrypted PEM RSA private key (the two may be one file,
// passed twice or once with the other nil).
func CertificateCredential(certPEM, keyPEM []byte) (Credential, error) {
	pemData := append(append([]byte{}, certPEM...), append([]byte("\n"), keyPEM...)...)
	certs, key, err := confidential.CertFromPEM(pemData, "")
	if err != nil {
		return Credential{}, fmt.Errorf("obo: client certificate: %w", err)
	}
	c, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		return Credential{}, fmt.Errorf("obo: client certificate: %w", err)
	}
	return Credential{cred: c, kind: "certificate"}, nil
}

// AssertionCredential authenticates with a client assertion returned by fn
// on every token request, e.g. a federated token from the platform. fn must be
// safe for concurrent use.
func AssertionCredential(fn func(ctx context.Context) (string, error)) Credential {
	return Credential{kind: "assertion", cred: confidential.NewCredFromAssertionCallback(
		func(ctx context.Context, _ confidential.AssertionRequestOptions) (string, error) { return fn(ctx) })}
}

// FederatedTokenFileCredential is AssertionCredential reading the token from
// path on every request (the platform rewrites the file before the token
// expires), as with AZURE_FEDERATED_TOKEN_FILE in Azure workload identity.
func FederatedTokenFileCredential(path string) Credential {
	return AssertionCredential(func(context.Context) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("obo: read federated token file: %w", err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", errors.New("obo: federated token file is empty")
		}
		return t, nil
	})
}

// InstanceDiscovery selects MSAL's instance discovery (a call to
// login.microsoftonline.com before the first token request).
type InstanceDiscovery int

const (
	// InstanceDiscoveryAuto enables it only for Microsoft's own login hosts;
	// any other authority (the local emulator, a sovereign test host) would
	// otherwise fail offline.
	InstanceDiscoveryAuto InstanceDiscovery = iota
	InstanceDiscoveryOn
	InstanceDiscoveryOff
)

var microsoftHosts = map[string]bool{
	"login.microsoftonline.com": true, "login.windows.net": true, "login.microsoft.com": true,
	"sts.windows.net": true, "login.chinacloudapi.cn": true, "login.partner.microsoftonline.cn": true,
	"login.microsoftonline.us": true, "login-us.microsoftonline.com": true, "login.microsoftonline.de": true,
	"login.usgovcloudapi.net": true,
}

// Config configures a Client.
type Config struct {
	// Authority is the tenant authority, e.g.
	// "https://login.microsoftonline.com/<tenant>" or "https://localhost:8443/<tenant>".
	Authority string
	// ClientID is this API's application (client) id.
	ClientID   string
	Credential Credential
	// HTTPClient makes the IdP calls (e.g. trusting the dev CA). nil = a
	// client with Timeout.
	HTTPClient        *http.Client
	InstanceDiscovery InstanceDiscovery
	// Store caches downstream tokens. nil = NewMemoryStore(DefaultMaxEntries).
	Store Store
	// Timeout bounds one token exchange with the IdP (default 10s). It runs
	// detached from the request that started it, so that a caller giving up
	// does not fail the other callers waiting for the same token.
	Timeout time.Duration
	// MSALMaxTokens and MSALMaxAge bound MSAL's own OBO cache, which never
	// evicts: after that many IdP exchanges, or that age, the MSAL client is
	// replaced by a fresh one (our cache is in front, so nothing is lost but
	// MSAL's duplicate copies). Defaults 1000 and 1h.
	MSALMaxTokens int
	MSALMaxAge    time.Duration
	Logger        *slog.Logger
}

// Source says where a token came from.
type Source string

const (
	SourceCache Source = "cache" // our cache (memory or Redis)
	SourceIdP   Source = "idp"   // an OBO exchange with the IdP
)

// Token is a downstream access token and how it was obtained.
type Token struct {
	AccessToken string
	ExpiresOn   time.Time
	Source      Source
	// Tier is the cache that answered when Source is SourceCache: "memory",
	// "redis", or "msal" (MSAL's own cache, after ours dropped the entry).
	Tier string
	// Coalesced is true when this caller waited for an IdP exchange that
	// another concurrent request started.
	Coalesced bool
	// Latency is the time Token took.
	Latency time.Duration
	// CacheKey is a short, log-safe prefix of the cache key.
	CacheKey string
}

// Stats counts what a Client did since it was created.
type Stats struct {
	CacheHits    int64 // answered from the store
	IdPExchanges int64 // token requests sent to the IdP (failed ones included)
	Coalesced    int64 // callers that joined another caller's exchange
	Errors       int64
	MSALClients  int64 // MSAL clients built (1 + rebuilds)
	// MSALBypasses counts exchanges made with a fresh MSAL client because
	// the key's token had been refused (Forget) and MSAL's cache still held it.
	MSALBypasses int64

	// Successful Token calls and the time they took, summed, by the Source
	// of their answer (a Prometheus summary's _count and _sum). These count
	// callers, the fields above events: callers coalesced into one exchange
	// are each an IdPTokens call; a flight answered from a cache (another
	// flight or instance filled it) is a CacheTokens call for each of its
	// callers. Failed calls are counted in Errors only.
	CacheTokens int64
	CacheTime   time.Duration
	IdPTokens   int64
	IdPTime     time.Duration
}

// Client acquires downstream tokens On-Behalf-Of callers. It is safe for
// concurrent use; create one per API and keep it for the process lifetime.
type Client struct {
	cfg    Config
	authz  string
	store  Store
	sf     singleflight.Group
	mu     sync.Mutex // serialises MSAL client rebuilds
	msal   atomic.Pointer[msalClient]
	hits   atomic.Int64
	idp    atomic.Int64
	shared atomic.Int64
	errs   atomic.Int64
	builds atomic.Int64
	bypass atomic.Int64
	// Successful Token calls by Source, and their latency in nanoseconds.
	cacheCalls atomic.Int64
	cacheNanos atomic.Int64
	idpCalls   atomic.Int64
	idpNanos   atomic.Int64
	log        *slog.Logger
	newMSAL    func() (confidential.Client, error)
	authorty   string
	// forgot holds the keys whose token a downstream API refused (Forget),
	// while MSAL's shared client may still hold that token in its own cache:
	// their exchanges use a fresh MSAL client (an empty cache), so that the
	// refused token is never handed out again. Only the miss path reads it.
	fmu    sync.Mutex
	forgot map[Key]forgotMark
}

// forgotMark is one forgotten key: it applies while gen is the shared MSAL
// client (a rebuilt client has not cached the refused token) and until the
// refused token has expired.
type forgotMark struct {
	gen   *msalClient
	until time.Time
}

// maxForgotten bounds Client.forgot. When it is full of live marks the
// shared MSAL client is replaced instead (which drops every cached token, so
// every mark is obsolete).
const maxForgotten = 10000

type msalClient struct {
	c       confidential.Client
	created time.Time
	used    atomic.Int64
}

// New validates cfg and builds the MSAL confidential client. It makes no
// network call.
func New(cfg Config) (*Client, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("obo: ClientID is required")
	}
	if cfg.Credential.kind == "" {
		return nil, errors.New("obo: a Credential is required")
	}
	u, err := url.Parse(cfg.Authority)
	if err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") == "" {
		return nil, errors.New("obo: Authority must be https://host/<tenant>")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Store == nil {
		cfg.Store = NewMemoryStore(DefaultMaxEntries, nil)
	}
	if cfg.MSALMaxTokens <= 0 {
		cfg.MSALMaxTokens = 1000
	}
	if cfg.MSALMaxAge <= 0 {
		cfg.MSALMaxAge = time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	discovery := instanceDiscovery(u.Hostname(), cfg.InstanceDiscovery)
	authority := strings.TrimRight(cfg.Authority, "/")
	c := &Client{
		cfg:      cfg,
		authz:    authority + "/oauth2/v2.0/authorize",
		store:    cfg.Store,
		log:      cfg.Logger,
		authorty: authority,
		forgot:   map[Key]forgotMark{},
	}
	c.newMSAL = func() (confidential.Client, error) {
		return confidential.New(authority, cfg.ClientID, cfg.Credential.cred,
			confidential.WithHTTPClient(cfg.HTTPClient),
			confidential.WithInstanceDiscovery(discovery))
	}
	mc, err := c.newMSAL()
	if err != nil {
		return nil, fmt.Errorf("obo: build MSAL client: %w", err)
	}
	c.builds.Add(1)
	c.msal.Store(&msalClient{c: mc, created: time.Now()})
	return c, nil
}

// instanceDiscovery is whether MSAL's instance discovery runs for an
// authority on host: on for Microsoft's own login hosts (MSAL's default, which
// also resolves their aliases), off for any other host, where the discovery
// call to login.microsoftonline.com would fail offline or name the wrong
// cloud, unless mode forces it.
func instanceDiscovery(host string, mode InstanceDiscovery) bool {
	switch mode {
	case InstanceDiscoveryOn:
		return true
	case InstanceDiscoveryOff:
		return false
	}
	return microsoftHosts[strings.ToLower(host)]
}

// AuthorizeURL is the authority's authorize endpoint, the authorization_uri
// of the challenges this API sends.
func (c *Client) AuthorizeURL() string { return c.authz }

// Authority is the configured authority without a trailing slash.
func (c *Client) Authority() string { return c.authorty }

// Stats returns the counters. Each is read atomically, the set is not one
// snapshot: under load two fields may be a few calls apart.
func (c *Client) Stats() Stats {
	return Stats{CacheHits: c.hits.Load(), IdPExchanges: c.idp.Load(), Coalesced: c.shared.Load(),
		Errors: c.errs.Load(), MSALClients: c.builds.Load(), MSALBypasses: c.bypass.Load(),
		CacheTokens: c.cacheCalls.Load(), CacheTime: time.Duration(c.cacheNanos.Load()),
		IdPTokens: c.idpCalls.Load(), IdPTime: time.Duration(c.idpNanos.Load())}
}

// observe counts one successful Token call answered from source in lat.
func (c *Client) observe(source Source, lat time.Duration) {
	if source == SourceCache {
		c.cacheCalls.Add(1)
		c.cacheNanos.Add(int64(lat))
		return
	}
	c.idpCalls.Add(1)
	c.idpNanos.Add(int64(lat))
}

// Key is the cache key for assertion and scopes at this client.
func (c *Client) Key(assertion string, scopes []string) Key {
	return NewKey(c.authorty, c.cfg.ClientID, assertion, scopes)
}

// Forget drops the cached token for assertion and scopes, e.g. after the
// downstream API refused it (a 401, a claims challenge). The token is never
// served again: it leaves our store, and the next exchanges for the key skip
// MSAL's own cache (which would otherwise hand the same token back) until the
// refused token expires or the shared MSAL client is replaced.
func (c *Client) Forget(ctx context.Context, assertion string, scopes []string) {
	k := c.Key(assertion, scopes)
	now := time.Now()
	until := now.Add(c.cfg.MSALMaxAge) // the current MSAL client is gone by then
	if e, ok, _ := c.store.Get(ctx, k); ok && e.ExpiresOn.Before(until) {
		until = e.ExpiresOn
	}
	gen := c.msal.Load()
	c.fmu.Lock()
	if len(c.forgot) >= maxForgotten {
		for fk, m := range c.forgot {
			if m.gen != gen || !now.Before(m.until) {
				delete(c.forgot, fk)
			}
		}
	}
	full := len(c.forgot) >= maxForgotten
	if full {
		clear(c.forgot)
	} else {
		c.forgot[k] = forgotMark{gen: gen, until: until}
	}
	c.fmu.Unlock()
	if full {
		c.replaceMSAL(gen)
	}
	_ = c.store.Delete(ctx, k)
	if m, ok := c.store.(refusalMarker); ok {
		_ = m.MarkRefused(ctx, k, until.Sub(now))
	}
}

// forgotten reports whether k was forgotten while mc is the shared MSAL
// client (so mc's cache may hold the refused token).
func (c *Client) forgotten(k Key, mc *msalClient) bool {
	c.fmu.Lock()
	defer c.fmu.Unlock()
	m, ok := c.forgot[k]
	if !ok {
		return false
	}
	if m.gen != mc || !time.Now().Before(m.until) {
		delete(c.forgot, k)
		return false
	}
	return true
}

type flight struct {
	e         Entry
	fromCache bool
}

// Token returns a downstream token for scopes On-Behalf-Of the caller whose
// (already validated) access token is assertion. It answers from the cache
// when it can; concurrent misses for the same key make one IdP exchange,
// bounded by Config.Timeout. If ctx ends first, Token returns at once (the
// exchange continues for the other waiters and fills the cache). Every error
// is an *Error.
func (c *Client) Token(ctx context.Context, assertion string, scopes []string) (Token, error) {
	start := time.Now()
	if assertion == "" {
		c.errs.Add(1)
		return Token{}, &Error{Kind: KindInvalidAssertion, Message: "no access token to exchange"}
	}
	if len(scopes) == 0 {
		c.errs.Add(1)
		return Token{}, &Error{Kind: KindConfiguration, Message: "no downstream scopes configured"}
	}
	k := c.Key(assertion, scopes)
	if e, ok, _ := c.store.Get(ctx, k); ok {
		lat := time.Since(start)
		c.hits.Add(1)
		c.observe(SourceCache, lat)
		return Token{AccessToken: e.AccessToken, ExpiresOn: e.ExpiresOn, Source: SourceCache, Tier: e.Tier,
			Latency: lat, CacheKey: k.short()}, nil
	}
	ch := c.sf.DoChan(string(k[:]), func() (any, error) { return c.exchange(ctx, k, assertion, scopes) })
	select {
	case r := <-ch:
		if r.Err != nil {
			c.errs.Add(1)
			return Token{}, r.Err
		}
		f := r.Val.(flight)
		t := Token{AccessToken: f.e.AccessToken, ExpiresOn: f.e.ExpiresOn, Source: SourceIdP,
			Coalesced: r.Shared, Latency: time.Since(start), CacheKey: k.short()}
		if f.fromCache {
			t.Source, t.Tier = SourceCache, f.e.Tier
		}
		if r.Shared {
			c.shared.Add(1)
		}
		c.observe(t.Source, t.Latency)
		return t, nil
	case <-ctx.Done():
		c.errs.Add(1)
		return Token{}, &Error{Kind: KindIdPUnavailable, Message: "the request ended before the token was obtained", Err: ctx.Err()}
	}
}

// exchange runs once per key at a time (singleflight). It uses a context
// detached from the caller's, bounded by the configured timeout.
func (c *Client) exchange(parent context.Context, k Key, assertion string, scopes []string) (any, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.cfg.Timeout)
	defer cancel()
	// Another flight (or another instance, through Redis) may have filled the
	// cache between our miss and this flight.
	if e, ok, _ := c.store.Get(ctx, k); ok {
		c.hits.Add(1)
		return flight{e: e, fromCache: true}, nil
	}
	if l, ok := c.store.(Locker); ok {
		unlock, e, hit := c.lockOrWait(ctx, l, k)
		if hit {
			c.hits.Add(1)
			return flight{e: e, fromCache: true}, nil
		}
		if unlock != nil {
			defer unlock()
		}
	}
	ar, err := c.acquire(ctx, k, assertion, scopes)
	if err != nil {
		c.idp.Add(1)
		oe := classifyIdP(err, ctx.Err(), scopes)
		c.log.LogAttrs(ctx, slog.LevelWarn, "obo: token exchange failed",
			slog.String("kind", oe.Kind.String()), slog.String("idp_error", oe.IdPError),
			slog.String("suberror", oe.IdPSubError), slog.Any("codes", oe.Codes),
			slog.String("correlation_id", oe.CorrelationID), slog.String("key", k.short()),
			slog.String("cause", causeText(oe)))
		return nil, oe
	}
	e := Entry{AccessToken: ar.AccessToken, ExpiresOn: ar.ExpiresOn, ValidUntil: ar.ExpiresOn.Add(-RefreshMargin)}
	_ = c.store.Set(ctx, k, e)
	if ar.Metadata.TokenSource == confidential.TokenSourceCache {
		// MSAL's own cache still had it (our entry was evicted or forgotten).
		c.hits.Add(1)
		e.Tier = "msal"
		return flight{e: e, fromCache: true}, nil
	}
	c.idp.Add(1)
	return flight{e: e}, nil
}

// acquire asks MSAL for the token: the shared client normally; a fresh
// client (no cache, so a network exchange) for a key forgotten here, or when
// the shared client answered from its cache for a key forgotten meanwhile,
// here or on another instance (the shared store's refusal mark).
func (c *Client) acquire(ctx context.Context, k Key, assertion string, scopes []string) (confidential.AuthResult, error) {
	mc := c.msalClient()
	if !c.forgotten(k, mc) {
		ar, err := mc.c.AcquireTokenOnBehalfOf(ctx, assertion, scopes)
		if err != nil || ar.Metadata.TokenSource != confidential.TokenSourceCache {
			return ar, err
		}
		if !c.forgotten(k, mc) && !c.refusedElsewhere(ctx, k) {
			return ar, nil
		}
	}
	fresh, err := c.newMSAL()
	if err != nil { // cannot happen with a config New accepted
		return confidential.AuthResult{}, &Error{Kind: KindInternal, Message: "the downstream token could not be obtained", Err: err}
	}
	c.bypass.Add(1)
	return fresh.AcquireTokenOnBehalfOf(ctx, assertion, scopes)
}

// refusedElsewhere reports whether the shared store holds a refusal mark
// for k (another instance's Forget).
func (c *Client) refusedElsewhere(ctx context.Context, k Key) bool {
	m, ok := c.store.(refusalMarker)
	if !ok {
		return false
	}
	refused, err := m.Refused(ctx, k)
	return err == nil && refused
}

// lockPoll is how often an instance waiting for another instance's exchange
// looks for its result.
const lockPoll = 25 * time.Millisecond

// lockOrWait takes the cross-instance lock on k, or waits for the holder's
// token to appear in the store (hit), for at most half the exchange timeout;
// then, or if the lock store fails, it lets the caller exchange anyway.
func (c *Client) lockOrWait(ctx context.Context, l Locker, k Key) (unlock func(), e Entry, hit bool) {
	giveUp := time.Now().Add(c.cfg.Timeout / 2)
	for {
		u, ok, err := l.Lock(ctx, k, c.cfg.Timeout)
		if err != nil {
			return nil, Entry{}, false
		}
		if ok {
			// The previous holder may have finished just before.
			if e, hit, _ := c.store.Get(ctx, k); hit {
				u()
				return nil, e, true
			}
			return u, Entry{}, false
		}
		if time.Now().After(giveUp) {
			return nil, Entry{}, false
		}
		select {
		case <-ctx.Done():
			return nil, Entry{}, false
		case <-time.After(lockPoll):
		}
		if e, hit, _ := c.store.Get(ctx, k); hit {
			return nil, e, true
		}
	}
}

// causeText is the underlying error's text for logs, except for IdP HTTP
// errors whose text embeds the whole response (we log its parsed fields).
func causeText(e *Error) string {
	if e.Err == nil {
		return ""
	}
	s := e.Err.Error()
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}

// msalClient returns the current MSAL client, replacing it first when it has
// made MSALMaxTokens exchanges or is older than MSALMaxAge. The old client is
// dropped (requests still using it finish normally) and with it every OBO
// token MSAL cached, which is what bounds MSAL's never-evicting cache.
func (c *Client) msalClient() *msalClient {
	mc := c.msal.Load()
	if mc.used.Add(1) <= int64(c.cfg.MSALMaxTokens) && time.Since(mc.created) < c.cfg.MSALMaxAge {
		return mc
	}
	return c.replaceMSAL(mc)
}

// replaceMSAL replaces the shared MSAL client mc with a fresh one (unless
// another goroutine already did) and returns the current client.
func (c *Client) replaceMSAL(mc *msalClient) *msalClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.msal.Load(); cur != mc {
		return cur
	}
	fresh, err := c.newMSAL()
	if err != nil { // cannot happen with a config New accepted; keep the old one
		c.log.Error("obo: rebuilding the MSAL client failed", "err", err.Error())
		return mc
	}
	nc := &msalClient{c: fresh, created: time.Now()}
	nc.used.Store(1)
	c.msal.Store(nc)
	c.builds.Add(1)
	return nc
}
