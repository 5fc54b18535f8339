package entraemu

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// maxJWT caps any JWT the emulator parses (assertions, client assertions).
const maxJWT = 16 << 10

// signRS256 signs header+claims with key; header gets typ/alg/kid.
func signRS256(k *signingKey, header, claims map[string]any) (string, error) {
	h := map[string]any{"typ": "JWT", "alg": "RS256", "kid": k.KID}
	for n, v := range header {
		h[n] = v
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k.priv, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// parsedJWT is a compact JWS split and decoded, not yet verified.
type parsedJWT struct {
	header  map[string]any
	claims  map[string]any
	signing string
	sig     []byte
}

var errMalformedJWT = errors.New("malformed JWT")

func parseJWT(s string) (*parsedJWT, error) {
	if len(s) > maxJWT {
		return nil, errors.New("JWT too large")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, errMalformedJWT
	}
	hb, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	cb, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, errMalformedJWT
	}
	p := &parsedJWT{signing: parts[0] + "." + parts[1], sig: sig}
	if decodeObject(hb, &p.header) != nil || decodeObject(cb, &p.claims) != nil {
		return nil, errMalformedJWT
	}
	return p, nil
}

func decodeObject(b []byte, v *map[string]any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if *v == nil || dec.More() {
		return errMalformedJWT
	}
	return nil
}

// verify checks the signature with pub for the header's alg, which must be
// in allowed (never "none", never HMAC).
func (p *parsedJWT) verify(pub *rsa.PublicKey, allowed ...string) error {
	alg, _ := p.header["alg"].(string)
	ok := false
	for _, a := range allowed {
		ok = ok || a == alg
	}
	if !ok {
		return errors.New("algorithm " + quoteShort(alg) + " not allowed")
	}
	sum := sha256.Sum256([]byte(p.signing))
	switch alg {
	case "RS256":
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], p.sig)
	case "PS256":
		return rsa.VerifyPSS(pub, crypto.SHA256, sum[:], p.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	}
	return errors.New("unsupported algorithm")
}

func (p *parsedJWT) str(name string) string {
	s, _ := p.claims[name].(string)
	return s
}

func (p *parsedJWT) headerStr(name string) string {
	s, _ := p.header[name].(string)
	return s
}

// num reads a NumericDate claim; ok is false when absent or not a number.
func (p *parsedJWT) num(name string) (int64, bool) {
	n, ok := p.claims[name].(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	if err != nil {
		return 0, false
	}
	return int64(f), true
}

// strs reads a claim that is a string or an array of strings.
func (p *parsedJWT) strs(name string) []string {
	switch v := p.claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// quoteShort quotes an untrusted value for an error message, truncated.
func quoteShort(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	b, _ := json.Marshal(s)
	return "'" + strings.Trim(string(b), `"`) + "'"
}

// decodeThumbprint accepts base64url or standard base64, padded or not
// (MSAL Go sends x5t#S256 in standard base64).
func decodeThumbprint(s string) []byte {
	if s == "" {
		return nil
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b
		}
	}
	return nil
}
