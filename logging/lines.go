package logging

import (
	"bytes"
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
// Lines from one hint stay in order; lines from different hints may be
// written up to FlushEvery out of order (each carries its time). When a
// shard is full the line is dropped and counted: a slow sink never slows a
// request down.
type Lines struct {
	w       io.Writer
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

// NewLines starts the writing goroutine. buffer bounds the bytes held
// between flushes, split evenly over the shards.
func NewLines(w io.Writer, buffer int) *Lines {
	n := 4 * runtime.GOMAXPROCS(0)
	l := &Lines{
		w:      w,
		chunk:  chunkFor(w),
		shards: make([]lineShard, n),
		limit:  max(buffer/n, pipeBuf),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go l.run()
	return l
}

// WriteLine copies line, one or more whole lines each ending in '\n', into
// the shard for hint; it does not keep line. After Close, or when the shard
// is full, the line is dropped and counted.
func (l *Lines) WriteLine(hint uint64, line []byte) {
	s := &l.shards[hint%uint64(len(l.shards))]
	s.mu.Lock()
	if len(s.buf)+len(line) > l.limit || l.closed.Load() {
		s.mu.Unlock()
		l.dropped.Add(1)
		return
	}
	s.buf = append(s.buf, line...)
	s.mu.Unlock()
}

// Dropped is the number of lines dropped so far.
func (l *Lines) Dropped() int64 { return l.dropped.Load() }

// Close writes out what is held and stops. Lines written after Close are
// dropped: close it after the server has stopped.
func (l *Lines) Close() {
	l.once.Do(func() {
		l.closed.Store(true)
		close(l.quit)
	})
	<-l.done
}

func (l *Lines) run() {
	defer close(l.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	// spare is swapped with each shard's buffer in turn, so a flush holds a
	// shard's lock only for the swap and allocates nothing once buffers have
	// grown.
	var spare []byte
	for {
		select {
		case <-t.C:
			spare = l.flush(spare)
		case <-l.quit:
			l.flush(spare)
			return
		}
	}
}

func (l *Lines) flush(spare []byte) []byte {
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		if len(s.buf) == 0 {
			s.mu.Unlock()
			continue
		}
		s.buf, spare = spare[:0], s.buf
		s.mu.Unlock()
		l.write(spare)
	}
	return spare[:0]
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
		_, _ = l.w.Write(b[:n])
		b = b[n:]
	}
}
