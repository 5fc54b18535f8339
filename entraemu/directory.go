package entraemu

import (
	"bytes"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"crypto/x509"
)

//go:embed default_directory.json
var defaultDirectoryJSON []byte

// DefaultDirectoryJSON returns the shipped default directory file.
func DefaultDirectoryJSON() []byte { return bytes.Clone(defaultDirectoryJSON) }

// Directory is the emulated tenant: its users, app registrations and
// conditional-access policies. It is data (a JSON file), not code.
type Directory struct {
	Tenant            Tenant      `json:"tenant"`
	Users             []*User     `json:"users"`
	Apps              []*App      `json:"apps"`
	ConditionalAccess []*CAPolicy `json:"conditionalAccessPolicies,omitempty"`

	usersByName map[string]*User // lower-case UPN and oid
	appsByID    map[string]*App  // lower-case appId
	appsByURI   map[string]*App  // identifier URI, exact (trailing slash trimmed)
}

// Tenant is the one tenant the emulator serves.
type Tenant struct {
	ID          string   `json:"id"`
	DisplayName string   `json:"displayName,omitempty"`
	Domains     []string `json:"domains,omitempty"`
}

// User is a member of the tenant.
type User struct {
	UPN           string              `json:"upn"`
	OID           string              `json:"oid"`
	DisplayName   string              `json:"displayName"`
	GivenName     string              `json:"givenName,omitempty"`
	Surname       string              `json:"surname,omitempty"`
	JobTitle      string              `json:"jobTitle,omitempty"`
	Mail          string              `json:"mail,omitempty"`
	Password      string              `json:"password"`
	MFARegistered bool                `json:"mfaRegistered,omitempty"`
	AppRoles      []AppRoleAssignment `json:"appRoles,omitempty"`
}

// AppRoleAssignment gives a user an app role of a resource app.
type AppRoleAssignment struct {
	ResourceAppID string `json:"resourceAppId"`
	Role          string `json:"role"`
}

// App is an app registration together with its service principal.
type App struct {
	AppID                  string   `json:"appId"`
	DisplayName            string   `json:"displayName"`
	ServicePrincipalID     string   `json:"servicePrincipalId,omitempty"` // oid of app-only tokens; derived when empty
	AllowPublicClientFlows bool     `json:"allowPublicClientFlows,omitempty"`
	RedirectURIs           Redirect `json:"redirectUris,omitzero"`
	PostLogoutRedirectURIs []string `json:"postLogoutRedirectUris,omitempty"`
	Secrets                []string `json:"secrets,omitempty"`
	// Certificates are PEM certificates (public parts only) whose keys may
	// sign client assertions.
	Certificates               []string            `json:"certificates,omitempty"`
	IdentifierURIs             []string            `json:"identifierUris,omitempty"`
	Scopes                     []Scope             `json:"scopes,omitempty"`
	AppRoles                   []AppRole           `json:"appRoles,omitempty"`
	AccessTokenAcceptedVersion int                 `json:"accessTokenAcceptedVersion,omitempty"` // 0 (null) or 1: v1 tokens; 2: v2
	KnownClientApplications    []string            `json:"knownClientApplications,omitempty"`
	PreAuthorizedApplications  []PreAuthorized     `json:"preAuthorizedApplications,omitempty"`
	RequiredResourceAccess     []ResourceAccess    `json:"requiredResourceAccess,omitempty"`
	Grants                     []Grant             `json:"grants,omitempty"`
	certs                      []*x509.Certificate // parsed Certificates
}

// Redirect holds redirect URIs per platform, as in the app registration.
type Redirect struct {
	SPA          []string `json:"spa,omitempty"`
	Web          []string `json:"web,omitempty"`
	PublicClient []string `json:"publicClient,omitempty"`
}

// Scope is a delegated permission the app exposes.
type Scope struct {
	Value                   string `json:"value"`
	ID                      string `json:"id,omitempty"`
	Type                    string `json:"type,omitempty"` // "User" (users may consent) or "Admin"
	AdminConsentDisplayName string `json:"adminConsentDisplayName,omitempty"`
}

// AppRole is an app role the app defines.
type AppRole struct {
	Value              string   `json:"value"`
	ID                 string   `json:"id,omitempty"`
	DisplayName        string   `json:"displayName,omitempty"`
	AllowedMemberTypes []string `json:"allowedMemberTypes"` // "User", "Application"
}

// PreAuthorized lets a client use some of this app's scopes without consent.
type PreAuthorized struct {
	AppID  string   `json:"appId"`
	Scopes []string `json:"scopes"`
}

