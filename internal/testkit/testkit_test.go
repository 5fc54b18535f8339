package testkit

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	if !strings.Contains(b.String(), "w7-99\n") {
		t.Fatal("a write is missing")
	}
}

func TestDiscardLogger(t *testing.T) {
	log := DiscardLogger()
	if log == nil || log.Enabled(t.Context(), -8) {
		t.Fatal("DiscardLogger: nil, or enabled below info")
	}
	log.Info("dropped", "k", "v")
}

func TestUnverifiedClaims(t *testing.T) {
	m := UnverifiedClaims(t, "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4IiwibiI6MX0.c2ln")
	if m["oid"] != "x" || m["n"] != float64(1) || len(m) != 2 {
		t.Fatalf("%v", m)
	}
	if h := UnverifiedHeader(t, "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiJ4IiwibiI6MX0.c2ln"); h["alg"] != "RS256" || len(h) != 1 {
		t.Fatalf("header %v", h)
	}
	for _, bad := range []string{"a.b", "a.b.c.d", "h.!!!.s", "h.WzFd.s"} { // 2 parts, 4 parts, bad base64, a JSON array
		ft := &fakeTB{TB: t}
		func() {
			defer func() { _ = recover() }()
			UnverifiedClaims(ft, bad)
		}()
		if !ft.failed {
			t.Errorf("%q accepted", bad)
		}
	}
}

// fakeTB records a Fatal instead of stopping the real test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Fatal(...any)          { f.failed = true; panic("fatal") }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
