package obo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

var graphScopes = []string{"https://graph.microsoft.com/User.Read"}

func TestTokenCachesAndCoalesces(t *testing.T) {
	f := newFakeIdP(t)
	c := f.client(t, nil)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		tok, err := c.Token(ctx, "assertion-1", graphScopes)
		if err != nil {
			t.Fatal(err)
		}
		if tok.AccessToken != downstreamFor("assertion-1") {
			t.Fatal("wrong token")
		}
		if want := map[bool]Source{true: SourceIdP, false: SourceCache}[i == 0]; tok.Source != want {
			t.Fatalf("call %d: source %s, want %s", i, tok.Source, want)
		}
	}
	if n := f.obo.Load(); n != 1 {
		t.Fatalf("100 sequential calls: %d OBO grants, want 1", n)
	}

	// 100 concurrent cold callers with one token: one grant.
	f.set(50*time.Millisecond, nil)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Token(ctx, "assertion-2", graphScopes)
			if err != nil || tok.AccessToken != downstreamFor("assertion-2") {
				t.Errorf("%v", err)
			}
		}()
	}
	wg.Wait()
	if n := f.obo.Load(); n != 2 {
		t.Fatalf("100 concurrent cold calls: %d grants, want 1", n-1)
	}
	st := c.Stats()
	if st.IdPExchanges != 2 || st.Coalesced == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestLeaderCancellationDoesNotFailWaiters(t *testing.T) {
	f := newFakeIdP(t)
	f.set(200*time.Millisecond, nil)
	c := f.client(t, nil)
	leaderCtx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Token(leaderCtx, "a", graphScopes); errc <- err }()
	time.Sleep(50 * time.Millisecond) // the leader's exchange is in flight
	done := make(chan error, 1)
	go func() { _, err := c.Token(context.Background(), "a", graphScopes); done <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("canceled caller got no error")
	}
	if err := <-done; err != nil {
		t.Fatalf("waiter failed because the leader's request was canceled: %v", err)
	}
	if f.obo.Load() != 1 {
		t.Fatalf("%d grants", f.obo.Load())
	}
	// and the exchange filled the cache
	if tok, err := c.Token(context.Background(), "a", graphScopes); err != nil || tok.Source != SourceCache {
		t.Fatalf("%+v %v", tok, err)
	}
}

func TestMSALClientIsRebuiltToBoundItsCache(t *testing.T) {
	f := newFakeIdP(t)
	c := f.client(t, func(c *Config) { c.MSALMaxTokens = 3 })
	for i := 0; i < 10; i++ {
		if _, err := c.Token(context.Background(), fmt.Sprint("a", i), graphScopes); err != nil {
			t.Fatal(err)
		}
	}
	if st := c.Stats(); st.MSALClients != 4 || st.IdPExchanges != 10 {
		t.Fatalf("stats %+v: want 4 MSAL clients for 10 exchanges at 3 per client", st)
	}
}

