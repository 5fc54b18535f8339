package entraemu

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures an emulator.
type Config struct {
	Directory  *Directory       // nil: DefaultDirectory()
	IssuerHost string           // host[:port] in every URL and issuer, e.g. "localhost:8443"
	KeyDir     string           // "" = in-memory signing keys; else persisted there (0600)
	Logger     *slog.Logger     // nil: discard
	Now        func() time.Time // nil: time.Now
}

// Server is the emulator; it is an http.Handler.
type Server struct {
	dir     *Directory
	host    string
	log     *slog.Logger
	now     func() time.Time
	keys    *keyStore
	origins map[string]bool
	handler http.Handler

	counters sync.Map // name -> *atomic.Int64

	mu        sync.Mutex
	codes     map[string]*authCode       // sha256(code) -> code
	refreshes map[string]*refreshGrant   // sha256(rt) -> grant
	sessions  map[string]*session        // sha256(cookie) -> SSO session
	flows     map[string]*authzFlow      // interactive sign-ins in progress
	jtis      map[string]time.Time       // client-assertion jti -> exp (replay cache)
	consents  map[string]map[string]bool // user|client|resource -> consented scopes
	failOBO   map[string]int             // user oid -> AADSTS code for the next OBO
	fault     JWKSFault
	lastPurge time.Time
}

// JWKSFault makes the JWKS endpoints slow (Delay) and/or failing (Status,
// e.g. 503). The zero value is healthy.
type JWKSFault struct {
	Delay  time.Duration
	Status int
}

// Size limits for requests.
const (
	maxFormBytes  = 64 << 10
	maxQueryBytes = 16 << 10
)

// New builds an emulator for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Directory == nil {
		cfg.Directory = DefaultDirectory()
	}
	if err := cfg.Directory.Validate(); err != nil {
		return nil, err
	}
	if cfg.IssuerHost == "" {
		return nil, errors.New("entraemu: Config.IssuerHost is required (e.g. localhost:8443)")
	}
	if strings.ContainsAny(cfg.IssuerHost, "/?#@ ") {
		return nil, fmt.Errorf("entraemu: Config.IssuerHost %q must be host[:port]", cfg.IssuerHost)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ks, err := newKeyStore(cfg.KeyDir, cfg.Now)
	if err != nil {
		return nil, err
	}
	s := &Server{
		dir: cfg.Directory, host: cfg.IssuerHost, log: cfg.Logger, now: cfg.Now, keys: ks,
		origins:   cfg.Directory.spaOrigins(),
		codes:     map[string]*authCode{},
		refreshes: map[string]*refreshGrant{},
		sessions:  map[string]*session{},
		flows:     map[string]*authzFlow{},
		jtis:      map[string]time.Time{},
		consents:  map[string]map[string]bool{},
		failOBO:   map[string]int{},
	}
	s.handler = s.recoverer(s.limits(s.routes()))
	return s, nil
}

// Directory is the directory the emulator serves (read-only after New).
func (s *Server) Directory() *Directory { return s.dir }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *Server) baseURL() string { return "https://" + s.host }

// IssuerV2 and IssuerV1 are the issuers of the emulator's tenant.
func (s *Server) IssuerV2() string { return s.baseURL() + "/" + s.dir.Tenant.ID + "/v2.0" }
func (s *Server) IssuerV1() string { return s.baseURL() + "/" + s.dir.Tenant.ID + "/" }

// pagePatterns are the routes a browser navigates to: their errors are
// pages, never JSON.
var pagePatterns = map[string]bool{
	"/{tenant}/oauth2/v2.0/authorize": true, "/{tenant}/oauth2/v2.0/logout": true, "/{tenant}/oauth2/logout": true,
	"/{tenant}/login": true, "/{tenant}/consent": true, "/{tenant}/mfa": true,
}

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("/{tenant}/v2.0/.well-known/openid-configuration", s.cors(s.counted("discovery", s.handleDiscoveryV2)))
	m.Handle("/{tenant}/.well-known/openid-configuration", s.cors(s.counted("discovery", s.handleDiscoveryV1)))
	m.Handle("/{tenant}/discovery/v2.0/keys", s.cors(s.counted("keys", s.handleKeysV2)))
	m.Handle("/{tenant}/discovery/keys", s.cors(s.counted("keys", s.handleKeysV1)))
	m.Handle("/{tenant}/discovery/instance", s.cors(s.counted("instance_discovery", s.handleInstanceDiscovery)))
	m.Handle("/{tenant}/UserRealm/{user}", s.cors(s.counted("userrealm", s.handleUserRealm)))
	m.Handle("/{tenant}/oauth2/v2.0/token", s.cors(s.counted("token", s.handleTokenV2)))
	m.Handle("/{tenant}/oauth2/token", s.cors(s.counted("token", s.handleTokenV1)))
	m.Handle("/{tenant}/oauth2/v2.0/authorize", s.counted("authorize", s.handleAuthorize))
	m.Handle("/{tenant}/oauth2/v2.0/logout", s.cors(s.counted("logout", s.handleLogout)))
	m.Handle("/{tenant}/oauth2/logout", s.cors(s.counted("logout", s.handleLogout)))
	m.HandleFunc("/{tenant}/login", s.formTarget(s.handleLogin))
	m.HandleFunc("/{tenant}/consent", s.formTarget(s.handleConsent))
	m.HandleFunc("/{tenant}/mfa", s.formTarget(s.handleMFA))
	m.HandleFunc("GET /healthz", s.handleHealth)
	m.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	m.HandleFunc("GET /error", s.handleErrorPage)
	m.HandleFunc("GET /{$}", s.handleIndex)
	s.adminRoutes(m)
	m.HandleFunc("/", s.handleNotFound)
	return m
}

