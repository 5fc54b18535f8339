// Command demohost serves the walkthrough page (static/) on
// http://localhost:30662 with /config.json built from its environment, so one
// set of static files serves the local mode (the devidp emulator) and the
// Entra mode (a real tenant). See LoadConfig for the variables.
package main

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/entra-go/secure-api/internal/httpx"
	"github.com/entra-go/secure-api/static"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("demohost", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	var files fs.FS = static.Files
	if cfg.StaticDir != "" {
		files = os.DirFS(cfg.StaticDir)
	}
	// Make .js/.css/.svg types independent of the machine's mime tables.
	_ = mime.AddExtensionType(".js", "text/javascript; charset=utf-8")
	_ = mime.AddExtensionType(".css", "text/css; charset=utf-8")
	_ = mime.AddExtensionType(".svg", "image/svg+xml")

	h, err := newHost(cfg, files, discoveryProbe(cfg.CAFile, cfg.Page.DiscoveryURL), log)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("demohost", "url", "http://"+cfg.Addr+"/", "mode", cfg.Page.Mode,
		"authority", cfg.Page.Authority, "api", cfg.Page.APIBaseURL, "embedded", cfg.StaticDir == "")
	return httpx.Serve(ctx, httpx.NewServer(cfg.Addr, h), log)
}

// probeClient trusts the system roots plus the dev CA file when it exists.
// It is made per probe: devidp writes its CA on its first run, possibly after
// demohost started.
func probeClient(caFile string) (*http.Client, error) {
	if caFile != "" {
		if _, err := os.Stat(caFile); err != nil {
			caFile = ""
		}
	}
	return httpx.ClientTrusting(caFile, 3*time.Second)
}

// discoveryProbe GETs the fixed discovery URL (never a URL from the request).
func discoveryProbe(caFile, url string) func(context.Context) error {
	return func(ctx context.Context) error {
		c, err := probeClient(caFile)
		if err != nil {
			return err
		}
		return probe(ctx, c, url)
	}
}

func probe(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := c.Do(req)
	if err != nil {
		return err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("discovery: HTTP %d", res.StatusCode)
	}
	return nil
}
