package devtls

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestEnsureCreatesThenReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600, LeafFile: 0o644, LeafKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	b, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CAPEM, b.CAPEM) || !bytes.Equal(a.Leaf.Certificate[0], b.Leaf.Certificate[0]) {
		t.Fatal("second Ensure did not reuse the CA and leaf")
	}
	if a.LeafSPKIHash() != b.LeafSPKIHash() || len(a.LeafSPKIHash()) != 44 {
		t.Fatalf("SPKI hash %q", a.LeafSPKIHash())
	}
	// A corrupted leaf is replaced, the CA kept.
	if err := os.WriteFile(filepath.Join(dir, LeafFile), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.CAPEM, c.CAPEM) || bytes.Equal(a.Leaf.Certificate[0], c.Leaf.Certificate[0]) {
		t.Fatal("corrupted leaf not reissued under the same CA")
	}
}

func TestLeafVerifiesForLoopbackNames(t *testing.T) {
	b, err := NewInMemory()
	if err != nil {
		t.Fatal(err)
	}
	leaf := b.Leaf.Leaf
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life > 398*24*time.Hour {
		t.Errorf("leaf lifetime %v exceeds 397 days", life)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("EKU %v", leaf.ExtKeyUsage)
	}
	for _, h := range Hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: b.CertPool()}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: b.CertPool()}); err == nil {
		t.Error("leaf valid for example.com")
	}
	if !b.CA.IsCA || b.CA.NotAfter.Sub(b.CA.NotBefore) < 9*365*24*time.Hour {
		t.Error("CA not a 10-year CA")
	}
}
