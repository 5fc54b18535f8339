package apiauth_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/entra-go/secure-api/apiauth"
	"github.com/entra-go/secure-api/internal/httpx"
)

type attack struct {
	name  string
	token string
}

func hmacToken(alg string, secret []byte, header map[string]any, claims []byte) string {
	hb, _ := json.Marshal(header)
	in := b64(hb) + "." + b64(claims)
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS384":
		h = sha512.New384
	default:
		h = sha512.New
	}
	m := hmac.New(h, secret)
	m.Write([]byte(in))
	return in + "." + b64(m.Sum(nil))
}

func rawToken(header, claims string, sig []byte) string {
	return b64([]byte(header)) + "." + b64([]byte(claims)) + "." + b64(sig)
}

// attackCatalogue builds every case of the JWT attack catalogue (DESIGN §8)
// against idp's keys. All must be refused with 401 (or 400/431 for request
// shapes net/http refuses itself), never 2xx or 5xx.
func attackCatalogue(t *testing.T, idp *testIDP) []attack {
	good := idp.sign(nil, idp.v2Claims(tenantA))
	parts := strings.Split(good, ".")
	h, p, s := parts[0], parts[1], parts[2]
	claims, _ := base64.RawURLEncoding.DecodeString(p)
	sig, _ := base64.RawURLEncoding.DecodeString(s)
	pub := &idp.published[0].priv.PublicKey
	attacker := testKeys(6)[5]
	var out []attack
	add := func(name, tok string) { out = append(out, attack{name, tok}) }

	// alg none, any case, with and without a signature.
	for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
		hb, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", "kid": "kid-0"})
		add("alg "+alg+" empty sig", b64(hb)+"."+p+".")
		add("alg "+alg+" with sig", b64(hb)+"."+p+"."+s)
	}
	// Key confusion: HMAC with the RSA public key in every encoding.
	der1 := x509.MarshalPKCS1PublicKey(pub)
	der2, _ := x509.MarshalPKIXPublicKey(pub)
	jwkJSON, _ := json.Marshal(map[string]string{"kty": "RSA", "kid": "kid-0", "n": b64(pub.N.Bytes()), "e": "AQAB"})
	secrets := map[string][]byte{
		"PEM PKIX":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der2}),
		"PEM PKCS1":  pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: der1}),
		"DER PKIX":   der2,
		"DER PKCS1":  der1,
		"JWK":        jwkJSON,
		"modulus":    pub.N.Bytes(),
		"modulus64":  []byte(b64(pub.N.Bytes())),
		"empty":      {},
		"kid string": []byte("kid-0"),
	}
	for _, alg := range []string{"HS256", "HS384", "HS512"} {
		for enc, sec := range secrets {
			add(alg+" with public key as "+enc, hmacToken(alg, sec, map[string]any{"alg": alg, "typ": "JWT", "kid": "kid-0"}, claims))
		}
	}
	// Header-supplied keys, signed by the attacker's key (and once by the real key).
	attackerJWK := map[string]any{"kty": "RSA", "kid": "evil", "n": b64(attacker.N.Bytes()), "e": "AQAB"}
	for name, hdr := range map[string]map[string]any{
		"jwk":          {"jwk": attackerJWK, "kid": "evil"},
		"jwk same kid": {"jwk": attackerJWK, "kid": "kid-0"},
		"jku":          {"jku": idp.URL + "/attacker/jwks.json", "kid": "evil"},
		"jku same kid": {"jku": idp.URL + "/attacker/jwks.json", "kid": "kid-0"},
		"x5u":          {"x5u": idp.URL + "/attacker/cert.pem", "kid": "evil"},
		"x5c":          {"x5c": []string{b64(der2)}, "kid": "kid-0"},
	} {
		hdr["alg"], hdr["typ"] = "RS256", "JWT"
		hb, _ := json.Marshal(hdr)
		add("header "+name, signRaw(attacker, hb, claims))
	}
	hb, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": "kid-0", "jku": idp.URL + "/attacker/jwks.json"})
	add("jku on a genuinely signed token", signRaw(idp.published[0].priv, hb, claims))
	// kid injection.
	for _, kid := range []any{"../../../../dev/null", "' OR '1'='1", "kid-0\x00", "kid-0' --", "|cat /etc/passwd",
		"http://evil.example/jwks", strings.Repeat("k", 10000), "", 0, []string{"kid-0"}, nil} {
		hb, _ := json.Marshal(map[string]any{"alg": "RS256", "kid": kid})
		add("kid injection", signRaw(attacker, hb, claims))
	}
	// Psychic signatures (ECDSA r=s=0), other algorithms.
	for _, alg := range []string{"ES256", "ES384", "ES512"} {
		hb, _ := json.Marshal(map[string]any{"alg": alg, "kid": "kid-0"})
		add(alg+" zero signature", b64(hb)+"."+p+"."+b64(make([]byte, 64)))
		add(alg+" DER zero signature", b64(hb)+"."+p+"."+b64([]byte{0x30, 6, 2, 1, 0, 2, 1, 0}))
	}
	hb, _ = json.Marshal(map[string]any{"alg": "PS256", "kid": "kid-0"})
	in := b64(hb) + "." + p
	d := sha256.Sum256([]byte(in))
	pss, _ := rsa.SignPSS(rand.Reader, idp.published[0].priv, crypto.SHA256, d[:], nil)
	add("PS256 when only RS256 is allowed", in+"."+b64(pss))
	add("signed by another key", signRaw(attacker, mustB64(h), claims))
	// Tampered claims.
	var cm map[string]any
	_ = json.Unmarshal(claims, &cm)
	cm["scp"] = "access_as_user admin"
	cb, _ := json.Marshal(cm)
	add("tampered claims", h+"."+b64(cb)+"."+s)
	cm["scp"], cm["oid"] = "access_as_user", "74b3dcd2-d9b5-42bb-be4c-ac96ec17444b"
	cb, _ = json.Marshal(cm)
	add("tampered oid", h+"."+b64(cb)+"."+s)
	// Stripped, truncated, bit-flipped signatures.
	add("stripped signature", h+"."+p+".")
	add("two parts", h+"."+p)
	add("one part", h)
	add("truncated signature", h+"."+p+"."+s[:len(s)-4])
	add("half signature", h+"."+p+"."+s[:len(s)/2])
	flipped := append([]byte(nil), sig...)
	flipped[100] ^= 0x01
	add("bit-flipped signature", h+"."+p+"."+b64(flipped))
	flipped = append([]byte(nil), sig...)
	flipped[0] ^= 0x80
	add("bit-flipped first byte", h+"."+p+"."+b64(flipped))
	add("signature all zero", h+"."+p+"."+b64(make([]byte, 256)))
	add("signature = modulus", h+"."+p+"."+b64(pub.N.Bytes()))
	add("signature one byte longer", h+"."+p+"."+b64(append([]byte{0}, sig...)))
	// Non-canonical encodings of the genuine token.
	add("padded signature", good+"==")
	add("padded header", h+"=."+p+"."+s)
	if strings.ContainsAny(good, "-_") { // else both alphabets spell it the same
		add("standard alphabet", strings.NewReplacer("-", "+", "_", "/").Replace(good))
	}
	add("trailing bits set", h+"."+p+"."+s[:len(s)-1]+string(setLowBits(s[len(s)-1])))
	add("newline inside", h+"."+p[:10]+"\n"+p[10:]+"."+s)
	add("CR inside", h+"\r."+p+"."+s)
	add("space inside", h+"."+p+". "+s)
	add("trailing dot", good+".")
	add("leading dot", "."+good)
	// Percent-encode a character every token has (a signature may lack "-").
	add("percent-encoded dot", strings.Replace(good, ".", "%2E", 1))
	add("percent-encoded payload", h+"."+"%"+fmt.Sprintf("%02X", p[0])+p[1:]+"."+s)
	// Strict JSON.
	signed := func(header, cl string) string {
		return signRaw(idp.published[0].priv, []byte(header), []byte(cl))
	}
	cs := string(claims)
	add("unknown crit", signed(`{"alg":"RS256","kid":"kid-0","crit":["exp"],"exp":1}`, cs))
	add("empty crit", signed(`{"alg":"RS256","kid":"kid-0","crit":[]}`, cs))
	add("duplicate alg", signed(`{"alg":"RS256","kid":"kid-0","alg":"none"}`, cs))
	add("duplicate alg escaped", signed(`{"alg":"RS256","kid":"kid-0","\u0061lg":"HS256"}`, cs))
	add("duplicate kid", signed(`{"alg":"RS256","kid":"kid-0","kid":"kid-1"}`, cs))
	add("duplicate aud", signed(`{"alg":"RS256","kid":"kid-0"}`, strings.Replace(cs, "{", `{"aud":"someone-else",`, 1)))
	add("trailing data in claims", signed(`{"alg":"RS256","kid":"kid-0"}`, cs+` {}`))
	add("trailing garbage in claims", signed(`{"alg":"RS256","kid":"kid-0"}`, cs+`x`))
	add("trailing data in header", signed(`{"alg":"RS256","kid":"kid-0"}{}`, cs))
	add("claims not an object", signed(`{"alg":"RS256","kid":"kid-0"}`, `["a"]`))
	add("header not an object", signed(`"RS256"`, cs))
	add("invalid UTF-8 in claims", signed(`{"alg":"RS256","kid":"kid-0"}`, strings.Replace(cs, "{", "{\"x\":\"\xff\xfe\",", 1)))
	add("control char in header", signed("{\"alg\":\"RS256\",\"kid\":\"kid\x01-0\"}", cs))
	add("single quotes", signed(`{'alg':'RS256','kid':'kid-0'}`, cs))
	add("header typ JWE", signed(`{"alg":"RS256","kid":"kid-0","typ":"JWE"}`, cs))
	add("header enc", signed(`{"alg":"RS256","kid":"kid-0","enc":"A256GCM"}`, cs))
	add("header b64 false", signed(`{"alg":"RS256","kid":"kid-0","b64":false,"crit":["b64"]}`, cs))
	add("alg not a string", signed(`{"alg":["RS256"],"kid":"kid-0"}`, cs))
	deep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	add("deep header", signed(`{"alg":"RS256","kid":"kid-0","x":`+deep+`}`, cs))
	add("deep claims", signed(`{"alg":"RS256","kid":"kid-0"}`, strings.Replace(cs, "{", `{"x":`+deep+`,`, 1)))
	add("deep objects", signed(`{"alg":"RS256","kid":"kid-0"}`, strings.Replace(cs, "{", `{"x":`+strings.Repeat(`{"a":`, 50)+"1"+strings.Repeat("}", 50)+",", 1)))
	// exp types.
	for name, exp := range map[string]string{"string": `"4102444800"`, "float": `4102444800.5`, "exponent": `4.1e9`,
		"null": `null`, "negative": `-1`, "huge": `99999999999999999999`, "object": `{}`, "array": `[4102444800]`} {
		var m map[string]any
		_ = json.Unmarshal(claims, &m)
		m["exp"] = json.RawMessage(exp)
		mb, _ := json.Marshal(m)
		add("exp "+name, signed(`{"alg":"RS256","kid":"kid-0"}`, string(mb)))
	}
	var noExp map[string]any
	_ = json.Unmarshal(claims, &noExp)
	delete(noExp, "exp")
	nb, _ := json.Marshal(noExp)
	add("exp missing", signed(`{"alg":"RS256","kid":"kid-0"}`, string(nb)))
	// JWE and other shapes.
	jweHdr := b64([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"kid-0"}`))
	add("JWE 5 parts", jweHdr+".ZW5j.aXY.Y2lwaGVy.dGFn")
	add("JWE 5 parts empty key", jweHdr+"..aXY.Y2lwaGVy.dGFn")
	add("4 parts", good+".eA")
	add("JSON serialization", `{"payload":"`+p+`","signatures":[{"protected":"`+h+`","signature":"`+s+`"}]}`)
	// Size.
	add("100 KB token", h+"."+strings.Repeat("A", 100<<10)+"."+s)
	add("17 KB token", h+"."+strings.Repeat("A", 17<<10)+"."+s)
	add("huge header part", b64([]byte(`{"alg":"RS256","kid":"kid-0","x":"`+strings.Repeat("a", 14000)+`"}`))+"."+p+"."+s)
	return out
}

func mustB64(s string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// setLowBits returns a base64url character that decodes to the same leading
// bits as c but with the unused trailing bits set.
func setLowBits(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i|0x0f]
}

func TestAttackCatalogue(t *testing.T) {
	idp := newTestIDP(t)
	logs := &logBuffer{}
	v := newValidator(t, idp, func(c *apiauth.Config) { c.Logger = slogTo(logs); c.RefusalLogsPerSecond = -1 /* check every line */ })
	waitReady(t, v)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	ts := httptest.NewUnstartedServer(v.Protect(ok, apiauth.RequireScope("access_as_user")))
	ts.Config = httpx.NewServer("", ts.Config.Handler)
	ts.Start()
	defer ts.Close()

	good := idp.sign(nil, idp.v2Claims(tenantA))
	get := func(auth string) int {
		req, _ := http.NewRequest("GET", ts.URL, nil)
		req.Header.Set("Authorization", auth)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatalf("request failed: %v", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("Bearer " + good); st != 200 {
		t.Fatal("genuine token refused:", st)
	}
	if _, err := v.Validate(context.Background(), good); err != nil {
		t.Fatal(err)
	}
	attacks := attackCatalogue(t, idp)
	var all []string
	for _, a := range attacks {
		all = append(all, a.token)
		if a.token == good {
			t.Fatalf("%s: attack token equals the genuine token", a.name)
		}
		p, err := v.Validate(context.Background(), a.token)
		if err == nil {
			t.Errorf("%s: accepted by Validate (%+v)", a.name, p)
			continue
		}
		if st := apiauth.ErrorStatus(err); st != 401 {
			t.Errorf("%s: status %d (%v)", a.name, st, err)
		}
		if strings.ContainsAny(a.token, "\r\n") {
			continue // not representable in a header value
		}
		// 431: net/http refuses headers over httpx.MaxHeaderBytes itself.
		if st := get("Bearer " + a.token); st != 401 && !(st == 431 && len(a.token) > httpx.MaxHeaderBytes) {
			t.Errorf("%s: HTTP status %d, want 401", a.name, st)
		}
	}
	// A 2 MB header is refused by the server itself; no 5xx, still serving.
	if st := get("Bearer " + strings.Repeat("A", 2<<20)); st != http.StatusRequestHeaderFieldsTooLarge && st != 401 {
		t.Errorf("2 MB header: status %d", st)
	}
	if st := get("Bearer " + good); st != 200 {
		t.Fatal("server no longer serves the genuine token:", st)
	}
	if n := idp.otherHits.Load(); n != 0 {
		t.Fatalf("%d requests reached a URL named by a token header (jku/x5u)", n)
	}
	assertNoTokenInLogs(t, logs.String(), all...)
	t.Logf("%d attack tokens refused", len(attacks))
}
