package cache

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func newTestMemory(t *testing.T, maxBytes int64) *Memory[[]byte] {
	t.Helper()
	m, err := NewMemory(MemoryConfig{MaxBytes: maxBytes}, costOfBytes)
	if err != nil {
		t.Fatalf("NewMemory: %v", err)
	}
	t.Cleanup(m.Close)
	return m
}

// storeLen counts the values ristretto holds, expired ones excluded.
func storeLen(m *Memory[[]byte]) int {
	n := 0
	m.c.IterValues(func(*entry[[]byte]) bool { n++; return false })
	return n
}

// indexLen returns the number of linked entries and of tags, checking that
// the per-tag counts agree with the lists.
func indexLen(t *testing.T, m *Memory[[]byte]) (entries, tags int) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, ts := range m.tags {
		n := 0
		for e := ts.head; e != nil; e = e.next {
			n++
		}
		if n != ts.n || n == 0 {
			t.Fatalf("tag %q: list holds %d entries, count says %d", name, n, ts.n)
		}
		entries += n
	}
	if entries != m.live {
		t.Fatalf("index lists hold %d entries, live says %d", entries, m.live)
	}
	return entries, len(m.tags)
}

func TestNewMemoryConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     MemoryConfig
		cost    func([]byte) int64
		wantErr bool
		wantMax int64
	}{
		{name: "zero value takes the default", cost: costOfBytes, wantMax: DefaultMaxBytes},
		{name: "explicit budget", cfg: MemoryConfig{MaxBytes: 1 << 20}, cost: costOfBytes, wantMax: 1 << 20},
		{name: "negative budget", cfg: MemoryConfig{MaxBytes: -1}, cost: costOfBytes, wantErr: true},
		{name: "budget below one entry", cfg: MemoryConfig{MaxBytes: 100}, cost: costOfBytes, wantErr: true},
		{name: "budget just below the floor", cfg: MemoryConfig{MaxBytes: 2*entryOverhead - 1}, cost: costOfBytes, wantErr: true},
		{name: "budget at the floor", cfg: MemoryConfig{MaxBytes: 2 * entryOverhead}, cost: costOfBytes, wantMax: 2 * entryOverhead},
		{name: "nil cost", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewMemory(tt.cfg, tt.cost)
			if tt.wantErr {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewMemory: %v", err)
			}
			defer m.Close()
			if got := m.c.MaxCost(); got != tt.wantMax {
				t.Errorf("MaxCost = %d, want %d", got, tt.wantMax)
			}
		})
	}
}

func TestMemorySetGetDel(t *testing.T) {
	tests := []struct {
		name string
		ops  func(m *Memory[[]byte])
		key  string
		want string // "" means a miss
	}{
		{
			name: "hit after set",
			ops:  func(m *Memory[[]byte]) { m.Set("a/128", "a", []byte("png"), 0) },
			key:  "a/128", want: "png",
		},
		{
			name: "never set",
			ops:  func(m *Memory[[]byte]) { m.Set("a/128", "a", []byte("png"), 0) },
			key:  "a/256",
		},
		{
			name: "second set replaces",
			ops: func(m *Memory[[]byte]) {
				m.Set("a/128", "a", []byte("old"), 0)
				m.Wait()
				m.Set("a/128", "a", []byte("new"), 0)
			},
			key: "a/128", want: "new",
		},
		{
			name: "del",
			ops: func(m *Memory[[]byte]) {
				m.Set("a/128", "a", []byte("png"), 0)
				m.Wait()
				m.Del("a/128")
			},
			key: "a/128",
		},
		{
			name: "del of a buffered set",
			ops: func(m *Memory[[]byte]) {
				m.Set("a/128", "a", []byte("png"), 0)
				m.Del("a/128")
			},
			key: "a/128",
		},
		{
			name: "set after del",
			ops: func(m *Memory[[]byte]) {
				m.Set("a/128", "a", []byte("old"), 0)
				m.Wait()
				m.Del("a/128")
				m.Set("a/128", "a", []byte("new"), 0)
			},
			key: "a/128", want: "new",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMemory(t, 1<<20)
			tt.ops(m)
			m.Wait()
			got, ok := m.Get(tt.key)
			if ok != (tt.want != "") || string(got) != tt.want {
				t.Fatalf("Get(%q) = %q, %v; want %q", tt.key, got, ok, tt.want)
			}
			// Every value that left ristretto has left the index too.
			if n, _ := indexLen(t, m); n != storeLen(m) {
				t.Errorf("index holds %d entries, ristretto %d", n, storeLen(m))
			}
		})
	}
}

