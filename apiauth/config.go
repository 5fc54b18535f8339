package apiauth

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Config says which tokens the API accepts. Either Authority (issuers and
// keys from OpenID discovery) or JWKSURL + Issuers must be set, and ClientID.
type Config struct {
	// Authority is the tenant authority: https://login.microsoftonline.com/
	// followed by the tenant id or one of its domain names
	// (contoso.onmicrosoft.com), or, locally, https://localhost:8443/{tenant}.
	// A trailing /v2.0 (the v2.0 issuer pasted as the authority) is removed.
	// A multi-tenant API uses .../common, .../organizations or .../consumers
	// and must set AllowedTenants; any other tenant segment is single-tenant,
	// its tenant taken from the discovered issuer (a discovered {tenantid}
	// issuer without AllowedTenants leaves the validator unready, 503).
	// The v2.0 issuer comes from {Authority}/v2.0/.well-known/openid-configuration,
	// the v1.0 issuer from {Authority}/.well-known/openid-configuration and
	// the keys from the jwks_uri of the first accepted version's document.
	Authority string
	// JWKSURL and Issuers replace discovery when set. An issuer may contain
	// the {tenantid} template. IssuerVersions[i] is the token version of
	// Issuers[i] ("1.0" or "2.0"; empty = any accepted version).
	JWKSURL        string
	Issuers        []string
	IssuerVersions []string

	// ClientID is the API's application (client) id. The accepted audiences
	// are ClientID and api://ClientID, plus Audiences.
	ClientID  string
	Audiences []string

	// Versions lists the accepted token versions (ver claim): "2.0", "1.0".
	// Default both: Entra issues v1.0 tokens unless the API's manifest says
	// accessTokenAcceptedVersion 2.
	Versions []string

	// AllowedTenants is the tenant allow-list (tenant ids) for a multi-tenant
	// authority (common, organizations, consumers) or {tenantid} issuers; it
	// is required for them, so that a multi-tenant API never accepts every
	// tenant by accident. "*" allows any tenant (not recommended). With a
	// multi-tenant authority every token's tid must be on the list.
	AllowedTenants []string

	// Algorithms is the header alg allow-list. Default RS256 (what Entra
	// uses). Supported: RS256, RS384, RS512, PS256, PS384, PS512.
	Algorithms []string

	// ClockSkew tolerated on exp, nbf and iat. Default 5 minutes (like
	// Microsoft.Identity.Web). Negative means zero.
	ClockSkew time.Duration
	// MaxTokenSize caps the token length, checked before any decoding.
	// Default 16 KiB.
	MaxTokenSize int

	// HTTPClient fetches discovery documents and keys. It must trust the
	// IdP's CA. Default: a client with a 10 s timeout and the system roots.
	// Its Timeout is not relied on: every fetch is also bounded by
	// FetchTimeout.
	HTTPClient *http.Client
	// FetchTimeout bounds each discovery or key-set fetch (connection,
	// headers and body), whatever HTTPClient.Timeout says, so that a hanging
	// IdP can neither hold an unknown-kid refetch nor stall the background
	// refreshes (one fetch at a time) and with them later key rotations.
	// Default 10 s.
	FetchTimeout time.Duration
	// MinRefreshInterval is the minimum time between two key-set fetches
	// caused by unknown kids. Default 1 minute. (Microsoft.Identity.Web: 5 min.)
	MinRefreshInterval time.Duration
	// RefreshInterval is the background key-set refresh period. Default 1 h.
	RefreshInterval time.Duration

	// CacheBytes bounds the validated-token cache (sum of token lengths plus
	// overhead). Default 32 MiB; negative disables the cache.
	CacheBytes int

	// Logger receives refusals (precise reason, short token hash) and key
	// events. Default slog.Default().
	Logger *slog.Logger
	// RefusalLogsPerSecond caps the refusal log lines per second so that a
	// flood of bad tokens is not a log flood; the next line written reports
	// how many were suppressed. Default 20; negative means no cap.
	RefusalLogsPerSecond int
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

var supportedAlgs = map[string]bool{"RS256": true, "RS384": true, "RS512": true, "PS256": true, "PS384": true, "PS512": true}

func (c *Config) setDefaults() error {
	if c.ClientID == "" {
		return errors.New("apiauth: Config.ClientID is required")
	}
	if c.Authority == "" && (c.JWKSURL == "" || len(c.Issuers) == 0) {
		return errors.New("apiauth: set Config.Authority, or Config.JWKSURL and Config.Issuers")
	}
	if c.Authority != "" {
		c.Authority = strings.TrimSuffix(c.Authority, "/")
		// The v2.0 issuer (…/{tenant}/v2.0) is often pasted as the
		// authority; discovery is relative to the tenant segment.
		if strings.HasSuffix(strings.ToLower(c.Authority), "/v2.0") {
			c.Authority = strings.TrimSuffix(c.Authority[:len(c.Authority)-len("/v2.0")], "/")
		}
		if err := checkFetchURL(c.Authority); err != nil {
			return err
		}
		if tenantFromAuthority(c.Authority) == "" {
			return fmt.Errorf("apiauth: authority %q has no tenant segment (https://login.microsoftonline.com/{tenant})", c.Authority)
		}
	}
	if c.JWKSURL != "" {
		if err := checkFetchURL(c.JWKSURL); err != nil {
			return err
		}
	}
	if len(c.IssuerVersions) != 0 && len(c.IssuerVersions) != len(c.Issuers) {
		return errors.New("apiauth: Config.IssuerVersions must be empty or as long as Config.Issuers")
	}
	if len(c.Versions) == 0 {
		c.Versions = []string{"2.0", "1.0"}
	}
	for _, v := range c.Versions {
		if v != "1.0" && v != "2.0" {
			return fmt.Errorf("apiauth: unsupported token version %q", v)
		}
	}
	if len(c.Algorithms) == 0 {
		c.Algorithms = []string{"RS256"}
	}
	for _, a := range c.Algorithms {
		if !supportedAlgs[a] {
			return fmt.Errorf("apiauth: unsupported algorithm %q (RSA only: RS256/384/512, PS256/384/512)", a)
		}
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = 5 * time.Minute
	} else if c.ClockSkew < 0 {
		c.ClockSkew = 0
	}
	if c.MaxTokenSize <= 0 {
		c.MaxTokenSize = 16 << 10
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.FetchTimeout <= 0 {
		c.FetchTimeout = 10 * time.Second
	}
	if c.MinRefreshInterval <= 0 {
		c.MinRefreshInterval = time.Minute
	}
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = time.Hour
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = 32 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RefusalLogsPerSecond == 0 {
		c.RefusalLogsPerSecond = 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// checkFetchURL refuses plain-HTTP key sources except on loopback.
func checkFetchURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("apiauth: invalid URL %q", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if h == "localhost" || h == "127.0.0.1" || h == "::1" {
			return nil
		}
	}
	return fmt.Errorf("apiauth: %q: keys and discovery must come over https", s)
}

// isMultiTenantSegment reports whether an authority's tenant segment accepts
// tokens from more than one tenant.
func isMultiTenantSegment(seg string) bool {
	return strings.EqualFold(seg, "common") || strings.EqualFold(seg, "organizations") || strings.EqualFold(seg, "consumers")
}

// tenantFromAuthority returns the last path segment of the authority.
func tenantFromAuthority(a string) string {
	u, err := url.Parse(a)
	if err != nil {
		return ""
	}
	p := strings.Trim(u.Path, "/")
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	return p
}

func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !isHex(c) {
				return false
			}
		}
	}
	return true
}