// ResourceAccess is an entry of requiredResourceAccess (what the app asks for).
type ResourceAccess struct {
	ResourceAppID string   `json:"resourceAppId"`
	Scopes        []string `json:"scopes,omitempty"`
	Roles         []string `json:"roles,omitempty"`
}

// Grant is a consent given to this app for a resource: delegated scopes
// (admin consent for everyone when Users is empty, else per-user consent) or
// application permissions (Roles, always admin-consented).
type Grant struct {
	ResourceAppID string   `json:"resourceAppId"`
	Scopes        []string `json:"scopes,omitempty"`
	Roles         []string `json:"roles,omitempty"`
	Users         []string `json:"users,omitempty"`
}

// CAPolicy is a conditional-access policy: for the listed users ("All" for
// everyone) signing in to the listed resource apps ("All"), require the grant
// controls ("mfa").
type CAPolicy struct {
	ID            string   `json:"id"`
	DisplayName   string   `json:"displayName,omitempty"`
	State         string   `json:"state,omitempty"` // "enabled" (default) or "disabled"
	Users         []string `json:"users"`
	Resources     []string `json:"resources"`
	GrantControls []string `json:"grantControls"`
}

// DefaultDirectory returns a fresh copy of the shipped default directory;
// callers may modify it (e.g. to add a test certificate) before New.
func DefaultDirectory() *Directory {
	d, err := ParseDirectory(defaultDirectoryJSON)
	if err != nil {
		panic("entraemu: shipped default directory is invalid: " + err.Error())
	}
	return d
}

// LoadDirectory reads and validates a directory JSON file.
func LoadDirectory(path string) (*Directory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("directory: %w", err)
	}
	return ParseDirectory(data)
}

