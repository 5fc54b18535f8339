// Package testkit holds the small helpers that the tests of several packages
// repeated. Only _test.go files import it: it is not an API and ships in no
// binary.
package testkit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// SyncBuffer is a goroutine-safe log sink: servers and clients under test
// write to it while the test reads it (checking, for instance, that no token
// reaches the logs).
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// DiscardLogger returns a logger that writes nowhere.
func DiscardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// UnverifiedClaims decodes a compact JWS's payload without verifying it, to
// see what an issuer put in a token; it fails the test on anything but three
// parts with a base64url JSON object in the middle.
func UnverifiedClaims(t testing.TB, jwt string) map[string]any {
	t.Helper()
	return jwsPart(t, jwt, 1)
}

// UnverifiedHeader decodes a compact JWS's protected header, as
// UnverifiedClaims does its payload.
func UnverifiedHeader(t testing.TB, jwt string) map[string]any {
	t.Helper()
	return jwsPart(t, jwt, 0)
}

func jwsPart(t testing.TB, jwt string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
