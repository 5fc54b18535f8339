package httpx

import (
	"context"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeShutsDownOnCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	if srv.ReadHeaderTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("server without limits: %+v", srv)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, srv, ln, nil) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v after clean shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Fatal("server still answering after shutdown")
	}
}

func TestLimitBody(t *testing.T) {
	h := LimitBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), 10)
	for _, tc := range []struct {
		body   string
		chunk  bool
		status int
	}{
		{"small", false, http.StatusNoContent},
		{strings.Repeat("x", 11), false, http.StatusRequestEntityTooLarge},
		{strings.Repeat("x", 11), true, http.StatusRequestEntityTooLarge},
	} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		if tc.chunk {
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("body %d bytes chunked=%v: status %d, want %d", len(tc.body), tc.chunk, rec.Code, tc.status)
		}
	}
}

func TestClientTrustingCAFile(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tls ok")
	}))
	defer ts.Close()
	dir := t.TempDir()

	// Without the CA the server's certificate is refused.
	plain, err := ClientTrusting("", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Get(ts.URL); err == nil {
		t.Fatal("untrusted certificate accepted")
	}

	caFile := filepath.Join(dir, "ca.pem")
	cert := ts.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := ClientTrusting(caFile, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Get(ts.URL)
	if err != nil {
		t.Fatalf("trusted CA refused: %v", err)
	}
	resp.Body.Close()

	if _, err := ClientTrusting(filepath.Join(dir, "missing.pem"), time.Second); err == nil {
		t.Fatal("missing CA file accepted")
	}
	bad := filepath.Join(dir, "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := ClientTrusting(bad, time.Second); err == nil {
		t.Fatal("CA file without certificates accepted")
	}
}

func TestClientDoesNotFollowRedirects(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		t.Error("redirect followed")
	}))
	defer ts.Close()
	c, _ := ClientTrusting("", time.Second)
	resp, err := c.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:5555": true, "[::1]:80": true, "127.1.2.3:1": true, "::1": true, "[::ffff:127.0.0.1]:9": true,
		"10.0.0.1:5555": false, "[2001:db8::1]:443": false, "192.168.1.2:80": false, "localhost:80": false,
		"garbage": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
