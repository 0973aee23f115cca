package cache

import (
	"strconv"
	"sync/atomic"
	"testing"
)

func costOfBytes(b []byte) int64 { return int64(len(b)) }

// BenchmarkMemoryGetHit measures the hot path: every request's first lookup.
// It must report 0 allocs/op.
func BenchmarkMemoryGetHit(b *testing.B) {
	m, err := NewMemory(MemoryConfig{MaxBytes: 64 << 20}, costOfBytes)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const n = 1024
	keys := make([]string, n)
	val := make([]byte, 4<<10)
	for i := range keys {
		keys[i] = "79001234567@c.us/" + strconv.Itoa(i)
		if !m.Set(keys[i], "79001234567@c.us", val, 0) {
			b.Fatal("Set dropped")
		}
	}
	m.Wait()
	for _, k := range keys {
		if _, ok := m.Get(k); !ok {
			b.Fatalf("%s not admitted", k)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := m.Get(keys[i&(n-1)]); !ok {
				b.Error("miss")
				return
			}
			i++
		}
	})
}

// BenchmarkMemorySet measures the fill path, which allocates the entry and
// clones key and tag.
func BenchmarkMemorySet(b *testing.B) {
	m, err := NewMemory(MemoryConfig{MaxBytes: 64 << 20}, costOfBytes)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	const n = 1 << 16
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "79001234567@c.us/" + strconv.Itoa(i)
	}
	val := make([]byte, 4<<10)
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			m.Set(keys[i&(n-1)], "79001234567@c.us", val, 0)
		}
	})
}
