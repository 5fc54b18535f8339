package apiauth_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/entra-go/secure-api/apiauth"
)

var (
	fuzzOnce sync.Once
	fuzzIDP  *testIDP
	fuzzV    *apiauth.Validator
)

// FuzzParse feeds arbitrary tokens (header and claims parsing, base64url,
// structure) to a ready validator: it must never panic nor accept anything
// not signed by the IdP. Run: go test ./apiauth -run '^$' -fuzz FuzzParse -fuzztime 30s
func FuzzParse(f *testing.F) {
	fuzzOnce.Do(func() {
		fuzzIDP = startIDP() // lives for the whole fuzzing process
		var err error
		fuzzV, err = apiauth.New(apiauth.Config{Authority: fuzzIDP.Authority(tenantA), ClientID: apiID,
			HTTPClient: fuzzIDP.Client, Logger: discardLogger(), CacheBytes: -1})
		if err != nil {
			panic(err)
		}
	})
	waitReady(f, fuzzV)
	good := fuzzIDP.sign(nil, fuzzIDP.v2Claims(tenantA))
	f.Add(good)
	f.Add(strings.Replace(good, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(b64([]byte(`{"alg":"RS256","kid":"kid-0","x":[[[{}]]]}`)) + ".e30.AA")
	f.Add(b64([]byte(`{"alg":"RS256","kid":"\u006bid-0"}`)) + "." + b64([]byte(`{"exp":1e3,"aud":["a",1]}`)) + ".AA")
	parts := strings.Split(good, ".")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fuzzV.Validate(context.Background(), tok)
		if err == nil {
			// Only the genuine signed input can pass.
			if !strings.HasPrefix(tok, parts[0]+"."+parts[1]+".") {
				t.Fatalf("accepted a token not signed by the IdP: %q → %+v", tok, p)
			}
		}
	})
}
