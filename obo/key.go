package obo

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"slices"
	"strings"
	"sync"
)

// Key identifies one cached downstream token: a SHA-256 over the authority,
// the client id, the normalised scopes and the incoming assertion. It never
// contains the assertion itself, so a key (or a Redis key built from it)
// reveals nothing.
type Key [sha256.Size]byte

// String is the hex form of the key, used as the Redis key suffix.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// short is a log-safe prefix of the key.
func (k Key) short() string { return hex.EncodeToString(k[:4]) }

var hashPool = sync.Pool{New: func() any { return sha256.New() }}

// NewKey computes the cache key for assertion and scopes requested by the
// confidential client clientID at authority. Scopes are normalised first
// (NormaliseScopes), so their order and case do not matter.
func NewKey(authority, clientID, assertion string, scopes []string) Key {
	h := hashPool.Get().(hash.Hash)
	h.Reset()
	var n [8]byte
	field := func(s string) {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	field("obo-cache/v1")
	field(strings.ToLower(strings.TrimRight(authority, "/")))
	field(clientID)
	norm := NormaliseScopes(scopes)
	binary.BigEndian.PutUint64(n[:], uint64(len(norm)))
	h.Write(n[:])
	for _, s := range norm {
		field(s)
	}
	field(assertion)
	var k Key
	h.Sum(k[:0])
	hashPool.Put(h)
	return k
}

// NormaliseScopes trims, lower-cases (Entra compares scopes case-insensitively),
// removes empty and duplicate entries and sorts. The input is not modified.
func NormaliseScopes(scopes []string) []string {
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		s = strings.ToLower(strings.TrimSpace(s))
		if s != "" {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
