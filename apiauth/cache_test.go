package apiauth

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// The validated-token cache stays within its byte budget however many
// distinct tokens arrive, and recently used entries survive a generation
// change.
func TestTokenCacheBounded(t *testing.T) {
	const budget = 256 << 10
	c := newTokenCache(budget)
	p := &Principal{ObjectID: "e35a8c02-2ed7-489f-ac07-c14c1234b3c6", RawClaims: make([]byte, 900), Scopes: []string{"access_as_user"}}
	pad := strings.Repeat("x", 1392)
	hot := pad + "00000000"
	c.put(hot, p, nil, 1<<40, c.generation())
	var ms runtime.MemStats
	var heapAt []uint64
	for i := 1; i <= 40_000; i++ {
		c.put(pad+strconv.Itoa(100000000+i), p, nil, 1<<40, c.generation())
		if _, _, ok := c.get(hot, 0); !ok {
			t.Fatalf("hot entry evicted after %d inserts", i)
		}
		if i%10_000 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			heapAt = append(heapAt, ms.HeapAlloc)
		}
	}
	entries := c.len()
	maxEntries := budget / entrySize(hot, p) // two generations of budget/2
	if entries > maxEntries+2 {
		t.Fatalf("%d entries, budget allows %d", entries, maxEntries)
	}
	if heapAt[len(heapAt)-1] > heapAt[0]+8<<20 {
		t.Fatalf("heap grew from %d to %d bytes over 40k distinct tokens", heapAt[0], heapAt[len(heapAt)-1])
	}
	// A generation bump (key change) prevents a racing insert.
	g := c.generation()
	c.clear()
	c.put("late", p, nil, 1<<40, g)
	if _, _, ok := c.get("late", 0); ok {
		t.Fatal("an insert from before the key change survived the clear")
	}
	// exp is re-checked at every hit.
	c.put("short", p, nil, 100, c.generation())
	if _, _, ok := c.get("short", 101); ok {
		t.Fatal("expired entry served")
	}
}
