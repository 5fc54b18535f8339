package obo_test

import (
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/obo"
)

// A web API that calls Microsoft Graph On-Behalf-Of its callers, sharing the
// downstream-token cache with its other instances through Redis.
func Example() {
	log := slog.Default()
	cred, err := obo.SecretCredential(os.Getenv("API_CLIENT_SECRET"))
	if err != nil {
		log.Error("credential", "err", err)
		return
	}
	keys, err := obo.KeyringFromBase64(os.Getenv("OBO_CACHE_KEY"))
	if err != nil {
		log.Error("cache key", "err", err)
		return
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ReadTimeout: 500 * time.Millisecond})
	store := obo.NewTieredStore(obo.NewMemoryStore(10000, nil), obo.NewRedisStore(rdb, "", keys), log)
	tokens, err := obo.New(obo.Config{
		Authority:  "https://login.microsoftonline.com/" + os.Getenv("TENANT_ID"),
		ClientID:   os.Getenv("API_CLIENT_ID"),
		Credential: cred,
		Store:      store,
		Timeout:    10 * time.Second,
	})
	if err != nil {
		log.Error("obo", "err", err)
		return
	}
	graph := &obo.Downstream{Tokens: tokens, URL: "https://graph.microsoft.com/v1.0/me",
		Scopes: []string{"https://graph.microsoft.com/User.Read"}}

	v, err := apiauth.New(apiauth.Config{Authority: tokens.Authority(), ClientID: os.Getenv("API_CLIENT_ID")})
	if err != nil {
		log.Error("apiauth", "err", err)
		return
	}
	mux := http.NewServeMux()
	// 200 with the upstream's answer, or the error contract of obo.WriteError
	// (401 insufficient_claims / consent_required / invalid_token, 502, 503, 504).
	mux.Handle("GET /api/obo", v.Protect(obo.Handler(graph, log), apiauth.DelegatedOnly(), apiauth.RequireScope("access_as_user")))
	srv := &http.Server{Addr: "localhost:5050", Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 15 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	_ = srv.ListenAndServe()
}
