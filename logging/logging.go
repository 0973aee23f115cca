// Package logging builds the process's slog loggers: JSON by default, text
// for a terminal, and an access log whose writes never block a request (a
// bounded queue drained by one goroutine; lines are dropped and counted when
// the sink cannot keep up). It knows nothing of HTTP or avatars.
package logging

import (
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// New returns a logger writing format ("json" or "text") at level to w.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// AsyncWriter queues whole writes (slog handlers write one line per call)
// for a single goroutine to pass on to the underlying writer.
type AsyncWriter struct {
	w       io.Writer
	lines   chan []byte
	pool    sync.Pool
	dropped atomic.Int64
	done    chan struct{}
	quit    chan struct{}
	once    sync.Once
}

// NewAsyncWriter starts the draining goroutine; queue bounds pending lines.
func NewAsyncWriter(w io.Writer, queue int) *AsyncWriter {
	a := &AsyncWriter{w: w, lines: make(chan []byte, queue), done: make(chan struct{}), quit: make(chan struct{})}
	a.pool.New = func() any { b := make([]byte, 0, 512); return &b }
	go a.drain()
	return a
}

// Write copies p and queues it; when the queue is full the line is dropped
// (counted), so a slow log sink never slows requests down.
func (a *AsyncWriter) Write(p []byte) (int, error) {
	bp := a.pool.Get().(*[]byte)
	b := append((*bp)[:0], p...)
	select {
	case a.lines <- b:
	default:
		a.dropped.Add(1)
		*bp = b
		a.pool.Put(bp)
	}
	return len(p), nil
}

// pipeBuf is the most the drain writes at once: PIPE_BUF, below which a
// write to a pipe is atomic, so batched lines never interleave mid-line with
// the process's other log lines on the same stderr.
const pipeBuf = 4096

// flushEvery is how often the drain wakes. Waking per line cost a goroutine
// wake-up and a write syscall per request (a quarter of the memory-hit
// throughput under wrk); a sender to a buffered channel nobody waits on
// wakes no one, so requests only pay for a copy and a channel send.
const flushEvery = 10 * time.Millisecond

// drain writes queued lines every flushEvery, as many whole lines per write
// as fit in pipeBuf.
func (a *AsyncWriter) drain() {
	defer close(a.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	batch := make([]byte, 0, pipeBuf)
	for open := true; open; {
		select {
		case <-t.C:
		case <-a.quit:
		}
	lines:
		for {
			select {
			case b, ok := <-a.lines:
				if !ok {
					open = false
					break lines
				}
				if len(batch)+len(b) > pipeBuf && len(batch) > 0 {
					_, _ = a.w.Write(batch)
					batch = batch[:0]
				}
				batch = append(batch, b...)
				a.recycle(b)
			default:
				break lines
			}
		}
		if len(batch) > 0 {
			_, _ = a.w.Write(batch)
			batch = batch[:0]
		}
	}
}

func (a *AsyncWriter) recycle(b []byte) {
	b = b[:0]
	a.pool.Put(&b)
}

// Dropped is the number of lines dropped because the queue was full.
func (a *AsyncWriter) Dropped() int64 { return a.dropped.Load() }

// Close writes what is queued and stops. Writes after Close panic, as on a
// closed channel: close it after the server has stopped.
func (a *AsyncWriter) Close() {
	a.once.Do(func() {
		close(a.lines)
		close(a.quit)
	})
	<-a.done
}
