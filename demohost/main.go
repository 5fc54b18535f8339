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
	"sync"
	"time"

	"github.com/entra-go/secure-api/internal/httpx"
	"github.com/entra-go/secure-api/internal/svc"
	"github.com/entra-go/secure-api/static"
)

func main() { svc.Main("demohost", run) }

func run(ctx context.Context, log *slog.Logger) error {
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
	log.Info("demohost", "url", "http://"+cfg.Addr+"/", "mode", cfg.Page.Mode,
		"authority", cfg.Page.Authority, "api", cfg.Page.APIBaseURL, "embedded", cfg.StaticDir == "")
	return httpx.Serve(ctx, httpx.NewServer(cfg.Addr, h), log)
}

// prober checks the authority's discovery document from the server side.
// Its client trusts the system roots plus the dev CA file once that exists
// (devidp writes it on its first run, possibly after demohost started). A
// success is reused for a short while so that a flood of page loads makes few
// requests to the IdP; a failure is not (the IdP may be starting right now).
type prober struct {
	caFile, url string

	mu     sync.Mutex
	client *http.Client
	withCA bool
	okAt   time.Time
}

const probeReuse = 2 * time.Second

func discoveryProbe(caFile, url string) func(context.Context) error {
	p := &prober{caFile: caFile, url: url}
	return p.check
}

func (p *prober) check(ctx context.Context) error {
	c, fresh, err := p.clientFor()
	if err != nil || fresh {
		return err
	}
	if err := probe(ctx, c, p.url); err != nil {
		return err
	}
	p.mu.Lock()
	p.okAt = time.Now()
	p.mu.Unlock()
	return nil
}

// clientFor returns the client to probe with, or fresh=true when a recent
// success can be reused.
func (p *prober) clientFor() (c *http.Client, fresh bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	haveCA := false
	if p.caFile != "" {
		_, err := os.Stat(p.caFile)
		haveCA = err == nil
	}
	if p.client != nil && haveCA == p.withCA && !p.okAt.IsZero() && time.Since(p.okAt) < probeReuse {
		return nil, true, nil
	}
	if p.client == nil || haveCA != p.withCA {
		file := ""
		if haveCA {
			file = p.caFile
		}
		nc, err := httpx.ClientTrusting(file, 3*time.Second)
		if err != nil {
			return nil, false, err
		}
		if p.client != nil {
			p.client.CloseIdleConnections()
		}
		p.client, p.withCA, p.okAt = nc, haveCA, time.Time{}
	}
	return p.client, false, nil
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
