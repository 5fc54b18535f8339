// Package httpx holds the server and client defaults every binary of this
// project shares: timeouts and size limits on servers, graceful shutdown, and
// an HTTP client that trusts the dev CA in addition to the system roots.
package httpx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// Server limits. Bearer tokens from Entra are a few KiB; 64 KiB of headers is
// ample while stopping header floods early.
const (
	MaxHeaderBytes    = 64 << 10
	ReadHeaderTimeout = 5 * time.Second
	ReadTimeout       = 15 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
	ShutdownTimeout   = 10 * time.Second
)

// NewServer returns an http.Server for h with the project's timeouts and
// header limit. Request bodies are not limited here; use LimitBody on
// handlers that read one.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
	}
}

// Serve listens on srv.Addr and serves until ctx is done, then shuts down
// gracefully, waiting at most ShutdownTimeout for requests in flight. It
// returns nil after a clean shutdown. When srv.TLSConfig is set it serves TLS
// with the certificates configured there.
func Serve(ctx context.Context, srv *http.Server, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", srv.Addr, err)
	}
	return ServeListener(ctx, srv, ln, logger)
}

// ServeListener is Serve on an existing listener (tests use port 0).
func ServeListener(ctx context.Context, srv *http.Server, ln net.Listener, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	useTLS := srv.TLSConfig != nil // read before Serve mutates srv
	errc := make(chan error, 1)
	go func() {
		if useTLS {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	logger.Info("listening", "addr", ln.Addr().String(), "tls", useTLS)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	logger.Info("stopped", "addr", ln.Addr().String())
	return err
}

// LimitBody caps request bodies at n bytes; reads past the cap fail, so
// handlers that parse forms or JSON answer an error instead of buffering
// without bound.
func LimitBody(h http.Handler, n int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h.ServeHTTP(w, r)
	})
}

// CertPool returns the system roots plus the PEM certificates in caFile. An
// empty caFile yields the system roots alone. A named file that is missing or
// holds no certificate is an error: silently falling back to the system roots
// would hide a misconfiguration.
func CertPool(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate found", caFile)
	}
	return pool, nil
}

// ClientTrusting returns an HTTP client with an overall timeout whose TLS
// roots are the system roots plus caFile (see CertPool).
func ClientTrusting(caFile string, timeout time.Duration) (*http.Client, error) {
	pool, err := CertPool(caFile)
	if err != nil {
		return nil, err
	}
	return ClientWithRoots(pool, timeout), nil
}

// ClientWithRoots returns an HTTP client with an overall timeout and the given
// TLS roots; redirects are not followed (token and key endpoints never need
// them, and following them could carry credentials elsewhere).
func ClientWithRoots(pool *x509.CertPool, timeout time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	tr.ResponseHeaderTimeout = timeout
	tr.MaxIdleConnsPerHost = 64
	return &http.Client{
		Timeout:   timeout,
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// IsLoopback reports whether a RemoteAddr ("ip:port", or a bare IP) is a
// loopback address. It trusts the peer address only, never
// X-Forwarded-For: behind a reverse proxy on the same host every caller
// looks local, so loopback-only endpoints must not be routed through one.
func IsLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
