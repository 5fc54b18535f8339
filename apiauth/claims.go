package apiauth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// claims are the members of an Entra access token the validator reads.
type claims struct {
	iss, sub, oid, tid, name, preferredUsername, upn, uniqueName string
	azp, appid, scp, ver, idtyp                                  string
	aud                                                          []string
	roles, amr                                                   []string
	exp, nbf, iat                                                int64
	hasExp, hasNbf, hasIat, hasNonce, hasScp                     bool
	audMatched                                                   string
}

var errClaimType = errors.New("claim has the wrong type")

func parseClaims(b []byte) (claims, error) {
	var c claims
	err := parseObject(b, func(key []byte, esc bool, val []byte, kind byte) error {
		if esc {
			key = []byte(unescape(key, true))
		}
		var ok = true
		switch string(key) {
		case "iss":
			c.iss, ok = stringValue(val, kind)
		case "sub":
			c.sub, ok = stringValue(val, kind)
		case "oid":
			c.oid, ok = stringValue(val, kind)
		case "tid":
			c.tid, ok = stringValue(val, kind)
		case "name":
			c.name, ok = stringValue(val, kind)
		case "preferred_username":
			c.preferredUsername, ok = stringValue(val, kind)
		case "upn":
			c.upn, ok = stringValue(val, kind)
		case "unique_name":
			c.uniqueName, ok = stringValue(val, kind)
		case "azp":
			c.azp, ok = stringValue(val, kind)
		case "appid":
			c.appid, ok = stringValue(val, kind)
		case "scp":
			c.scp, ok = stringValue(val, kind)
			c.hasScp = ok && strings.TrimSpace(c.scp) != ""
		case "ver":
			c.ver, ok = stringValue(val, kind)
		case "idtyp":
			c.idtyp, ok = stringValue(val, kind)
		case "nonce":
			c.hasNonce = true
		case "aud":
			if kind == kindString {
				s, _ := stringValue(val, kind)
				c.aud = []string{s}
			} else {
				c.aud, ok = stringList(val, kind)
			}
		case "roles":
			c.roles, ok = stringList(val, kind)
		case "amr":
			c.amr, ok = stringList(val, kind)
		case "exp":
			c.exp, ok = intValue(val, kind)
			c.hasExp = true
		case "nbf":
			c.nbf, ok = intValue(val, kind)
			c.hasNbf = true
		case "iat":
			c.iat, ok = intValue(val, kind)
			c.hasIat = true
		}
		if !ok {
			return fmt.Errorf("claim %q: %w", truncate(string(key), 32), errClaimType)
		}
		return nil
	})
	return c, err
}

var graphAuds = []string{
	"00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com", "https://graph.microsoft.com/",
	"00000002-0000-0000-c000-000000000000", "https://graph.windows.net", "https://graph.windows.net/",
}

func isGraphAud(aud []string) bool {
	for _, a := range aud {
		if slices.Contains(graphAuds, strings.ToLower(a)) {
			return true
		}
	}
	return false
}

// checkClaims applies the Entra rules. Order matters for the hints: the
// audience tells an ID token or a Graph token apart, the issuer a v1/v2 or
// tenant mix-up, then lifetime, then scp/roles.
func (v *Validator) checkClaims(c *claims, key *verifyKey) (int64, error) {
	if !c.hasExp {
		return 0, unauthorized(ReasonClaims, "exp missing", "")
	}

	// Audience.
	matched := ""
	for _, a := range c.aud {
		if v.audiences[a] {
			matched = a
			break
		}
	}
	if matched == "" {
		audStr := strings.Join(c.aud, " ")
		switch {
		case len(c.aud) == 0:
			return 0, unauthorized(ReasonAudience, "aud missing", "")
		case isGraphAud(c.aud):
			return 0, unauthorized(ReasonGraphToken, "aud "+audStr+" is Microsoft Graph", fmt.Sprintf(hintGraph, audStr))
		case c.hasNonce || (!c.hasScp && len(c.roles) == 0):
			n := ""
			if c.hasNonce {
				n = ", nonce present"
			}
			return 0, unauthorized(ReasonIDToken, "aud "+audStr+" is not this API; looks like an ID token", fmt.Sprintf(hintIDToken, n))
		}
		for _, a := range c.aud {
			na := strings.ToLower(strings.TrimSuffix(a, "/"))
			for acc := range v.audiences {
				if na == strings.ToLower(strings.TrimSuffix(acc, "/")) {
					return 0, unauthorized(ReasonAudience, "aud "+audStr+" differs in form from "+acc, fmt.Sprintf(hintAudienceForm, a, acc))
				}
			}
		}
		return 0, unauthorized(ReasonAudience, "aud "+audStr+" not accepted", fmt.Sprintf(hintAudience, audStr, v.audList))
	}

	c.audMatched = matched

	// Issuer, tenant, version.
	if err := v.checkIssuer(c, key); err != nil {
		return 0, err
	}

	// Lifetime.
	now := v.cfg.Now().Unix()
	if now > c.exp+v.skew {
		return 0, unauthorized(ReasonExpired, fmt.Sprintf("expired at %d, now %d, skew %ds", c.exp, now, v.skew),
			fmt.Sprintf(hintExpired, time.Unix(c.exp, 0).UTC().Format(time.RFC3339)))
	}
	if c.hasNbf && c.nbf > now+v.skew {
		return 0, unauthorized(ReasonNotYetValid, fmt.Sprintf("nbf %d, now %d, skew %ds", c.nbf, now, v.skew),
			fmt.Sprintf(hintNotYet, time.Unix(c.nbf, 0).UTC().Format(time.RFC3339)))
	}
	if c.hasIat && c.iat > now+v.skew {
		return 0, unauthorized(ReasonNotYetValid, fmt.Sprintf("iat %d in the future, now %d, skew %ds", c.iat, now, v.skew),
			fmt.Sprintf(hintNotYet, time.Unix(c.iat, 0).UTC().Format(time.RFC3339)))
	}

	// Access token for an API: scp (delegated) or roles (app-only).
	if !c.hasScp && len(c.roles) == 0 {
		hint := hintNoScp
		if c.hasNonce {
			hint = fmt.Sprintf(hintIDToken, ", nonce present")
		}
		return 0, unauthorized(ReasonNoScopeOrRoles, "neither scp nor roles", hint)
	}
	return c.exp + v.skew, nil
}

