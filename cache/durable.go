package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// ErrDown is returned by Durable.Get, without calling the Store, while the
// durable tier is marked down after a failure. Callers treat it as a miss.
var ErrDown = errors.New("cache: durable tier is down")

// Store is the durable tier (local folder, S3). Package storage satisfies it.
//
// Implementations should honour ctx, but Durable does not rely on it: it
// bounds every call with a deadline and does not wait past it. A call still
// running at its deadline (a read stuck on a wedged volume) is abandoned
// and counted as a failure, so the tier goes down and later calls skip it.
// An abandoned call keeps its goroutine and arguments until it returns; a
// Put or Delete also keeps its key, so a later Delete of that key waits for
// it (or gives up with its own context) rather than overtaking it, and a
// later write of it waits at most WriteTimeout, then is dropped. Once
// DurableConfig.MaxAbandoned abandoned calls are still running, Durable
// makes no new call, answering as if the tier were down, until some return.
type Store interface {
	// Get returns the object stored under key. ok=false with a nil error is
	// a miss. The returned slice belongs to the caller.
	Get(ctx context.Context, key string) (data []byte, ok bool, err error)
	// Put stores data under key, replacing any previous object. It must not
	// modify or retain data after returning.
	Put(ctx context.Context, key string, data []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Defaults for the zero fields of DurableConfig.
const (
	DefaultQueueSize    = 1024
	DefaultWorkers      = 2
	DefaultReadTimeout  = time.Second
	DefaultWriteTimeout = 5 * time.Second
	DefaultMinBackoff   = time.Second
	DefaultMaxBackoff   = 30 * time.Second
	DefaultMaxAbandoned = 16
)

// DurableConfig configures a Durable. The zero value is usable; a zero or
// negative field takes the default given next to it (Validate reports the
// negative ones, for configuration loaders that want to reject them).
type DurableConfig struct {
	QueueSize    int              // pending writes; a write to a full queue is dropped. Default 1024.
	Workers      int              // goroutines writing to the Store. Default 2.
	ReadTimeout  time.Duration    // bound of each Store.Get. Default 1s.
	WriteTimeout time.Duration    // bound of each Store.Put and Store.Delete. Default 5s.
	MinBackoff   time.Duration    // first skip-while-down window after a failure. Default 1s.
	MaxBackoff   time.Duration    // the window doubles per failed probe up to this. Default 30s.
	MaxAbandoned int              // Store calls abandoned at their deadline that may still run; at this many no call is made. Default 16.
	Now          func() time.Time // clock for the backoff windows. Default time.Now.
}

// Validate reports negative sizes and durations and a MinBackoff above
// MaxBackoff, each wrapped in ErrConfig.
func (c DurableConfig) Validate() error {
	var errs []error
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"QueueSize", int64(c.QueueSize)},
		{"Workers", int64(c.Workers)},
		{"ReadTimeout", int64(c.ReadTimeout)},
		{"WriteTimeout", int64(c.WriteTimeout)},
		{"MinBackoff", int64(c.MinBackoff)},
		{"MaxBackoff", int64(c.MaxBackoff)},
		{"MaxAbandoned", int64(c.MaxAbandoned)},
	} {
		if f.v < 0 {
			errs = append(errs, fmt.Errorf("%w: durable %s is negative", ErrConfig, f.name))
		}
	}
	if c.MinBackoff > 0 && c.MaxBackoff > 0 && c.MinBackoff > c.MaxBackoff {
		errs = append(errs, fmt.Errorf("%w: durable MinBackoff %v is above MaxBackoff %v", ErrConfig, c.MinBackoff, c.MaxBackoff))
	}
	return errors.Join(errs...)
}