// formTarget guards the sign-in pages' form targets: anything but a POST
// (the address bar's URL after a form post, reloaded or bookmarked) gets an
// error page, as every browser-facing answer does.
func (s *Server) formTarget(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			s.errorPage(w, r, http.StatusMethodNotAllowed, methodNotAllowed("POST", r))
			return
		}
		h(w, r)
	}
}

// counted wraps a handler so every request is counted under name.
func (s *Server) counted(name string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodOptions {
			s.count(name)
		}
		h(w, r)
	}
}

func (s *Server) count(name string) {
	c, ok := s.counters.Load(name)
	if !ok {
		c, _ = s.counters.LoadOrStore(name, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
}

// Count returns how many requests were counted under name: "discovery",
// "keys", "instance_discovery", "userrealm", "token", "token:<grant_type>"
// (e.g. "token:urn:ietf:params:oauth:grant-type:jwt-bearer",
// "token:password"), "authorize", "logout".
func (s *Server) Count(name string) int64 {
	if c, ok := s.counters.Load(name); ok {
		return c.(*atomic.Int64).Load()
	}
	return 0
}

// Counters returns a snapshot of every counter.
func (s *Server) Counters() map[string]int64 {
	out := map[string]int64{}
	s.counters.Range(func(k, v any) bool {
		out[k.(string)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}

// ResetCounters sets every counter to zero.
func (s *Server) ResetCounters() {
	s.counters.Range(func(k, v any) bool {
		v.(*atomic.Int64).Store(0)
		return true
	})
}

// limits caps query and body sizes before any handler parses them; a
// too-long query is refused on a page for the browser endpoints, in JSON
// for the others.
func (s *Server) limits(m *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.RawQuery) > maxQueryBytes {
			e := invalidRequest(90015, "Requested query string is too long.")
			if _, pattern := m.Handler(r); pagePatterns[pattern] {
				s.errorPage(w, r, http.StatusBadRequest, e)
			} else {
				s.writeError(w, r, e)
			}
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		m.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into an Entra-style 500: a last resort that tests
// show is never reached.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic in handler", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.writeError(w, r, newErr(http.StatusInternalServerError, "server_error", 90100, "An unexpected error occurred in the emulator."))
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// corsHeaders are the request headers msal-browser may send cross-origin.
var corsHeaders = map[string]bool{
	"content-type": true, "x-anchormailbox": true, "client-request-id": true, "return-client-request-id": true,
	"x-client-sku": true, "x-client-ver": true, "x-client-os": true, "x-client-cpu": true,
	"x-client-current-telemetry": true, "x-client-last-telemetry": true, "x-ms-lib-capability": true,
	"x-app-name": true, "x-app-ver": true, "x-client-brkrver": true,
}

// cors allows the origins of the directory's SPA redirect URIs (echoing
// the Origin, with Vary: Origin) and answers preflights.
func (s *Server) cors(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		allowed := origin != "" && s.origins[strings.ToLower(origin)]
		if allowed {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			w.Header().Set("Access-Control-Expose-Headers", "x-ms-request-id, client-request-id, Retry-After")
		}
		if r.Method == http.MethodOptions {
			s.preflight(w, r, allowed)
			return
		}
		h(w, r)
	}
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request, allowed bool) {
	if allowed && r.Header.Get("Access-Control-Request-Method") != "" {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		var ok []string
		for _, h := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
			h = strings.ToLower(strings.TrimSpace(h))
			if corsHeaders[h] {
				ok = append(ok, h)
			}
		}
		if len(ok) > 0 {
			sort.Strings(ok)
			w.Header().Set("Access-Control-Allow-Headers", strings.Join(ok, ", "))
		}
		w.Header().Set("Access-Control-Max-Age", "86400")
	}
	w.WriteHeader(http.StatusNoContent)
}

// tenantOf resolves the {tenant} path segment: the tenant id or a verified
// domain, or "common"/"organizations". Unknown tenants get AADSTS90002.
func (s *Server) tenantOf(r *http.Request) (seg string, multi bool, e *oauthError) {
	seg = r.PathValue("tenant")
	switch {
	case s.dir.isTenant(seg):
		return seg, false, nil
	case strings.EqualFold(seg, "common"), strings.EqualFold(seg, "organizations"):
		return strings.ToLower(seg), true, nil
	}
	e = newErr(http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", truncate(seg, 64))
	return seg, false, e
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "issuer": s.IssuerV2()})
}

func (s *Server) handleNotFound(w http.ResponseWriter, r *http.Request) {
	s.writeError(w, r, newErr(http.StatusNotFound, "not_found", 900561, "The endpoint '%s' does not exist in this emulator.", truncate(r.URL.Path, 128)))
}

func methodNotAllowed(methods string, r *http.Request) *oauthError {
	return invalidRequest(900561, "The endpoint only accepts %s requests. Received a %s request.", methods, truncate(r.Method, 16))
}