func TestIdPErrorsAreMapped(t *testing.T) {
	claims := `{"access_token":{"capolids":{"essential":true,"values":["9ab03e19-ed42-4168-b6b7-7001fb3e933a"]}}}`
	claimsJSON, _ := json.Marshal(claims)
	cases := []struct {
		name    string
		respond func(http.ResponseWriter, *http.Request)
		delay   time.Duration
		kind    Kind
		check   func(t *testing.T, e *Error)
	}{
		{"mfa 50076", idpError(400, `{"error":"interaction_required","error_description":"AADSTS50076: MFA","error_codes":[50076],"suberror":"basic_action","claims":`+string(claimsJSON)+`,"correlation_id":"c-1"}`),
			0, KindClaimsChallenge, func(t *testing.T, e *Error) {
				if e.Claims != claims || e.CorrelationID != "c-1" || e.Codes[0] != 50076 {
					t.Errorf("%+v", e)
				}
			}},
		{"mfa 50079 without claims", idpError(400, `{"error":"interaction_required","error_codes":[50079]}`),
			0, KindClaimsChallenge, func(t *testing.T, e *Error) {
				if e.Claims != fallbackMFAClaims {
					t.Errorf("claims %q", e.Claims)
				}
			}},
		{"interaction_required, no claims, other code", idpError(400, `{"error":"interaction_required","error_codes":[50158]}`),
			0, KindInvalidAssertion, func(t *testing.T, e *Error) {
				if e.Claims != "" {
					t.Errorf("claims %q: nothing to replay was sent", e.Claims)
				}
			}},
		{"consent 65001", idpError(400, `{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented","error_codes":[65001],"suberror":"consent_required"}`),
			0, KindConsentRequired, func(t *testing.T, e *Error) {
				if len(e.Scopes) != 1 || e.Scopes[0] != graphScopes[0] {
					t.Errorf("scopes %v", e.Scopes)
				}
			}},
		{"expired assertion", idpError(400, `{"error":"invalid_grant","error_description":"AADSTS500133: Assertion is not within its valid time range.","error_codes":[500133]}`),
			0, KindInvalidAssertion, nil},
		{"wrong audience", idpError(400, `{"error":"invalid_grant","error_codes":[50013]}`), 0, KindInvalidAssertion, nil},
		{"bad client secret", idpError(401, `{"error":"invalid_client","error_codes":[7000215]}`), 0, KindConfiguration, nil},
		{"idp 500", idpError(500, `{"error":"server_error"}`), 0, KindIdPUnavailable, nil},
		{"idp 429", idpError(429, `{"error":"throttled"}`), 0, KindIdPUnavailable, nil},
		{"idp transient", idpError(400, `{"error":"temporarily_unavailable","error_codes":[90033]}`), 0, KindIdPUnavailable, nil},
		{"idp html", idpError(502, `<html>bad gateway</html>`), 0, KindIdPUnavailable, nil},
		{"idp hangs", nil, 5 * time.Second, KindIdPUnavailable, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeIdP(t)
			f.set(tc.delay, tc.respond)
			c := f.client(t, func(c *Config) { c.Timeout = 300 * time.Millisecond })
			start := time.Now()
			_, err := c.Token(context.Background(), "assertion", graphScopes)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not *Error", err, err)
			}
			if e.Kind != tc.kind {
				t.Fatalf("kind %s, want %s (%v)", e.Kind, tc.kind, e)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v, not bounded by the 300ms timeout", d)
			}
			if strings.Contains(e.Error(), "assertion=") || strings.Contains(e.Error(), "s3cret") {
				t.Fatalf("error text leaks the request: %s", e.Error())
			}
			if tc.check != nil {
				tc.check(t, e)
			}
			if tc.delay > 0 {
				return // a retry would just time out again, perhaps before reaching the IdP
			}
			// errors are not cached: the next call asks again
			_, _ = c.Token(context.Background(), "assertion", graphScopes)
			if f.obo.Load() != 2 {
				t.Fatalf("%d grants after an error and a retry", f.obo.Load())
			}
		})
	}
}