func (c DurableConfig) withDefaults() DurableConfig {
	if c.QueueSize <= 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.MaxAbandoned <= 0 {
		c.MaxAbandoned = DefaultMaxAbandoned
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// DurableStats is a snapshot of a Durable's counters.
type DurableStats struct {
	QueueLen  int    // writes waiting for a worker
	Written   uint64 // successful Store.Put calls
	Dropped   uint64 // writes never attempted: queue full, tier down, closed, or key held past WriteTimeout
	Errors    uint64 // failed Store calls (timeouts included, the caller's own cancellations not)
	Skipped   uint64 // Gets answered ErrDown without calling the Store
	Abandoned int    // Store calls given up at their deadline and still running
	Down      bool   // the tier is marked down, or MaxAbandoned calls are stuck
}

// Durable puts a write-behind queue and a circuit breaker in front of a Store
// so that the durable tier never slows down or fails a request.
//
// Writes are queued and applied by a few workers; a write for a key that is
// still queued replaces the queued data instead of taking a second slot.
// A Store error (not a miss, not a cancellation by the caller) marks the tier
// down for a window that starts at MinBackoff and doubles up to MaxBackoff;
// while down, Get answers ErrDown at once and writes are dropped. When the
// window has passed, one call is let through as a probe; its success clears
// the state, its failure opens a longer window. A call that was already at
// the Store when the state last changed does not change it again: a slow
// write that succeeds after the outage began has not seen the outage.
//
// Writes are dropped rather than kept while the tier is down because they are
// cache fills: the memory tier still holds the data and the next miss
// refills it, whereas a queue held through an outage would fill with stale
// work, make PutAsync drop fresh writes instead, and flood the Store the
// moment it comes back.
//
// A Durable built on a nil Store is a durable tier that does not exist: Get
// always misses, PutAsync drops silently and Delete does nothing.
//
// Store errors are logged without the key: keys name chats, which are
// personal data.
type Durable struct {
	store  Store
	cfg    DurableConfig
	log    *slog.Logger
	health health

	queue chan *job

	mu      sync.Mutex
	pending map[string]*job          // queued, not yet claimed by a worker
	busy    map[string]chan struct{} // keys with a Put or Delete at the Store; closed when done
	closed  bool

	base  context.Context // parent of every write; cancelled when Close gives up
	abort context.CancelFunc
	done  chan struct{} // closed when every worker has returned

	written, dropped, errs, skipped atomic.Uint64
}

// job is one queued write. Its fields are guarded by Durable.mu.
type job struct {
	key       string
	data      []byte
	cancelled bool // a Delete of the key came after it
}

// NewDurable returns a Durable writing to s (nil: no durable tier) and starts
// its workers; Close stops them. cfg fields that are zero or negative take
// their defaults. logger nil means slog.Default().
func NewDurable(s Store, cfg DurableConfig, logger *slog.Logger) *Durable {
	if logger == nil {
		logger = slog.Default()
	}
	cfg = cfg.withDefaults()
	d := &Durable{
		store:   s,
		cfg:     cfg,
		log:     logger,
		health:  health{now: cfg.Now, min: cfg.MinBackoff, max: cfg.MaxBackoff, maxAbandoned: cfg.MaxAbandoned},
		pending: make(map[string]*job),
		busy:    make(map[string]chan struct{}),
		done:    make(chan struct{}),
	}
	d.base, d.abort = context.WithCancel(context.Background())
	if s == nil {
		d.closed = true
		close(d.done)
		return d
	}
	d.queue = make(chan *job, cfg.QueueSize)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Go(d.work)
	}
	go func() {
		wg.Wait()
		close(d.done)
	}()
	return d
}

// Get reads key from the Store within ReadTimeout. ok=false with a nil error
// is a miss. While the tier is down it returns ErrDown at once; any error
// should be treated as a miss. The returned slice belongs to the caller.
func (d *Durable) Get(ctx context.Context, key string) ([]byte, bool, error) {
	if d.store == nil {
		return nil, false, nil
	}
	t, admitted := d.health.admit()
	if !admitted {
		d.skipped.Add(1)
		return nil, false, ErrDown
	}
	var (
		data []byte
		ok   bool
	)
	err := d.call(ctx, d.cfg.ReadTimeout, func(ctx context.Context) (err error) {
		data, ok, err = d.store.Get(ctx, key)
		return err
	}, nil)
	if err != nil {
		err = fmt.Errorf("cache: durable get: %w", err)
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the Store.
			d.health.release(t)
			return nil, false, err
		}
		d.failed("get", t, err)
		return nil, false, err
	}
	d.succeeded(t)
	if !ok {
		return nil, false, nil
	}
	return data, true, nil
}

