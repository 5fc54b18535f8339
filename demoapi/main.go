// Command demoapi is the protected web API of the walkthrough: GET /api
// accepts an Entra access token (delegated with access_as_user, or app-only
// with Demo.Read.All) and answers what it read from it. Zero configuration in
// local mode (the devidp emulator); environment variables for a real tenant
// (see LoadConfig).
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/internal/httpx"
	"github.com/entra-go/secure-api/internal/svc"
)

func main() { svc.Main("demoapi", run) }

func run(ctx context.Context, log *slog.Logger) error {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	client, err := svc.IdPClient(ctx, cfg.Mode, cfg.CAFile, log)
	if err != nil {
		return err
	}
	v, err := apiauth.New(apiauth.Config{
		Authority:      cfg.Authority,
		ClientID:       cfg.ClientID,
		Audiences:      cfg.Audiences,
		Versions:       cfg.Versions,
		AllowedTenants: cfg.AllowedTenants,
		HTTPClient:     client,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	defer v.Close()
	oc, err := LoadOBOConfig(os.Getenv, cfg)
	if err != nil {
		return err
	}
	oboH, down, closeOBO, err := newOBO(cfg, oc, client, log)
	if err != nil {
		log.Warn("demoapi: GET /api/obo disabled", "reason", err.Error())
		oboH = oboUnavailable(err.Error())
	} else {
		defer closeOBO()
	}
	log.Info("demoapi", "url", "http://"+cfg.Addr+"/api", "mode", cfg.Mode, "authority", cfg.Authority,
		"client_id", cfg.ClientID, "allowed_origins", cfg.AllowedOrigins)
	return httpx.Serve(ctx, httpx.NewServer(cfg.Addr, handler(cfg, v, oboH, down)), log)
}
