package obo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestNewKeyNormalisesScopesAndSeparatesInputs(t *testing.T) {
	a := NewKey("https://h/t", "c", "tok", []string{"B", " a ", "b"})
	if b := NewKey("https://h/t/", "c", "tok", []string{"a", "b"}); a != b {
		t.Fatal("order, case, duplicates or a trailing slash changed the key")
	}
	for name, k := range map[string]Key{
		"assertion": NewKey("https://h/t", "c", "tok2", []string{"a", "b"}),
		"scopes":    NewKey("https://h/t", "c", "tok", []string{"a"}),
		"client":    NewKey("https://h/t", "c2", "tok", []string{"a", "b"}),
		"authority": NewKey("https://h/t2", "c", "tok", []string{"a", "b"}),
		// field boundaries: moving bytes between fields must not collide
		"boundary": NewKey("https://h/t", "ctok", "", []string{"a", "b"}),
	} {
		if k == a {
			t.Errorf("different %s, same key", name)
		}
	}
	if strings.Contains(a.String(), "tok") || len(a.String()) != 64 {
		t.Fatalf("key string %q", a.String())
	}
}

func entry(tok string, validFor time.Duration) Entry {
	now := time.Now()
	return Entry{AccessToken: tok, ExpiresOn: now.Add(validFor + RefreshMargin), ValidUntil: now.Add(validFor)}
}

func TestMemoryStoreIsBoundedLRUAndDropsExpired(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	m := NewMemoryStore(3, clock)
	k := func(i int) Key { return NewKey("https://h/t", "c", string(rune('a'+i)), []string{"s"}) }
	for i := 0; i < 3; i++ {
		_ = m.Set(ctx, k(i), Entry{AccessToken: "t", ValidUntil: now.Add(time.Minute)})
	}
	if _, ok, _ := m.Get(ctx, k(0)); !ok { // k(0) becomes most recent
		t.Fatal("miss")
	}
	_ = m.Set(ctx, k(3), Entry{AccessToken: "t3", ValidUntil: now.Add(time.Minute)})
	if m.Len() != 3 {
		t.Fatalf("len %d, want 3", m.Len())
	}
	if _, ok, _ := m.Get(ctx, k(1)); ok {
		t.Fatal("least recently used entry was not evicted")
	}
	if e, ok, _ := m.Get(ctx, k(3)); !ok || e.AccessToken != "t3" || e.Tier != "memory" {
		t.Fatalf("got %+v %v", e, ok)
	}
	now = now.Add(time.Minute) // ValidUntil reached: expired
	if _, ok, _ := m.Get(ctx, k(3)); ok {
		t.Fatal("expired entry served")
	}
	if err := m.Set(ctx, k(4), Entry{AccessToken: "old", ValidUntil: now}); err != nil || m.Len() > 2 {
		// the already-expired entry is not stored, and the set dropped expired tails
		t.Fatalf("len %d err %v", m.Len(), err)
	}
	_ = m.Delete(ctx, k(0))
	if _, ok, _ := m.Get(ctx, k(0)); ok {
		t.Fatal("deleted entry served")
	}
}

