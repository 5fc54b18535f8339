package main

import (
	"strings"
)

// Defaults for the local mode (DESIGN §3).
const (
	defaultTenantID = "2dcbe9d9-33d9-44a7-b4e9-b846975b02ad"
	graphAppID      = "00000003-0000-0000-c000-000000000000"
	graphAppIDURI   = "https://graph.microsoft.com"
	defaultAddr     = "localhost:5051"
	defaultCAFile   = ".devidp/ca.pem"
	localAuthority  = "https://localhost:8443/" + defaultTenantID
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
		Mode:          "local",
		Addr:          or(getenv("UPSTREAM_ADDR"), defaultAddr),
		Authority:     getenv("AUTHORITY"),
		ClientID:      or(getenv("UPSTREAM_CLIENT_ID"), graphAppID),
		Audiences:     list(or(getenv("UPSTREAM_AUDIENCE"), graphAppIDURI)),
		Scope:         or(getenv("UPSTREAM_SCOPE"), "User.Read"),
		CAFile:        getenv("DEVIDP_CA_FILE"),
		DirectoryFile: getenv("DEVIDP_DIRECTORY"),
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
	// Entra issues v1 tokens with aud = the App ID URI as requested, with or
	// without a trailing slash.
	for _, a := range c.Audiences {
		if strings.HasPrefix(a, "https://") && !strings.HasSuffix(a, "/") {
			c.Audiences = append(c.Audiences, a+"/")
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
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}