func TestMemoryTTL(t *testing.T) {
	tests := []struct {
		name    string
		ttl     time.Duration
		expires bool
	}{
		{name: "positive ttl expires", ttl: time.Minute, expires: true},
		{name: "zero ttl never expires", ttl: 0},
		{name: "negative ttl never expires", ttl: -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A bubble's fake clock drives both ristretto's expiry checks
			// and its cleanup ticker, so nothing here waits for real time.
			synctest.Test(t, func(t *testing.T) {
				m, err := NewMemory(MemoryConfig{MaxBytes: 1 << 20}, costOfBytes)
				if err != nil {
					t.Fatal(err)
				}
				defer m.Close()
				m.Set("a/128", "a", []byte("png"), tt.ttl)
				m.Wait()

				left, ok := m.c.GetTTL("a/128")
				if !ok {
					t.Fatal("entry not stored")
				}
				if tt.expires && (left <= 0 || left > tt.ttl) {
					t.Errorf("remaining ttl = %v, want in (0, %v]", left, tt.ttl)
				}
				if !tt.expires && left != 0 {
					t.Errorf("remaining ttl = %v, want 0 (no expiry)", left)
				}

				time.Sleep(time.Minute + time.Second)
				if _, ok := m.Get("a/128"); ok == tt.expires {
					t.Errorf("Get after %v: ok = %v, want %v", time.Minute+time.Second, ok, !tt.expires)
				}

				// ristretto removes expired entries in 5-second buckets on a
				// 2.5-second ticker; only then does OnExit unlink them.
				time.Sleep(15 * time.Second)
				synctest.Wait()
				m.Wait()
				wantLive := 1
				if tt.expires {
					wantLive = 0
				}
				if n, tags := indexLen(t, m); n != wantLive || tags != wantLive {
					t.Errorf("index holds %d entries in %d tags, want %d", n, tags, wantLive)
				}
				if tt.expires && m.Stats().Evictions != 1 {
					t.Errorf("Evictions = %d, want 1", m.Stats().Evictions)
				}
			})
		})
	}
}

func TestMemoryCostBudget(t *testing.T) {
	const (
		maxBytes = 1 << 20
		valSize  = 1 << 10
		n        = 20 * maxBytes / valSize // 20 times the budget
	)
	m := newTestMemory(t, maxBytes)
	val := make([]byte, valSize)
	for i := range n {
		// Three variants per tag, as a chat has several sizes.
		m.Set(fmt.Sprintf("chat%d/%d", i/3, i%3), fmt.Sprintf("chat%d", i/3), val, 0)
		if i%256 == 0 {
			m.Wait() // keep ristretto's buffer from dropping most Sets
		}
	}
	m.Wait()

	st := m.Stats()
	if st.Bytes > maxBytes {
		t.Errorf("Bytes = %d, above the %d budget", st.Bytes, maxBytes)
	}
	perEntry := int64(valSize + entryOverhead + len("chat1000/0") + len("chat1000"))
	if st.Items == 0 || st.Items > maxBytes/(valSize+entryOverhead) {
		t.Errorf("Items = %d, want 1..%d", st.Items, maxBytes/(valSize+entryOverhead))
	}
	if st.Bytes < st.Items*(valSize+entryOverhead) || st.Bytes > st.Items*perEntry {
		t.Errorf("Bytes = %d for %d items: not cost(v)+overhead per entry", st.Bytes, st.Items)
	}
	if st.Evictions == 0 {
		t.Error("Evictions = 0 after filling 20 times the budget")
	}

	// No leak: the index holds exactly what ristretto holds.
	entries, tags := indexLen(t, m)
	if held := storeLen(m); entries != held || int64(held) != st.Items {
		t.Errorf("index holds %d entries, ristretto %d, Stats.Items %d", entries, held, st.Items)
	}
	if tags > entries || tags < entries/3 {
		t.Errorf("index holds %d tags for %d entries of 3 variants each", tags, entries)
	}
}

