// Package testredis connects tests to the local Redis the integration tests
// use (CI runs one on 127.0.0.1:6379). Only _test.go files import it.
package testredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Addr is where the tests expect Redis.
const Addr = "127.0.0.1:6379"

// Open connects to Redis at Addr or skips the test when it is unreachable
// (fails it instead when CI is set: CI must run the Redis-backed tests).
// It returns a key prefix unique to this test (base + random hex + ":") and
// deletes the keys under it, and closes the client, at cleanup.
func Open(t testing.TB, base string) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: Addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		if os.Getenv("CI") != "" { // .ci/run starts Redis: a skip there would hide the shared-cache tests
			t.Fatalf("Redis at %s unreachable (%v) and CI is set: .ci/run should have started it", Addr, err)
		}
		t.Skipf("Redis at %s unreachable (%v): skipping the Redis-backed test (CI has Redis there)", Addr, err)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := base + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
		_ = rdb.Close()
	})
	return rdb, prefix
}