// ParseDirectory decodes and validates a directory document. Unknown fields
// are errors so that a typo never silently drops a setting.
func ParseDirectory(data []byte) (*Directory, error) {
	if !json.Valid(data) { // syntax errors, trailing data: with line:column
		return nil, decodeError(data, errors.New("invalid JSON"))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var d Directory
	if err := dec.Decode(&d); err != nil {
		return nil, decodeError(data, err)
	}
	if dec.More() {
		return nil, decodeError(data, errors.New("trailing data after the JSON document"))
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return &d, nil
}

// App returns the app with this appId, or nil.
func (d *Directory) App(appID string) *App {
	if d.appsByID == nil {
		d.index()
	}
	return d.appsByID[strings.ToLower(appID)]
}

// User returns the user with this UPN or object id, or nil.
func (d *Directory) User(nameOrOID string) *User {
	if d.usersByName == nil {
		d.index()
	}
	return d.usersByName[strings.ToLower(nameOrOID)]
}

// appByIdentifier finds a resource by appId or identifier URI.
func (d *Directory) appByIdentifier(id string) *App {
	if a := d.App(id); a != nil {
		return a
	}
	return d.appsByURI[strings.TrimSuffix(id, "/")]
}

func (d *Directory) index() {
	d.usersByName = map[string]*User{}
	d.appsByID = map[string]*App{}
	d.appsByURI = map[string]*App{}
	for _, u := range d.Users {
		d.usersByName[strings.ToLower(u.UPN)] = u
		d.usersByName[strings.ToLower(u.OID)] = u
	}
	for _, a := range d.Apps {
		d.appsByID[strings.ToLower(a.AppID)] = a
		for _, uri := range a.IdentifierURIs {
			d.appsByURI[strings.TrimSuffix(uri, "/")] = a
		}
	}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func isGUID(s string) bool { return guidRE.MatchString(s) }

type fieldErr struct{ errs []string }

func (f *fieldErr) add(path, format string, args ...any) {
	f.errs = append(f.errs, "directory: "+path+": "+fmt.Sprintf(format, args...))
}

// Validate checks every field and builds the indexes. The error names the
// first bad field, e.g. "directory: apps[2].redirectUris.spa[0]: must be an
// absolute http(s) URL".
func (d *Directory) Validate() error {
	var f fieldErr
	if !isGUID(d.Tenant.ID) {
		f.add("tenant.id", "must be a GUID")
	}
	d.index()
	d.validateUsers(&f)
	d.validateApps(&f)
	d.validatePolicies(&f)
	if len(f.errs) > 0 {
		return errors.New(strings.Join(f.errs, "\n"))
	}
	return nil
}

func (d *Directory) validateUsers(f *fieldErr) {
	seen := map[string]string{}
	for i, u := range d.Users {
		p := fmt.Sprintf("users[%d]", i)
		if u == nil {
			f.add(p, "must be an object")
			continue
		}
		if at := strings.IndexByte(u.UPN, '@'); at <= 0 || at == len(u.UPN)-1 || strings.ContainsAny(u.UPN, " /\\") {
			f.add(p+".upn", "must look like name@domain")
		}
		if !isGUID(u.OID) {
			f.add(p+".oid", "must be a GUID")
		}
		for _, k := range []string{strings.ToLower(u.UPN), strings.ToLower(u.OID)} {
			if prev, dup := seen[k]; dup && k != "" {
				f.add(p, "duplicates %s (%q)", prev, k)
			}
			seen[k] = p
		}
		if u.DisplayName == "" {
			f.add(p+".displayName", "is required")
		}
		if u.Password == "" {
			f.add(p+".password", "is required")
		}
		for j, r := range u.AppRoles {
			q := fmt.Sprintf("%s.appRoles[%d]", p, j)
			res := d.App(r.ResourceAppID)
			if res == nil {
				f.add(q+".resourceAppId", "no app %q in the directory", r.ResourceAppID)
			} else if !res.hasRole(r.Role, "User") {
				f.add(q+".role", "app %q defines no user-assignable app role %q", res.AppID, r.Role)
			}
		}
	}
}

func (d *Directory) validateApps(f *fieldErr) {
	seen := map[string]string{}
	uris := map[string]string{}
	for i, a := range d.Apps {
		p := fmt.Sprintf("apps[%d]", i)
		if a == nil {
			f.add(p, "must be an object")
			continue
		}
		if !isGUID(a.AppID) {
			f.add(p+".appId", "must be a GUID")
		} else if prev, dup := seen[strings.ToLower(a.AppID)]; dup {
			f.add(p+".appId", "duplicates %s", prev)
		}
		seen[strings.ToLower(a.AppID)] = p
		if a.DisplayName == "" {
			f.add(p+".displayName", "is required")
		}
		if a.ServicePrincipalID != "" && !isGUID(a.ServicePrincipalID) {
			f.add(p+".servicePrincipalId", "must be a GUID")
		}
		validateURLs(f, p+".redirectUris.spa", a.RedirectURIs.SPA, true)
		validateURLs(f, p+".redirectUris.web", a.RedirectURIs.Web, true)
		validateURLs(f, p+".redirectUris.publicClient", a.RedirectURIs.PublicClient, false)
		validateURLs(f, p+".postLogoutRedirectUris", a.PostLogoutRedirectURIs, true)
		for j, s := range a.Secrets {
			if len(s) < 8 {
				f.add(fmt.Sprintf("%s.secrets[%d]", p, j), "must be at least 8 characters")
			}
		}
		a.certs = nil
		for j, c := range a.Certificates {
			cert, err := parseRSACert(c)
			if err != nil {
				f.add(fmt.Sprintf("%s.certificates[%d]", p, j), "%v", err)
				continue
			}
			a.certs = append(a.certs, cert)
		}
		for j, u := range a.IdentifierURIs {
			q := fmt.Sprintf("%s.identifierUris[%d]", p, j)
			pu, err := url.Parse(u)
			if err != nil || pu.Scheme == "" || (pu.Host == "" && pu.Opaque == "") || pu.Fragment != "" || strings.Contains(u, " ") {
				f.add(q, "must be an absolute URI such as api://<appId>")
				continue
			}
			k := strings.TrimSuffix(u, "/")
			if prev, dup := uris[k]; dup {
				f.add(q, "duplicates %s", prev)
			}
			uris[k] = q
		}
		validateNames(f, p+".scopes", len(a.Scopes), func(j int) string { return a.Scopes[j].Value })
		for j, s := range a.Scopes {
			if s.Type != "" && s.Type != "User" && s.Type != "Admin" {
				f.add(fmt.Sprintf("%s.scopes[%d].type", p, j), `must be "User" or "Admin"`)
			}
		}
		validateNames(f, p+".appRoles", len(a.AppRoles), func(j int) string { return a.AppRoles[j].Value })
		for j, r := range a.AppRoles {
			if len(r.AllowedMemberTypes) == 0 {
				f.add(fmt.Sprintf("%s.appRoles[%d].allowedMemberTypes", p, j), `must list "User" and/or "Application"`)
			}
			for k, m := range r.AllowedMemberTypes {
				if m != "User" && m != "Application" {
					f.add(fmt.Sprintf("%s.appRoles[%d].allowedMemberTypes[%d]", p, j, k), `must be "User" or "Application"`)
				}
			}
		}
		switch a.AccessTokenAcceptedVersion {
		case 0, 1, 2:
		default:
			f.add(p+".accessTokenAcceptedVersion", "must be 1, 2 or absent")
		}
		for j, k := range a.KnownClientApplications {
			if d.App(k) == nil {
				f.add(fmt.Sprintf("%s.knownClientApplications[%d]", p, j), "no app %q in the directory", k)
			}
		}
		for j, pa := range a.PreAuthorizedApplications {
			q := fmt.Sprintf("%s.preAuthorizedApplications[%d]", p, j)
			if d.App(pa.AppID) == nil {
				f.add(q+".appId", "no app %q in the directory", pa.AppID)
			}
			for k, s := range pa.Scopes {
				if !a.hasScope(s) {
					f.add(fmt.Sprintf("%s.scopes[%d]", q, k), "this app exposes no scope %q", s)
				}
			}
		}
		for j, ra := range a.RequiredResourceAccess {
			d.validateAccess(f, fmt.Sprintf("%s.requiredResourceAccess[%d]", p, j), ra.ResourceAppID, ra.Scopes, ra.Roles)
		}
		for j, g := range a.Grants {
			q := fmt.Sprintf("%s.grants[%d]", p, j)
			d.validateAccess(f, q, g.ResourceAppID, g.Scopes, g.Roles)
			if len(g.Roles) > 0 && len(g.Users) > 0 {
				f.add(q+".users", "application permissions (roles) are admin-consented for the whole tenant; remove users or roles")
			}
			for k, u := range g.Users {
				if d.User(u) == nil {
					f.add(fmt.Sprintf("%s.users[%d]", q, k), "no user %q in the directory", u)
				}
			}
		}
	}
}

func (d *Directory) validateAccess(f *fieldErr, p, resourceID string, scopes, roles []string) {
	res := d.App(resourceID)
	if res == nil {
		f.add(p+".resourceAppId", "no app %q in the directory", resourceID)
		return
	}
	for k, s := range scopes {
		if !res.hasScope(s) {
			f.add(fmt.Sprintf("%s.scopes[%d]", p, k), "app %q exposes no scope %q", res.AppID, s)
		}
	}
	for k, r := range roles {
		if !res.hasRole(r, "Application") {
			f.add(fmt.Sprintf("%s.roles[%d]", p, k), "app %q defines no application app role %q", res.AppID, r)
		}
	}
}

func (d *Directory) validatePolicies(f *fieldErr) {
	for i, c := range d.ConditionalAccess {
		p := fmt.Sprintf("conditionalAccessPolicies[%d]", i)
		if c == nil {
			f.add(p, "must be an object")
			continue
		}
		if !isGUID(c.ID) {
			f.add(p+".id", "must be a GUID")
		}
		if c.State != "" && c.State != "enabled" && c.State != "disabled" {
			f.add(p+".state", `must be "enabled" or "disabled"`)
		}
		if len(c.Users) == 0 {
			f.add(p+".users", `must list users (UPN or oid) or "All"`)
		}
		for j, u := range c.Users {
			if u != "All" && d.User(u) == nil {
				f.add(fmt.Sprintf("%s.users[%d]", p, j), "no user %q in the directory", u)
			}
		}
		if len(c.Resources) == 0 {
			f.add(p+".resources", `must list resource appIds or "All"`)
		}
		for j, r := range c.Resources {
			if r != "All" && d.App(r) == nil {
				f.add(fmt.Sprintf("%s.resources[%d]", p, j), "no app %q in the directory", r)
			}
		}
		if len(c.GrantControls) == 0 {
			f.add(p+".grantControls", `must list "mfa"`)
		}
		for j, g := range c.GrantControls {
			if g != "mfa" {
				f.add(fmt.Sprintf("%s.grantControls[%d]", p, j), `only "mfa" is supported`)
			}
		}
	}
}

func validateURLs(f *fieldErr, p string, list []string, httpOnly bool) {
	for j, s := range list {
		u, err := url.Parse(s)
		ok := err == nil && u.Scheme != "" && u.Host != "" && u.Fragment == "" && !strings.ContainsAny(s, " \t\r\n")
		if httpOnly {
			ok = ok && (u.Scheme == "http" || u.Scheme == "https")
		}
		if !ok {
			what := "must be an absolute http(s) URL"
			if !httpOnly {
				what = "must be an absolute URL"
			}
			f.add(fmt.Sprintf("%s[%d]", p, j), "%s without a fragment", what)
		}
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)

func validateNames(f *fieldErr, p string, n int, name func(int) string) {
	seen := map[string]bool{}
	for j := 0; j < n; j++ {
		v := name(j)
		switch {
		case !nameRE.MatchString(v):
			f.add(fmt.Sprintf("%s[%d].value", p, j), "must be non-empty letters, digits, '.', '_' or '-'")
		case seen[strings.ToLower(v)]:
			f.add(fmt.Sprintf("%s[%d].value", p, j), "duplicates %q", v)
		}
		seen[strings.ToLower(v)] = true
	}
}

func parseRSACert(p string) (*x509.Certificate, error) {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("must be a PEM CERTIFICATE block (public certificate only)")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("invalid certificate: %v", err)
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return nil, errors.New("must carry an RSA public key (Entra client assertions are RS256/PS256)")
	}
	return c, nil
}

func (a *App) hasScope(v string) bool {
	return slices.ContainsFunc(a.Scopes, func(s Scope) bool { return strings.EqualFold(s.Value, v) })
}

func (a *App) scope(v string) (Scope, bool) {
	for _, s := range a.Scopes {
		if strings.EqualFold(s.Value, v) {
			return s, true
		}
	}
	return Scope{}, false
}

func (a *App) hasRole(v, memberType string) bool {
	return slices.ContainsFunc(a.AppRoles, func(r AppRole) bool {
		return r.Value == v && slices.Contains(r.AllowedMemberTypes, memberType)
	})
}

// confidential apps have a credential; they must authenticate on the token
// endpoint except where a public platform (SPA, public client) is used.
func (a *App) confidential() bool { return len(a.Secrets) > 0 || len(a.Certificates) > 0 }

// spID is the object id of the app's service principal (oid/sub of app-only
// tokens): configured, or derived stably from the appId.
func (a *App) spID() string {
	if a.ServicePrincipalID != "" {
		return strings.ToLower(a.ServicePrincipalID)
	}
	return derivedGUID("sp:" + strings.ToLower(a.AppID))
}

// certByThumbprint finds a registered certificate by its SHA-1 (x5t) or
// SHA-256 (x5t#S256) thumbprint.
func (a *App) certByThumbprint(sha1Thumb, sha256Thumb []byte) *x509.Certificate {
	for _, c := range a.certs {
		s1 := sha1.Sum(c.Raw)
		s256 := sha256.Sum256(c.Raw)
		if (sha1Thumb != nil && bytes.Equal(s1[:], sha1Thumb)) || (sha256Thumb != nil && bytes.Equal(s256[:], sha256Thumb)) {
			return c
		}
	}
	return nil
}

func derivedGUID(seed string) string {
	h := sha256.Sum256([]byte(seed))
	h[6] = (h[6] & 0x0f) | 0x50 // version 5-like
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// redirectKind says on which platform a redirect URI is registered.
type redirectKind int

const (
	redirectNone redirectKind = iota
	redirectSPA
	redirectWeb
	redirectPublic
)

func (a *App) redirectKind(uri string) redirectKind {
	switch {
	case slices.Contains(a.RedirectURIs.SPA, uri):
		return redirectSPA
	case slices.Contains(a.RedirectURIs.Web, uri):
		return redirectWeb
	case slices.Contains(a.RedirectURIs.PublicClient, uri):
		return redirectPublic
	}
	return redirectNone
}

// spaOrigins are the origins of every SPA redirect URI: the CORS allow-list.
func (d *Directory) spaOrigins() map[string]bool {
	m := map[string]bool{}
	for _, a := range d.Apps {
		for _, r := range a.RedirectURIs.SPA {
			if u, err := url.Parse(r); err == nil {
				m[strings.ToLower(u.Scheme+"://"+u.Host)] = true
			}
		}
	}
	return m
}

// tenantAliases are the path segments that address this tenant.
func (d *Directory) isTenant(seg string) bool {
	if strings.EqualFold(seg, d.Tenant.ID) {
		return true
	}
	return slices.ContainsFunc(d.Tenant.Domains, func(dom string) bool { return strings.EqualFold(dom, seg) })
}

// userDomain is the domain part of a UPN.
func userDomain(upn string) string {
	if i := strings.LastIndexByte(upn, '@'); i >= 0 {
		return strings.ToLower(upn[i+1:])
	}
	return ""
}
