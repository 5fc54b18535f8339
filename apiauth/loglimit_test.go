package apiauth_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/entra-go/secure-api/apiauth"
)

// TestRefusalLogsAreRateLimited: a flood of bad tokens yields at most
// RefusalLogsPerSecond lines per second, and the next line written says how
// many were suppressed; every request is still refused.
func TestRefusalLogsAreRateLimited(t *testing.T) {
	idp := newTestIDP(t)
	logs := &logBuffer{}
	clock := &atomicTime{}
	clock.set(time.Unix(1_800_000_000, 0))
	v := newValidator(t, idp, func(c *apiauth.Config) {
		c.Logger = slogTo(logs)
		c.RefusalLogsPerSecond = 5
		c.Now = clock.get
	})
	waitReady(t, v)
	h := v.Protect(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		t.Error("bad token reached the handler")
	}))
	refuse := func(n int) {
		for i := 0; i < n; i++ {
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer not.a.token")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d", rec.Code)
			}
		}
	}
	lines := func() []string {
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "apiauth: request refused") {
				out = append(out, l)
			}
		}
		return out
	}

	refuse(100)
	if got := len(lines()); got != 5 {
		t.Fatalf("%d refusal lines in one second, want 5", got)
	}
	clock.set(clock.get().Add(time.Second))
	refuse(1)
	l := lines()
	if len(l) != 6 || !strings.Contains(l[5], "suppressed_since_last=95") {
		t.Fatalf("next second: %d lines, last %q; want 6 with suppressed_since_last=95", len(l), l[len(l)-1])
	}
}
