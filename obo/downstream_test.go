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
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

func TestDownstreamErrors(t *testing.T) {
	f := newFakeIdP(t)
	claims := `{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}`
	var handler atomic.Pointer[http.HandlerFunc]
	setHandler := func(h http.HandlerFunc) { handler.Store(&h) }
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load())(w, r) }))
	defer up.Close()
	c := f.client(t, nil)
	d := &Downstream{Tokens: c, URL: up.URL + "/v1.0/me", Scopes: graphScopes, Timeout: 300 * time.Millisecond, MaxBody: 1000}
	cases := []struct {
		name   string
		h      http.HandlerFunc
		kind   Kind
		status int
	}{
		{"500", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) }, KindUpstream, 502},
		{"403", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }, KindUpstream, 502},
		{"slow", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}, KindUpstreamTimeout, 504},
		{"slow body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			_, _ = w.Write([]byte(`{"a":`))
			w.(http.Flusher).Flush()
			select {
			case <-time.After(3 * time.Second):
			case <-r.Context().Done():
			}
		}, KindUpstreamTimeout, 504},
		{"too large", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(strings.Repeat("x", 1001))) }, KindUpstream, 502},
		{"401 no claims", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(401)
		}, KindUpstream, 502},
		{"401 claims challenge", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://x/authorize", error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(claims))+`"`)
			w.WriteHeader(401)
		}, KindClaimsChallenge, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			setHandler(tc.h)
			start := time.Now()
			_, err := d.Get(context.Background(), "user-a")
			var e *Error
			if !errors.As(err, &e) || e.Kind != tc.kind || e.Status() != tc.status {
				t.Fatalf("got %v, want %s", err, tc.kind)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatal("not bounded by the timeout")
			}
			if tc.kind == KindClaimsChallenge && e.Claims != claims {
				t.Fatalf("claims %q", e.Claims)
			}
		})
	}
	// A refused token is dropped from every cache, MSAL's included: the next
	// call makes a new exchange.
	setHandler(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	before := f.obo.Load()
	if res, err := d.Get(context.Background(), "user-a"); err != nil || res.Token.Source != SourceIdP {
		t.Fatalf("after a 401 the refused token must not be reused: %+v %v", res, err)
	}
	if f.obo.Load() != before+1 {
		t.Fatal("no new OBO grant after the upstream refused the token")
	}
	up.Close()
	if _, err := d.Get(context.Background(), "user-a"); err == nil || err.(*Error).Kind != KindUpstream {
		t.Fatalf("upstream down: %v", err)
	}
}

func TestHandlerAnswersUpstreamAndTokenInfo(t *testing.T) {
	f := newFakeIdP(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"token": strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")})
	}))
	defer up.Close()
	d := &Downstream{Tokens: f.client(t, nil), URL: up.URL, Scopes: graphScopes}
	h := Handler(d, discardLogger())
	for i, want := range []Source{SourceIdP, SourceCache} {
		r := httptest.NewRequest("GET", "/api/obo", nil)
		r = r.WithContext(apiauth.WithPrincipal(r.Context(), &apiauth.Principal{ObjectID: "u"}, "user-token"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var resp struct {
			Upstream struct{ Token string }
			Token    TokenInfo
		}
		if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &resp) != nil {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		if resp.Upstream.Token != downstreamFor("user-token") || resp.Token.Source != want {
			t.Fatalf("call %d: %s", i, w.Body)
		}
		if strings.Contains(w.Body.String(), `"access_token"`) {
			t.Fatal("token info leaks a token")
		}
	}
	// not behind the validating middleware: no exchange of an unvalidated token
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/api/obo", nil)
	r.Header.Set("Authorization", "Bearer user-token")
	h.ServeHTTP(w, r)
	if w.Code != 401 {
		t.Fatalf("%d", w.Code)
	}
}

// TestRefusedTokenIsNeverSentAgain: each time the upstream refuses the
// downstream token (401), the next call gets a new token from the IdP — not
// the refused one back from MSAL's own cache — and once the upstream accepts
// a token, it is cached again.
func TestRefusedTokenIsNeverSentAgain(t *testing.T) {
	f := newFakeIdP(t)
	var minted atomic.Int64
	f.set(0, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3600,
			"access_token": fmt.Sprintf("%s.%d", downstreamFor(r.PostForm.Get("assertion")), minted.Add(1))})
	})
	var refuse atomic.Bool
	refuse.Store(true)
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		if refuse.Load() {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="revoked"`)
			w.WriteHeader(401)
			return
		}
		_, _ = w.Write([]byte(`{}`))
	}))
	defer up.Close()
	c := f.client(t, nil)
	d := &Downstream{Tokens: c, URL: up.URL, Scopes: graphScopes}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := d.Get(ctx, "user-a"); err == nil || err.(*Error).UpstreamStatus != 401 {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := f.obo.Load(); n != 3 {
		t.Fatalf("three refusals: %d OBO grants, want 3", n)
	}
	distinct := map[string]bool{}
	for _, s := range seen {
		distinct[s] = true
	}
	if len(seen) != 3 || len(distinct) != 3 {
		t.Fatalf("the upstream saw %d tokens, %d distinct: a refused token was sent again", len(seen), len(distinct))
	}
	refuse.Store(false)
	for i, want := range []Source{SourceIdP, SourceCache, SourceCache} {
		res, err := d.Get(ctx, "user-a")
		if err != nil || res.Token.Source != want {
			t.Fatalf("after the refusals, call %d: %+v %v", i, res, err)
		}
	}
	if n := f.obo.Load(); n != 4 {
		t.Fatalf("%d grants, want 4", n)
	}
	if distinct[seen[len(seen)-1]] {
		t.Fatal("a refused token was sent again")
	}
	if st := c.Stats(); st.MSALBypasses != 3 || st.MSALClients != 1 {
		t.Fatalf("stats %+v", st)
	}
}
