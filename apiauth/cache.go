package apiauth

import (
	"sync"
	"sync/atomic"
)

// tokenCache maps a token string to the Principal it validated to. Keying by
// the string itself makes a hit one map lookup (the runtime hashes the string
// and compares it in full on a hit — no collision can substitute a different
// token, unlike a short hash), with no allocation.
//
// It is bounded by bytes: two generations; when the current one is full it
// becomes the previous one and the old previous one is dropped, so entries
// used recently survive (a hit in the previous generation is promoted).
// A generation counter makes a validation that raced with a key change unable
// to insert its result after the cache was cleared.
type tokenCache struct {
	mu        sync.RWMutex
	cur, prev map[string]*cacheEntry
	curBytes  int
	genBytes  int
	gen       atomic.Uint64
}

type cacheEntry struct {
	p *Principal
	g *grants // what the requirements check (not reachable from p)
	// until is the last unix second at which the token is still acceptable
	// (exp + skew).
	until int64
	size  int
}

func newTokenCache(maxBytes int) *tokenCache {
	return &tokenCache{cur: map[string]*cacheEntry{}, genBytes: max(maxBytes/2, 1)}
}

func (c *tokenCache) generation() uint64 { return c.gen.Load() }

func (c *tokenCache) get(token string, now int64) (*Principal, *grants, bool) {
	c.mu.RLock()
	e := c.cur[token]
	promote := false
	if e == nil && c.prev != nil {
		e = c.prev[token]
		promote = e != nil
	}
	c.mu.RUnlock()
	if e == nil || now > e.until {
		return nil, nil, false
	}
	if promote {
		c.mu.Lock()
		if c.prev != nil && c.prev[token] == e {
			delete(c.prev, token)
			c.insertLocked(token, e)
		}
		c.mu.Unlock()
	}
	return e.p, e.g, true
}

func (c *tokenCache) put(token string, p *Principal, g *grants, until int64, gen uint64) {
	e := &cacheEntry{p: p, g: g, until: until, size: entrySize(token, p)}
	c.mu.Lock()
	if c.gen.Load() == gen {
		c.insertLocked(token, e)
	}
	c.mu.Unlock()
}

func (c *tokenCache) insertLocked(token string, e *cacheEntry) {
	if old := c.cur[token]; old != nil {
		c.curBytes -= old.size
	}
	if c.curBytes+e.size > c.genBytes && len(c.cur) > 0 {
		c.prev = c.cur
		c.cur = make(map[string]*cacheEntry, len(c.prev))
		c.curBytes = 0
	}
	c.cur[token] = e
	c.curBytes += e.size
}

// clear drops everything (the key set changed: a revoked key must not keep
// validating through the cache).
func (c *tokenCache) clear() {
	c.mu.Lock()
	c.gen.Add(1)
	c.cur = map[string]*cacheEntry{}
	c.prev = nil
	c.curBytes = 0
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}

// entrySize estimates the memory an entry holds.
func entrySize(token string, p *Principal) int {
	n := len(token) + len(p.RawClaims) + 400
	n += len(p.ObjectID) + len(p.TenantID) + len(p.Subject) + len(p.Name) + len(p.Username) + len(p.AppID) +
		len(p.Version) + len(p.Issuer) + len(p.Audience) + len(p.KeyID)
	for _, s := range p.Scopes {
		n += len(s) + 16
	}
	for _, s := range p.Roles {
		n += len(s) + 16
	}
	for _, s := range p.AMR {
		n += len(s) + 16
	}
	return 2*n - len(token) - len(p.RawClaims) // grants copy scopes and roles
}