// PutAsync queues data to be written under key and reports whether it was
// queued. It never blocks: it returns false, counting the write as dropped,
// when the queue is full, the tier is down or Close has been called (and
// without counting it when there is no Store). data is retained until
// written and must not be modified afterwards.
func (d *Durable) PutAsync(key string, data []byte) bool {
	if d.store == nil {
		return false
	}
	if d.health.skipping() {
		d.dropped.Add(1)
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		d.dropped.Add(1)
		return false
	}
	if j := d.pending[key]; j != nil {
		j.data = data
		return true
	}
	j := &job{key: key, data: data}
	select {
	case d.queue <- j:
		d.pending[key] = j
		return true
	default:
		d.dropped.Add(1)
		return false
	}
}

// Delete removes key from the Store within WriteTimeout and returns the
// Store's error. It first neutralises a queued write of key and waits for a
// write of key already at the Store, so that a purge or erasure is not undone
// by a write issued before it; a PutAsync made after Delete was called is a
// new write. Unlike Get it calls the Store even while the tier is down: an
// erasure is rare and must not be skipped silently; its outcome updates the
// down state like any other call. Only when MaxAbandoned calls are stuck at
// the Store does it give up at once, with ErrDown.
func (d *Durable) Delete(ctx context.Context, key string) error {
	if d.store == nil {
		return nil
	}
	release, err := d.acquire(ctx, key, nil)
	if err != nil {
		return fmt.Errorf("cache: durable delete: %w", err)
	}
	t, ok := d.health.force()
	if !ok {
		release()
		return fmt.Errorf("cache: durable delete: %w", ErrDown)
	}
	err = d.call(ctx, d.cfg.WriteTimeout, func(ctx context.Context) error {
		return d.store.Delete(ctx, key)
	}, release)
	if err != nil {
		err = fmt.Errorf("cache: durable delete: %w", err)
		if ctx.Err() == nil {
			d.failed("delete", t, err)
		}
		return err
	}
	d.succeeded(t)
	return nil
}

// Close stops accepting writes, lets the workers flush the queue until ctx
// ends, then cancels what is left (counted as dropped) and returns once the
// workers have stopped; a Store call that ignores the cancellation is
// abandoned, not waited for. Get and Delete keep working after Close.
func (d *Durable) Close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.queue)
	}
	d.mu.Unlock()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		d.abort()
		<-d.done
		return fmt.Errorf("cache: durable close: queued writes dropped: %w", ctx.Err())
	}
}

// Stats returns a snapshot of the counters.
func (d *Durable) Stats() DurableStats {
	d.mu.Lock()
	queued := len(d.pending)
	d.mu.Unlock()
	return DurableStats{
		QueueLen:  queued,
		Written:   d.written.Load(),
		Dropped:   d.dropped.Load(),
		Errors:    d.errs.Load(),
		Skipped:   d.skipped.Load(),
		Abandoned: d.health.abandonedCalls(),
		Down:      d.health.isDown(),
	}
}

func (d *Durable) work() {
	for j := range d.queue {
		d.write(j)
	}
}

func (d *Durable) write(j *job) {
	// The key may be held by a call abandoned on a wedged Store, which
	// returns late or never: waiting for it without a bound would take this
	// worker out of the pool for good.
	ctx, cancel := context.WithTimeout(d.base, d.cfg.WriteTimeout)
	release, err := d.acquire(ctx, j.key, j)
	cancel()
	if err != nil {
		if !errors.Is(err, errCancelled) {
			d.dropped.Add(1) // the key stayed busy, or Close gave up waiting
		}
		return
	}
	d.mu.Lock()
	data := j.data
	j.data = nil
	d.mu.Unlock()

	if d.base.Err() != nil {
		release()
		d.dropped.Add(1)
		return
	}
	t, admitted := d.health.admit()
	if !admitted {
		release()
		d.dropped.Add(1)
		return
	}
	err = d.call(d.base, d.cfg.WriteTimeout, func(ctx context.Context) error {
		return d.store.Put(ctx, j.key, data)
	}, release)
	if err != nil {
		if d.base.Err() != nil {
			d.health.release(t)
			d.dropped.Add(1)
			return
		}
		d.failed("put", t, fmt.Errorf("cache: durable put: %w", err))
		return
	}
	d.written.Add(1)
	d.succeeded(t)
}

