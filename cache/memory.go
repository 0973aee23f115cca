package cache

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// ErrConfig is wrapped by every configuration error of this package.
var ErrConfig = errors.New("cache: invalid config")

const (
	// DefaultMaxBytes is the memory budget used when MemoryConfig.MaxBytes is 0.
	DefaultMaxBytes = 256 << 20

	// typicalItemBytes sizes ristretto's admission counters: a resized
	// avatar is a few KB, and ristretto wants ~10 counters per item it holds.
	typicalItemBytes = 4 << 10
	countersPerItem  = 10
	minCounters      = 1 << 10

	// entryOverhead is added to the cost of every entry so that the budget
	// bounds the heap, not only the payload bytes: without it 50,000 tiny
	// entries would cost nearly nothing and still take ~20 MB. It was
	// measured by storing 30,000 and 70,000 entries with empty values,
	// 25-byte keys and a distinct 21-byte tag each (the worst case: no tag
	// shared) and dividing the heap growth by the count: 446-468 bytes per
	// entry, of which ~56 are the cloned key and tag, so ~390-410 fixed.
	// That covers ristretto's store slot (key hash, conflict hash, value
	// pointer, expiration), its policy slot (key hash -> cost), our entry
	// (key, value, tag pointer, generation, list links), our tagState and
	// its map slot, and map growth slack. 512 leaves ~25% headroom;
	// TestEntryOverheadCoversHeap fails if the real figure outgrows it. The
	// key and tag lengths are added separately, and cost(v) must count
	// whatever v points to.
	entryOverhead = 512
)

// MemoryConfig configures a Memory. The zero value is usable.
type MemoryConfig struct {
	// MaxBytes bounds the summed cost of all entries: cost(v) plus the
	// length of key and tag plus a fixed per-entry overhead (512 bytes),
	// so it bounds the live heap the entries take. On top of it come
	// ristretto's admission counters (about 3 bytes per 400 bytes of
	// budget, 2-3 MB for 256 MiB) and the garbage collector's headroom
	// (GOGC, GOMEMLIMIT). 0 means DefaultMaxBytes (256 MiB).
	MaxBytes int64
}

// Validate reports values that cannot be defaulted, wrapped in ErrConfig.
func (c MemoryConfig) Validate() error {
	if c.MaxBytes < 0 {
		return fmt.Errorf("%w: memory MaxBytes %d is negative", ErrConfig, c.MaxBytes)
	}
	if c.MaxBytes > 0 && c.MaxBytes < 2*entryOverhead {
		return fmt.Errorf("%w: memory MaxBytes %d cannot hold a single entry", ErrConfig, c.MaxBytes)
	}
	return nil
}

// MemoryStats is a snapshot of a Memory's counters. It has no hit and miss
// counts: counting them in Get would make every Get write memory that all
// cores share (see NewMemory), and callers count their own outcomes.
type MemoryStats struct {
	Items     int64  // entries Set and not yet gone (evicted, expired, rejected, deleted, replaced)
	Bytes     int64  // summed cost of the entries held; never above MaxBytes
	Evictions uint64 // entries removed to make room or because their TTL passed (not Del/DeleteTag)
}

// Memory is the hot tier: a concurrent, cost-bounded in-memory cache built on
// ristretto, whose entries carry a tag so that every variant of one subject
// (say, all sizes of one chat's avatar) can be dropped at once.
//
// Sets are asynchronous and subject to ristretto's admission policy: a Set
// that returns true may still be rejected (or its entry evicted at once), so a
// Get right after a Set is not guaranteed to hit, even after Wait. Get never
// takes a lock of this package and does not allocate on a hit.
//
// Values are stored as given: if V holds a slice or a pointer, the memory
// behind it is shared with every caller of Get and must not be modified.
type Memory[V any] struct {
	c        *ristretto.Cache[string, *entry[V]]
	cost     func(V) int64
	maxBytes int64

	// mu guards tags and every tagState's list; Get never touches it.
	mu   sync.Mutex
	tags map[string]*tagState[V]
	live int // entries linked in some tagState

	evictions atomic.Uint64
	closing   atomic.Bool
	closeOnce sync.Once

	// beforeInsert, when set by a test, runs between registering an entry
	// and handing it to ristretto: the window in which a DeleteTag races.
	beforeInsert func()
}

