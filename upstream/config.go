package main

import (
	"strings"

	"github.com/entra-go/secure-api/internal/svc"
)

// Defaults for the local mode (DESIGN §3).
const (
	graphAppID     = "00000003-0000-0000-c000-000000000000"
	graphAppIDURI  = "https://graph.microsoft.com"
	defaultAddr    = "localhost:5051"
	localAuthority = svc.LocalAuthority
)

// Config is upstream's whole configuration, read from the environment.
type Config struct {
	Mode          string // "local" or "entra" (informational)
	Addr          string
	Authority     string
	ClientID      string
	Audiences     []string
	Scope         string
	CAFile        string
	DirectoryFile string
}

// LoadConfig reads the environment (getenv is os.Getenv outside tests).
// Variables (all optional; see README "On-Behalf-Of: calling the upstream"):
//
//	UPSTREAM_ADDR       listen address (default localhost:5051)
//	TENANT_ID           authority https://login.microsoftonline.com/<TENANT_ID>
//	AUTHORITY           authority URL (default https://localhost:8443/<default tenant>)
//	UPSTREAM_CLIENT_ID  this service's application id (default 00000003-0000-0000-c000-000000000000)
//	UPSTREAM_AUDIENCE   accepted audiences, comma-separated (default https://graph.microsoft.com;
//	                    the client id and api://<client id> are always accepted)
//	UPSTREAM_SCOPE      required delegated scope (default User.Read)
//	DEVIDP_DIRECTORY    directory JSON for profiles, the file devidp serves (default: the shipped default)
//	DEVIDP_CA_FILE      CA certificate to trust for the IdP (default .devidp/ca.pem in local mode)
func LoadConfig(getenv func(string) string) (Config, error) {
	c := Config{
		Addr:          svc.Or(getenv("UPSTREAM_ADDR"), defaultAddr),
		ClientID:      svc.Or(getenv("UPSTREAM_CLIENT_ID"), graphAppID),
		Audiences:     svc.List(svc.Or(getenv("UPSTREAM_AUDIENCE"), graphAppIDURI)),
		Scope:         svc.Or(getenv("UPSTREAM_SCOPE"), "User.Read"),
		DirectoryFile: getenv("DEVIDP_DIRECTORY"),
	}
	c.Authority, c.Mode, c.CAFile = svc.ResolveAuthority(getenv)
	// Entra issues v1 tokens with aud = the App ID URI as requested, with or
	// without a trailing slash.
	for _, a := range c.Audiences {
		if strings.HasPrefix(a, "https://") && !strings.HasSuffix(a, "/") {
			c.Audiences = append(c.Audiences, a+"/")
		}
	}
	return c, nil
}
