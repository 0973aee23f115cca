package logging

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Lines collects whole log lines from many goroutines and writes them out
// from one, every FlushEvery. Each line is copied into one of several
// shards, chosen by the caller's hint, under that shard's own lock: with a
// hint that differs per connection, concurrent requests almost never meet on
// a lock, there is no channel operation (the queue this replaced was one
// lock every request shared) and no goroutine wake-up per line.
//
// With a Format, what a caller hands over is a record in the caller's own
// binary form, and the writing goroutine turns records into lines: a
// request then only copies a few raw fields, and the formatting (a log
// line's time, escaping and numbers, most of its cost) runs in batches off
// the request's path. It is the same CPU, spent later and in batches: the
// answer goes out sooner, which on cores shared with the clients also
// spares their scheduling (see the README's Performance section).
//
// Lines from one hint stay in order; lines from different hints may be
// written up to FlushEvery out of order (each carries its time). When a
// shard is full the line is dropped and counted: a slow sink never slows a
// request down.
type Lines struct {
	w       io.Writer
	format  Format
	chunk   int // most bytes per Write: see chunkFor
	shards  []lineShard
	limit   int // bytes a shard holds before it drops
	dropped atomic.Int64
	closed  atomic.Bool
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

type lineShard struct {
	mu  sync.Mutex
	buf []byte
	// Keep each shard's lock on its own cache line: shards exist to be
	// written from different cores at once.
	_ [64]byte
}

var newline = []byte{'\n'}

// FlushEvery is how often Lines writes out what it holds.
const FlushEvery = 10 * time.Millisecond

// pipeBuf is the most written at once to a pipe or an unknown sink:
// PIPE_BUF, below which a write to a pipe is atomic, so batched lines never
// interleave mid-line with the process's other log lines on the same stderr.
const pipeBuf = 4096

// fileChunk is the most written at once to a regular file, where every
// write is placed whole (the kernel serialises writes on one open file):
// sixteen times fewer system calls than pipeBuf at full speed.
const fileChunk = 64 << 10

// chunkFor is the write size for w: fileChunk for a regular file,
// pipeBuf for anything else (a pipe, a terminal, a socket, a Writer).
func chunkFor(w io.Writer) int {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
			return fileChunk
		}
	}
	return pipeBuf
}

// Format appends the line (or lines), each ending in '\n', that rec stands
// for to dst. It runs on Lines' writing goroutine only, so it may keep
// state between calls without a lock; it must not keep rec.
type Format func(dst, rec []byte) []byte

// NewLines starts the writing goroutine. buffer bounds the bytes held
// between flushes, split evenly over the shards. With a nil format, what
// WriteLine takes is written out as it is.
func NewLines(w io.Writer, buffer int, format Format) *Lines {
	n := 4 * runtime.GOMAXPROCS(0)
	l := &Lines{
		w:      w,
		format: format,
		chunk:  chunkFor(w),
		shards: make([]lineShard, n),
		limit:  max(buffer/n, pipeBuf),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go l.run()
	return l
}

// WriteLine copies line into the shard for hint; it does not keep line.
// line is one record for the Format, or, without one, one or more whole
// lines each ending in '\n'. After Close, or when the shard is full, the
// line is dropped and counted.
func (l *Lines) WriteLine(hint uint64, line []byte) {
	s := &l.shards[hint%uint64(len(l.shards))]
	s.mu.Lock()
	n := len(line)
	if l.format != nil {
		n += binary.MaxVarintLen64
	}
	if len(s.buf)+n > l.limit || l.closed.Load() {
		s.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	if l.format != nil {
		// Records are framed by their length: the shard is a run of them.
		s.buf = binary.AppendUvarint(s.buf, uint64(len(line)))
	}
	s.buf = append(s.buf, line...)
	s.mu.Unlock()
}

// Dropped is the number of lines dropped so far.
func (l *Lines) Dropped() int64 { return l.dropped.Load() }

// Write hands p, one or more whole lines, to the first shard, for a writer
// that formats its own lines: slog's handlers write one record per call.
// It never blocks and never fails; only a Lines without a Format takes it.
// Lines from every Write stay in order.
func (l *Lines) Write(p []byte) (int, error) {
	l.WriteLine(0, p)
	return len(p), nil
}

// Close writes out what is held and stops, waiting at most until ctx ends:
// a sink that blocks (a stalled pipe) must not hold the process's exit. It
// returns ctx's error when it gave up. Lines written after Close are
// dropped: close it after the server has stopped.
func (l *Lines) Close(ctx context.Context) error {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.quit)
	})
	select {
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *Lines) run() {
	defer close(l.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	// spare is swapped with each shard's buffer in turn, so a flush holds a
	// shard's lock only for the swap and allocates nothing once buffers have
	// grown; out is where records are formatted.
	var spare, out []byte
	for {
		select {
		case <-t.C:
			spare, out = l.flush(spare, out)
		case <-l.quit:
			l.flush(spare, out)
			return
		}
	}
}

func (l *Lines) flush(spare, out []byte) ([]byte, []byte) {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		if len(s.buf) == 0 {
			s.mu.Unlock()
			continue
		}
		s.buf, spare = spare[:0], s.buf
		s.mu.Unlock()
		if l.format == nil {
			l.write(spare)
		} else {
			out = l.formatOut(spare, out)
		}
	}
	return spare[:0], out[:0]
}

// formatOut formats the records in b into out and writes the lines out.
// out grows to the lines of the fullest shard and is kept for the next
// flush.
func (l *Lines) formatOut(b, out []byte) []byte {
	out = out[:0]
	for len(b) > 0 {
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			break // cannot happen: WriteLine framed every record
		}
		out = l.format(out, b[w:w+int(n)])
		b = b[w+int(n):]
	}
	l.write(out)
	return out
}

// write passes b on in chunks of at most l.chunk bytes that end on a line
// boundary (a single longer line goes alone).
func (l *Lines) write(b []byte) {
	for len(b) > 0 {
		n := len(b)
		if n > l.chunk {
			n = bytes.LastIndexByte(b[:l.chunk], '\n') + 1
			if n == 0 {
				n = bytes.IndexByte(b, '\n') + 1
				if n == 0 {
					n = len(b)
				}
			}
		}
		if w, err := l.w.Write(b[:n]); err != nil {
			// Lost to the sink (a full disk, a closed pipe): counted as
			// dropped, like lines the buffer could not hold.
			l.dropped.Add(int64(bytes.Count(b[min(w, n):n], newline)))
		}
		b = b[n:]
	}
}
