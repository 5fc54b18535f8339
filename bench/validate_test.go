package bench

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gjwt "github.com/golang-jwt/jwt/v5"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"
	"github.com/lestrrat-go/jwx/v3/jwt"

	"github.com/entra-go/secure-api/apiauth"
)

// impl is one way to validate a token; ok reports acceptance.
type impl struct {
	name string
	fn   func(tok string) bool
}

type env struct {
	f      *Fixture
	pool   []string // distinct tokens, cycled by the "cold" cases
	impls  []impl
	repeat string
}

var (
	envOnce sync.Once
	theEnv  *env
)

const poolSize = 256

func setup(tb testing.TB) *env {
	envOnce.Do(func() {
		f := NewFixture() // lives for the test binary
		e := &env{f: f, pool: f.Tokens(poolSize)}
		e.repeat = e.pool[0]
		ctx := context.Background()
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		mk := func(cacheBytes int) *apiauth.Validator {
			v, err := apiauth.New(apiauth.Config{Authority: f.Authority, ClientID: APIID, HTTPClient: f.Client,
				Logger: quiet, CacheBytes: cacheBytes})
			if err != nil {
				panic(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := v.WaitReady(wctx); err != nil {
				panic(err)
			}
			return v
		}
		cached := mk(0)   // default cache
		tiny := mk(1)     // a cache of one entry per generation: every pool token is first-seen
		nocache := mk(-1) // no cache at all
		floor := f.NewFloor()

		// Bare RSA verify: signing input hashed and signature decoded per call, nothing else.
		type pre struct {
			in  []byte
			sig []byte
		}
		pres := map[string]pre{}
		for _, t := range e.pool {
			i := strings.LastIndexByte(t, '.')
			sig, _ := base64.RawURLEncoding.DecodeString(t[i+1:])
			pres[t] = pre{[]byte(t[:i]), sig}
		}
		pubSigner := &f.Keys[signerIx].PublicKey

		// jwx v3, used plainly: jwt.Parse with the key set (alg inferred from
		// the alg-less Entra keys), issuer, audience, skew.
		set, err := jwk.Parse(f.JWKS)
		if err != nil {
			panic(err)
		}
		jwxOpts := []jwt.ParseOption{jwt.WithKeySet(set, jws.WithInferAlgorithmFromKey(true)), jwt.WithValidate(true),
			jwt.WithIssuer(f.Issuer), jwt.WithAudience(APIID), jwt.WithAcceptableSkew(5 * time.Minute)}

		// golang-jwt v5: kid → key map, RS256 only, issuer, audience, exp required.
		type gclaims struct {
			gjwt.RegisteredClaims
			Oid string `json:"oid"`
			Tid string `json:"tid"`
			Scp string `json:"scp"`
			Azp string `json:"azp"`
		}
		gkeys := map[string]*rsa.PublicKey{}
		for i, k := range f.Keys {
			gkeys[f.KIDs[i]] = &k.PublicKey
		}
		gparser := gjwt.NewParser(gjwt.WithValidMethods([]string{"RS256"}), gjwt.WithIssuer(f.Issuer), gjwt.WithAudience(APIID),
			gjwt.WithExpirationRequired(), gjwt.WithLeeway(5*time.Minute))
		gkeyfunc := func(t *gjwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if k := gkeys[kid]; k != nil {
				return k, nil
			}
			return nil, fmt.Errorf("unknown kid")
		}

		e.impls = []impl{
			{"bare-rsa-verify", func(t string) bool {
				p := pres[t]
				d := sha256.Sum256(p.in)
				return rsa.VerifyPKCS1v15(pubSigner, crypto.SHA256, d[:], p.sig) == nil
			}},
			{"floor-stdlib", func(t string) bool {
				c, err := floor.Validate(t)
				return err == nil && c.Scp == "access_as_user"
			}},
			{"apiauth-cold", func(t string) bool {
				p, err := tiny.Validate(ctx, t)
				return err == nil && p.HasScope("access_as_user")
			}},
			{"apiauth-nocache", func(t string) bool {
				p, err := nocache.Validate(ctx, t)
				return err == nil && p.HasScope("access_as_user")
			}},
			{"apiauth-repeat", func(string) bool {
				p, err := cached.Validate(ctx, e.repeat)
				return err == nil && p.HasScope("access_as_user")
			}},
			{"jwx-v3", func(t string) bool {
				tok, err := jwt.ParseString(t, jwxOpts...)
				if err != nil {
					return false
				}
				var scp string
				return tok.Get("scp", &scp) == nil && scp == "access_as_user"
			}},
			{"golang-jwt-v5", func(t string) bool {
				var c gclaims
				_, err := gparser.ParseWithClaims(t, &c, gkeyfunc)
				return err == nil && c.Scp == "access_as_user"
			}},
		}
		theEnv = e
	})
	return theEnv
}

func (e *env) impl(name string) impl {
	for _, i := range e.impls {
		if i.name == name {
			return i
		}
	}
	panic(name)
}

func TestAllImplementationsAccept(t *testing.T) {
	e := setup(t)
	for _, im := range e.impls {
		for _, tok := range e.pool[:4] {
			if !im.fn(tok) {
				t.Fatalf("%s refuses a valid token", im.name)
			}
		}
	}
	// And the cold cases really are first-seen: the tiny cache holds 2 entries.
	bad := e.pool[1][:len(e.pool[1])-2] + "AA"
	for _, im := range e.impls {
		if im.name != "apiauth-repeat" && im.name != "bare-rsa-verify" && im.fn(bad) {
			t.Fatalf("%s accepts a bad signature", im.name)
		}
	}
}

// BenchmarkValidate: run with -cpu 1. The "cold" cases cycle through 256
// distinct tokens; apiauth-cold has a cache too small to ever hit, so every
// call is a first-seen token including the cache insert.
func BenchmarkValidate(b *testing.B) {
	e := setup(b)
	for _, im := range e.impls {
		b.Run(im.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if !im.fn(e.pool[i%poolSize]) {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkValidateParallel: the same on all cores (-cpu 2).
func BenchmarkValidateParallel(b *testing.B) {
	e := setup(b)
	for _, im := range e.impls {
		b.Run(im.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if !im.fn(e.pool[i%poolSize]) {
						b.Fatal("refused")
					}
					i++
				}
			})
		})
	}
}

// TestPairedRatios measures each implementation against floor-stdlib in
// alternating blocks (ABBA, ~2 ms each), the robust way to get ratios on a
// noisy shared machine. Opt-in: BENCH_PAIRED=1 (BENCH_PAIRED_DUR per
// implementation, default 4s).
func TestPairedRatios(t *testing.T) {
	if os.Getenv("BENCH_PAIRED") == "" {
		t.Skip("set BENCH_PAIRED=1")
	}
	dur := 4 * time.Second
	if d, err := time.ParseDuration(os.Getenv("BENCH_PAIRED_DUR")); err == nil {
		dur = d
	}
	e := setup(t)
	floor := e.impl("floor-stdlib")
	block := func(im impl, n, off int) time.Duration {
		start := time.Now()
		for i := 0; i < n; i++ {
			im.fn(e.pool[(off+i)%poolSize])
		}
		return time.Since(start)
	}
	// Calibrate: floor iterations per ~2 ms.
	n := max(1, int(2*time.Millisecond/(block(floor, 200, 0)/200)))
	fmt.Printf("| impl | × floor-stdlib (median) | IQR | × bare RSA verify | pairs |\n|---|---:|---:|---:|---:|\n")
	var bareRatios []float64
	results := map[string][]float64{}
	for _, name := range []string{"bare-rsa-verify", "apiauth-cold", "apiauth-nocache", "golang-jwt-v5", "jwx-v3", "apiauth-repeat"} {
		im := e.impl(name)
		m := n
		if name == "apiauth-repeat" {
			m = n * 20 // keep the block long enough to time
		}
		var ratios []float64
		deadline := time.Now().Add(dur)
		off := 0
		for time.Now().Before(deadline) {
			a1 := block(floor, n, off)
			b1 := block(im, m, off)
			b2 := block(im, m, off+m)
			a2 := block(floor, n, off+n)
			off += 2 * n
			per := func(d time.Duration, k int) float64 { return float64(d) / float64(k) }
			ratios = append(ratios, per(b1+b2, 2*m)/per(a1+a2, 2*n))
		}
		slices.Sort(ratios)
		results[name] = ratios
		if name == "bare-rsa-verify" {
			bareRatios = ratios
		}
		med := ratios[len(ratios)/2]
		bare := med / bareRatios[len(bareRatios)/2]
		fmt.Printf("| %s | %.3f× | %.3f–%.3f | %.2f× | %d |\n", name, med, ratios[len(ratios)/4], ratios[3*len(ratios)/4], bare, len(ratios))
	}
}

// BenchmarkMiddleware: the in-process cost of the middleware chain around a
// trivial handler (no network): unprotected vs apiauth with a repeat token.
func BenchmarkMiddleware(b *testing.B) {
	e := setup(b)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	v, err := apiauth.New(apiauth.Config{Authority: e.f.Authority, ClientID: APIID, HTTPClient: e.f.Client, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	cases := map[string]http.Handler{
		"plain":          h,
		"apiauth-repeat": v.Protect(h, apiauth.RequireScopeOrAppRole([]string{"access_as_user"}, []string{"Demo.Read.All"})),
	}
	for _, name := range []string{"plain", "apiauth-repeat"} {
		b.Run(name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/api", nil)
			req.Header.Set("Authorization", "Bearer "+e.repeat)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				cases[name].ServeHTTP(w, req)
			}
			if w.Code != 204 {
				b.Fatal(w.Code)
			}
		})
	}
}
