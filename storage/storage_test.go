package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// store is the durable-tier contract both implementations meet; the cache
// package declares its own copy.
type store interface {
	Get(ctx context.Context, key string) (data []byte, ok bool, err error)
	Put(ctx context.Context, key string, data []byte) error
	Delete(ctx context.Context, key string) error
	Ping(ctx context.Context) error
}

var (
	_ store = (*Disk)(nil)
	_ store = (*S3)(nil)
)

var nameRE = regexp.MustCompile(`^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$`)

func TestObjectName(t *testing.T) {
	// The keyed names are HMAC-SHA256 as openssl computes it:
	// printf %s src/79001234567@c.us/full | openssl dgst -sha256 -hmac name-key-0123456789
	const nameKey = "name-key-0123456789"
	tests := []struct {
		prefix, key, nameKey, want string
	}{
		{"", "src/79001234567@c.us/full", "",
			"6d/77/6d779cc3a233b44a4898b01abc6fa721d64ad2d5790250fe0b864b76d04d55c8"},
		{"avatars/", "src/79001234567@c.us/full", "",
			"avatars/6d/77/6d779cc3a233b44a4898b01abc6fa721d64ad2d5790250fe0b864b76d04d55c8"},
		{"", "", "",
			"e3/b0/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"", "src/79001234567@c.us/full", nameKey,
			"ca/f1/caf10876954949c2bd66741a80889abef375f3a62df269f176afd1cfe28ab100"},
		{"avatars/", "src/79001234567@c.us/full", nameKey,
			"avatars/ca/f1/caf10876954949c2bd66741a80889abef375f3a62df269f176afd1cfe28ab100"},
		{"", "", nameKey,
			"5d/de/5dde89f6358f82d0202d5c07c2fe854bc8bc4513da498960e6801d4538b60ea8"},
		{"", "src/79001234567@c.us/full", "another-key-0123456789",
			"eb/e7/ebe70ab541320c4e95a5f9635bdba5a5b6750d0ccdf8470070db7f0eda75a233"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q+%q keyed=%v", tt.prefix, tt.key, tt.nameKey != ""), func(t *testing.T) {
			if got := objectName(tt.prefix, tt.key, []byte(tt.nameKey)); got != tt.want {
				t.Errorf("objectName = %q, want %q", got, tt.want)
			}
			// Stable: the same inputs name the same object every time.
			if again := objectName(tt.prefix, tt.key, []byte(tt.nameKey)); again != tt.want {
				t.Errorf("second objectName = %q, want %q", again, tt.want)
			}
		})
	}
}

func TestObjectNameHidesKey(t *testing.T) {
	for _, nameKey := range [][]byte{nil, []byte("name-key-0123456789")} {
		seen := map[string]string{}
		for _, key := range testKeys {
			name := objectName("", key, nameKey)
			if !nameRE.MatchString(name) {
				t.Errorf("objectName(%.40q) = %q: not aa/bb/<64 hex>", key, name)
			}
			if len(key) >= 4 && strings.Contains(name, key) {
				t.Errorf("objectName(%.40q) = %q contains the key", key, name)
			}
			if other, ok := seen[name]; ok {
				t.Errorf("objectName(%.40q) = objectName(%.40q) = %q", key, other, name)
			}
			seen[name] = key
		}
	}
}

// Without the name key, anyone holding a listing can hash every phone number
// and match the names; with it, the same key names another object under
// every other key, so a listing made under one key says nothing under
// another (or none).
func TestObjectNameKeyed(t *testing.T) {
	keys := [][]byte{nil, []byte("name-key-0123456789"), []byte("name-key-0123456780"), []byte("name-key-0123456789-longer")}
	for _, key := range testKeys {
		names := map[string]int{}
		for i, nameKey := range keys {
			name := objectName("", key, nameKey)
			if j, ok := names[name]; ok {
				t.Errorf("objectName(%.40q) is %q under name keys %d and %d", key, name, j, i)
			}
			names[name] = i
		}
	}
	if objectName("", "k", []byte{}) != objectName("", "k", nil) {
		t.Error("an empty name key names objects unlike no key")
	}
}

// testKeys are awkward logical keys: every one must round-trip and be
// distinct from the others.
var testKeys = []string{
	"",
	"a",
	"src/79001234567@c.us/full",
	"src/79001234567@c.us/preview",
	"..",
	".",
	"/",
	"../../../../etc/passwd",
	"a/../b",
	"a/./b",
	"trailing/",
	"ключ/фото 😀/日本語",
	"nul\x00inside",
	"CON",
	".tmp",
	strings.Repeat("long/", 2000),
}

// backend makes a fresh, empty place to keep objects and returns a way to
// open handles on it. Handles from one backend share objects, as replicas
// sharing a folder or a bucket do.
type backend func(t *testing.T) (open func(maxObjectSize int64) store)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s store, key string, data []byte) {
	t.Helper()
	if err := s.Put(testCtx(t), key, data); err != nil {
		t.Fatalf("Put(%.40q): %v", key, err)
	}
}

