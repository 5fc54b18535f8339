// Package devtls creates and keeps the development certificate authority and
// the localhost server certificate that devidp serves HTTPS with. MSAL Go and
// msal-browser refuse non-https authorities, so a local Entra emulator needs a
// CA that developers can trust once and that survives restarts.
package devtls

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside the state directory.
const (
	CAFile      = "ca.pem"
	CAKeyFile   = "ca-key.pem"
	LeafFile    = "tls.pem"
	LeafKeyFile = "tls-key.pem"
)

const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 397 * 24 * time.Hour // the CA/Browser Forum maximum browsers accept
	leafRenewal  = 30 * 24 * time.Hour  // renew a leaf this close to expiry
)

// Bundle is a dev CA and a leaf certificate for localhost signed by it.
type Bundle struct {
	CA    *x509.Certificate
	CAPEM []byte
	Leaf  tls.Certificate // chain: leaf only; the CA is what clients trust

	caKey crypto.Signer
}

// Hosts are the names the leaf certificate is valid for.
var Hosts = []string{"localhost", "127.0.0.1", "::1"}

// NewInMemory creates a fresh CA and leaf that are never written anywhere
// (for tests).
func NewInMemory() (*Bundle, error) {
	b, err := newCA(time.Now())
	if err != nil {
		return nil, err
	}
	if err := b.issueLeaf(time.Now()); err != nil {
		return nil, err
	}
	return b, nil
}

// Ensure loads the CA and leaf from stateDir, creating them on first run and
// renewing the leaf when it is close to expiry. Private keys are written with
// mode 0600; the CA certificate is at filepath.Join(stateDir, CAFile).
func Ensure(stateDir string) (*Bundle, error) {
	now := time.Now()
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("devtls: state dir: %w", err)
	}
	b, err := loadCA(stateDir, now)
	if err != nil {
		if b, err = newCA(now); err != nil {
			return nil, err
		}
		if err := b.writeCA(stateDir); err != nil {
			return nil, err
		}
		// A new CA invalidates any old leaf.
		_ = os.Remove(filepath.Join(stateDir, LeafFile))
	}
	if leaf, err := loadLeaf(stateDir, b.CA, now); err == nil {
		b.Leaf = leaf
		return b, nil
	}
	if err := b.issueLeaf(now); err != nil {
		return nil, err
	}
	if err := b.writeLeaf(stateDir); err != nil {
		return nil, err
	}
	return b, nil
}

// TLSConfig is a server configuration serving the leaf (TLS 1.2+).
func (b *Bundle) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{b.Leaf}}
}

// CertPool holds only the dev CA.
func (b *Bundle) CertPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(b.CA)
	return p
}

// LeafSPKIHash is base64(sha256(SubjectPublicKeyInfo)) of the leaf, the form
// Chromium's --ignore-certificate-errors-spki-list takes.
func (b *Bundle) LeafSPKIHash() string {
	return SPKIHash(b.Leaf.Leaf)
}

// SPKIHash is base64(sha256(SubjectPublicKeyInfo)) of a certificate.
func SPKIHash(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func newCA(now time.Time) (*Bundle, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: "devidp development CA", Organization: []string{"entra-go dev only"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("devtls: create CA: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Bundle{CA: ca, CAPEM: pemBlock("CERTIFICATE", der), caKey: key}, nil
}

func (b *Bundle) issueLeaf(now time.Time) error {
	key, err := newKey()
	if err != nil {
		return err
	}
	sn, err := serial()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, b.CA, key.Public(), b.caKey)
	if err != nil {
		return fmt.Errorf("devtls: create leaf: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	b.Leaf = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func (b *Bundle) writeCA(dir string) error {
	kp, err := keyPEM(b.caKey)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, CAKeyFile), kp, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, CAFile), b.CAPEM, 0o644)
}

func (b *Bundle) writeLeaf(dir string) error {
	kp, err := keyPEM(b.Leaf.PrivateKey.(crypto.Signer))
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, LeafKeyFile), kp, 0o600); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, LeafFile), pemBlock("CERTIFICATE", b.Leaf.Certificate[0]), 0o644)
}

// writeFile replaces a file atomically so a crash never leaves half a key.
func writeFile(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readPEM(path, typ string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != typ {
		return nil, fmt.Errorf("devtls: %s: no %s PEM block", path, typ)
	}
	return blk.Bytes, nil
}

func readKey(path string) (crypto.Signer, error) {
	der, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("devtls: key is not a signer")
	}
	return s, nil
}

func loadCA(dir string, now time.Time) (*Bundle, error) {
	der, err := readPEM(filepath.Join(dir, CAFile), "CERTIFICATE")
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if !ca.IsCA || now.After(ca.NotAfter.Add(-leafLifetime)) {
		return nil, errors.New("devtls: CA unusable or expiring")
	}
	key, err := readKey(filepath.Join(dir, CAKeyFile))
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(key.Public(), ca.PublicKey) {
		return nil, errors.New("devtls: CA key does not match certificate")
	}
	return &Bundle{CA: ca, CAPEM: pemBlock("CERTIFICATE", der), caKey: key}, nil
}

func loadLeaf(dir string, ca *x509.Certificate, now time.Time) (tls.Certificate, error) {
	der, err := readPEM(filepath.Join(dir, LeafFile), "CERTIFICATE")
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return tls.Certificate{}, err
	}
	if now.After(leaf.NotAfter.Add(-leafRenewal)) {
		return tls.Certificate{}, errors.New("devtls: leaf expiring")
	}
	key, err := readKey(filepath.Join(dir, LeafKeyFile))
	if err != nil {
		return tls.Certificate{}, err
	}
	if !publicKeyEqual(key.Public(), leaf.PublicKey) {
		return tls.Certificate{}, errors.New("devtls: leaf key does not match certificate")
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

func publicKeyEqual(a, b crypto.PublicKey) bool {
	ad, err1 := x509.MarshalPKIXPublicKey(a)
	bd, err2 := x509.MarshalPKIXPublicKey(b)
	return err1 == nil && err2 == nil && bytes.Equal(ad, bd)
}
