// Command devidp runs the local Entra ID emulator over HTTPS with a dev CA
// kept in a state directory.
//
//	go run ./devidp [-addr localhost:8443] [-state-dir .devidp] [-directory file.json] [-issuer-host localhost:8443]
//
// Every flag has an environment variable: DEVIDP_ADDR, DEVIDP_STATE_DIR,
// DEVIDP_DIRECTORY, DEVIDP_ISSUER_HOST.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/entra-go/secure-api/entraemu"
	"github.com/entra-go/secure-api/internal/devtls"
	"github.com/entra-go/secure-api/internal/svc"
)

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		// The flag package has printed the usage (and the error, if any):
		// -h/--help is a success, a bad flag the conventional exit code 2.
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	svc.Main("devidp failed", func(ctx context.Context, log *slog.Logger) error { return start(ctx, log, o) })
}

func env(name, def string) string { return svc.Or(os.Getenv(name), def) }

type options struct {
	addr, stateDir, directory, issuerHost string

	// listening, if set, is called once serving with the advertised
	// authority (tests learn the real port of "-addr 127.0.0.1:0").
	listening func(authority string)
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("devidp", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", env("DEVIDP_ADDR", "localhost:8443"), "listen address; host \"localhost\" binds 127.0.0.1 and ::1 only (env DEVIDP_ADDR)")
	fs.StringVar(&o.stateDir, "state-dir", env("DEVIDP_STATE_DIR", ".devidp"), "state directory: dev CA, TLS and signing keys (env DEVIDP_STATE_DIR)")
	fs.StringVar(&o.directory, "directory", env("DEVIDP_DIRECTORY", ""), "directory JSON file; empty = the shipped default (env DEVIDP_DIRECTORY)")
	fs.StringVar(&o.issuerHost, "issuer-host", env("DEVIDP_ISSUER_HOST", ""), "host[:port] in issuers and endpoints; default localhost:<port> (env DEVIDP_ISSUER_HOST)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected arguments: %v", fs.Args())
		fmt.Fprintln(fs.Output(), err)
		fs.Usage()
		return o, err
	}
	return o, nil
}

// run is main's logic for tests: parse args, then start.
func run(ctx context.Context, log *slog.Logger, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	return start(ctx, log, o)
}

func start(ctx context.Context, log *slog.Logger, o options) error {
	host, port, err := net.SplitHostPort(o.addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", o.addr, err)
	}
	dir := entraemu.DefaultDirectory()
	if o.directory != "" {
		if dir, err = entraemu.LoadDirectory(o.directory); err != nil {
			return err
		}
	}
	bundle, err := devtls.Ensure(o.stateDir)
	if err != nil {
		return err
	}
	// Listen first: with port 0 the issuer must name the port the system
	// chose, not ":0".
	listeners, err := listen(host, port)
	if err != nil {
		return err
	}
	if o.issuerHost == "" {
		o.issuerHost = net.JoinHostPort("localhost", strconv.Itoa(listeners[0].Addr().(*net.TCPAddr).Port))
	}
	emu, err := entraemu.New(entraemu.Config{Directory: dir, IssuerHost: o.issuerHost, KeyDir: o.stateDir, Logger: log})
	if err != nil {
		for _, l := range listeners {
			l.Close()
		}
		return err
	}
	srv := &http.Server{
		Handler:           emu,
		TLSConfig:         bundle.TLSConfig(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      6 * time.Minute, // JWKS fault injection may delay up to 5 min
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	caPath, _ := filepath.Abs(filepath.Join(o.stateDir, devtls.CAFile))
	log.Info("devidp listening",
		"authority", "https://"+o.issuerHost+"/"+dir.Tenant.ID,
		"ca", caPath, "spki_sha256", bundle.LeafSPKIHash(), "addr", o.addr)
	fmt.Fprintf(os.Stderr, "devidp: authority https://%s/%s\ndevidp: dev CA certificate %s (trust it, see README)\n", o.issuerHost, dir.Tenant.ID, caPath)
	if o.listening != nil {
		o.listening("https://" + o.issuerHost + "/" + dir.Tenant.ID)
	}
	return serve(ctx, log, srv, listeners)
}

// listen binds the address; "localhost" means both loopback addresses (no
// other interface), so the emulator is never reachable from the network by
// default. With port 0 the first listener's port is reused for the second,
// so that one advertised URL reaches both.
func listen(host, port string) ([]net.Listener, error) {
	hosts := []string{host}
	if host == "localhost" {
		hosts = []string{"127.0.0.1", "::1"}
	}
	var ls []net.Listener
	for _, h := range hosts {
		if len(ls) > 0 {
			port = strconv.Itoa(ls[0].Addr().(*net.TCPAddr).Port)
		}
		l, err := net.Listen("tcp", net.JoinHostPort(h, port))
		if err != nil {
			if h == "::1" && len(ls) > 0 {
				continue // no IPv6 loopback on this machine
			}
			for _, x := range ls {
				x.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func serve(ctx context.Context, log *slog.Logger, srv *http.Server, ls []net.Listener) error {
	errc := make(chan error, len(ls))
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ServeTLS(l, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
		log.Info("devidp shutting down")
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdownCtx); serr != nil && err == nil {
		err = serr
	}
	wg.Wait()
	return err
}