func (v *Validator) checkIssuer(c *claims, key *verifyKey) error {
	res := v.keys.res.Load()
	rules := res.rules
	var rule *issuerRule
	for i := range rules {
		r := &rules[i]
		if !r.template {
			if c.iss == r.iss {
				rule = r
				break
			}
			continue
		}
		pre, suf, _ := strings.Cut(r.iss, "{tenantid}")
		if isGUID(c.tid) && len(c.iss) == len(pre)+len(c.tid)+len(suf) &&
			strings.HasPrefix(c.iss, pre) && strings.HasSuffix(c.iss, suf) && c.iss[len(pre):len(pre)+len(c.tid)] == c.tid {
			rule = r
			break
		}
	}
	if rule == nil {
		// Explain: wrong version, other tenant, or just another issuer.
		switch {
		case c.ver == "1.0" && !v.v1:
			return unauthorized(ReasonVersion, "v1.0 token, v1.0 not accepted; iss "+c.iss, fmt.Sprintf(hintV1, c.iss))
		case c.ver == "2.0" && !v.v2:
			return unauthorized(ReasonVersion, "v2.0 token, v2.0 not accepted; iss "+c.iss, fmt.Sprintf(hintV2, c.iss))
		case res.tenant != "" && c.tid != "" && !strings.EqualFold(c.tid, res.tenant):
			return unauthorized(ReasonTenant, "tid "+c.tid+" is not the API's tenant; iss "+c.iss, fmt.Sprintf(hintTenant, c.tid, "tenant "+res.tenant+" only"))
		}
		return unauthorized(ReasonIssuer, "iss "+c.iss+" not accepted", "")
	}
	if rule.template || v.multi {
		if !v.anyTenant && !v.tenants[strings.ToLower(c.tid)] {
			return unauthorized(ReasonTenantNotAllowed, "tenant "+c.tid+" not on the allow-list", fmt.Sprintf(hintTenant, c.tid, "the tenants on its allow-list"))
		}
	} else if c.tid != "" {
		// The tid claim must name the tenant of the issuer (Entra guidance
		// when tid is used as a trust boundary).
		if t := tenantFromIssuer(c.iss); isGUID(t) && !strings.EqualFold(t, c.tid) {
			return unauthorized(ReasonIssuerTenant, "tid "+c.tid+" does not match iss "+c.iss, "")
		}
	}
	if key.tenant != "" && !strings.EqualFold(key.tenant, c.tid) {
		return unauthorized(ReasonKeyIssuer, "signing key belongs to tenant "+key.tenant+", token tid "+c.tid, "")
	}
	switch {
	case c.ver == "":
		return unauthorized(ReasonClaims, "ver missing", "")
	case c.ver == "1.0" && !v.v1:
		return unauthorized(ReasonVersion, "v1.0 token not accepted", fmt.Sprintf(hintV1, c.iss))
	case c.ver == "2.0" && !v.v2:
		return unauthorized(ReasonVersion, "v2.0 token not accepted", fmt.Sprintf(hintV2, c.iss))
	case c.ver != "1.0" && c.ver != "2.0":
		return unauthorized(ReasonVersion, fmt.Sprintf("ver %q", truncate(c.ver, 16)), "")
	case rule.version != "" && rule.version != c.ver:
		return unauthorized(ReasonVersion, "ver "+c.ver+" but iss "+c.iss+" is a v"+rule.version+" issuer", "")
	}
	return nil
}

func (c *claims) principal(payload []byte, kid string) *Principal {
	p := &Principal{
		ObjectID:  c.oid,
		TenantID:  c.tid,
		Subject:   c.sub,
		Name:      c.name,
		Username:  c.preferredUsername,
		AppID:     c.azp,
		Roles:     c.roles,
		AMR:       c.amr,
		Version:   c.ver,
		Issuer:    c.iss,
		ExpiresAt: time.Unix(c.exp, 0),
		RawClaims: payload,
		KeyID:     kid,
	}
	if p.Username == "" {
		p.Username = c.upn
	}
	if p.Username == "" {
		p.Username = c.uniqueName
	}
	if p.AppID == "" {
		p.AppID = c.appid
	}
	if c.hasScp {
		p.Scopes = strings.Fields(c.scp)
	}
	p.clip()
	p.AppOnly = c.idtyp == "app" || (!c.hasScp && len(c.roles) > 0)
	if c.hasIat {
		p.IssuedAt = time.Unix(c.iat, 0)
	}
	if c.hasNbf {
		p.NotBefore = time.Unix(c.nbf, 0)
	}
	p.Audience = c.audMatched
	return p
}
