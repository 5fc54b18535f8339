package entraemu

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"
)

// principal is who a token is about: a user (delegated) with how they
// authenticated, or nobody (app-only).
type principal struct {
	user     *User
	amr      []string // "pwd", "mfa"
	authTime time.Time
	sid      string // SSO session id, "" if none
}

func (p principal) hasMFA() bool { return slices.Contains(p.amr, "mfa") }

// accessTokenSpec is everything an access token says.
type accessTokenSpec struct {
	client    *App
	clientAcr string // "0" public, "1" secret, "2" certificate
	resource  *App
	audience  string // identifier the resource was requested by (v1 aud)
	who       principal
	scp       []string // delegated scopes; nil for app-only
	roles     []string
	xmsCC     []string
	acrs      []string
	lifetime  time.Duration
}

func (s *Server) userLifetime() time.Duration {
	// Entra picks 60–90 minutes at random for user access tokens.
	return time.Duration(3600+mrand.IntN(1800)) * time.Second
}

const appTokenLifetime = 3599 * time.Second

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pairwiseSub is Entra's per-application subject: stable for (user, app),
// different across apps.
func (s *Server) pairwiseSub(oid, appID string) string {
	sum := sha256.Sum256([]byte(s.dir.Tenant.ID + "|" + strings.ToLower(oid) + "|" + strings.ToLower(appID)))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// rh is an opaque internal claim; Entra's starts "0.A".
func (s *Server) rh() string { return "0.A" + randomB64(48) + "." }

func (s *Server) mintAccessToken(spec accessTokenSpec) (string, error) {
	now := s.now()
	exp := now.Add(spec.lifetime)
	v2 := spec.resource.AccessTokenAcceptedVersion == 2
	c := map[string]any{
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(),
		"aio": randomB64(60), "rh": s.rh(), "tid": s.dir.Tenant.ID, "uti": randomB64(16),
	}
	k := s.keys.active()
	header := map[string]any{}
	if v2 {
		c["aud"] = spec.resource.AppID
		c["iss"] = s.IssuerV2()
		c["azp"] = spec.client.AppID
		c["azpacr"] = spec.clientAcr
		c["ver"] = "2.0"
	} else {
		c["aud"] = spec.audience
		c["iss"] = s.IssuerV1()
		c["appid"] = spec.client.AppID
		c["appidacr"] = spec.clientAcr
		c["ver"] = "1.0"
		header["x5t"] = k.x5t
	}
	if u := spec.who.user; u != nil {
		s.userClaims(c, u, v2)
		c["sub"] = s.pairwiseSub(u.OID, spec.resource.AppID)
		c["scp"] = strings.Join(spec.scp, " ")
		c["amr"] = spec.who.amr
		if !v2 {
			c["acr"] = "1"
		}
		if spec.who.sid != "" {
			c["sid"] = spec.who.sid
		}
	} else {
		c["oid"] = spec.client.spID()
		c["sub"] = spec.client.spID()
		c["idtyp"] = "app"
		if !v2 {
			c["idp"] = s.IssuerV1()
		}
	}
	if len(spec.roles) > 0 {
		c["roles"] = spec.roles
	}
	if len(spec.xmsCC) > 0 {
		c["xms_cc"] = spec.xmsCC
	}
	if len(spec.acrs) > 0 {
		c["acrs"] = spec.acrs
	}
	return signRS256(k, header, c)
}

func (s *Server) userClaims(c map[string]any, u *User, v2 bool) {
	c["oid"] = u.OID
	c["name"] = u.DisplayName
	if v2 {
		c["preferred_username"] = u.UPN
		return
	}
	c["upn"] = u.UPN
	c["unique_name"] = u.UPN
	if u.GivenName != "" {
		c["given_name"] = u.GivenName
	}
	if u.Surname != "" {
		c["family_name"] = u.Surname
	}
}

// mintIDToken makes a v2 id token for client about who.
func (s *Server) mintIDToken(client *App, who principal, nonce string, email bool) (string, error) {
	now := s.now()
	c := map[string]any{
		"aud": client.AppID, "iss": s.IssuerV2(),
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"aio": randomB64(60), "rh": s.rh(), "tid": s.dir.Tenant.ID, "uti": randomB64(16), "ver": "2.0",
		"sub": s.pairwiseSub(who.user.OID, client.AppID),
	}
	s.userClaims(c, who.user, true)
	if nonce != "" {
		c["nonce"] = nonce
	}
	if email && who.user.Mail != "" {
		c["email"] = who.user.Mail
	}
	if who.sid != "" {
		c["sid"] = who.sid
	}
	return s.sign(nil, c)
}

func (s *Server) sign(header, claims map[string]any) (string, error) {
	return signRS256(s.keys.active(), header, claims)
}

// clientInfo is MSAL's client_info: unpadded base64url {"uid","utid"}.
func (s *Server) clientInfo(u *User) string {
	b, _ := json.Marshal(map[string]string{"uid": u.OID, "utid": s.dir.Tenant.ID})
	return base64.RawURLEncoding.EncodeToString(b)
}

// requestedClaims is what a "claims" request parameter asks of the access
// token that the emulator honours.
type requestedClaims struct {
	xmsCC    []string
	acrs     []string
	capolids []string
}

type claimReq struct {
	Essential bool     `json:"essential"`
	Value     string   `json:"value"`
	Values    []string `json:"values"`
}

func (c claimReq) all() []string {
	if c.Value != "" {
		return append([]string{c.Value}, c.Values...)
	}
	return c.Values
}

// challenge is the claims challenge asking again for rc's auth contexts
// and policies (JSON text, as in Entra's error body).
func (rc requestedClaims) challenge() string {
	at := map[string]any{}
	claim := func(vals []string) map[string]any {
		if len(vals) == 1 {
			return map[string]any{"essential": true, "value": vals[0]}
		}
		return map[string]any{"essential": true, "values": vals}
	}
	if len(rc.acrs) > 0 {
		at["acrs"] = claim(rc.acrs)
	}
	if len(rc.capolids) > 0 {
		at["capolids"] = map[string]any{"essential": true, "values": rc.capolids}
	}
	b, _ := json.Marshal(map[string]any{"access_token": at})
	return string(b)
}

// parseClaims decodes the claims parameter (JSON text); "" is no claims.
func parseClaims(raw string) (requestedClaims, *oauthError) {
	var rc requestedClaims
	if strings.TrimSpace(raw) == "" {
		return rc, nil
	}
	var doc map[string]map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &doc); err != nil {
		return rc, invalidRequest(90009, "The claims parameter is not valid JSON: the request is malformed.")
	}
	at := doc["access_token"]
	for name, v := range at {
		var cr claimReq
		if len(v) > 0 && string(v) != "null" && json.Unmarshal(v, &cr) != nil {
			return rc, invalidRequest(90009, "The claims parameter is not valid JSON: claim '%s' is malformed.", truncate(name, 32))
		}
		switch name {
		case "xms_cc":
			rc.xmsCC = cr.all()
		case "acrs":
			rc.acrs = cr.all()
		case "capolids", "polids":
			rc.capolids = append(rc.capolids, cr.all()...)
		}
	}
	return rc, nil
}
