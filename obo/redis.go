package obo

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keyring holds the AES-256-GCM keys that encrypt cached tokens at rest. The
// first key encrypts; every key decrypts, so keys can be rotated by putting a
// new key first and keeping the old one until the cached tokens it sealed have
// expired (at most a token lifetime, about 90 minutes).
type Keyring struct {
	ids   []string
	aeads map[string]cipher.AEAD
}

// KeyringFromBase64 parses a comma-separated list of base64 (standard or
// URL-safe, padded or not) 32-byte keys, the current key first. A key's id is
// the first 8 hex digits of its SHA-256, stored with each value.
func KeyringFromBase64(list string) (*Keyring, error) {
	kr := &Keyring{aeads: map[string]cipher.AEAD{}}
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		raw, err := decodeB64(part)
		if err != nil {
			return nil, errors.New("obo: cache key is not base64")
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("obo: cache key must be 32 bytes, got %d", len(raw))
		}
		block, _ := aes.NewCipher(raw)
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(raw)
		id := hex.EncodeToString(sum[:4])
		if _, dup := kr.aeads[id]; dup {
			continue
		}
		kr.ids = append(kr.ids, id)
		kr.aeads[id] = aead
	}
	if len(kr.ids) == 0 {
		return nil, errors.New("obo: no cache key given")
	}
	return kr, nil
}

// KeyringFromFile reads KeyringFromBase64's format from a file (a mounted
// secret), surrounding white space ignored.
func KeyringFromFile(path string) (*Keyring, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("obo: read cache key file: %w", err)
	}
	return KeyringFromBase64(strings.TrimSpace(string(b)))
}

// NewRandomKey returns a fresh base64 key for KeyringFromBase64.
func NewRandomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// CurrentKeyID is the id of the encrypting key.
func (kr *Keyring) CurrentKeyID() string { return kr.ids[0] }

func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// value layout: "v1." + keyID + "." + base64url(nonce || seal(plaintext))
// plaintext: 8 bytes ExpiresOn (unix ms) || 8 bytes ValidUntil (unix ms) || token
// The Redis key is the additional data, so a value moved to another key (to
// another user's entry) fails to open.
const valueVersion = "v1"

func (kr *Keyring) seal(redisKey string, e Entry) string {
	id := kr.ids[0]
	aead := kr.aeads[id]
	pt := make([]byte, 16+len(e.AccessToken))
	binary.BigEndian.PutUint64(pt[0:], uint64(e.ExpiresOn.UnixMilli()))
	binary.BigEndian.PutUint64(pt[8:], uint64(e.ValidUntil.UnixMilli()))
	copy(pt[16:], e.AccessToken)
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(pt)+aead.Overhead())
	_, _ = rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, pt, []byte(redisKey))
	return valueVersion + "." + id + "." + base64.RawURLEncoding.EncodeToString(sealed)
}

var errUndecryptable = errors.New("obo: cached value cannot be decrypted (unknown key id or tampered)")

func (kr *Keyring) open(redisKey, v string) (Entry, error) {
	ver, rest, ok := strings.Cut(v, ".")
	if !ok || ver != valueVersion {
		return Entry{}, errUndecryptable
	}
	id, body, ok := strings.Cut(rest, ".")
	if !ok {
		return Entry{}, errUndecryptable
	}
	aead, ok := kr.aeads[id]
	if !ok {
		return Entry{}, errUndecryptable
	}
	sealed, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil || len(sealed) < aead.NonceSize()+aead.Overhead() {
		return Entry{}, errUndecryptable
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(redisKey))
	if err != nil || len(pt) < 16 {
		return Entry{}, errUndecryptable
	}
	return Entry{
		ExpiresOn:   time.UnixMilli(int64(binary.BigEndian.Uint64(pt[0:]))),
		ValidUntil:  time.UnixMilli(int64(binary.BigEndian.Uint64(pt[8:]))),
		AccessToken: string(pt[16:]),
	}, nil
}

// DefaultRedisPrefix prefixes every Redis key of this package.
const DefaultRedisPrefix = "obo:v1:"

// RedisStore keeps encrypted downstream tokens in Redis so that several API
// instances share them. The Redis key is prefix + hex(Key) (a hash: it reveals
// neither the user nor the token) and expires at the entry's ValidUntil.
// Operations are bounded by the timeouts configured on the Redis client.
type RedisStore struct {
	rdb    redis.UniversalClient
	prefix string
	keys   *Keyring
	now    func() time.Time
}

// NewRedisStore returns a store over rdb. prefix "" means DefaultRedisPrefix.
func NewRedisStore(rdb redis.UniversalClient, prefix string, keys *Keyring) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{rdb: rdb, prefix: prefix, keys: keys, now: time.Now}
}

// RedisKey is the Redis key under which k is stored.
func (r *RedisStore) RedisKey(k Key) string { return r.prefix + k.String() }

// auxKey is the Redis key of k's lock or refusal mark (kind "lock",
// "refused"), beside its value under the same prefix.
func (r *RedisStore) auxKey(kind string, k Key) string { return r.prefix + kind + ":" + k.String() }

// Get implements Store. A value that does not decrypt (key rotated away,
// tampering) is a miss, not an error.
func (r *RedisStore) Get(ctx context.Context, k Key) (Entry, bool, error) {
	rk := r.RedisKey(k)
	v, err := r.rdb.Get(ctx, rk).Result()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, err
	}
	e, err := r.keys.open(rk, v)
	if err != nil || !r.now().Before(e.ValidUntil) {
		return Entry{}, false, nil
	}
	e.Tier = "redis"
	return e, true, nil
}

// Set implements Store.
func (r *RedisStore) Set(ctx context.Context, k Key, e Entry) error {
	ttl := e.ValidUntil.Sub(r.now())
	if ttl < time.Second {
		return nil
	}
	rk := r.RedisKey(k)
	return r.rdb.Set(ctx, rk, r.keys.seal(rk, e), ttl).Err()
}

// Delete implements Store.
func (r *RedisStore) Delete(ctx context.Context, k Key) error {
	return r.rdb.Del(ctx, r.RedisKey(k)).Err()
}

// MarkRefused records in Redis, for ttl, that the downstream API refused
// k's token, so that other instances do not take it back from their own MSAL
// cache (see Client.Forget).
func (r *RedisStore) MarkRefused(ctx context.Context, k Key, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return nil
	}
	return r.rdb.Set(ctx, r.auxKey("refused", k), "1", ttl).Err()
}

// Refused reports whether MarkRefused marked k and the mark has not expired.
func (r *RedisStore) Refused(ctx context.Context, k Key) (bool, error) {
	n, err := r.rdb.Exists(ctx, r.auxKey("refused", k)).Result()
	return n > 0, err
}

// Lock implements Locker: SET NX with a TTL and a random owner value; the
// returned unlock deletes the lock only while this owner still holds it.
func (r *RedisStore) Lock(ctx context.Context, k Key, ttl time.Duration) (func(), bool, error) {
	lk := r.auxKey("lock", k)
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	owner := hex.EncodeToString(b)
	ok, err := r.rdb.SetNX(ctx, lk, owner, ttl).Result()
	if err != nil || !ok {
		return nil, false, err
	}
	return func() {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = unlockScript.Run(c, r.rdb, []string{lk}, owner).Err()
	}, true, nil
}

var unlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)
