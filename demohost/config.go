package main

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/entra-go/secure-api/internal/svc"
)

// Defaults for the local mode: the emulator's authority and the default
// directory's ids (DESIGN §3), so the page works with zero configuration.
const (
	defaultSPAClientID = "88374b94-683c-41e9-a4d0-40a9685e8661"
	defaultAPIClientID = "68fee0a8-293c-4256-8007-b5453b634b61"
	defaultAddr        = "localhost:30662"
	defaultAPIBaseURL  = "http://localhost:5050"
)

// PageConfig is what the page reads from /config.json. One set of static
// files serves the local and the Entra mode; only this changes.
type PageConfig struct {
	Mode                  string   `json:"mode"` // "local" or "entra", shown on the page
	ClientID              string   `json:"clientId"`
	Authority             string   `json:"authority"`
	KnownAuthorities      []string `json:"knownAuthorities"`
	RedirectURI           string   `json:"redirectUri"`
	PostLogoutRedirectURI string   `json:"postLogoutRedirectUri"`
	APIBaseURL            string   `json:"apiBaseUrl"`
	APIScopes             []string `json:"apiScopes"`
	// DiscoveryURL is the OpenID configuration msal-browser fetches first;
	// the page probes it to tell "dev CA not trusted" from "IdP down".
	DiscoveryURL string `json:"discoveryUrl"`
	// TrustHelp is shown with the "certificate not trusted" message (local
	// mode only).
	TrustHelp string `json:"trustHelp,omitempty"`
}

// Config is demohost's whole configuration.
type Config struct {
	Addr      string
	StaticDir string // "" = the embedded page
	CAFile    string // extra root for the server-side authority probe ("" = system roots only)
	Page      PageConfig
}

// LoadConfig reads the environment (getenv is os.Getenv outside tests).
// Variables (all optional):
//
//	ADDR               listen address (default localhost:30662)
//	TENANT_ID          Entra mode: authority https://login.microsoftonline.com/<TENANT_ID>
//	AUTHORITY          authority URL (default https://localhost:8443/<default tenant>)
//	KNOWN_AUTHORITIES  comma-separated hosts msal-browser trusts without cloud discovery
//	                   (default: the authority's host when it is not a Microsoft host)
//	SPA_CLIENT_ID      the SPA registration's client id
//	API_CLIENT_ID      the API registration's client id (sets the default scope)
//	API_SCOPES         comma- or space-separated scopes (default api://<API_CLIENT_ID>/access_as_user)
//	API_BASE_URL       where demoapi listens (default http://localhost:5050)
//	REDIRECT_URI       default http://<ADDR>/redirect.html
//	STATIC_DIR         serve the page from this folder instead of the embedded copy
//	DEVIDP_CA_FILE     dev CA for the server-side authority probe (local mode default .devidp/ca.pem,
//	                   read once it exists, so demohost may start before devidp)
func LoadConfig(getenv func(string) string) (Config, error) {
	env := func(k, def string) string { return svc.Or(strings.TrimSpace(getenv(k)), def) }
	c := Config{Addr: env("ADDR", defaultAddr), StaticDir: env("STATIC_DIR", "")}

	tenant := env("TENANT_ID", "")
	mode := svc.ModeLocal
	authority := env("AUTHORITY", "")
	switch {
	case authority != "":
		if tenant != "" || !isLocalHost(authority) {
			mode = svc.ModeEntra
		}
	case tenant != "":
		mode = svc.ModeEntra
		authority = "https://login.microsoftonline.com/" + tenant
	default:
		authority = svc.LocalAuthority
	}
	authority = strings.TrimRight(authority, "/")
	au, err := url.Parse(authority)
	if err != nil || au.Scheme != "https" || au.Host == "" {
		// msal-browser refuses non-https authorities (authority_uri_insecure).
		return c, fmt.Errorf("AUTHORITY %q: must be an absolute https URL", authority)
	}

	known := svc.List(env("KNOWN_AUTHORITIES", ""))
	if len(known) == 0 && !isMicrosoftHost(au.Hostname()) {
		// Without it msal-browser asks login.microsoftonline.com for cloud
		// discovery and fails with untrusted_authority (protocol-facts §6.2).
		known = []string{au.Host}
	}

	apiBase := strings.TrimRight(env("API_BASE_URL", defaultAPIBaseURL), "/")
	if u, err := url.Parse(apiBase); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("API_BASE_URL %q: must be an absolute http(s) URL", apiBase)
	}
	if mode == svc.ModeEntra {
		// The local directory's ids would only fail at sign-in (AADSTS700016,
		// AADSTS500011): refuse to start instead.
		if env("SPA_CLIENT_ID", "") == "" {
			return c, fmt.Errorf("SPA_CLIENT_ID: required against a real tenant (the SPA registration's client id, walkthrough step 1)")
		}
		if env("API_CLIENT_ID", "") == "" && env("API_SCOPES", "") == "" {
			return c, fmt.Errorf("API_CLIENT_ID (or API_SCOPES): required against a real tenant (the API registration, walkthrough step 2)")
		}
	}
	apiClientID := env("API_CLIENT_ID", defaultAPIClientID)
	scopes := svc.List(env("API_SCOPES", "api://"+apiClientID+"/access_as_user"))

	redirect := env("REDIRECT_URI", "http://"+c.Addr+"/redirect.html")
	ru, err := url.Parse(redirect)
	if err != nil || ru.Host == "" {
		return c, fmt.Errorf("REDIRECT_URI %q: must be an absolute URL", redirect)
	}

	discovery := authority + "/v2.0/.well-known/openid-configuration"
	if strings.HasSuffix(authority, "/v2.0") {
		discovery = authority + "/.well-known/openid-configuration"
	}

	c.Page = PageConfig{
		Mode:                  mode,
		ClientID:              env("SPA_CLIENT_ID", defaultSPAClientID),
		Authority:             authority,
		KnownAuthorities:      known,
		RedirectURI:           redirect,
		PostLogoutRedirectURI: ru.Scheme + "://" + ru.Host + "/",
		APIBaseURL:            apiBase,
		APIScopes:             scopes,
		DiscoveryURL:          discovery,
	}
	c.CAFile = env("DEVIDP_CA_FILE", "")
	if mode == svc.ModeLocal {
		c.Page.TrustHelp = "The emulator's certificate is issued by a dev CA created on its first run (.devidp/ca.pem). " +
			"Open the link once and accept the warning, or trust .devidp/ca.pem in your browser or OS (README: \"Trusting its CA\")."
		// The default path even before devidp has written the file: the
		// probe picks the CA up when it appears (devidp may start after us).
		c.CAFile = svc.Or(c.CAFile, svc.DefaultCAFile)
	}
	return c, nil
}

// origin returns scheme://host[:port] of an absolute URL.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func isLocalHost(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := u.Hostname()
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

func isMicrosoftHost(h string) bool {
	h = strings.ToLower(h)
	for _, s := range []string{"login.microsoftonline.com", "login.microsoftonline.us", "login.partner.microsoftonline.cn", "login.windows.net", "login.microsoft.com", "sts.windows.net"} {
		if h == s {
			return true
		}
	}
	return strings.HasSuffix(h, ".ciamlogin.com")
}
