package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/entra-go/secure-api/internal/httpx"
	"github.com/entra-go/secure-api/internal/svc"
	"github.com/entra-go/secure-api/obo"
)

// OBOConfig configures GET /api/obo: the upstream called On-Behalf-Of the
// user, the API's own credential and the downstream-token cache.
type OBOConfig struct {
	UpstreamURL string
	Scopes      []string
	Timeout     time.Duration // bounds the IdP exchange and the upstream call (each)

	// Credential: exactly one kind is used, in this order.
	CertFile, KeyFile  string // PEM certificate (chain) and unencrypted RSA key
	Secret             string // client secret (API_CLIENT_SECRET or the file API_CLIENT_SECRET_FILE)
	FederatedTokenFile string // client assertion read from a file (workload identity)
	// LocalDevSecret: no credential configured and the authority is the local
	// emulator, so the dev secret is read from the emulator's directory data.
	LocalDevSecret bool

	RedisAddr     string
	RedisPassword string
	RedisPrefix   string
	RedisTimeout  time.Duration // bounds each Redis operation (default 500ms)
	CacheKey      string        // base64 AES-256 key(s), current first
	CacheSize     int
}

// LoadOBOConfig reads the environment. Variables (all optional in local
// mode; see README "On-Behalf-Of: calling the upstream"):
//
//	UPSTREAM_URL                 upstream endpoint (default: local mode http://localhost:5051/v1.0/me,
//	                             the upstream service; Entra mode https://graph.microsoft.com/v1.0/me)
//	UPSTREAM_SCOPES              scopes requested for it, comma/space-separated
//	                             (default https://graph.microsoft.com/User.Read in both modes)
//	API_CLIENT_SECRET            the API's client secret, or
//	API_CLIENT_SECRET_FILE       a file holding it
//	API_CLIENT_CERT_FILE         PEM certificate of the API's credential, with
//	API_CLIENT_KEY_FILE          its unencrypted RSA private key (may be the same file)
//	AZURE_FEDERATED_TOKEN_FILE   a federated token used as client assertion (workload identity);
//	                             API_FEDERATED_TOKEN_FILE takes precedence
//	OBO_TIMEOUT                  bound of the IdP exchange and of the upstream call (default 10s)
//	OBO_CACHE_SIZE               in-memory token cache entries (default 10000)
//	OBO_REDIS_ADDR               host:port of a Redis shared by API instances (default: none)
//	OBO_REDIS_PASSWORD           its password, if any
//	OBO_REDIS_PREFIX             Redis key prefix (default obo:v1:)
//	OBO_REDIS_TIMEOUT            bound of each Redis operation; slower counts as Redis down (default 500ms)
//	OBO_CACHE_KEY                base64 32-byte key(s) encrypting tokens in Redis, comma-separated,
//	                             current first (required with OBO_REDIS_ADDR), or
//	OBO_CACHE_KEY_FILE           a file holding them
func LoadOBOConfig(getenv func(string) string, base Config) (OBOConfig, error) {
	c := OBOConfig{
		UpstreamURL:        svc.Or(getenv("UPSTREAM_URL"), defaultUpstreamURL(base.Mode)),
		Scopes:             svc.List(svc.Or(getenv("UPSTREAM_SCOPES"), defaultUpstreamScope)),
		Timeout:            10 * time.Second,
		CertFile:           getenv("API_CLIENT_CERT_FILE"),
		KeyFile:            getenv("API_CLIENT_KEY_FILE"),
		Secret:             getenv("API_CLIENT_SECRET"),
		FederatedTokenFile: svc.Or(getenv("API_FEDERATED_TOKEN_FILE"), getenv("AZURE_FEDERATED_TOKEN_FILE")),
		RedisAddr:          getenv("OBO_REDIS_ADDR"),
		RedisPassword:      getenv("OBO_REDIS_PASSWORD"),
		RedisPrefix:        getenv("OBO_REDIS_PREFIX"),
		RedisTimeout:       500 * time.Millisecond,
		CacheKey:           getenv("OBO_CACHE_KEY"),
	}
	if err := checkUpstreamURL(c.UpstreamURL, base.Mode); err != nil {
		return c, err
	}
	if len(c.Scopes) == 0 {
		return c, errors.New("UPSTREAM_SCOPES: empty; e.g. https://graph.microsoft.com/User.Read")
	}
	if v := getenv("OBO_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("OBO_TIMEOUT %q: want a positive duration such as 10s", v)
		}
		c.Timeout = d
	}
	if v := getenv("OBO_REDIS_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, fmt.Errorf("OBO_REDIS_TIMEOUT %q: want a positive duration such as 500ms", v)
		}
		c.RedisTimeout = d
	}
	if v := getenv("OBO_CACHE_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return c, fmt.Errorf("OBO_CACHE_SIZE %q: want a positive integer", v)
		}
		c.CacheSize = n
	}
	if f := getenv("API_CLIENT_SECRET_FILE"); f != "" && c.Secret == "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return c, fmt.Errorf("API_CLIENT_SECRET_FILE: %w", err)
		}
		c.Secret = strings.TrimSpace(string(b))
	}
	if f := getenv("OBO_CACHE_KEY_FILE"); f != "" && c.CacheKey == "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return c, fmt.Errorf("OBO_CACHE_KEY_FILE: %w", err)
		}
		c.CacheKey = strings.TrimSpace(string(b))
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return c, errors.New("API_CLIENT_CERT_FILE and API_CLIENT_KEY_FILE go together")
	}
	if c.RedisAddr != "" && c.CacheKey == "" {
		return c, errors.New("OBO_REDIS_ADDR needs OBO_CACHE_KEY or OBO_CACHE_KEY_FILE (tokens are encrypted at rest; generate one with: head -c32 /dev/urandom | base64)")
	}
	if c.CertFile == "" && c.Secret == "" && c.FederatedTokenFile == "" && base.Mode == svc.ModeLocal {
		c.LocalDevSecret = true
	}
	return c, nil
}

