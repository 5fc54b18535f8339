package testredis

import (
	"strings"
	"testing"
)

func TestOpenPrefixAndCleanup(t *testing.T) {
	var prefix string
	t.Run("open", func(t *testing.T) {
		c, p := Open(t, "testredis:")
		_, p2 := Open(t, "testredis:")
		if !strings.HasPrefix(p, "testredis:") || !strings.HasSuffix(p, ":") || p == p2 {
			t.Fatalf("prefixes %q %q", p, p2)
		}
		if err := c.Set(t.Context(), p+"k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		prefix = p
	})
	if prefix == "" {
		t.Skip("no Redis")
	}
	c, _ := Open(t, "testredis:")
	if n := c.Exists(t.Context(), prefix+"k").Val(); n != 0 {
		t.Fatalf("key under %q survived the cleanup", prefix)
	}
}
