package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// host serves the page, /config.json and a probe of the authority.
type host struct {
	files  fs.FS
	config []byte // /config.json, rendered once
	csp    string // for the pages
	// bridgeCSP is the CSP of redirect.html: the same, except that our own
	// page may frame it (msal-browser's hidden-iframe silent flow lands there).
	bridgeCSP string
	probe     func(ctx context.Context) error // GET of the discovery document, server side
	log       *slog.Logger
}

func newHost(cfg Config, files fs.FS, probe func(context.Context) error, log *slog.Logger) (*host, error) {
	b, err := json.MarshalIndent(cfg.Page, "", "  ")
	if err != nil {
		return nil, err
	}
	return &host{
		files:     files,
		config:    append(b, '\n'),
		csp:       contentSecurityPolicy(cfg.Page, "'none'"),
		bridgeCSP: contentSecurityPolicy(cfg.Page, "'self'"),
		probe:     probe,
		log:       log,
	}, nil
}

// contentSecurityPolicy allows exactly this origin, the authority's origin and
// the API's origin, and nothing inline.
//   - connect-src: msal-browser fetches discovery and the token endpoint from
//     the authority; the page calls the API.
//   - frame-src: msal-browser's silent flow loads the authority's authorize
//     endpoint in a hidden iframe, which then lands on our redirect bridge.
//   - form-action: the authorize request may be a form POST (httpMethod POST).
func contentSecurityPolicy(p PageConfig, frameAncestors string) string {
	idp, api := origin(p.Authority), origin(p.APIBaseURL)
	connect := []string{"'self'", idp}
	if api != idp {
		connect = append(connect, api)
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'",
		"style-src 'self'",
		"img-src 'self' data:",
		"connect-src " + strings.Join(connect, " "),
		"frame-src 'self' " + idp,
		"form-action 'self' " + idp,
		"base-uri 'none'",
		"object-src 'none'",
		"frame-ancestors " + frameAncestors,
	}, "; ")
}

func (h *host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	// No Cross-Origin-Opener-Policy: the v5 redirect bridge page must never
	// send one (protocol-facts §6.6), and one policy for the whole origin
	// keeps the page and the bridge alike.

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/config.json":
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-store")
		_, _ = w.Write(h.config)
		return
	case "/healthz":
		hd.Set("Content-Type", "text/plain; charset=utf-8")
		hd.Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, "ok\n")
		return
	case "/status/authority":
		h.serveProbe(w, r)
		return
	}
	h.serveFile(w, r)
}

// serveProbe tells the page whether this server reaches the authority's
// discovery document. When it does and the browser does not, the browser is
// the one that lacks the dev CA.
func (h *host) serveProbe(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res := map[string]any{"reachable": true}
	if err := h.probe(ctx); err != nil {
		h.log.Info("authority probe failed", "err", err)
		res["reachable"] = false
	}
	_ = json.NewEncoder(w).Encode(res)
}

func (h *host) serveFile(w http.ResponseWriter, r *http.Request) {
	name := path.Clean(r.URL.Path)
	if name == "/" {
		name = "/index.html"
	}
	// A path ending in "/" names a folder: never list one.
	if strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	name = strings.TrimPrefix(name, "/")
	if !fs.ValidPath(name) || strings.HasSuffix(name, ".go") || strings.HasPrefix(path.Base(name), ".") {
		http.NotFound(w, r)
		return
	}
	f, err := h.files.Open(name)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			h.log.Warn("open static file", "name", name, "err", err)
		}
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		hd.Set("Content-Type", ct)
	}
	if strings.HasSuffix(name, ".html") {
		if name == "redirect.html" {
			hd.Set("Content-Security-Policy", h.bridgeCSP)
			hd.Set("X-Frame-Options", "SAMEORIGIN")
		} else {
			hd.Set("Content-Security-Policy", h.csp)
			hd.Set("X-Frame-Options", "DENY")
		}
		hd.Set("Cache-Control", "no-cache")
	} else {
		hd.Set("Content-Security-Policy", h.csp)
		hd.Set("Cache-Control", "no-cache")
	}
	// Embedded files have no modification time; no-cache plus the zero time
	// makes browsers revalidate, which is right for a page under development.
	http.ServeContent(w, r, name, st.ModTime(), rs)
}
