package obo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestStatsCountCallersAndTimeBySource: the per-source call counts and
// latency sums count each successful Token call once, under the source it
// answered; errors count in Errors only.
func TestStatsCountCallersAndTimeBySource(t *testing.T) {
	f := newFakeIdP(t)
	c := f.client(t, nil)
	ctx := context.Background()
	const exchange = 100 * time.Millisecond
	f.set(exchange, nil)
	const cold = 5
	var wg sync.WaitGroup
	for i := 0; i < cold; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Token(ctx, "stats-a", graphScopes); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st := c.Stats()
	// (Coalesced counts every caller of a shared exchange, its starter too:
	// singleflight reports Shared to all of them.)
	if st.IdPExchanges != 1 || st.IdPTokens+st.CacheTokens != cold || st.IdPTokens < 1 || st.Coalesced > st.IdPTokens {
		t.Fatalf("after %d concurrent cold calls: %+v", cold, st)
	}
	if st.IdPTime < exchange || st.IdPTime > time.Duration(st.IdPTokens)*(exchange+5*time.Second) {
		t.Fatalf("IdPTime %v for %d calls of a %v exchange", st.IdPTime, st.IdPTokens, exchange)
	}
	f.set(0, nil)
	before := st
	for i := 0; i < 3; i++ {
		if tok, err := c.Token(ctx, "stats-a", graphScopes); err != nil || tok.Source != SourceCache {
			t.Fatalf("%+v %v", tok, err)
		}
	}
	st = c.Stats()
	if st.CacheTokens != before.CacheTokens+3 || st.CacheHits != before.CacheHits+3 ||
		st.IdPTokens != before.IdPTokens || st.IdPTime != before.IdPTime {
		t.Fatalf("after 3 cache hits: %+v (before %+v)", st, before)
	}
	if d := st.CacheTime - before.CacheTime; d <= 0 || d > time.Second {
		t.Fatalf("3 cache hits took %v in total", d)
	}
	// Our store lost the entry, MSAL's cache answers: a cache answer too.
	_ = c.store.Delete(ctx, c.Key("stats-a", graphScopes))
	before = st
	if tok, err := c.Token(ctx, "stats-a", graphScopes); err != nil || tok.Tier != "msal" {
		t.Fatalf("%+v %v", tok, err)
	}
	if st = c.Stats(); st.CacheTokens != before.CacheTokens+1 || st.IdPTokens != before.IdPTokens {
		t.Fatalf("MSAL cache answer: %+v (before %+v)", st, before)
	}
	// Failures count in Errors, not as tokens.
	before = st
	f.set(0, idpError(400, `{"error":"invalid_grant","error_description":"AADSTS50013: Assertion failed signature validation."}`))
	if _, err := c.Token(ctx, "", graphScopes); err == nil {
		t.Fatal("empty assertion accepted")
	}
	if _, err := c.Token(ctx, "stats-b", graphScopes); err == nil {
		t.Fatal("IdP error not returned")
	}
	st = c.Stats()
	if st.Errors != before.Errors+2 || st.IdPExchanges != before.IdPExchanges+1 ||
		st.CacheTokens != before.CacheTokens || st.IdPTokens != before.IdPTokens ||
		st.CacheTime != before.CacheTime || st.IdPTime != before.IdPTime {
		t.Fatalf("after 2 failures: %+v (before %+v)", st, before)
	}
}

// TestDownstreamStatsCountOutcomes: each upstream call is counted once under
// its outcome; a call that never got a token is not an upstream call.
func TestDownstreamStatsCountOutcomes(t *testing.T) {
	f := newFakeIdP(t)
	var mu sync.Mutex
	var h http.HandlerFunc
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hh := h
		mu.Unlock()
		hh(w, r)
	}))
	defer up.Close()
	set := func(f http.HandlerFunc) { mu.Lock(); h = f; mu.Unlock() }
	d := &Downstream{Tokens: f.client(t, nil), URL: up.URL, Scopes: graphScopes, Timeout: 300 * time.Millisecond, MaxBody: 100}
	ctx := context.Background()
	steps := []struct {
		h    http.HandlerFunc
		want DownstreamStats
	}{
		{func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) }, DownstreamStats{OK: 1}},
		{func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) }, DownstreamStats{OK: 2}},
		{func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }, DownstreamStats{OK: 2, Unauthorized: 1}},
		{func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, DownstreamStats{OK: 2, Unauthorized: 1, Failed: 1}},
		{func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(strings.Repeat("x", 101))) },
			DownstreamStats{OK: 2, Unauthorized: 1, Failed: 2}},
		{func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}, DownstreamStats{OK: 2, Unauthorized: 1, Failed: 2, Timeouts: 1}},
	}
	for i, s := range steps {
		set(s.h)
		_, _ = d.Get(ctx, "user-a")
		if got := d.Stats(); got != s.want {
			t.Fatalf("step %d: %+v, want %+v", i, got, s.want)
		}
	}
	// No token (the IdP refuses): no upstream call counted.
	f.set(0, idpError(400, `{"error":"invalid_grant"}`))
	if _, err := d.Get(ctx, "user-b"); err == nil {
		t.Fatal("no error")
	}
	if got := d.Stats(); got != steps[len(steps)-1].want {
		t.Fatalf("token failure counted as an upstream call: %+v", got)
	}
	up.Close()
	if _, err := d.Get(ctx, "user-a"); err == nil {
		t.Fatal("upstream down: no error")
	}
	if got := d.Stats(); got.Unreachable != 1 || got.Timeouts != 1 {
		t.Fatalf("upstream down: %+v", got)
	}
}
