package obo

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// TieredStore puts a bounded memory store (L1) in front of a shared store
// (L2, normally Redis). Reads try L1, then L2 (filling L1 on an L2 hit);
// writes go to both. When L2 fails, the store keeps working from L1 alone:
// the failure is logged as a warning (at most once per WarnEvery, with the
// number of failures since), and L2 is skipped for Backoff so that a hung
// Redis does not add its timeout to every request.
//
// An entry that is also in L2 is served from L1 for at most L1MaxAge, then
// read from L2 again: that is how a Delete on one instance (a token the
// downstream API refused) reaches the others, whose memory would otherwise
// keep serving the refused token until it expires. The memory hit path stays
// a map lookup; the price is one L2 read per key and instance per L1MaxAge.
type TieredStore struct {
	L1 *MemoryStore
	L2 Store
	// L2Timeout bounds each L2 operation (default 250ms), retries included,
	// in addition to the Redis client's own timeouts.
	L2Timeout time.Duration
	// L1MaxAge caps how long L1 serves an entry that L2 holds (default
	// DefaultL1MaxAge; negative: no cap). Entries that could not be written
	// to L2 (Redis down) keep their full lifetime in L1.
	L1MaxAge  time.Duration
	Backoff   time.Duration // default 2s
	WarnEvery time.Duration // default 10s
	Logger    *slog.Logger

	downUntil atomic.Int64 // unix nanos; L2 skipped before this
	mu        sync.Mutex
	lastWarn  time.Time
	failures  int64 // since lastWarn
	healthy   bool
}

// DefaultL1MaxAge is TieredStore's default L1MaxAge: a token refused on one
// instance is served by the others for at most this long.
const DefaultL1MaxAge = time.Minute

// l1Entry is e as L1 keeps it when L2 holds it too: valid for at most
// L1MaxAge from now.
func (t *TieredStore) l1Entry(e Entry) Entry {
	max := t.L1MaxAge
	if max == 0 {
		max = DefaultL1MaxAge
	}
	if max > 0 {
		if until := t.L1.now().Add(max); until.Before(e.ValidUntil) {
			e.ValidUntil = until
		}
	}
	return e
}

// NewTieredStore returns l1 in front of l2.
func NewTieredStore(l1 *MemoryStore, l2 Store, logger *slog.Logger) *TieredStore {
	if logger == nil {
		logger = slog.Default()
	}
	return &TieredStore{L1: l1, L2: l2, Logger: logger, healthy: true}
}

func (t *TieredStore) l2Ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	d := t.L2Timeout
	if d <= 0 {
		d = 250 * time.Millisecond
	}
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

func (t *TieredStore) l2Up() bool { return time.Now().UnixNano() >= t.downUntil.Load() }

// l2Failed records an L2 failure: back off, and warn (rate-limited).
func (t *TieredStore) l2Failed(op string, err error) {
	b := t.Backoff
	if b <= 0 {
		b = 2 * time.Second
	}
	t.downUntil.Store(time.Now().Add(b).UnixNano())
	every := t.WarnEvery
	if every <= 0 {
		every = 10 * time.Second
	}
	t.mu.Lock()
	t.failures++
	t.healthy = false
	now := time.Now()
	if now.Sub(t.lastWarn) < every {
		t.mu.Unlock()
		return
	}
	n := t.failures
	t.failures = 0
	t.lastWarn = now
	t.mu.Unlock()
	t.Logger.Warn("obo: shared token cache unavailable, serving from memory only",
		"op", op, "err", err.Error(), "failures", n, "retry_in", b)
}

func (t *TieredStore) l2OK() {
	t.mu.Lock()
	recovered := !t.healthy
	t.healthy = true
	t.mu.Unlock()
	if recovered {
		t.Logger.Info("obo: shared token cache available again")
	}
}

// Get implements Store; an L2 failure is a miss, never an error.
func (t *TieredStore) Get(ctx context.Context, k Key) (Entry, bool, error) {
	if e, ok, _ := t.L1.Get(ctx, k); ok {
		return e, true, nil
	}
	if !t.l2Up() {
		return Entry{}, false, nil
	}
	c, cancel := t.l2Ctx(ctx)
	defer cancel()
	e, ok, err := t.L2.Get(c, k)
	if err != nil {
		t.l2Failed("get", err)
		return Entry{}, false, nil
	}
	t.l2OK()
	if ok {
		_ = t.L1.Set(ctx, k, t.l1Entry(e))
	}
	return e, ok, nil
}

// Set implements Store; an L2 failure is logged, never returned.
func (t *TieredStore) Set(ctx context.Context, k Key, e Entry) error {
	if !t.l2Up() {
		_ = t.L1.Set(ctx, k, e)
		return nil
	}
	// L1 first (capped, as if L2 will hold it), so that the entry is served
	// at once; its full lifetime if the L2 write fails.
	_ = t.L1.Set(ctx, k, t.l1Entry(e))
	c, cancel := t.l2Ctx(ctx)
	defer cancel()
	if err := t.L2.Set(c, k, e); err != nil {
		t.l2Failed("set", err)
		_ = t.L1.Set(ctx, k, e)
		return nil
	}
	t.l2OK()
	return nil
}

// Delete implements Store.
func (t *TieredStore) Delete(ctx context.Context, k Key) error {
	_ = t.L1.Delete(ctx, k)
	if !t.l2Up() {
		return nil
	}
	c, cancel := t.l2Ctx(ctx)
	defer cancel()
	if err := t.L2.Delete(c, k); err != nil {
		t.l2Failed("delete", err)
	}
	return nil
}

// MarkRefused implements refusalMarker when L2 does (a failure is logged).
func (t *TieredStore) MarkRefused(ctx context.Context, k Key, ttl time.Duration) error {
	m, ok := t.L2.(refusalMarker)
	if !ok || !t.l2Up() {
		return nil
	}
	c, cancel := t.l2Ctx(ctx)
	defer cancel()
	if err := m.MarkRefused(c, k, ttl); err != nil {
		t.l2Failed("mark", err)
	}
	return nil
}

// Refused implements refusalMarker when L2 does; unknown (L2 down) is false.
func (t *TieredStore) Refused(ctx context.Context, k Key) (bool, error) {
	m, ok := t.L2.(refusalMarker)
	if !ok || !t.l2Up() {
		return false, nil
	}
	c, cancel := t.l2Ctx(ctx)
	defer cancel()
	refused, err := m.Refused(c, k)
	if err != nil {
		t.l2Failed("get", err)
		return false, nil
	}
	return refused, nil
}

var errL2Down = errors.New("obo: shared store backing off")

// Lock implements Locker when L2 does.
func (t *TieredStore) Lock(ctx context.Context, k Key, ttl time.Duration) (func(), bool, error) {
	l, ok := t.L2.(Locker)
	if !ok || !t.l2Up() {
		return nil, false, errL2Down
	}
	c, cancel := t.l2Ctx(ctx)
	defer cancel()
	unlock, got, err := l.Lock(c, k, ttl)
	if err != nil {
		t.l2Failed("lock", err)
	}
	return unlock, got, err
}
