package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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

// Close gives up when its context ends: a sink stuck for good (a pipe
// nobody reads) must not hold the process's exit.
func TestLinesCloseGivesUp(t *testing.T) {
	sink := &blockingWriter{release: make(chan struct{})}
	defer close(sink.release)
	l := NewLines(sink, 1<<20, nil)
	l.WriteLine(0, []byte("stuck\n")) // its flush blocks in the sink for good
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := l.Close(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a stuck sink = %v, want the context's error", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, errors.New("no space left on device") }

// Lines the sink refuses are counted as dropped, like lines the buffer
// could not hold.
func TestLinesCountWriteErrors(t *testing.T) {
	l := NewLines(failingWriter{}, 1<<20, nil)
	for i := range 50 {
		l.WriteLine(uint64(i), []byte("a line\n"))
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := l.Dropped(); n != 50 {
		t.Errorf("dropped = %d, want the 50 lines the sink refused", n)
	}
}

// slog's handlers write through Lines as an io.Writer, one record per
// call, in order and without ever blocking the logging goroutine.
func TestLinesAsSlogWriter(t *testing.T) {
	var out syncBuf
	l := NewLines(&out, 1<<20, nil)
	log := New(l, "json", slog.LevelInfo)
	for i := range 100 {
		log.Info("step", "i", i)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 100 {
		t.Fatalf("%d lines, want 100", len(lines))
	}
	for i, line := range lines {
		if !strings.Contains(line, `"msg":"step","i":`+strconv.Itoa(i)+`}`) {
			t.Fatalf("line %d out of order or malformed: %s", i, line)
		}
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestLinesNeverBlock(t *testing.T) {
	sink := &blockingWriter{release: make(chan struct{})}
	l := NewLines(sink, 1, nil) // the floor: one pipeBuf per shard
	line := []byte(strings.Repeat("x", 99) + "\n")
	// The sink is stuck: every call must still return, the excess dropped.
	const total = 10000
	for i := range total {
		l.WriteLine(uint64(i), line)
	}
	if l.Dropped() == 0 {
		t.Error("nothing dropped with a stuck sink and a full buffer")
	}
	close(sink.release)
	l.Close(context.Background())
	lines := strings.Count(sink.buf.String(), "\n")
	if lines == 0 || int64(lines)+l.Dropped() != total {
		t.Errorf("written %d + dropped %d != %d", lines, l.Dropped(), total)
	}
}

// chunkWriter records each Write separately.
type chunkWriter struct {
	mu     sync.Mutex
	chunks [][]byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chunks = append(c.chunks, bytes.Clone(p))
	return len(p), nil
}

func TestLinesWholeAndInOrder(t *testing.T) {
	var out chunkWriter
	l := NewLines(&out, 1<<20, nil)
	enc := Encoder{}
	const goroutines, each = 8, 500
	writeFrom(l, goroutines, each, func(g, i int) []byte {
		b := enc.Begin(nil, time.Unix(0, 0), slog.LevelInfo, "request")
		b = enc.Int(b, NewKey("g"), int64(g))
		b = enc.Int(b, NewKey("i"), int64(i))
		b = enc.String(b, NewKey("path"), "/avatar/*******4567@c.us.jpg")
		return enc.End(b)
	})
	l.Close(context.Background())
	next := make(map[int]int)
	n := 0
	for _, c := range out.chunks {
		if len(c) > pipeBuf || c[len(c)-1] != '\n' {
			t.Fatalf("a write of %d bytes not ending a line: a reader could see it torn", len(c))
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(c), "\n"), "\n") {
			var rec struct{ G, I int }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("torn line %q: %v", line, err)
			}
			if rec.I != next[rec.G] {
				t.Fatalf("goroutine %d: line %d after %d", rec.G, rec.I, next[rec.G]-1)
			}
			next[rec.G]++
			n++
		}
	}
	if n != goroutines*each || l.Dropped() != 0 {
		t.Errorf("%d lines, %d dropped; want %d, 0", n, l.Dropped(), goroutines*each)
	}
}

func TestLinesLongLineAlone(t *testing.T) {
	var out chunkWriter
	l := NewLines(&out, 1<<20, nil)
	long := append(bytes.Repeat([]byte("y"), 3*pipeBuf), '\n')
	l.WriteLine(0, []byte("a\n"))
	l.WriteLine(0, long)
	l.WriteLine(0, []byte("b\n"))
	l.Close(context.Background())
	var all []byte
	for _, c := range out.chunks {
		if c[len(c)-1] != '\n' {
			t.Fatalf("chunk of %d bytes ends mid-line", len(c))
		}
		all = append(all, c...)
	}
	if want := "a\n" + string(long) + "b\n"; string(all) != want {
		t.Errorf("got %d bytes, want %d in order", len(all), len(want))
	}
}

func TestLinesDropAfterClose(t *testing.T) {
	var out chunkWriter
	l := NewLines(&out, 1<<20, nil)
	l.WriteLine(1, []byte("kept\n"))
	l.Close(context.Background())
	l.WriteLine(1, []byte("late\n"))
	l.Close(context.Background()) // idempotent
	if len(out.chunks) != 1 || string(out.chunks[0]) != "kept\n" || l.Dropped() != 1 {
		t.Errorf("chunks %q, dropped %d", out.chunks, l.Dropped())
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

func TestChunkForSink(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "access-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, c := range []struct {
		name string
		w    io.Writer
		want int
	}{
		{"regular file", f, fileChunk},
		{"pipe", w, pipeBuf},
		{"writer", &chunkWriter{}, pipeBuf},
		{"closed file", closedFile(t), pipeBuf},
	} {
		if got := chunkFor(c.w); got != c.want {
			t.Errorf("%s: chunk %d, want %d", c.name, got, c.want)
		}
	}
}

func closedFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "closed-*")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return f
}

// writeFrom writes line(h, 0..each-1) with hint h from one goroutine per
// hint, all at once, and returns when all are written.
func writeFrom(l *Lines, hints, each int, line func(h, i int) []byte) {
	var wg sync.WaitGroup
	for h := range hints {
		wg.Go(func() {
			for i := range each {
				l.WriteLine(uint64(h), line(h, i))
			}
		})
	}
	wg.Wait()
}

// A file sink takes big writes; every line must still arrive whole, in
// order per hint.
func TestLinesToFile(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "access-*.log")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLines(f, 8<<20, nil)
	const hints, each = 16, 2000
	writeFrom(l, hints, each, func(h, i int) []byte {
		return fmt.Appendf(nil, "%d %d %s\n", h, i, strings.Repeat("z", h*7))
	})
	l.Close(context.Background())
	f.Close()
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	next := make([]int, hints)
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		f := strings.Split(line, " ")
		h, herr := strconv.Atoi(f[0])
		if len(f) != 3 || herr != nil || h < 0 || h >= hints {
			t.Fatalf("torn line %q", line)
		}
		i, _ := strconv.Atoi(f[1])
		if i != next[h] || len(f[2]) != h*7 {
			t.Fatalf("line %q out of order or cut (want %d)", line, next[h])
		}
		next[h]++
	}
	for h, n := range next {
		if n != each {
			t.Errorf("hint %d: %d lines, want %d (dropped %d)", h, n, each, l.Dropped())
		}
	}
}

// With a Format, records go in and the Format's lines come out: in order
// per hint, whole, in chunks of at most one pipe buffer unless a single line
// is longer.
func TestLinesFormatted(t *testing.T) {
	var out chunkWriter
	format := func(dst, rec []byte) []byte {
		f := strings.Fields(string(rec)) // "hint index width"
		w, _ := strconv.Atoi(f[2])
		return fmt.Appendf(dst, "%s %s %s\n", f[0], f[1], strings.Repeat("z", w))
	}
	l := NewLines(&out, 8<<20, format)
	const hints, each = 8, 1000
	writeFrom(l, hints, each, func(h, i int) []byte {
		w := 1 + (h*31+i*7)%300
		if i%250 == 7 {
			w = 3 * pipeBuf // a line longer than a chunk
		}
		return fmt.Appendf(nil, "%d %d %d", h, i, w)
	})
	l.Close(context.Background())
	next := make([]int, hints)
	for _, c := range out.chunks {
		lines := strings.SplitAfter(string(c), "\n")
		if lines[len(lines)-1] != "" {
			t.Fatalf("chunk of %d bytes ends mid-line", len(c))
		}
		lines = lines[:len(lines)-1]
		if len(c) > pipeBuf && len(lines) > 1 {
			t.Fatalf("chunk of %d bytes holds %d lines", len(c), len(lines))
		}
		for _, line := range lines {
			var h, i int
			var z string
			if _, err := fmt.Sscanf(line, "%d %d %s\n", &h, &i, &z); err != nil || h < 0 || h >= hints {
				t.Fatalf("torn line %q", line)
			}
			if i != next[h] {
				t.Fatalf("hint %d: line %d, want %d", h, i, next[h])
			}
			next[h]++
		}
	}
	for h, n := range next {
		if n != each {
			t.Errorf("hint %d: %d lines, want %d (dropped %d)", h, n, each, l.Dropped())
		}
	}
}

// A full shard drops records whole: the framing of what it keeps survives.
func TestLinesFormattedDrops(t *testing.T) {
	sink := &blockingWriter{release: make(chan struct{})}
	l := NewLines(sink, 1, func(dst, rec []byte) []byte { return append(append(dst, rec...), '\n') })
	const total = 10000
	for i := range total {
		l.WriteLine(uint64(i), []byte(strconv.Itoa(i)+strings.Repeat("r", i%200)))
	}
	close(sink.release)
	l.Close(context.Background())
	got := strings.Split(strings.TrimSuffix(sink.buf.String(), "\n"), "\n")
	for _, line := range got {
		i, err := strconv.Atoi(strings.TrimRight(line, "r"))
		if err != nil || len(line)-len(strconv.Itoa(i)) != i%200 {
			t.Fatalf("line %q was not written as its record", line)
		}
	}
	if l.Dropped() == 0 || int64(len(got))+l.Dropped() != total {
		t.Errorf("written %d + dropped %d != %d", len(got), l.Dropped(), total)
	}
}

// A shard holds limit bytes and no more, a record's frame counted at its
// longest (MaxVarintLen64): 64-byte lines fill 256 bytes exactly, and
// 50-byte records take 51 bytes each but reserve 60.
func TestLinesShardLimit(t *testing.T) {
	for _, c := range []struct {
		name   string
		format Format
		line   int
		kept   int
	}{
		{"lines", nil, 64, 4},
		{"records", func(dst, rec []byte) []byte { return append(dst, rec...) }, 50, 4},
	} {
		// No writing goroutine: nothing empties the shard meanwhile.
		l := &Lines{format: c.format, shards: make([]lineShard, 1), limit: 256}
		line := bytes.Repeat([]byte{'x'}, c.line)
		for range c.kept + 1 {
			l.WriteLine(0, line)
		}
		if l.Dropped() != 1 {
			t.Errorf("%s: %d dropped of %d, want 1 (%d bytes held)", c.name, l.Dropped(), c.kept+1, len(l.shards[0].buf))
		}
	}
}

// buffer bounds what all shards hold together, however many there are
// (four per P).
func TestLinesBufferSplit(t *testing.T) {
	for _, procs := range []int{1, 8} {
		prev := runtime.GOMAXPROCS(procs)
		l := NewLines(io.Discard, 1<<20, nil)
		runtime.GOMAXPROCS(prev)
		l.Close(context.Background())
		if n := len(l.shards); n != 4*procs || n*l.limit > 1<<20 || n*l.limit < 1<<20-n {
			t.Errorf("GOMAXPROCS %d: %d shards of %d bytes for a 1 MiB buffer", procs, n, l.limit)
		}
	}
}

// formatOut stops at a record its framing does not hold whole (which
// WriteLine never leaves), after writing the ones before it.
func TestFormatOutStopsAtBadFrame(t *testing.T) {
	var out bytes.Buffer
	l := &Lines{w: &out, chunk: pipeBuf, format: func(dst, rec []byte) []byte { return append(append(dst, rec...), '\n') }}
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"length past the end", []byte{2, 'o', 'k', 3, 'x'}},
		{"length cut short", []byte{2, 'o', 'k', 0x80}},
	} {
		out.Reset()
		l.formatOut(c.b, nil)
		if out.String() != "ok\n" {
			t.Errorf("%s: wrote %q, want %q", c.name, out.String(), "ok\n")
		}
	}
}
