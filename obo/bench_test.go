package obo

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// fakeAssertion is shaped like an Entra access token (≈1.3 KB) so hashing
// costs what it costs in production.
func fakeAssertion(i int) string {
	p := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"aud":"68fee0a8-293c-4256-8007-b5453b634b61","iss":"https://localhost:8443/2dcbe9d9-33d9-44a7-b4e9-b846975b02ad/v2.0","oid":"%08d-0000-0000-0000-000000000000","scp":"access_as_user","n":%d,"pad":"%s"}`, i, i, strings.Repeat("x", 500))))
	return "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0." + p + "." + strings.Repeat("s", 342)
}

// memIdP answers MSAL's discovery and OBO requests in memory (no sockets, no
// crypto), so that long runs measure our code and MSAL's, not the network.
type memIdP struct{ n int64 }

func (m *memIdP) RoundTrip(r *http.Request) (*http.Response, error) {
	body := ""
	switch {
	case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		base := "https://" + r.URL.Host + "/" + fakeTenant
		body = `{"issuer":"` + base + `/v2.0","authorization_endpoint":"` + base + `/oauth2/v2.0/authorize","token_endpoint":"` + base + `/oauth2/v2.0/token"}`
	default:
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		s := sha256.Sum256([]byte(form.Get("assertion")))
		body = `{"token_type":"Bearer","expires_in":3600,"ext_expires_in":3600,"access_token":"down.` + hex.EncodeToString(s[:]) + strings.Repeat("t", 1200) + `"}`
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

const memAuthority = "https://idp.invalid/" + fakeTenant

func memClient(t testing.TB, mod func(*Config)) *Client {
	cred, _ := SecretCredential("s")
	cfg := Config{Authority: memAuthority, ClientID: "68fee0a8-293c-4256-8007-b5453b634b61", Credential: cred,
		HTTPClient: &http.Client{Transport: &memIdP{}}, Logger: discardLogger()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// BenchmarkCachedToken compares, in one run, a cached downstream token from
// this package's cache with MSAL Go's own OBO cache lookup
// (AcquireTokenOnBehalfOf on a warm cache), for the same assertion.
//
//	go test -run '^$' -bench CachedToken -benchmem ./obo/
func BenchmarkCachedToken(b *testing.B) {
	ctx := context.Background()
	assertion := fakeAssertion(1)
	b.Run("obo-memory", func(b *testing.B) {
		c := memClient(b, nil)
		if _, err := c.Token(ctx, assertion, graphScopes); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if t, err := c.Token(ctx, assertion, graphScopes); err != nil || t.Source != SourceCache {
				b.Fatal(err)
			}
		}
	})
	b.Run("obo-memory-parallel", func(b *testing.B) {
		c := memClient(b, nil)
		if _, err := c.Token(ctx, assertion, graphScopes); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Token(ctx, assertion, graphScopes); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("obo-redis-only", func(b *testing.B) {
		rdb, prefix := testRedis(b)
		kr, _ := KeyringFromBase64(NewRandomKey())
		c := memClient(b, func(cfg *Config) { cfg.Store = NewRedisStore(rdb, prefix, kr) })
		if _, err := c.Token(ctx, assertion, graphScopes); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if t, err := c.Token(ctx, assertion, graphScopes); err != nil || t.Tier != "redis" {
				b.Fatal(err, t.Tier)
			}
		}
	})
	b.Run("msal-warm-cache", func(b *testing.B) {
		cred, _ := confidential.NewCredFromSecret("s")
		mc, err := confidential.New(memAuthority, "68fee0a8-293c-4256-8007-b5453b634b61", cred,
			confidential.WithHTTPClient(&http.Client{Transport: &memIdP{}}), confidential.WithInstanceDiscovery(false))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := mc.AcquireTokenOnBehalfOf(ctx, assertion, graphScopes); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			ar, err := mc.AcquireTokenOnBehalfOf(ctx, assertion, graphScopes)
			if err != nil || ar.Metadata.TokenSource != confidential.TokenSourceCache {
				b.Fatal(err)
			}
		}
	})
}

func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestMemoryBoundedOverManyAssertions sends one million distinct incoming
// tokens through a Client (in-memory IdP) and checks that the heap stays
// bounded: our cache holds at most its max entries and MSAL's never-evicting
// cache is dropped every MSALMaxTokens exchanges. Control: the same load on
// one plain MSAL client grows without bound. Slow (about a minute): set
// OBO_LONG_TEST=1 (OBO_LONG_TEST_N overrides the count).
//
//	OBO_LONG_TEST=1 go test -run MemoryBounded -v ./obo/
func TestMemoryBoundedOverManyAssertions(t *testing.T) {
	if os.Getenv("OBO_LONG_TEST") == "" {
		t.Skip("long test: set OBO_LONG_TEST=1")
	}
	n := 1_000_000
	if s := os.Getenv("OBO_LONG_TEST_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	ctx := context.Background()
	base := heapAfterGC()

	// Control: one plain MSAL client, 50k distinct assertions.
	cred, _ := confidential.NewCredFromSecret("s")
	mc, _ := confidential.New(memAuthority, "68fee0a8-293c-4256-8007-b5453b634b61", cred,
		confidential.WithHTTPClient(&http.Client{Transport: &memIdP{}}), confidential.WithInstanceDiscovery(false))
	const control = 50_000
	for i := 0; i < control; i++ {
		if _, err := mc.AcquireTokenOnBehalfOf(ctx, fakeAssertion(-i-1), graphScopes); err != nil {
			t.Fatal(err)
		}
	}
	msalHeap := heapAfterGC() - base
	perEntry := float64(msalHeap) / control
	t.Logf("control: plain MSAL client after %d distinct assertions: heap +%.1f MiB (%.0f bytes per assertion, never freed; ≈%.1f GiB per million)",
		control, float64(msalHeap)/(1<<20), perEntry, perEntry*1e6/(1<<30))
	runtime.KeepAlive(mc)
	mc = confidential.Client{}
	base = heapAfterGC()

	c := memClient(t, nil) // defaults: 10k cache entries, MSAL client replaced every 1000 exchanges
	start := time.Now()
	var peak uint64
	for i := 0; i < n; i++ {
		if _, err := c.Token(ctx, fakeAssertion(i), graphScopes); err != nil {
			t.Fatal(err)
		}
		if (i+1)%(n/10) == 0 {
			h := heapAfterGC()
			if h > peak {
				peak = h
			}
			t.Logf("%8d assertions: heap %.1f MiB (base %.1f MiB), %v", i+1, float64(h)/(1<<20), float64(base)/(1<<20), time.Since(start).Round(time.Second))
		}
	}
	final := heapAfterGC()
	st := c.Stats()
	t.Logf("after %d distinct assertions: heap %.1f MiB, peak at checkpoints %.1f MiB, MSAL clients built %d, %.1f µs per miss",
		n, float64(final)/(1<<20), float64(peak)/(1<<20), st.MSALClients, float64(time.Since(start).Microseconds())/float64(n))
	// Bound: 10k cached entries + ≤1000 MSAL entries, each a few KiB, plus
	// slack. Far below what the control predicts for n assertions.
	if limit := base + 96<<20; final > limit {
		t.Fatalf("heap %d MiB above bound %d MiB", final>>20, limit>>20)
	}
	if unbounded := perEntry * float64(n); float64(final-base) > unbounded/4 {
		t.Fatalf("heap growth %.0f MiB is not clearly below the unbounded MSAL growth %.0f MiB", float64(final-base)/(1<<20), unbounded/(1<<20))
	}
}