func TestMemoryRejectsOversized(t *testing.T) {
	m := newTestMemory(t, 64<<10)
	m.Set("big", "big", make([]byte, 64<<10), 0)
	m.Wait()
	if _, ok := m.Get("big"); ok {
		t.Error("an entry larger than the whole budget was stored")
	}
	if n, tags := indexLen(t, m); n != 0 || tags != 0 {
		t.Errorf("rejected entry left %d entries, %d tags in the index", n, tags)
	}
}

func TestMemoryDeleteTag(t *testing.T) {
	tests := []struct {
		name string
		wait bool // let ristretto apply the Sets before purging
	}{
		{name: "applied entries", wait: true},
		{name: "buffered entries", wait: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestMemory(t, 1<<20)
			sizes := []string{"64", "128", "640"}
			for _, chat := range []string{"alice", "bob"} {
				for _, s := range sizes {
					m.Set(chat+"/"+s, chat, []byte(chat+s), 0)
				}
			}
			if tt.wait {
				m.Wait()
			}
			m.DeleteTag("alice")
			// Visible at once, before ristretto applies the deletes.
			for _, s := range sizes {
				if _, ok := m.Get("alice/" + s); ok {
					t.Errorf("alice/%s survived DeleteTag(alice)", s)
				}
			}
			m.Wait()
			for _, s := range sizes {
				if _, ok := m.Get("alice/" + s); ok {
					t.Errorf("alice/%s came back after Wait", s)
				}
				if v, ok := m.Get("bob/" + s); !ok || string(v) != "bob"+s {
					t.Errorf("bob/%s = %q, %v after DeleteTag(alice)", s, v, ok)
				}
			}
			if n, tags := indexLen(t, m); n != len(sizes) || tags != 1 {
				t.Errorf("index holds %d entries in %d tags, want %d in 1", n, tags, len(sizes))
			}
			m.DeleteTag("nobody") // unknown tags are a no-op
		})
	}
}

// TestMemoryDeleteTagRacingSet stops a Set in the window between taking the
// tag's generation and reaching ristretto, purges the tag there, and checks
// that the late Set does not bring the entry back.
func TestMemoryDeleteTagRacingSet(t *testing.T) {
	m := newTestMemory(t, 1<<20)
	m.Set("alice/64", "alice", []byte("old"), 0)
	m.Wait()

	reached, resume := make(chan struct{}), make(chan struct{})
	m.beforeInsert = func() {
		close(reached)
		<-resume
	}
	done := make(chan bool)
	go func() { done <- m.Set("alice/128", "alice", []byte("racer"), 0) }()
	<-reached
	m.DeleteTag("alice")
	m.beforeInsert = nil
	close(resume)
	if !<-done {
		t.Fatal("racing Set was dropped; the race was not exercised")
	}
	m.Wait()

	if _, ok := m.c.GetTTL("alice/128"); !ok { // ristretto's own view, past the generation check
		t.Fatal("racing Set did not reach ristretto after the purge; the race was not exercised")
	}
	for _, k := range []string{"alice/64", "alice/128"} {
		if v, ok := m.Get(k); ok {
			t.Errorf("Get(%q) = %q after DeleteTag(alice) returned", k, v)
		}
	}
	m.Wait()
	if n, tags := indexLen(t, m); n != 0 || tags != 0 {
		t.Errorf("index holds %d entries in %d tags after the purge", n, tags)
	}
	if st := m.Stats(); st.Items != 0 {
		t.Errorf("Items = %d after the purge, want 0", st.Items)
	}

	// A Set that starts after DeleteTag returned is a new entry.
	m.Set("alice/128", "alice", []byte("new"), 0)
	m.Wait()
	if v, ok := m.Get("alice/128"); !ok || string(v) != "new" {
		t.Errorf("Get after a fresh Set = %q, %v", v, ok)
	}
}

