package obo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entra-go/secure-api/internal/testkit"
	"github.com/entra-go/secure-api/internal/testkit/testredis"
)

// fakeIdP is a minimal Entra-shaped authority (discovery + token endpoint)
// for unit tests of the MSAL wrapper and the error mapping. The real
// emulator is used by the integration tests.
type fakeIdP struct {
	srv       *httptest.Server
	authority string
	obo       atomic.Int64
	// respond, if set, answers the OBO grant instead of the default success.
	mu      sync.Mutex
	respond func(w http.ResponseWriter, r *http.Request)
	delay   time.Duration
}

const fakeTenant = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"

func newFakeIdP(t testing.TB) *fakeIdP {
	f := &fakeIdP{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+fakeTenant+"/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host + "/" + fakeTenant
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"issuer": base + "/v2.0", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"token_endpoint": base + "/oauth2/v2.0/token",
		})
	})
	mux.HandleFunc("POST /"+fakeTenant+"/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			http.Error(w, `{"error":"unsupported_grant_type"}`, 400)
			return
		}
		f.obo.Add(1)
		f.mu.Lock()
		respond, delay := f.respond, f.delay
		f.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if respond != nil {
			respond(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
			"access_token": downstreamFor(r.PostForm.Get("assertion")),
			"scope":        strings.TrimSpace(strings.NewReplacer("openid", "", "offline_access", "", "profile", "").Replace(r.PostForm.Get("scope"))),
		})
	})
	f.srv = httptest.NewTLSServer(mux)
	t.Cleanup(f.srv.Close)
	f.authority = f.srv.URL + "/" + fakeTenant
	return f
}

func (f *fakeIdP) set(delay time.Duration, respond func(w http.ResponseWriter, r *http.Request)) {
	f.mu.Lock()
	f.delay, f.respond = delay, respond
	f.mu.Unlock()
}

// downstreamFor is the fake downstream token for an assertion: a test can
// check that every caller got the token minted for its own assertion.
func downstreamFor(assertion string) string {
	s := sha256.Sum256([]byte(assertion))
	return "down." + hex.EncodeToString(s[:8])
}

func idpError(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func (f *fakeIdP) client(t testing.TB, mod func(*Config)) *Client {
	t.Helper()
	cred, err := SecretCredential("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Authority: f.authority, ClientID: "68fee0a8-293c-4256-8007-b5453b634b61", Credential: cred,
		HTTPClient: f.srv.Client(), Timeout: 2 * time.Second, Logger: discardLogger()}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Helpers shared with the tests of other packages (internal/testkit).
var discardLogger = testkit.DiscardLogger

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testkit.SyncBuffer

const redisAddr = testredis.Addr

// testRedis connects to the local Redis or skips. It returns a unique key
// prefix for this test and deletes its keys at cleanup.
func testRedis(t testing.TB) (*redis.Client, string) { return testredis.Open(t, "obo-test:") }

// tcpProxy forwards to target until closed; closing it drops every
// connection, which looks to clients like the target going down.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(u, c); u.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.Close)
	return p
}

func (p *tcpProxy) Addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
