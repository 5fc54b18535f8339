// Package testkit holds the small helpers that the tests of several packages
// repeated. Only _test.go files import it: it is not an API and ships in no
// binary.
package testkit

import (
	"bytes"
	"io"
	"log/slog"
	"sync"
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
