package main

import (
	"errors"
	"fmt"
	"strings"
)

// Defaults for the local mode: the emulator's authority and the default
// directory's ids (DESIGN §3), so demoapi works with zero configuration.
const (
	defaultTenantID    = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"
	defaultAPIClientID = "68fee0a8-293c-4256-8007-b5453b634b61"
	defaultAddr        = "localhost:5050"
	defaultOrigin      = "http://localhost:30662"
	defaultCAFile      = ".devidp/ca.pem"
	localAuthority     = "https://localhost:8443/" + defaultTenantID
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
//	API_CLIENT_ID    the API registration's client id (default: the local directory's)
//	API_AUDIENCE     extra accepted audiences, comma-separated (client id and api://<id> always are)
//	TOKEN_VERSIONS   accepted token versions, comma-separated (default 2.0,1.0)
//	ALLOWED_TENANTS  tenant allow-list for a multi-tenant authority, comma-separated
//	ALLOWED_ORIGIN   the page origin(s) allowed by CORS, comma-separated (default http://localhost:30662)
//	DEVIDP_CA_FILE   CA certificate to trust for the IdP (default .devidp/ca.pem in local mode)
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Mode:           "local",
		Addr:           or(getenv("ADDR"), defaultAddr),
		Authority:      getenv("AUTHORITY"),
		ClientID:       or(getenv("API_CLIENT_ID"), defaultAPIClientID),
		Audiences:      list(getenv("API_AUDIENCE")),
		Versions:       list(getenv("TOKEN_VERSIONS")),
		AllowedTenants: list(getenv("ALLOWED_TENANTS")),
		AllowedOrigins: list(or(getenv("ALLOWED_ORIGIN"), defaultOrigin)),
		CAFile:         getenv("DEVIDP_CA_FILE"),
	}
	tenant := getenv("TENANT_ID")
	switch {
	case c.Authority == "" && tenant == "":
		c.Authority = localAuthority
		if c.CAFile == "" {
			c.CAFile = defaultCAFile
		}
	case c.Authority == "":
		c.Authority = "https://login.microsoftonline.com/" + tenant
		c.Mode = "entra"
	default:
		if !strings.HasPrefix(c.Authority, "https://localhost:") && !strings.HasPrefix(c.Authority, "https://127.0.0.1:") {
			c.Mode = "entra"
		}
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

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func list(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, f)
	}
	return out
}