func TestIdPUnreachableIs503Fast(t *testing.T) {
	f := newFakeIdP(t)
	c := f.client(t, nil)
	f.srv.Close()
	start := time.Now()
	_, err := c.Token(context.Background(), "a", graphScopes)
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindIdPUnavailable || e.Status() != 503 {
		t.Fatalf("%v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatal("slow")
	}
}

func TestWriteErrorContract(t *testing.T) {
	const authz = "https://localhost:8443/t/oauth2/v2.0/authorize"
	claims := `{"access_token":{"amr":{"essential":true,"values":["mfa"]}}}`
	b64 := base64.StdEncoding.EncodeToString([]byte(claims))
	cases := []struct {
		err    error
		status int
		code   string
		www    string
	}{
		{&Error{Kind: KindClaimsChallenge, Claims: claims}, 401, "insufficient_claims",
			`Bearer realm="", authorization_uri="` + authz + `", error="insufficient_claims", claims="` + b64 + `"`},
		{&Error{Kind: KindConsentRequired, Scopes: graphScopes}, 401, "consent_required",
			`Bearer realm="", authorization_uri="` + authz + `", error="consent_required", error_description="consent is required for the downstream API", scope="https://graph.microsoft.com/User.Read"`},
		{&Error{Kind: KindInvalidAssertion}, 401, "invalid_token", `Bearer error="invalid_token", error_description="the access token cannot be exchanged for the downstream API"`},
		{&Error{Kind: KindIdPUnavailable}, 503, "temporarily_unavailable", ""},
		{&Error{Kind: KindUpstream, UpstreamStatus: 500}, 502, "upstream_error", ""},
		{&Error{Kind: KindUpstreamTimeout}, 504, "upstream_timeout", ""},
		{&Error{Kind: KindConfiguration, Message: "secret: xyz"}, 500, "server_error", ""},
		{errors.New("raw"), 500, "server_error", ""},
	}
	for _, tc := range cases {
		w := httptest.NewRecorder()
		WriteError(w, tc.err, authz)
		if w.Code != tc.status || w.Header().Get("WWW-Authenticate") != tc.www {
			t.Errorf("%v: %d %q", tc.err, w.Code, w.Header().Get("WWW-Authenticate"))
		}
		var body ErrorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != tc.code || body.Message == "" {
			t.Errorf("%v: body %s", tc.err, w.Body)
		}
		if strings.Contains(w.Body.String(), "xyz") || strings.Contains(w.Body.String(), "raw") {
			t.Errorf("internal detail leaked: %s", w.Body)
		}
		if tc.code == "insufficient_claims" && body.Claims != b64 {
			t.Errorf("body claims %q", body.Claims)
		}
		if tc.code == "upstream_error" && body.UpstreamStatus != 500 {
			t.Errorf("upstream status %d", body.UpstreamStatus)
		}
	}
	// The header round-trips through our own challenge parser.
	w := httptest.NewRecorder()
	WriteError(w, &Error{Kind: KindClaimsChallenge, Claims: claims}, authz)
	if got, ok := claimsFromChallenge(w.Header().Values("WWW-Authenticate")); !ok || got != claims {
		t.Fatalf("round trip: %q %v", got, ok)
	}
}

func TestOneExchangeAcrossInstancesSharingRedis(t *testing.T) {
	rdb, prefix := testRedis(t)
	f := newFakeIdP(t)
	f.set(200*time.Millisecond, nil)
	kr, _ := KeyringFromBase64(NewRandomKey())
	var clients []*Client
	for i := 0; i < 3; i++ {
		st := NewTieredStore(NewMemoryStore(100, nil), NewRedisStore(rdb, prefix, kr), discardLogger())
		clients = append(clients, f.client(t, func(c *Config) { c.Store = st }))
	}
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tok, err := clients[i%3].Token(context.Background(), "shared-assertion", graphScopes)
			if err != nil || tok.AccessToken != downstreamFor("shared-assertion") {
				t.Errorf("%v", err)
			}
		}(i)
	}
	wg.Wait()
	if n := f.obo.Load(); n != 1 {
		t.Fatalf("3 instances, 60 concurrent cold calls: %d OBO grants, want 1", n)
	}
	// A failed exchange releases the lock at once: the others do not wait
	// for its expiry.
	f.set(0, idpError(400, `{"error":"invalid_grant","error_codes":[50013]}`))
	start := time.Now()
	for i := 0; i < 3; i++ {
		if _, err := clients[i].Token(context.Background(), "bad", graphScopes); err == nil {
			t.Fatal("no error")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("failed exchanges took %v: a stale lock made callers wait", d)
	}
	if keys := rdb.Keys(context.Background(), prefix+"lock:*").Val(); len(keys) != 0 {
		t.Fatalf("locks left behind: %v", keys)
	}
}
