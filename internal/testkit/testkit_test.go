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
