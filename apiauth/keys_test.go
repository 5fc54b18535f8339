package apiauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

func TestRotationPickedUpWithOneRefetch(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, nil) // MinRefreshInterval 1 min
	waitReady(t, v)
	ctx := context.Background()
	if _, err := v.Validate(ctx, idp.sign(nil, idp.v2Claims(tenantA))); err != nil {
		t.Fatal(err)
	}
	before := idp.jwksHits.Load()
	newKID := idp.rotate()
	p, err := v.Validate(ctx, idp.sign(nil, idp.v2Claims(tenantA)))
	if err != nil || p.KeyID != newKID {
		t.Fatal("token signed with the rotated key:", err)
	}
	if got := idp.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for one rotation, want 1", got)
	}
	// The next unknown kid within the minimum interval fails fast, no fetch.
	idp.rotate()
	if _, err := v.Validate(ctx, idp.sign(nil, idp.v2Claims(tenantA))); reasonOf(err) != apiauth.ReasonUnknownKey {
		t.Fatal("second rotation within the interval:", err)
	}
	if got := idp.jwksHits.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches, want still 1 (rate limit)", got)
	}
}

// bogusKIDToken returns a token with a random kid; the signature is never
// reached (the kid lookup comes first), so it needs no signing.
func bogusKIDToken(r *rand.Rand, payload, sig string) string {
	hb, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": fmt.Sprintf("bogus-%016x", r.Uint64())})
	return b64(hb) + "." + payload + "." + sig
}