// The upstream defaults. Both modes request Graph's User.Read: the local
// upstream service accepts Graph-shaped tokens, so the same scope works with
// either upstream.
const (
	localUpstreamURL     = "http://localhost:5051/v1.0/me"
	graphUpstreamURL     = "https://graph.microsoft.com/v1.0/me"
	defaultUpstreamScope = "https://graph.microsoft.com/User.Read"
)

// defaultUpstreamURL is the upstream for a mode: the local upstream service
// next to the emulator, Microsoft Graph against a real tenant. Entra mode
// must not default to a local port: a real Graph token would go in cleartext
// to whatever listens there.
func defaultUpstreamURL(mode string) string {
	if mode == svc.ModeLocal {
		return localUpstreamURL
	}
	return graphUpstreamURL
}

// checkUpstreamURL refuses an upstream URL that is not absolute http(s), and
// in Entra mode (real tokens) cleartext http to anything but the loopback
// interface.
func checkUpstreamURL(raw, mode string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("UPSTREAM_URL %q: want an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && mode != svc.ModeLocal {
		if h := u.Hostname(); h != "localhost" && !httpx.IsLoopback(h) {
			return fmt.Errorf("UPSTREAM_URL %q: Entra mode sends real tokens; use https (plain http only to localhost)", raw)
		}
	}
	return nil
}

// credential builds the API's credential from c.
func (c OBOConfig) credential(clientID string) (obo.Credential, error) {
	switch {
	case c.CertFile != "":
		cert, err := os.ReadFile(c.CertFile)
		if err != nil {
			return obo.Credential{}, fmt.Errorf("API_CLIENT_CERT_FILE: %w", err)
		}
		key := cert
		if c.KeyFile != c.CertFile {
			if key, err = os.ReadFile(c.KeyFile); err != nil {
				return obo.Credential{}, fmt.Errorf("API_CLIENT_KEY_FILE: %w", err)
			}
		}
		return obo.CertificateCredential(cert, key)
	case c.Secret != "":
		return obo.SecretCredential(c.Secret)
	case c.FederatedTokenFile != "":
		return obo.FederatedTokenFileCredential(c.FederatedTokenFile), nil
	case c.LocalDevSecret:
		s, err := localDevSecret(clientID)
		if err != nil {
			return obo.Credential{}, err
		}
		return obo.SecretCredential(s)
	}
	return obo.Credential{}, errors.New("no credential for On-Behalf-Of: set API_CLIENT_SECRET(_FILE), API_CLIENT_CERT_FILE + API_CLIENT_KEY_FILE, or AZURE_FEDERATED_TOKEN_FILE")
}

// newOBO builds the /api/obo handler, the downstream client behind it (for
// /metrics) and a close function. idp calls the authority (trusting the dev
// CA in local mode).
func newOBO(cfg Config, oc OBOConfig, idp *http.Client, log *slog.Logger) (http.Handler, *obo.Downstream, func(), error) {
	cred, err := oc.credential(cfg.ClientID)
	if err != nil {
		return nil, nil, nil, err
	}
	mem := obo.NewMemoryStore(oc.CacheSize, nil)
	var store obo.Store = mem
	closeFn := func() {}
	if oc.RedisAddr != "" {
		keys, err := obo.KeyringFromBase64(oc.CacheKey)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("OBO_CACHE_KEY: %w", err)
		}
		rt := oc.RedisTimeout
		if rt <= 0 {
			rt = 500 * time.Millisecond
		}
		rdb := redis.NewClient(&redis.Options{
			Addr: oc.RedisAddr, Password: oc.RedisPassword,
			DialTimeout: rt, ReadTimeout: rt, WriteTimeout: rt, PoolTimeout: rt, MaxRetries: 1,
		})
		closeFn = func() { _ = rdb.Close() }
		ts := obo.NewTieredStore(mem, obo.NewRedisStore(rdb, oc.RedisPrefix, keys), log)
		ts.L2Timeout = 2 * rt
		store = ts
	}
	ocl := *idp
	ocl.Timeout = oc.Timeout
	tokens, err := obo.New(obo.Config{
		Authority: cfg.Authority, ClientID: cfg.ClientID, Credential: cred,
		HTTPClient: &ocl, Store: store, Timeout: oc.Timeout, Logger: log,
	})
	if err != nil {
		closeFn()
		return nil, nil, nil, err
	}
	up, err := httpx.ClientTrusting(cfg.CAFile, oc.Timeout)
	if err != nil {
		closeFn()
		return nil, nil, nil, err
	}
	d := &obo.Downstream{Tokens: tokens, URL: oc.UpstreamURL, Scopes: oc.Scopes, HTTPClient: up, Timeout: oc.Timeout}
	log.Info("demoapi: On-Behalf-Of", "upstream", oc.UpstreamURL, "scopes", oc.Scopes, "credential", cred.Kind(),
		"redis", oc.RedisAddr != "", "timeout", oc.Timeout)
	return obo.Handler(d, log), d, closeFn, nil
}

// oboUnavailable answers /api/obo when OBO could not be set up.
func oboUnavailable(reason string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error",
			"message": "On-Behalf-Of is not configured on this API: " + reason})
	})
}
