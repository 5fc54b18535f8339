// Command upstream is the walkthrough's downstream microservice: a minimal
// Microsoft Graph-compatible API. GET /v1.0/me answers the caller's profile
// in Graph's shape. Like Graph it accepts only v1.0 access tokens for its own
// audience (https://graph.microsoft.com or 00000003-0000-0000-c000-000000000000)
// carrying the delegated scope User.Read, so demoapi reaches it only with a
// token obtained On-Behalf-Of the user. Zero configuration in local mode.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"os"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/internal/httpx"
	"github.com/entra-go/secure-api/internal/svc"
	"github.com/entra-go/secure-api/upstream/graph"
)

func main() { svc.Main("upstream", run) }

func run(ctx context.Context, log *slog.Logger) error {
	cfg, err := LoadConfig(os.Getenv)
	if err != nil {
		return err
	}
	lookup, err := directoryLookup(cfg.DirectoryFile)
	if err != nil {
		return err
	}
	client, err := svc.IdPClient(ctx, cfg.Mode, cfg.CAFile, log)
	if err != nil {
		return err
	}
	v, err := newValidator(cfg, client, log)
	if err != nil {
		return err
	}
	defer v.Close()
	log.Info("upstream", "url", "http://"+cfg.Addr+"/v1.0/me", "mode", cfg.Mode, "authority", cfg.Authority,
		"client_id", cfg.ClientID, "audiences", cfg.Audiences, "scope", cfg.Scope)
	return httpx.Serve(ctx, httpx.NewServer(cfg.Addr, graph.Handler(v, cfg.Scope, lookup)), log)
}

func newValidator(cfg Config, client *http.Client, log *slog.Logger) (*apiauth.Validator, error) {
	return apiauth.New(apiauth.Config{
		Authority:  cfg.Authority,
		ClientID:   cfg.ClientID,
		Audiences:  cfg.Audiences,
		Versions:   []string{"1.0"}, // like Graph: v1.0 access tokens only
		HTTPClient: client,
		Logger:     log,
	})
}
