package obo

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// RefreshMargin is how long before its expiry a downstream token stops being
// served from the cache. Entra clients (MSAL Go, msal-browser) treat tokens
// as expired five minutes early; so do we, so that a token we hand out is
// still good for a downstream call that takes a while.
const RefreshMargin = 5 * time.Minute

// Entry is one cached downstream token.
type Entry struct {
	AccessToken string
	ExpiresOn   time.Time // the token's own expiry
	// ValidUntil is when the cache stops serving the entry: ExpiresOn minus
	// RefreshMargin.
	ValidUntil time.Time
	// Tier says which store answered a Get ("memory", "redis"); not stored.
	Tier string
}

// Store keeps downstream tokens by Key. Implementations must be safe for
// concurrent use, must never return an entry whose ValidUntil has passed, and
// may drop entries at any time (a miss only costs an IdP call).
type Store interface {
	// Get returns the entry for k; ok is false on a miss. An error means the
	// store could not answer (the caller treats it as a miss).
	Get(ctx context.Context, k Key) (e Entry, ok bool, err error)
	// Set stores e under k until e.ValidUntil.
	Set(ctx context.Context, k Key, e Entry) error
	// Delete forgets k (after the downstream API refused the token).
	Delete(ctx context.Context, k Key) error
}

// Locker is implemented by shared stores (RedisStore, TieredStore over it)
// to make one IdP request per key across all instances, not one per
// instance: the instance holding the lock exchanges, the others wait for its
// result in the store. A lock is only an optimisation: when it cannot be
// taken or its holder is slow, callers go ahead, so it never blocks longer
// than half the exchange timeout and never changes which token a caller gets.
type Locker interface {
	// Lock tries to take a lock on k that expires after ttl. ok is false when
	// another holder has it; err when the lock store is unavailable.
	Lock(ctx context.Context, k Key, ttl time.Duration) (unlock func(), ok bool, err error)
}

// refusalMarker is implemented by shared stores (RedisStore, TieredStore
// over it): Client.Forget marks the key there, so that another instance
// whose own MSAL cache still holds the refused token (it made that exchange)
// does not hand it out again. It is read only when MSAL answers from its
// cache, which is rare: our store is in front.
type refusalMarker interface {
	MarkRefused(ctx context.Context, k Key, ttl time.Duration) error
	Refused(ctx context.Context, k Key) (bool, error)
}

// DefaultMaxEntries bounds the default in-memory store. One entry costs the
// downstream token (1–3 KiB) plus about 150 bytes of bookkeeping.
const DefaultMaxEntries = 10000

// MemoryStore is a bounded in-memory LRU store. Expired entries are never
// returned and are dropped when met or when they reach the LRU tail.
type MemoryStore struct {
	mu    sync.Mutex
	max   int
	items map[Key]*list.Element
	lru   *list.List // front = most recently used; values are *memItem
	now   func() time.Time
}

type memItem struct {
	key Key
	e   Entry
}

// NewMemoryStore returns a store holding at most maxEntries entries
// (DefaultMaxEntries if maxEntries <= 0). now may be nil (time.Now).
func NewMemoryStore(maxEntries int, now func() time.Time) *MemoryStore {
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryStore{max: maxEntries, items: make(map[Key]*list.Element), lru: list.New(), now: now}
}

// Get implements Store.
func (m *MemoryStore) Get(_ context.Context, k Key) (Entry, bool, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[k]
	if !ok {
		return Entry{}, false, nil
	}
	it := el.Value.(*memItem)
	if !now.Before(it.e.ValidUntil) {
		m.lru.Remove(el)
		delete(m.items, k)
		return Entry{}, false, nil
	}
	m.lru.MoveToFront(el)
	e := it.e
	e.Tier = "memory"
	return e, true, nil
}

// Set implements Store.
func (m *MemoryStore) Set(_ context.Context, k Key, e Entry) error {
	now := m.now()
	if !now.Before(e.ValidUntil) {
		return nil
	}
	e.Tier = ""
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[k]; ok {
		el.Value.(*memItem).e = e
		m.lru.MoveToFront(el)
		return nil
	}
	m.items[k] = m.lru.PushFront(&memItem{key: k, e: e})
	for m.lru.Len() > m.max {
		m.evictTail()
	}
	// Drop a few expired entries from the tail so that dead tokens do not
	// sit in memory until pushed out by capacity.
	for i := 0; i < 2 && m.lru.Len() > 0; i++ {
		tail := m.lru.Back().Value.(*memItem)
		if now.Before(tail.e.ValidUntil) {
			break
		}
		m.evictTail()
	}
	return nil
}

func (m *MemoryStore) evictTail() {
	el := m.lru.Back()
	m.lru.Remove(el)
	delete(m.items, el.Value.(*memItem).key)
}

// Delete implements Store.
func (m *MemoryStore) Delete(_ context.Context, k Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[k]; ok {
		m.lru.Remove(el)
		delete(m.items, k)
	}
	return nil
}

// Len is the number of entries held (expired ones included until dropped).
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}