func mustGet(t *testing.T, s store, key string) []byte {
	t.Helper()
	data, ok, err := s.Get(testCtx(t), key)
	if err != nil || !ok {
		t.Fatalf("Get(%.40q) = ok %v, err %v; want a hit", key, ok, err)
	}
	return data
}

func mustMiss(t *testing.T, s store, key string) {
	t.Helper()
	data, ok, err := s.Get(testCtx(t), key)
	if err != nil || ok || data != nil {
		t.Fatalf("Get(%.40q) = %d bytes, ok %v, err %v; want a miss", key, len(data), ok, err)
	}
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	_, _ = r.Read(b)
	return b
}

// conformance runs the same cases against one tier. raceIters sizes the
// concurrent Put/Get case (S3 round trips cost far more than file writes).
func conformance(t *testing.T, newBackend backend, raceIters int) {
	cases := []struct {
		name string
		run  func(t *testing.T, open func(int64) store)
	}{
		{"miss", func(t *testing.T, open func(int64) store) {
			mustMiss(t, open(0), "src/79001234567@c.us/full")
		}},
		{"round trip", func(t *testing.T, open func(int64) store) {
			s := open(0)
			want := []byte("avatar bytes")
			mustPut(t, s, "k", want)
			if got := mustGet(t, s, "k"); !bytes.Equal(got, want) {
				t.Fatalf("Get = %q, want %q", got, want)
			}
		}},
		{"caller owns returned bytes", func(t *testing.T, open func(int64) store) {
			s := open(0)
			mustPut(t, s, "k", []byte("original"))
			got := mustGet(t, s, "k")
			clear(got)
			if again := mustGet(t, s, "k"); string(again) != "original" {
				t.Fatalf("after scribbling on a returned slice, Get = %q", again)
			}
		}},
		{"put does not keep the slice", func(t *testing.T, open func(int64) store) {
			s := open(0)
			in := []byte("original")
			mustPut(t, s, "k", in)
			copy(in, "XXXXXXXX")
			if got := mustGet(t, s, "k"); string(got) != "original" {
				t.Fatalf("after scribbling on the Put slice, Get = %q", got)
			}
		}},
		{"empty object is a hit", func(t *testing.T, open func(int64) store) {
			s := open(0)
			mustPut(t, s, "k", nil)
			if got := mustGet(t, s, "k"); got == nil || len(got) != 0 {
				t.Fatalf("Get = %#v, want a non-nil empty slice", got)
			}
		}},
		{"overwrite", func(t *testing.T, open func(int64) store) {
			s := open(0)
			mustPut(t, s, "k", []byte("first, longer value"))
			mustPut(t, s, "k", []byte("second"))
			if got := mustGet(t, s, "k"); string(got) != "second" {
				t.Fatalf("Get = %q, want %q", got, "second")
			}
		}},
		{"delete", func(t *testing.T, open func(int64) store) {
			s := open(0)
			mustPut(t, s, "k", []byte("v"))
			mustPut(t, s, "other", []byte("w"))
			if err := s.Delete(testCtx(t), "k"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			mustMiss(t, s, "k")
			if got := mustGet(t, s, "other"); string(got) != "w" {
				t.Fatalf("Delete touched another key: Get(other) = %q", got)
			}
		}},
		{"delete missing", func(t *testing.T, open func(int64) store) {
			if err := open(0).Delete(testCtx(t), "never stored"); err != nil {
				t.Fatalf("Delete of a missing key: %v", err)
			}
		}},
		{"binary with zero bytes", func(t *testing.T, open func(int64) store) {
			s := open(0)
			want := make([]byte, 0, 3*256)
			for i := range 256 {
				want = append(want, 0, byte(i), 0)
			}
			mustPut(t, s, "k", want)
			if got := mustGet(t, s, "k"); !bytes.Equal(got, want) {
				t.Fatalf("binary data changed in a round trip")
			}
		}},
		{"object of exactly the default cap", func(t *testing.T, open func(int64) store) {
			s := open(0)
			want := randomBytes(DefaultMaxObjectSize, 1)
			mustPut(t, s, "big", want)
			if got := mustGet(t, s, "big"); !bytes.Equal(got, want) {
				t.Fatalf("large object changed in a round trip")
			}
		}},
		{"returned slice holds little beyond its bytes", func(t *testing.T, open func(int64) store) {
			// Callers keep what Get returns (the memory tier holds it
			// and charges its length), so the backing array must not
			// be a doubling buffer's spare room. The slack allowed is
			// the allocator's rounding (size classes, then 8 KiB pages).
			s := open(0)
			for _, n := range []int{20 << 10, 66 << 10, 140 << 10} {
				mustPut(t, s, "k", randomBytes(n, uint64(n)))
				got := mustGet(t, s, "k")
				if len(got) != n || cap(got) > n+n/8 {
					t.Errorf("Get of %d bytes: len %d, cap %d (%.2fx); want cap <= len+len/8",
						n, len(got), cap(got), float64(cap(got))/float64(n))
				}
			}
		}},
		{"put over the cap is refused", func(t *testing.T, open func(int64) store) {
			s := open(100)
			mustPut(t, s, "at cap", make([]byte, 100))
			err := s.Put(testCtx(t), "over", make([]byte, 101))
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Put of cap+1 bytes: err = %v, want ErrTooLarge", err)
			}
			mustMiss(t, s, "over")
		}},
		{"get over the cap is refused", func(t *testing.T, open func(int64) store) {
			mustPut(t, open(0), "k", make([]byte, 101))
			data, ok, err := open(100).Get(testCtx(t), "k")
			if !errors.Is(err, ErrTooLarge) || ok || data != nil {
				t.Fatalf("Get of cap+1 bytes = %d bytes, ok %v, err %v; want ErrTooLarge", len(data), ok, err)
			}
		}},
		{"awkward keys", func(t *testing.T, open func(int64) store) {
			s := open(0)
			for i, key := range testKeys {
				mustPut(t, s, key, []byte(fmt.Sprint("value ", i)))
			}
			for i, key := range testKeys {
				if got, want := string(mustGet(t, s, key)), fmt.Sprint("value ", i); got != want {
					t.Errorf("Get(%.40q) = %q, want %q", key, got, want)
				}
			}
		}},
		{"handles share objects", func(t *testing.T, open func(int64) store) {
			a, b := open(0), open(0)
			mustPut(t, a, "k", []byte("from a"))
			if got := mustGet(t, b, "k"); string(got) != "from a" {
				t.Fatalf("b.Get = %q, want a's object", got)
			}
			if err := b.Delete(testCtx(t), "k"); err != nil {
				t.Fatalf("b.Delete: %v", err)
			}
			mustMiss(t, a, "k")
		}},
		{"cancelled context", func(t *testing.T, open func(int64) store) {
			s := open(0)
			mustPut(t, s, "k", []byte("v"))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, ok, err := s.Get(ctx, "k"); !errors.Is(err, context.Canceled) || ok {
				t.Errorf("Get: ok %v, err %v; want context.Canceled", ok, err)
			}
			if err := s.Put(ctx, "k", []byte("new")); !errors.Is(err, context.Canceled) {
				t.Errorf("Put: err %v; want context.Canceled", err)
			}
			if err := s.Delete(ctx, "k"); !errors.Is(err, context.Canceled) {
				t.Errorf("Delete: err %v; want context.Canceled", err)
			}
			if err := s.Ping(ctx); !errors.Is(err, context.Canceled) {
				t.Errorf("Ping: err %v; want context.Canceled", err)
			}
			if got := mustGet(t, s, "k"); string(got) != "v" {
				t.Errorf("calls with a cancelled context changed the object: %q", got)
			}
		}},
		{"ping", func(t *testing.T, open func(int64) store) {
			if err := open(0).Ping(testCtx(t)); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
		{"concurrent put and get see whole objects", func(t *testing.T, open func(int64) store) {
			concurrentPutGet(t, open(0), raceIters)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newBackend(t))
		})
	}
}

// readCapped keeps the capacity of what it returns close to its length
// whether the size it is told is right, missing or wrong.
func TestReadCappedCapacity(t *testing.T) {
	const n = 66 << 10
	want := randomBytes(n, 3)
	for _, hint := range []int64{n, 0, n / 2, 2 * n} {
		// A bare io.Reader: no WriterTo or size for the reader to use.
		r := struct{ io.Reader }{bytes.NewReader(want)}
		got, err := readCapped(r, DefaultMaxObjectSize, hint)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("hint %d: %d bytes, err %v; want the %d bytes", hint, len(got), err, n)
		}
		if cap(got) > n+n/8 {
			t.Errorf("hint %d: cap %d for %d bytes (%.2fx)", hint, cap(got), n, float64(cap(got))/n)
		}
	}
}

// concurrentPutGet has writers flip one key between two values of different
// lengths while readers check every read is one of them, whole.
func concurrentPutGet(t *testing.T, s store, iters int) {
	older := bytes.Repeat([]byte{'o'}, 48<<10)
	newer := bytes.Repeat([]byte{'n'}, 80<<10)
	const key = "contended"
	mustPut(t, s, key, older)
	ctx := testCtx(t)

	stop := make(chan struct{})
	var readers, writers sync.WaitGroup
	for range 4 {
		readers.Go(func() {
			for {
				data, ok, err := s.Get(ctx, key)
				switch {
				case err != nil:
					t.Errorf("Get: %v", err)
					return
				case !ok:
					t.Errorf("Get: a miss while the key always exists")
					return
				case !bytes.Equal(data, older) && !bytes.Equal(data, newer):
					t.Errorf("Get: %d bytes that are neither value (torn write)", len(data))
					return
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	for w := range 2 {
		writers.Go(func() {
			for i := range iters {
				v := older
				if (i+w)%2 == 0 {
					v = newer
				}
				if err := s.Put(ctx, key, v); err != nil {
					t.Errorf("Put: %v", err)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
}