func TestMemoryConcurrent(t *testing.T) {
	m := newTestMemory(t, 256<<10) // small: evictions happen during the run
	const (
		workers = 8
		ops     = 3000
		chats   = 40
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			val := make([]byte, 512)
			for i := range ops {
				chat := strconv.Itoa((i*7 + w) % chats)
				key := chat + "/" + strconv.Itoa(i%3)
				switch i % 10 {
				case 0:
					m.DeleteTag(chat)
				case 1:
					m.Del(key)
				case 2, 3, 4:
					m.Set(key, chat, val, 0)
				default:
					if v, ok := m.Get(key); ok && len(v) != len(val) {
						t.Errorf("Get(%q) returned %d bytes", key, len(v))
					}
				}
			}
		})
	}
	wg.Wait()
	m.Wait()
	if st := m.Stats(); st.Bytes > 256<<10 {
		t.Errorf("Bytes = %d above budget", st.Bytes)
	}
	if n, _ := indexLen(t, m); n != storeLen(m) {
		t.Errorf("index holds %d entries, ristretto %d", n, storeLen(m))
	}
	// Purging every tag must leave nothing behind: every value ristretto
	// took has been reported back exactly once.
	for c := range chats {
		m.DeleteTag(strconv.Itoa(c))
	}
	m.Wait()
	if n, tags := indexLen(t, m); n != 0 || tags != 0 || storeLen(m) != 0 {
		t.Errorf("after purging all: index %d entries in %d tags, ristretto %d", n, tags, storeLen(m))
	}
}

func TestMemoryStats(t *testing.T) {
	m := newTestMemory(t, 1<<20)
	m.Set("a/1", "a", []byte("12345"), 0)
	m.Set("a/2", "a", []byte("1"), 0)
	m.Wait()
	st := m.Stats()
	want := MemoryStats{
		Items: 2,
		Bytes: 5 + 1 + 2*(entryOverhead+int64(len("a/1")+len("a"))),
	}
	if st != want {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}

	// Replacing a key leaves one item; deleting one leaves none of it.
	m.Set("a/1", "a", []byte("123"), 0)
	m.Wait()
	m.Del("a/2")
	m.Wait()
	want = MemoryStats{Items: 1, Bytes: 3 + entryOverhead + int64(len("a/1")+len("a"))}
	if st := m.Stats(); st != want {
		t.Errorf("after a replacement and a Del: Stats = %+v, want %+v", st, want)
	}
}

func TestMemoryClose(t *testing.T) {
	m := newTestMemory(t, 1<<20)
	m.Set("a/1", "a", []byte("png"), 0)
	m.Wait()
	m.Close()
	m.Close() // idempotent
	// Close drops every entry through ristretto's eviction hook: those are
	// not evictions.
	if n := m.evictions.Load(); n != 0 {
		t.Errorf("Close counted %d evictions", n)
	}
	if _, ok := m.Get("a/1"); ok {
		t.Error("Get hit after Close")
	}
	if m.Set("a/2", "a", []byte("png"), 0) {
		t.Error("Set accepted after Close")
	}
	m.Del("a/1")
	m.DeleteTag("a")
	m.Wait()
	if n, tags := indexLen(t, m); n != 0 || tags != 0 {
		t.Errorf("index holds %d entries in %d tags after Close", n, tags)
	}
}

// TestEntryOverheadCoversHeap checks the documented entryOverhead against
// the heap that tiny entries really take, so that the byte budget bounds
// memory even when values are nearly empty. Counts are chosen around map
// growth points, where the per-entry cost peaks.
func TestEntryOverheadCoversHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates tens of MB")
	}
	for _, n := range []int{30_000, 70_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			m := newTestMemory(t, 1<<30)
			keys := make([]string, n)
			tags := make([]string, n)
			for i := range keys {
				tags[i] = "7900" + strconv.Itoa(1000000+i) + "@c.us"
				keys[i] = tags[i] + "/128"
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			var charged int64
			for i := range keys {
				if !m.Set(keys[i], tags[i], nil, 0) {
					t.Fatal("Set dropped")
				}
				charged += entryOverhead + int64(len(keys[i])+len(tags[i]))
				if i%1024 == 0 {
					m.Wait()
				}
			}
			m.Wait()
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(keys)
			runtime.KeepAlive(tags)

			heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			if st := m.Stats(); st.Items != int64(n) || st.Bytes != charged {
				t.Fatalf("Items, Bytes = %d, %d; want %d, %d", st.Items, st.Bytes, n, charged)
			}
			t.Logf("heap per entry %d bytes, charged %d", heap/int64(n), charged/int64(n))
			if heap > charged {
				t.Errorf("%d entries took %d heap bytes, more than the %d charged: raise entryOverhead", n, heap, charged)
			}
		})
	}
}
