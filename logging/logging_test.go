package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

type blockingWriter struct {
	mu      sync.Mutex
	release chan struct{}
	buf     bytes.Buffer
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func TestAsyncWriterNeverBlocks(t *testing.T) {
	sink := &blockingWriter{release: make(chan struct{})}
	a := NewAsyncWriter(sink, 4)
	log := New(a, "json", slog.LevelInfo)
	// The sink is stuck: every call must still return, the excess dropped.
	for i := range 100 {
		log.Info("line", "i", i)
	}
	if a.Dropped() < 90 {
		t.Errorf("dropped %d of 100 with a queue of 4 and a stuck sink", a.Dropped())
	}
	close(sink.release)
	a.Close()
	lines := strings.Count(sink.buf.String(), "\n")
	if lines == 0 || int64(lines)+a.Dropped() != 100 {
		t.Errorf("written %d + dropped %d != 100", lines, a.Dropped())
	}
}

func TestAsyncWriterKeepsLinesWhole(t *testing.T) {
	var out bytes.Buffer
	a := NewAsyncWriter(&out, 1024)
	log := New(a, "json", slog.LevelInfo)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				log.Info("request", "g", g, "i", i, "path", "/avatar/*******4567@c.us")
			}
		}()
	}
	wg.Wait()
	a.Close()
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, "{") || !strings.HasSuffix(l, "}") {
			t.Fatalf("torn line %q", l)
		}
	}
	if n := strings.Count(out.String(), "\n"); n != 400 {
		t.Errorf("%d lines, want 400", n)
	}
}

func TestTextFormat(t *testing.T) {
	var out bytes.Buffer
	New(&out, "text", slog.LevelWarn).Info("hidden")
	New(&out, "text", slog.LevelWarn).Warn("shown", "k", "v")
	if s := out.String(); strings.Contains(s, "hidden") || !strings.Contains(s, "level=WARN msg=shown k=v") {
		t.Errorf("got %q", s)
	}
}