func TestKeyringParsesRotatesAndRejectsBadKeys(t *testing.T) {
	for _, bad := range []string{"", "not base64!", base64.StdEncoding.EncodeToString(make([]byte, 16))} {
		if _, err := KeyringFromBase64(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	k1, k2 := NewRandomKey(), NewRandomKey()
	old, _ := KeyringFromBase64(k1)
	rotated, err := KeyringFromBase64(k2 + ", " + strings.TrimRight(k1, "="))
	if err != nil {
		t.Fatal(err)
	}
	f := t.TempDir() + "/key"
	_ = os.WriteFile(f, []byte(k1+"\n"), 0o600)
	if fromFile, err := KeyringFromFile(f); err != nil || fromFile.CurrentKeyID() != old.CurrentKeyID() {
		t.Fatalf("key file: %v", err)
	}
	if rotated.CurrentKeyID() == old.CurrentKeyID() {
		t.Fatal("current key is not the first one")
	}
	e := entry("secret-token", time.Hour)
	v := old.seal("rk", e)
	if got, err := rotated.open("rk", v); err != nil || got.AccessToken != e.AccessToken ||
		!got.ValidUntil.Equal(e.ValidUntil.Truncate(time.Millisecond)) {
		t.Fatalf("value sealed with the old key not readable after rotation: %v", err)
	}
	if _, err := old.open("rk", rotated.seal("rk", e)); err == nil {
		t.Fatal("value sealed with a key the keyring lacks was opened")
	}
	if _, err := old.open("other-key", v); err == nil {
		t.Fatal("value moved to another Redis key was opened")
	}
	tampered := []byte(v)
	tampered[len(tampered)-3] ^= 1
	if _, err := old.open("rk", string(tampered)); err == nil {
		t.Fatal("tampered value opened")
	}
}

func TestRedisStoreEncryptsAtRestWithTTL(t *testing.T) {
	rdb, prefix := testRedis(t)
	ctx := context.Background()
	kr, _ := KeyringFromBase64(NewRandomKey())
	s := NewRedisStore(rdb, prefix, kr)
	k := NewKey("https://h/t", "c", "user-assertion", []string{"s"})
	e := entry("eyJ.downstream.token", 10*time.Minute)
	if err := s.Set(ctx, k, e); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Get(ctx, k)
	if err != nil || !ok || got.AccessToken != e.AccessToken || got.Tier != "redis" {
		t.Fatalf("get: %+v %v %v", got, ok, err)
	}
	ttl := rdb.TTL(ctx, s.RedisKey(k)).Val()
	if ttl < 9*time.Minute || ttl > 10*time.Minute {
		t.Fatalf("TTL %v, want ≈ ValidUntil-now (10m)", ttl)
	}
	// What a Redis dump holds: a hashed key and an opaque value.
	raw := rdb.Get(ctx, s.RedisKey(k)).Val()
	if strings.Contains(raw, "downstream") || strings.Contains(s.RedisKey(k), "user-assertion") {
		t.Fatal("token or assertion visible in Redis")
	}
	otherKey, _ := KeyringFromBase64(NewRandomKey())
	if _, ok, _ := NewRedisStore(rdb, prefix, otherKey).Get(ctx, k); ok {
		t.Fatal("value usable without the key")
	}
	// Copying user A's value under user B's key yields nothing.
	kb := NewKey("https://h/t", "c", "user-b", []string{"s"})
	rdb.Set(ctx, s.RedisKey(kb), raw, time.Minute)
	if _, ok, _ := s.Get(ctx, kb); ok {
		t.Fatal("value moved between keys was served")
	}
	_ = s.Delete(ctx, k)
	if _, ok, _ := s.Get(ctx, k); ok {
		t.Fatal("deleted")
	}
}

func TestTieredStoreDegradesToMemoryWhenRedisDies(t *testing.T) {
	rdb, prefix, proxy := proxiedRedis(t)
	kr, _ := KeyringFromBase64(NewRandomKey())
	var logs syncBuffer
	l2 := NewRedisStore(rdb, prefix, kr)
	ts := NewTieredStore(NewMemoryStore(100, nil), l2, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	k1 := NewKey("https://h/t", "c", "a1", []string{"s"})
	_ = ts.Set(ctx, k1, entry("t1", time.Hour))
	if _, ok, _ := l2.Get(ctx, k1); !ok {
		t.Fatal("not written through to Redis")
	}
	// A second instance (empty memory) reads it from Redis and fills its L1.
	ts2 := NewTieredStore(NewMemoryStore(100, nil), l2, discardLogger())
	if e, ok, _ := ts2.Get(ctx, k1); !ok || e.Tier != "redis" {
		t.Fatalf("instance 2: %+v %v", e, ok)
	}
	if e, ok, _ := ts2.Get(ctx, k1); !ok || e.Tier != "memory" {
		t.Fatalf("instance 2 second read: %+v %v", e, ok)
	}

	proxy.Close() // Redis "stops"
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			k := NewKey("https://h/t", "c", "b"+string(rune('a'+i)), []string{"s"})
			if err := ts.Set(ctx, k, entry("t", time.Hour)); err != nil {
				t.Error(err)
			}
			if _, ok, err := ts.Get(ctx, k); !ok || err != nil {
				t.Errorf("memory tier lost an entry while Redis is down: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if _, ok, _ := ts.Get(ctx, k1); !ok {
		t.Fatal("entry lost")
	}
	out := logs.String()
	if n := strings.Count(out, "shared token cache unavailable"); n != 1 {
		t.Fatalf("want exactly one (rate-limited) warning, got %d:\n%s", n, out)
	}
	if !strings.Contains(out, "level=WARN") {
		t.Fatalf("not a warning: %s", out)
	}
}

// TestForgetReachesOtherInstancesThroughRedis: instance A forgets a token
// (the upstream refused it); instance B, which holds it in memory, stops
// serving it once its memory copy reaches L1MaxAge and reads Redis again,
// where the token is gone; B then gets a new token.
func TestForgetReachesOtherInstancesThroughRedis(t *testing.T) {
	a, b, f, _, _, advanceB := twoTieredInstances(t)
	ctx := context.Background()
	get := func(c *Client) Token {
		t.Helper()
		tok, err := c.Token(ctx, "shared", graphScopes)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	t1 := get(a)
	if tok := get(b); tok.AccessToken != t1.AccessToken || tok.Tier != "redis" {
		t.Fatalf("B from Redis: %+v", tok)
	}
	if tok := get(b); tok.Tier != "memory" {
		t.Fatalf("B from memory: %+v", tok)
	}
	a.Forget(ctx, "shared", graphScopes)
	if tok := get(b); tok.AccessToken != t1.AccessToken {
		t.Fatalf("B within L1MaxAge: %+v", tok) // documented: up to a minute
	}
	advanceB(DefaultL1MaxAge + time.Second)
	tok := get(b)
	if tok.AccessToken == t1.AccessToken {
		t.Fatal("instance B still serves the token instance A forgot")
	}
	if tok.Source != SourceIdP || f.obo.Load() != 2 {
		t.Fatalf("B after the forget: %+v, %d grants", tok, f.obo.Load())
	}
	// A shares B's new token through Redis (its own memory lost the old one).
	if got := get(a); got.AccessToken != tok.AccessToken || got.Tier != "redis" {
		t.Fatalf("A after B's exchange: %+v", got)
	}
}

// TestTieredStoreKeepsFullLifetimeWhenRedisIsDown: the L1MaxAge cap applies
// only to entries Redis holds; while Redis is down, memory serves an entry
// for its whole lifetime (no IdP call per key every minute).
func TestTieredStoreKeepsFullLifetimeWhenRedisIsDown(t *testing.T) {
	rdb, prefix, proxy := proxiedRedis(t)
	kr, _ := KeyringFromBase64(NewRandomKey())
	now := time.Now()
	ts := NewTieredStore(NewMemoryStore(100, func() time.Time { return now }), NewRedisStore(rdb, prefix, kr), discardLogger())
	ctx := context.Background()
	up, down := NewKey("https://h/t", "c", "up", []string{"s"}), NewKey("https://h/t", "c", "down", []string{"s"})
	_ = ts.Set(ctx, up, entry("t-up", time.Hour))
	proxy.Close()
	_ = ts.Set(ctx, down, entry("t-down", time.Hour))
	now = now.Add(DefaultL1MaxAge + time.Second)
	if _, ok, _ := ts.L1.Get(ctx, up); ok {
		t.Fatal("an entry Redis holds outlived L1MaxAge in memory")
	}
	if _, ok, _ := ts.L1.Get(ctx, down); !ok {
		t.Fatal("an entry Redis could not take was capped in memory")
	}
}

// TestForgetOnOneInstanceBypassesAnotherInstancesMSALCache: instance B
// exchanged the token itself, so B's own MSAL cache holds it; A got it from
// Redis, and the upstream refused it there. Once B's memory copy is re-read,
// B must not take the refused token back from its MSAL cache.
func TestForgetOnOneInstanceBypassesAnotherInstancesMSALCache(t *testing.T) {
	a, b, f, rdb, prefix, advanceB := twoTieredInstances(t)
	ctx := context.Background()
	t1, err := b.Token(ctx, "shared", graphScopes)
	if err != nil || t1.Source != SourceIdP {
		t.Fatalf("%+v %v", t1, err)
	}
	if got, _ := a.Token(ctx, "shared", graphScopes); got.AccessToken != t1.AccessToken || got.Tier != "redis" {
		t.Fatalf("A from Redis: %+v", got)
	}
	a.Forget(ctx, "shared", graphScopes)
	advanceB(DefaultL1MaxAge + time.Second)
	got, err := b.Token(ctx, "shared", graphScopes)
	if err != nil || got.AccessToken == t1.AccessToken {
		t.Fatalf("B served the token A's upstream refused: %+v %v", got, err)
	}
	if got.Source != SourceIdP || f.obo.Load() != 2 || b.Stats().MSALBypasses != 1 {
		t.Fatalf("%+v, %d grants, stats %+v", got, f.obo.Load(), b.Stats())
	}
	if keys := rdb.Keys(ctx, prefix+"refused:*").Val(); len(keys) != 1 {
		t.Fatalf("refusal marks %v", keys)
	} else if ttl := rdb.PTTL(ctx, keys[0]).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("refusal mark TTL %v: want until the refused token expires", ttl)
	}
}

// twoTieredInstances builds two Clients (A and B) sharing the local Redis
// through TieredStores, against a fake IdP that mints a new token per
// exchange; advanceB moves B's memory-tier clock.
func twoTieredInstances(t *testing.T) (a, b *Client, f *fakeIdP, rdb *redis.Client, prefix string, advanceB func(time.Duration)) {
	t.Helper()
	rdb, prefix = testRedis(t)
	f = newFakeIdP(t)
	var minted atomic.Int64
	f.set(0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3600,
			"access_token": fmt.Sprintf("tok.%d", minted.Add(1))})
	})
	kr, _ := KeyringFromBase64(NewRandomKey())
	var mu sync.Mutex
	now := time.Now()
	clockB := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	a = f.client(t, func(c *Config) {
		c.Store = NewTieredStore(NewMemoryStore(100, nil), NewRedisStore(rdb, prefix, kr), discardLogger())
	})
	b = f.client(t, func(c *Config) {
		c.Store = NewTieredStore(NewMemoryStore(100, clockB), NewRedisStore(rdb, prefix, kr), discardLogger())
	})
	return a, b, f, rdb, prefix, func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
}

// proxiedRedis is a client of the local Redis through a TCP proxy the test
// can close (Redis "dies" for this client only), with short timeouts and no
// retries; it returns a key prefix unique to the test.
func proxiedRedis(t *testing.T) (*redis.Client, string, *tcpProxy) {
	t.Helper()
	_, prefix := testRedis(t)
	proxy := newTCPProxy(t, redisAddr)
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, prefix, proxy
}
