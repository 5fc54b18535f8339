package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/entra-go/secure-api/internal/svc"
)

// Defaults for the local mode: the emulator's authority and the default
// directory's ids (DESIGN §3), so demoapi works with zero configuration.
const (
	defaultTenantID    = svc.DefaultTenantID
	defaultAPIClientID = "68fee0a8-293c-4256-8007-b5453b634b61"
	defaultAddr        = "localhost:5050"
	defaultOrigin      = "http://localhost:30662"
	localAuthority     = svc.LocalAuthority
)

// Config is demoapi's whole configuration, read from the environment.
type Config struct {
	Mode           string // "local" or "entra" (informational: one code path)
	Addr           string
	Authority      string
	ClientID       string
	Audiences      []string
	Versions       []string
	AllowedTenants []string
	AllowedOrigins []string
	CAFile         string // extra root CA for the IdP ("" = system roots only)
}

// LoadConfig reads the environment (getenv is os.Getenv outside tests).
// Variables (all optional; see README "demoapi: the protected web API"):
//
//	ADDR             listen address (default localhost:5050)
//	TENANT_ID        Entra mode: authority https://login.microsoftonline.com/<TENANT_ID>
//	AUTHORITY        authority URL (default https://localhost:8443/<default tenant>);
//	                 .../common or .../organizations for a multi-tenant API
//	API_CLIENT_ID    the API registration's client id (local mode default: the local directory's;
//	                 required in Entra mode)
//	API_AUDIENCE     extra accepted audiences, comma-separated (client id and api://<id> always are)
//	TOKEN_VERSIONS   accepted token versions, comma-separated (default 2.0,1.0)
//	ALLOWED_TENANTS  tenant allow-list for a multi-tenant authority, comma-separated
//	ALLOWED_ORIGIN   the page origin(s) allowed by CORS, comma-separated (default http://localhost:30662)
//	DEVIDP_CA_FILE   CA certificate to trust for the IdP (default .devidp/ca.pem in local mode)
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:           svc.Or(getenv("ADDR"), defaultAddr),
		ClientID:       svc.Or(getenv("API_CLIENT_ID"), defaultAPIClientID),
		Audiences:      svc.List(getenv("API_AUDIENCE")),
		Versions:       svc.List(getenv("TOKEN_VERSIONS")),
		AllowedTenants: svc.List(getenv("ALLOWED_TENANTS")),
		AllowedOrigins: svc.List(svc.Or(getenv("ALLOWED_ORIGIN"), defaultOrigin)),
	}
	c.Authority, c.Mode, c.CAFile = svc.ResolveAuthority(getenv)
	if c.Mode == svc.ModeEntra && strings.TrimSpace(getenv("API_CLIENT_ID")) == "" {
		// The local directory's id would only fail later, per request, as
		// an audience mismatch.
		return c, errors.New("API_CLIENT_ID: required against a real tenant (the API registration's client id, walkthrough step 2)")
	}
	if len(c.AllowedOrigins) == 0 {
		// rs/cors reads an empty list as "every origin": fail closed instead.
		return c, errors.New("ALLOWED_ORIGIN: empty; list the page origin(s), e.g. http://localhost:30662")
	}
	for _, o := range c.AllowedOrigins {
		if o == "*" || strings.Contains(o, "*") {
			return c, errors.New("ALLOWED_ORIGIN: wildcards are not allowed; list the page origin(s)")
		}
		if !strings.HasPrefix(o, "http://") && !strings.HasPrefix(o, "https://") {
			return c, fmt.Errorf("ALLOWED_ORIGIN %q: need scheme://host[:port]", o)
		}
	}
	return c, nil
}
