package obo

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// keyBufs recycles the buffer a key is hashed from (the assertion is
// copied into it once: no allocation per lookup).
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// NewKey computes the cache key for assertion and scopes requested by the
// confidential client clientID at authority. Scopes are normalised first
// (NormaliseScopes), so their order and case do not matter. Fields are
// length-prefixed so that no two inputs share a preimage.
func NewKey(authority, clientID, assertion string, scopes []string) Key {
	bp := keyBufs.Get().(*[]byte)
	b := (*bp)[:0]
	field := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	field("obo-cache/v1")
	field(strings.ToLower(strings.TrimRight(authority, "/")))
	field(clientID)
	norm := scopes
	if !normalised(scopes) {
		norm = NormaliseScopes(scopes)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(len(norm)))
	for _, s := range norm {
		field(s)
	}
	field(assertion)
	k := Key(sha256.Sum256(b))
	if cap(b) <= 64<<10 {
		*bp = b
		keyBufs.Put(bp)
	}
	return k
}

// normalised reports whether NormaliseScopes(scopes) would return scopes
// unchanged (the common case: configured scopes, normalised once), so that
// the hot path allocates nothing for them.
func normalised(scopes []string) bool {
	for i, s := range scopes {
		if s == "" || strings.TrimSpace(s) != s || strings.ToLower(s) != s || (i > 0 && scopes[i-1] >= s) {
			return false
		}
	}
	return true
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