// call runs fn with a deadline of timeout within parent and waits for it
// to return or for the deadline, whichever comes first. fn runs on a
// goroutine of its own so that a Store ignoring its context cannot hold the
// caller, or a worker, past the deadline: such a call is abandoned, counted
// in health until it returns, and answered with the context's error, which
// the caller handles like any error of the Store. A goroutine per call
// costs well under a microsecond, against a file read or a network round
// trip for the call itself. done, if not nil, runs once fn has returned: before call returns,
// or later on fn's goroutine when the call was abandoned. A parent that is
// already done costs no Store call.
func (d *Durable) call(parent context.Context, timeout time.Duration, fn func(context.Context) error, done func()) error {
	if done == nil {
		done = func() {}
	}
	if err := parent.Err(); err != nil {
		done()
		return err
	}
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	const (
		running int32 = iota
		returned
		abandoned
	)
	var state atomic.Int32
	result := make(chan error, 1)
	go func() {
		err := fn(ctx)
		if state.CompareAndSwap(running, returned) {
			result <- err
			return
		}
		d.health.abandonedReturned()
		done()
	}()
	select {
	case err := <-result:
		done()
		return err
	case <-ctx.Done():
	}
	// Counted before the call is marked abandoned, so that fn's goroutine,
	// which uncounts it, never runs ahead of the count.
	d.health.abandon()
	if state.CompareAndSwap(running, abandoned) {
		return fmt.Errorf("store call abandoned at its deadline: %w", ctx.Err())
	}
	d.health.abandonedReturned() // it returned as the deadline passed
	done()
	return <-result
}

// errCancelled tells a worker that a Delete neutralised its job.
var errCancelled = errors.New("write cancelled by a delete")

// acquire waits until no Put or Delete of key is at the Store, then claims
// the key; release gives it back. With j == nil (a Delete) it also cancels
// the queued write of key. With j != nil (a worker) it returns errCancelled
// if a Delete cancelled j meanwhile, and otherwise takes j off the pending
// map: from then on a PutAsync of key queues a new job. If ctx ends first,
// j is taken off the pending map all the same, so that a later PutAsync
// does not fold its data into a job no worker will run.
func (d *Durable) acquire(ctx context.Context, key string, j *job) (release func(), err error) {
	d.mu.Lock()
	for {
		if j != nil && j.cancelled {
			d.mu.Unlock()
			return nil, errCancelled
		}
		ch, busy := d.busy[key]
		if !busy {
			break
		}
		d.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			if j != nil {
				d.giveUp(j)
			}
			return nil, ctx.Err()
		}
		d.mu.Lock()
	}
	ch := make(chan struct{})
	d.busy[key] = ch
	if p := d.pending[key]; p != nil && (j == nil || p == j) {
		delete(d.pending, key)
		if j == nil {
			p.cancelled = true
			p.data = nil
		}
	}
	d.mu.Unlock()
	return func() {
		d.mu.Lock()
		delete(d.busy, key)
		d.mu.Unlock()
		close(ch)
	}, nil
}

// giveUp takes j, which no worker will run, off the pending map.
func (d *Durable) giveUp(j *job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending[j.key] == j {
		delete(d.pending, j.key)
	}
	j.data = nil
}

func (d *Durable) failed(op string, t ticket, err error) {
	d.errs.Add(1)
	switch opened, backoff := d.health.failure(t); {
	case opened && !t.probe:
		d.log.Warn("durable cache tier down, skipping it", "op", op, "retry_in", backoff, "err", err)
	case opened:
		d.log.Debug("durable cache tier still down", "op", op, "retry_in", backoff, "err", err)
	}
}