// entry is the value handed to ristretto. Everything but the list links is
// immutable once the entry is published, so Get reads it without a lock.
type entry[V any] struct {
	key   string
	value V
	tag   *tagState[V]
	gen   uint64 // tag.gen when this entry was Set; a mismatch means purged

	// prev and next link the live entries of one tag; guarded by Memory.mu.
	prev, next *entry[V]
	linked     bool
}

// tagState tracks the entries of one tag that are in ristretto or on their
// way into it. It lives while it has entries; entries point to it, so a
// DeleteTag always reaches every entry that a Get could still return.
type tagState[V any] struct {
	name string
	gen  atomic.Uint64 // bumped by DeleteTag; written under Memory.mu
	head *entry[V]
	n    int
}

// NewMemory returns a Memory whose entries cost cost(v) bytes plus a fixed
// per-entry overhead. cost must be cheap, must not return a negative number
// and must count the bytes v refers to (for a []byte, its length).
func NewMemory[V any](cfg MemoryConfig, cost func(V) int64) (*Memory[V], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cost == nil {
		return nil, fmt.Errorf("%w: memory cost function is nil", ErrConfig)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	m := &Memory[V]{
		cost:     cost,
		maxBytes: cfg.MaxBytes,
		tags:     make(map[string]*tagState[V]),
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, *entry[V]]{
		NumCounters: max(minCounters, cfg.MaxBytes/typicalItemBytes*countersPerItem),
		MaxCost:     cfg.MaxBytes,
		BufferItems: 64,
		// ristretto's metrics count every Get in a counter chosen by the
		// key's hash: a popular avatar's Gets, from every core, all write
		// one cache line. On 2 cores that the host placed far apart (about
		// 230 ns a cache line, see cmd/coreprobe) that line cost a hit
		// about 60 ns in BenchmarkHitParallel. Items come from our own
		// index instead, and hits are the caller's to count.
		Metrics: false,
		// The cost we pass already includes our own estimate of the
		// per-entry overhead; ristretto's (the size of its store item)
		// would count part of it twice.
		IgnoreInternalCost: true,
		// OnExit fires exactly once for every value that a successful
		// SetWithTTL handed over, whichever way it leaves: rejected by the
		// admission policy, evicted, expired, replaced by a newer Set of the
		// same key, deleted, or cleared on Close. It is also called with a
		// nil value when a Del finds nothing. That makes it the one place to
		// keep the tag index exact. OnEvict and OnReject fire only for
		// some of these, and OnEvict also for values ristretto no longer has.
		OnExit: m.onExit,
		OnEvict: func(it *ristretto.Item[*entry[V]]) {
			if it.Value != nil && !m.closing.Load() {
				m.evictions.Add(1)
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	m.c = c
	return m, nil
}

// Get returns the value stored under key. ok=false means a miss: never Set,
// not admitted, evicted, expired, deleted or purged by DeleteTag. Get keeps
// nothing of key but its hash, so key may be a view of memory the caller
// reuses (an unsafe.String over a pooled buffer) once Get returns.
func (m *Memory[V]) Get(key string) (v V, ok bool) {
	e, ok := m.c.Get(key)
	if !ok || e == nil {
		return v, false
	}
	if e.gen != e.tag.gen.Load() {
		// A Set that raced a DeleteTag reached ristretto after the purge.
		m.c.Del(key)
		return v, false
	}
	return e.value, true
}

// Set stores v under key until ttl passes (ttl <= 0: no expiry) or it is
// evicted. tag groups keys for DeleteTag; a key should always be Set with
// the same tag. It returns false when the Set was dropped at once (ristretto's
// buffer full under contention, or the cache closed). true means the entry was
// buffered: it becomes visible to Get after ristretto applies it (Wait forces
// that) unless the admission policy rejects it.
func (m *Memory[V]) Set(key, tag string, v V, ttl time.Duration) bool {
	if m.closing.Load() {
		return false
	}
	if ttl < 0 {
		ttl = 0 // ristretto discards a negative ttl; the contract is "no expiry"
	}
	cost := max(m.cost(v), 0) + entryOverhead + int64(len(key)+len(tag))

	m.mu.Lock()
	ts := m.tags[tag]
	if ts == nil {
		// Cloned so that an entry never pins, or sees changes to, a caller's
		// buffer (fiber hands out strings backed by reused memory).
		ts = &tagState[V]{name: strings.Clone(tag)}
		m.tags[ts.name] = ts
	}
	e := &entry[V]{key: strings.Clone(key), value: v, tag: ts, gen: ts.gen.Load()}
	m.link(e)
	m.mu.Unlock()

	if m.beforeInsert != nil {
		m.beforeInsert()
	}
	if m.c.SetWithTTL(e.key, e, cost, ttl) {
		return true
	}
	// Dropped before ristretto took it: OnExit will never see e.
	m.unlink(e)
	return false
}

// Del removes key. Like every write it is applied by ristretto in order with
// the Sets before it; Get stops returning the old value at once.
func (m *Memory[V]) Del(key string) {
	if m.closing.Load() {
		return
	}
	m.c.Del(key)
}

// DeleteTag removes every entry Set with tag, including those whose Set is
// still in flight: once DeleteTag returns, no Get returns a value from a Set
// that started before DeleteTag was called. Entries of other tags are kept.
func (m *Memory[V]) DeleteTag(tag string) {
	if m.closing.Load() {
		return
	}
	m.mu.Lock()
	ts := m.tags[tag]
	if ts == nil {
		m.mu.Unlock()
		return
	}
	// Every entry of this tag, linked or still on its way into ristretto,
	// carries the old generation and is invisible to Get from here on.
	ts.gen.Add(1)
	keys := make([]string, 0, ts.n)
	for e := ts.head; e != nil; e = e.next {
		keys = append(keys, e.key)
	}
	m.mu.Unlock()

	// Del frees the memory; it runs OnExit, so it must not run under mu.
	for _, k := range keys {
		m.c.Del(k)
	}
}

// Wait blocks until every Set, Del and DeleteTag issued before it has been
// applied by ristretto.
func (m *Memory[V]) Wait() {
	if m.closing.Load() {
		return
	}
	m.c.Wait()
}

// Stats returns a snapshot of the counters. Items counts what the index
// holds: a Set still in ristretto's buffers counts until it is applied (and
// rejected, if it is), so after Wait it is exactly what ristretto holds.
func (m *Memory[V]) Stats() MemoryStats {
	m.mu.Lock()
	items := int64(m.live)
	m.mu.Unlock()
	return MemoryStats{
		Items:     items,
		Bytes:     m.c.MaxCost() - m.c.RemainingCost(),
		Evictions: m.evictions.Load(),
	}
}

// Close stops ristretto's goroutines and drops every entry. It is idempotent,
// but like ristretto's own Close it must not run concurrently with other
// calls: close the Memory after the server has stopped using it.
func (m *Memory[V]) Close() {
	m.closeOnce.Do(func() {
		m.closing.Store(true)
		m.c.Close()
	})
}

// onExit is ristretto's OnExit hook: e has left the cache (or never got in).
func (m *Memory[V]) onExit(e *entry[V]) {
	if e != nil {
		m.unlink(e)
	}
}

// link adds e to its tag's list. m.mu must be held.
func (m *Memory[V]) link(e *entry[V]) {
	ts := e.tag
	e.next = ts.head
	if ts.head != nil {
		ts.head.prev = e
	}
	ts.head = e
	e.linked = true
	ts.n++
	m.live++
}

// unlink removes e from its tag's list and drops the tag once it is empty.
// It is idempotent, which keeps the index exact even if ristretto reported
// one value twice.
func (m *Memory[V]) unlink(e *entry[V]) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !e.linked {
		return
	}
	ts := e.tag
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		ts.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next, e.linked = nil, nil, false
	ts.n--
	m.live--
	if ts.n == 0 && m.tags[ts.name] == ts {
		delete(m.tags, ts.name)
	}
}