func TestBogusKidFloodDuringRotation(t *testing.T) {
	idp := newTestIDP(t)
	const interval = 150 * time.Millisecond
	v := newValidator(t, idp, func(c *apiauth.Config) { c.MinRefreshInterval = interval })
	waitReady(t, v)
	ctx := context.Background()
	good := idp.sign(nil, idp.v2Claims(tenantA))
	parts := strings.Split(good, ".")
	before := idp.jwksHits.Load()
	start := time.Now()

	const total, workers = 10000, 8
	var sent, refused, goodFailures atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, seed))
			for i := 0; i < total/workers; i++ {
				if _, err := v.Validate(ctx, bogusKIDToken(r, parts[1], parts[2])); err != nil {
					refused.Add(1)
				}
				sent.Add(1)
				if i%4 == 0 {
					// Known keys keep working during the flood, without waiting.
					if _, err := v.Validate(ctx, good); err != nil {
						goodFailures.Add(1)
					}
					time.Sleep(2 * time.Millisecond) // spread the flood over several intervals
				}
			}
		}(uint64(w) + 1)
	}

	// A real rotation in the middle of the flood is picked up.
	for sent.Load() < total/3 {
		time.Sleep(time.Millisecond)
	}
	newKID := idp.rotate()
	rotated := idp.sign(nil, idp.v2Claims(tenantA))
	var pickedUp time.Duration
	deadline := time.Now().Add(3 * interval)
	for time.Now().Before(deadline) {
		if p, err := v.Validate(ctx, rotated); err == nil && p.KeyID == newKID {
			pickedUp = time.Since(start)
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	elapsed := time.Since(start)
	fetches := idp.jwksHits.Load() - before
	t.Logf("%d bogus kids in %v: %d JWKS fetches (interval %v), rotation picked up after %v", total, elapsed, fetches, interval, pickedUp)
	if refused.Load() != total {
		t.Fatalf("%d of %d bogus kids refused", refused.Load(), total)
	}
	if goodFailures.Load() != 0 {
		t.Fatalf("%d genuine validations failed during the flood", goodFailures.Load())
	}
	if max := int64(elapsed/interval) + 1; fetches > max {
		t.Fatalf("%d JWKS fetches in %v, more than one per %v (max %d)", fetches, elapsed, interval, max)
	}
	if pickedUp == 0 || pickedUp > elapsed {
		t.Fatal("the rotated key was not picked up during the flood")
	}
}

func TestJWKSDownAtStartThenUp(t *testing.T) {
	idp := newTestIDP(t)
	idp.down.Store(true)
	v := newValidator(t, idp, nil)
	tok := idp.sign(nil, idp.v2Claims(tenantA))
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	ts := httptest.NewServer(v.Protect(ok))
	defer ts.Close()
	get := func() *http.Response {
		req, _ := http.NewRequest("GET", ts.URL, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	time.Sleep(300 * time.Millisecond) // a few failed attempts
	if v.Ready() {
		t.Fatal("ready without keys")
	}
	if resp := get(); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("before keys: %d, want 503 with Retry-After", resp.StatusCode)
	}
	if _, err := v.Validate(context.Background(), tok); apiauth.ErrorStatus(err) != 503 || reasonOf(err) != apiauth.ReasonNotReady {
		t.Fatal("Validate before keys:", err)
	}
	idp.down.Store(false)
	waitReady(t, v)
	if resp := get(); resp.StatusCode != 200 {
		t.Fatalf("after keys: %d", resp.StatusCode)
	}
}

func TestJWKSDownLaterKeepsLastGoodKeys(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, func(c *apiauth.Config) {
		c.MinRefreshInterval = 50 * time.Millisecond
		c.RefreshInterval = time.Second
	})
	waitReady(t, v)
	ctx := context.Background()
	idp.down.Store(true)
	// Unknown kids trigger refetches that fail; a background refresh fails too.
	r := rand.New(rand.NewPCG(1, 2))
	good := idp.sign(nil, idp.v2Claims(tenantA))
	parts := strings.Split(good, ".")
	deadline := time.Now().Add(1500 * time.Millisecond)
	for time.Now().Before(deadline) {
		_, _ = v.Validate(ctx, bogusKIDToken(r, parts[1], parts[2]))
		time.Sleep(60 * time.Millisecond)
	}
	if idp.jwksHits.Load() < 3 {
		t.Fatalf("only %d JWKS requests: the outage was not exercised", idp.jwksHits.Load())
	}
	// Fresh tokens (not in the validated-token cache) still validate.
	for i := 0; i < 3; i++ {
		c := idp.v2Claims(tenantA)
		c["uti"] = fmt.Sprint("fresh-", i)
		if _, err := v.Validate(ctx, idp.sign(nil, c)); err != nil {
			t.Fatal("valid token refused while the JWKS endpoint is down:", err)
		}
	}
	if !v.Ready() {
		t.Fatal("not ready after an outage with keys loaded")
	}
}

func TestRevokedKeyClearsTokenCache(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, func(c *apiauth.Config) { c.MinRefreshInterval = 10 * time.Millisecond })
	waitReady(t, v)
	ctx := context.Background()
	old := idp.sign(nil, idp.v2Claims(tenantA))
	if _, err := v.Validate(ctx, old); err != nil {
		t.Fatal(err)
	}
	idp.rotate()
	idp.unpublish("kid-0")
	time.Sleep(20 * time.Millisecond)
	// A token with the new kid triggers the refetch that drops kid-0.
	if _, err := v.Validate(ctx, idp.sign(nil, idp.v2Claims(tenantA))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if _, err := v.Validate(ctx, old); reasonOf(err) != apiauth.ReasonUnknownKey {
		t.Fatal("token signed by a revoked key still accepted (cache not cleared?):", err)
	}
}

func TestSlowJWKSDoesNotBlockKnownKeys(t *testing.T) {
	idp := newTestIDP(t)
	v := newValidator(t, idp, nil)
	waitReady(t, v)
	ctx := context.Background()
	idp.jwksDelay.Store(int64(time.Second))
	good := idp.sign(nil, idp.v2Claims(tenantA))
	parts := strings.Split(good, ".")
	r := rand.New(rand.NewPCG(3, 4))
	done := make(chan struct{})
	go func() { // waits for the slow refetch
		_, _ = v.Validate(ctx, bogusKIDToken(r, parts[1], parts[2]))
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	c := idp.v2Claims(tenantA)
	c["uti"] = "fresh"
	if _, err := v.Validate(ctx, idp.sign(nil, c)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("a known-kid validation waited %v for the JWKS refetch", d)
	}
	// A request whose context ends stops waiting for the refetch.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	_, _ = v.Validate(cctx, bogusKIDToken(r, parts[1], parts[2]))
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("an unknown-kid validation ignored its context for %v", d)
	}
	<-done
}

// TestNoGoroutineLeak: Close stops everything the validator started.
func TestNoGoroutineLeak(t *testing.T) {
	idp := newTestIDP(t)
	idp.Client.CloseIdleConnections()
	base := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		v, err := apiauth.New(apiauth.Config{Authority: idp.Authority(tenantA), ClientID: apiID, HTTPClient: idp.Client, Logger: discardLogger(),
			MinRefreshInterval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		waitReady(t, v)
		idp.rotate()
		_, _ = v.Validate(context.Background(), idp.sign(nil, idp.v2Claims(tenantA))) // unknown kid → refetch goroutine
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// And a validator closed while its IdP is down (start-up retry loop).
	idp.down.Store(true)
	v, err := apiauth.New(apiauth.Config{Authority: idp.Authority(tenantA), ClientID: apiID, HTTPClient: idp.Client, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	idp.Client.CloseIdleConnections()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after Close, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

// A hanging JWKS endpoint and an HTTP client without a timeout: every fetch
// is still bounded by FetchTimeout, so the unknown-kid refetch returns within
// the bound and, once the endpoint answers again, the rotation is picked up
// (httprc has one worker: a fetch hanging forever would stall all later ones).
func TestHangingJWKSBoundedByFetchTimeout(t *testing.T) {
	idp := newTestIDP(t)
	noTimeout := *idp.Client
	noTimeout.Timeout = 0
	v := newValidator(t, idp, func(c *apiauth.Config) {
		c.HTTPClient = &noTimeout
		c.FetchTimeout = 300 * time.Millisecond
		c.MinRefreshInterval = 50 * time.Millisecond
		c.RefreshInterval = time.Second
	})
	waitReady(t, v)
	idp.jwksHang.Store(true)
	idp.rotate()
	tok := idp.sign(nil, idp.v2Claims(tenantA))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := v.Validate(ctx, tok); reasonOf(err) != apiauth.ReasonUnknownKey {
		t.Fatal("new kid while the JWKS endpoint hangs:", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("the unknown-kid refetch waited %v for a hanging JWKS endpoint (FetchTimeout 300ms)", d)
	}
	idp.jwksHang.Store(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := v.Validate(ctx, tok)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotation not picked up after the JWKS endpoint recovered (%d JWKS requests): %v", idp.jwksHits.Load(), err)
		}
		time.Sleep(60 * time.Millisecond)
	}
}
