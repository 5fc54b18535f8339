package obo

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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
	// A refused token is dropped from our cache (MSAL's own cache may still
	// hold it: it is reported as such).
	setHandler(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{}`)) })
	if res, err := d.Get(context.Background(), "user-a"); err != nil || res.Token.Tier == "memory" {
		t.Fatalf("after a 401 our cached token must not be reused: %+v %v", res, err)
	} else if res.Token.Source == SourceCache && res.Token.Tier != "msal" {
		t.Fatalf("%+v", res.Token)
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
