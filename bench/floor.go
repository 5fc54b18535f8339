package bench

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Floor is the practical floor of DESIGN §8: what the standard library alone
// needs to validate one token — split, base64url + encoding/json for the
// header, kid → key map, RSA-2048 PKCS#1 v1.5 verify, base64url +
// encoding/json for the claims, exp/nbf/iss/aud checks. It is deliberately
// lenient (no strict JSON, no alg allow-list beyond RS256): the cost
// reference, not a validator to use.
type Floor struct {
	Keys     map[string]*rsa.PublicKey
	Issuer   string
	Audience string
	Skew     time.Duration
}

type floorHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Typ string `json:"typ"`
}

type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = []string{s}
		return nil
	}
	return json.Unmarshal(b, (*[]string)(a))
}

// FloorClaims are all claims of the benchmark token.
type FloorClaims struct {
	Aud               audience `json:"aud"`
	Iss               string   `json:"iss"`
	Iat               int64    `json:"iat"`
	Nbf               int64    `json:"nbf"`
	Exp               int64    `json:"exp"`
	Aio               string   `json:"aio"`
	Azp               string   `json:"azp"`
	Azpacr            string   `json:"azpacr"`
	Name              string   `json:"name"`
	Oid               string   `json:"oid"`
	PreferredUsername string   `json:"preferred_username"`
	Rh                string   `json:"rh"`
	Scp               string   `json:"scp"`
	Sub               string   `json:"sub"`
	Tid               string   `json:"tid"`
	Uti               string   `json:"uti"`
	Ver               string   `json:"ver"`
}

var errFloor = errors.New("floor: invalid token")

// Validate returns the claims of a valid token.
func (f *Floor) Validate(tok string) (*FloorClaims, error) {
	h, rest, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errFloor
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok {
		return nil, errFloor
	}
	hb, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return nil, err
	}
	var hdr floorHeader
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return nil, err
	}
	if hdr.Alg != "RS256" {
		return nil, errFloor
	}
	key := f.Keys[hdr.Kid]
	if key == nil {
		return nil, errFloor
	}
	sig, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256([]byte(tok[:len(h)+1+len(p)]))
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, d[:], sig); err != nil {
		return nil, err
	}
	pb, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, err
	}
	var c FloorClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return nil, err
	}
	now := time.Now()
	skew := int64(f.Skew / time.Second)
	if c.Exp == 0 || now.Unix() > c.Exp+skew || now.Unix() < c.Nbf-skew || c.Iss != f.Issuer {
		return nil, errFloor
	}
	for _, a := range c.Aud {
		if a == f.Audience {
			return &c, nil
		}
	}
	return nil, errFloor
}

// NewFloor builds the floor validator for the fixture's keys.
func (f *Fixture) NewFloor() *Floor {
	m := map[string]*rsa.PublicKey{}
	for i, k := range f.Keys {
		m[f.KIDs[i]] = &k.PublicKey
	}
	return &Floor{Keys: m, Issuer: f.Issuer, Audience: APIID, Skew: 5 * time.Minute}
}
