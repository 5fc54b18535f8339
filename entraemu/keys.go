package entraemu

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// signingKey is one token-signing key. Like Entra, kid equals x5t (the
// base64url SHA-1 thumbprint of the self-signed certificate).
type signingKey struct {
	KID       string    `json:"kid"`
	PKCS8     []byte    `json:"pkcs8"`
	CertDER   []byte    `json:"cert"`
	Created   time.Time `json:"created"`
	RetireAt  time.Time `json:"retireAt,omitzero"` // zero: published until rotated away
	Active    bool      `json:"active"`
	priv      *rsa.PrivateKey
	x5t       string
	certB64   string
	publicKey *rsa.PublicKey
}

// keyStore holds the signing keys; the active one signs, all unexpired ones
// are published.
type keyStore struct {
	mu   sync.RWMutex
	keys []*signingKey // newest first
	path string        // "" = memory only
	now  func() time.Time
}

const keysFile = "signing-keys.json"

func newKeyStore(dir string, now func() time.Time) (*keyStore, error) {
	ks := &keyStore{now: now}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("entraemu: key dir: %w", err)
		}
		ks.path = filepath.Join(dir, keysFile)
		if err := ks.load(); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if ks.active() == nil {
		if _, err := ks.rotate(0); err != nil {
			return nil, err
		}
	}
	return ks, nil
}

func generateKey(now time.Time) (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "devidp token signing"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(5 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return nil, err
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	k := &signingKey{PKCS8: pk, CertDER: der, Created: now}
	if err := k.init(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *signingKey) init() error {
	p, err := x509.ParsePKCS8PrivateKey(k.PKCS8)
	if err != nil {
		return err
	}
	priv, ok := p.(*rsa.PrivateKey)
	if !ok {
		return errors.New("entraemu: signing key is not RSA")
	}
	k.priv = priv
	k.publicKey = &priv.PublicKey
	sum := sha1.Sum(k.CertDER)
	k.x5t = base64.RawURLEncoding.EncodeToString(sum[:])
	k.KID = k.x5t
	k.certB64 = base64.StdEncoding.EncodeToString(k.CertDER)
	return nil
}

func (ks *keyStore) load() error {
	data, err := os.ReadFile(ks.path)
	if err != nil {
		return err
	}
	var keys []*signingKey
	if err := json.Unmarshal(data, &keys); err != nil {
		return fmt.Errorf("entraemu: %s: %w", ks.path, err)
	}
	for _, k := range keys {
		if err := k.init(); err != nil {
			return fmt.Errorf("entraemu: %s: %w", ks.path, err)
		}
	}
	ks.keys = keys
	return nil
}

// save writes the keys with mode 0600; callers hold mu.
func (ks *keyStore) save() error {
	if ks.path == "" {
		return nil
	}
	data, err := json.Marshal(ks.keys)
	if err != nil {
		return err
	}
	tmp := ks.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, ks.path)
}

func (ks *keyStore) active() *signingKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	for _, k := range ks.keys {
		if k.Active {
			return k
		}
	}
	return nil
}

// published are the keys in the JWKS: newest first, retired ones dropped.
func (ks *keyStore) published() []*signingKey {
	now := ks.now()
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]*signingKey, 0, len(ks.keys))
	for _, k := range ks.keys {
		if k.Active || k.RetireAt.IsZero() || now.Before(k.RetireAt) {
			out = append(out, k)
		}
	}
	return out
}

// lookup finds a published key by kid.
func (ks *keyStore) lookup(kid string) *signingKey {
	for _, k := range ks.published() {
		if k.KID == kid {
			return k
		}
	}
	return nil
}

// rotate makes a new key active at once (listed first) and keeps the old
// active key published for grace.
func (ks *keyStore) rotate(grace time.Duration) (string, error) {
	now := ks.now()
	k, err := generateKey(now)
	if err != nil {
		return "", err
	}
	k.Active = true
	ks.mu.Lock()
	defer ks.mu.Unlock()
	kept := []*signingKey{k}
	for _, old := range ks.keys {
		if old.Active {
			old.Active = false
			old.RetireAt = now.Add(grace)
		}
		if old.RetireAt.IsZero() || now.Before(old.RetireAt) {
			kept = append(kept, old)
		}
	}
	ks.keys = kept
	return k.KID, ks.save()
}

// revoke unpublishes a key at once; revoking the active key rotates first.
func (ks *keyStore) revoke(kid string) error {
	k := ks.lookup(kid)
	if k == nil {
		return fmt.Errorf("entraemu: no published key %q", kid)
	}
	if k.Active {
		if _, err := ks.rotate(0); err != nil {
			return err
		}
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	out := ks.keys[:0]
	for _, x := range ks.keys {
		if x.KID != kid {
			out = append(out, x)
		}
	}
	ks.keys = out
	return ks.save()
}

// jwk is one key of the JWKS in Entra's shape (no "alg").
type jwk struct {
	Kty    string   `json:"kty"`
	Use    string   `json:"use"`
	KID    string   `json:"kid"`
	X5t    string   `json:"x5t"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X5c    []string `json:"x5c"`
	Issuer string   `json:"issuer"`
}

func (ks *keyStore) jwks(issuer string) map[string][]jwk {
	keys := ks.published()
	out := make([]jwk, 0, len(keys))
	for _, k := range keys {
		out = append(out, jwk{
			Kty: "RSA", Use: "sig", KID: k.KID, X5t: k.x5t,
			N:      base64.RawURLEncoding.EncodeToString(k.publicKey.N.Bytes()),
			E:      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.publicKey.E)).Bytes()),
			X5c:    []string{k.certB64},
			Issuer: issuer,
		})
	}
	return map[string][]jwk{"keys": out}
}