func (d *Durable) succeeded(t ticket) {
	if d.health.success(t) {
		d.log.Info("durable cache tier recovered")
	}
}

// health is the down/up state of the durable tier: a circuit breaker with
// one probe per window.
//
// Every change of state (up to down, down to up) starts a new generation,
// and each admitted call carries the generation it was admitted in. The
// outcome of a call from an earlier generation is ignored: a slow write
// admitted before an outage that finally succeeds says nothing about the
// Store now, and letting it clear the state while a probe is out would
// reset the backoff under that probe.
//
// Calls abandoned at their deadline are counted too: at maxAbandoned of
// them no call is admitted, whatever the state, so a Store that never
// returns cannot pile up goroutines one probe per window.
type health struct {
	now          func() time.Time
	min, max     time.Duration
	maxAbandoned int

	mu        sync.Mutex
	gen       uint64 // bumped on every change of state
	down      bool
	until     time.Time     // end of the current skip window
	backoff   time.Duration // length of the current window
	probing   bool          // a probe is at the Store
	abandoned int           // calls abandoned at their deadline, still running
}

// ticket is an admitted call: the generation it was admitted in, and
// whether it is the probe that ends a skip window. A ticket must be reported
// back with success, failure or release.
type ticket struct {
	gen   uint64
	probe bool
}

// admit says whether a call may go to the Store now.
func (h *health) admit() (t ticket, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.stuckLocked():
		return ticket{}, false
	case !h.down:
		return ticket{gen: h.gen}, true
	case h.probing || h.now().Before(h.until):
		return ticket{}, false
	default:
		h.probing = true
		return ticket{gen: h.gen, probe: true}, true
	}
}

// force admits a call (a Delete) even while down, without claiming the
// probe; only too many abandoned calls refuse it.
func (h *health) force() (t ticket, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return ticket{gen: h.gen}, !h.stuckLocked()
}

// skipping reports whether calls are being skipped right now (down and
// inside the window); unlike admit it never claims the probe.
func (h *health) skipping() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stuckLocked() || h.down && (h.probing || h.now().Before(h.until))
}

func (h *health) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down || h.stuckLocked()
}

// stuckLocked reports whether maxAbandoned calls are still at the Store,
// so no new one may go; h.mu is held.
func (h *health) stuckLocked() bool { return h.abandoned >= h.maxAbandoned }

// abandon counts a call given up at its deadline; abandonedReturned
// uncounts it when it returns at last.
func (h *health) abandon() {
	h.mu.Lock()
	h.abandoned++
	h.mu.Unlock()
}

func (h *health) abandonedReturned() {
	h.mu.Lock()
	h.abandoned--
	h.mu.Unlock()
}

func (h *health) abandonedCalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.abandoned
}

// success clears the down state; any answer from the Store to a call made
// in the current generation shows it works. It reports whether the tier was
// down.
func (h *health) success(t ticket) (recovered bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.gen != h.gen || !h.down {
		return false
	}
	h.gen++
	h.down, h.probing, h.backoff, h.until = false, false, 0, time.Time{}
	return true
}

// failure opens a skip window: MinBackoff for the first failure, twice the
// last window (at least MinBackoff, at most MaxBackoff) for a failed probe.
// A failure of a call from an earlier generation, or of a forced call while
// down, changes nothing. It reports whether this failure took the tier down
// or extended the window, and the window.
func (h *health) failure(t ticket) (opened bool, backoff time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case t.gen != h.gen:
		return false, h.backoff
	case t.probe:
		h.probing = false
		h.backoff = min(max(2*h.backoff, h.min), h.max)
	case !h.down:
		h.gen++
		h.backoff = h.min
	default:
		return false, h.backoff
	}
	h.down = true
	h.until = h.now().Add(h.backoff)
	return true, h.backoff
}

// release returns an unused probe: the call ended without telling whether
// the Store works (the caller cancelled it).
func (h *health) release(t ticket) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.probe && t.gen == h.gen {
		h.probing = false
	}
}
