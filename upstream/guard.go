package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// GuardConfig tunes a Guard. The zero value is usable: every field has a
// default, applied to zero or negative values.
type GuardConfig struct {
	// RPS is the token-bucket rate, calls per second. Default 5 (Green API
	// allows 10 per second per instance; half leaves room for other users of
	// the instance).
	RPS float64
	// Burst is the bucket size. Default max(1, ceil(RPS)).
	Burst int
	// Concurrency is the most calls in flight. Default 4.
	Concurrency int
	// FailureRun is how many consecutive Transient failures open the
	// breaker. Default 5.
	FailureRun int
	// MinCooldown is the first open period. Default 5 s; it doubles on each
	// failed probe.
	MinCooldown time.Duration
	// MaxCooldown caps the open period. Default 5 min; never below
	// MinCooldown. A Retry-After may still ask for longer.
	MaxCooldown time.Duration
	// Now is the clock of the breaker and the token bucket; nil means
	// time.Now. Background waits sleep on real timers for the delay this
	// clock's bucket computes.
	Now func() time.Time
}

func (c GuardConfig) withDefaults() GuardConfig {
	if c.RPS <= 0 || math.IsNaN(c.RPS) || math.IsInf(c.RPS, 0) {
		c.RPS = 5
	}
	if c.Burst <= 0 {
		c.Burst = max(1, int(math.Min(math.Ceil(c.RPS), math.MaxInt32)))
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.FailureRun <= 0 {
		c.FailureRun = 5
	}
	if c.MinCooldown <= 0 {
		c.MinCooldown = 5 * time.Second
	}
	if c.MaxCooldown <= 0 {
		c.MaxCooldown = 5 * time.Minute
	}
	c.MaxCooldown = max(c.MaxCooldown, c.MinCooldown)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// guardError is a guard's refusal: it matches ErrUnavailable, so callers
// treat it like any gateway trouble (placeholder, nothing stored).
type guardError struct{ msg string }

func (e *guardError) Error() string        { return e.msg }
func (e *guardError) Is(target error) bool { return target == ErrUnavailable }

var (
	// ErrBreakerOpen is returned without calling the gateway while its
	// breaker is open, or half-open with its one probe already under way.
	ErrBreakerOpen error = &guardError{"gateway breaker open"}
	// ErrBusy is returned without calling the gateway when a foreground
	// request finds no token or slot free right now (or refreshes queued),
	// or when a background request's context ends while it waits.
	ErrBusy error = &guardError{"gateway busy"}
)

// GuardState is a snapshot for metrics and readiness.
type GuardState struct {
	Open      bool      // open or half-open: only a probe may pass
	Tokens    float64   // tokens in the bucket now; negative while waiters hold reservations
	InFlight  int       // calls to the gateway under way
	Waiting   int       // background requests queued for a slot or a token
	OpenUntil time.Time // when a probe may pass; zero while closed
}

// Guard protects one gateway instance: a token bucket and a concurrency cap
// keep us inside its rate limit, and a circuit breaker stops calls while the
// gateway is down, rate limiting us, or unusable (account or config).
//
// Foreground requests (a browser waits on a cold miss) never queue: no free
// slot, no token, an open breaker, or any queued background request, and
// they fail at once with ErrBusy or ErrBreakerOpen, so the proxy answers a
// placeholder now. Background requests (refreshes of avatars still served
// stale) wait for a slot, then a token, until their context ends. When the
// budget is short refreshes therefore go first: a queued refresh holds a
// reservation on the bucket that no foreground call can take, and while any
// refresh is queued no foreground call takes a slot or a token at all. The
// cost is that a steady refresh load can starve cold misses; they degrade to
// placeholders, never to waiting.
//
// The breaker is a small state machine rather than sony/gobreaker, whose
// open period is a fixed Timeout: here the period starts at MinCooldown,
// doubles on every failed probe up to MaxCooldown, and stretches to a 429's
// Retry-After. Account, Config and RateLimited failures open it at once;
// FailureRun consecutive Transient ones open it; any answer with a State
// counts as success. After the period exactly one call passes as a probe;
// its success closes the breaker and resets the period. A probe or call
// whose own context ended says nothing about the gateway and counts neither
// way.
//
// Safe for concurrent use.
type Guard struct {
	name  string
	next  Resolver
	cfg   GuardConfig
	log   *slog.Logger
	lim   *rate.Limiter
	slots chan struct{}

	mu        sync.Mutex
	waiting   int
	inFlight  int
	open      bool
	openUntil time.Time
	probing   bool // the half-open probe is under way
	cooldown  time.Duration
	run       int // consecutive Transient failures while closed
}

var _ Resolver = (*Guard)(nil)

// NewGuard wraps next, the gateway instance called name in logs. A nil
// logger means slog.Default().
func NewGuard(name string, next Resolver, cfg GuardConfig, logger *slog.Logger) *Guard {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	return &Guard{
		name:     name,
		next:     next,
		cfg:      cfg,
		log:      logger,
		lim:      rate.NewLimiter(rate.Limit(cfg.RPS), cfg.Burst),
		slots:    make(chan struct{}, cfg.Concurrency),
		cooldown: cfg.MinCooldown,
	}
}

// Resolve passes req to the gateway if the guard admits it, and learns from
// the outcome. Refusals wrap ErrBusy or ErrBreakerOpen (both match
// ErrUnavailable); gateway answers and errors are returned unchanged.
func (g *Guard) Resolve(ctx context.Context, req Request) (Result, error) {
	var probe bool
	var err error
	if req.Background {
		probe, err = g.admitBackground(ctx)
	} else {
		probe, err = g.admitForeground()
	}
	if err != nil {
		return Result{}, err
	}
	res, err := g.next.Resolve(ctx, req)
	g.finish(ctx, probe, err)
	return res, err
}

// State reports the guard's current state.
func (g *Guard) State() GuardState {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := GuardState{
		Open:     g.open,
		Tokens:   g.lim.TokensAt(g.cfg.Now()),
		InFlight: g.inFlight,
		Waiting:  g.waiting,
	}
	if g.open {
		s.OpenUntil = g.openUntil
	}
	return s
}

func (g *Guard) busy(why string) error {
	return fmt.Errorf("%s: %w: %s", g.name, ErrBusy, why)
}

// breakerGate reports whether the breaker lets a call through now, and
// whether that call would be the half-open probe. g.mu must be held.
func (g *Guard) breakerGate(now time.Time) (probe bool, err error) {
	switch {
	case !g.open:
		return false, nil
	case now.Before(g.openUntil), g.probing:
		return false, fmt.Errorf("%s: %w", g.name, ErrBreakerOpen)
	}
	return true, nil
}

func (g *Guard) admitForeground() (probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	if probe, err = g.breakerGate(now); err != nil {
		return false, err
	}
	if g.waiting > 0 {
		return false, g.busy("refreshes queued")
	}
	select {
	case g.slots <- struct{}{}:
	default:
		return false, g.busy("no free slot")
	}
	if !g.lim.AllowN(now, 1) {
		<-g.slots
		return false, g.busy("rate budget spent")
	}
	g.admitLocked(probe)
	return probe, nil
}

func (g *Guard) admitBackground(ctx context.Context) (probe bool, err error) {
	g.mu.Lock()
	if _, err := g.breakerGate(g.cfg.Now()); err != nil {
		g.mu.Unlock()
		return false, err
	}
	g.waiting++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		g.waiting--
		g.mu.Unlock()
	}

	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		leave()
		return false, fmt.Errorf("%w (%w)", g.busy("no free slot"), ctx.Err())
	}
	now := g.cfg.Now()
	r := g.lim.ReserveN(now, 1) // always OK: Burst >= 1
	if d := r.DelayFrom(now); d > 0 {
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
			// Waiting cannot end in a call: give the token back now. A
			// context is done at its deadline, so a token due just then is
			// out of reach too.
			r.CancelAt(now)
			<-g.slots
			leave()
			return false, g.busy("rate budget spent before the deadline")
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			r.CancelAt(g.cfg.Now())
			<-g.slots
			leave()
			return false, fmt.Errorf("%w (%w)", g.busy("rate budget spent"), ctx.Err())
		}
	}

	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting--
	// The breaker may have opened while we waited; the token is spent either way.
	if probe, err = g.breakerGate(g.cfg.Now()); err != nil {
		<-g.slots
		return false, err
	}
	g.admitLocked(probe)
	return probe, nil
}

// admitLocked records an admitted call. g.mu must be held and a slot taken.
func (g *Guard) admitLocked(probe bool) {
	g.inFlight++
	if probe {
		g.probing = true
		g.log.Info("gateway breaker half-open: probing", "gateway", g.name)
	}
}

// finish releases the call's slot and feeds its outcome to the breaker.
func (g *Guard) finish(ctx context.Context, probe bool, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.inFlight--
	<-g.slots
	now := g.cfg.Now()

	if err == nil {
		switch {
		case probe:
			g.open, g.probing, g.run = false, false, 0
			g.cooldown = g.cfg.MinCooldown
			g.log.Info("gateway breaker closed", "gateway", g.name)
		case !g.open:
			g.run = 0
		}
		return
	}
	if ctx.Err() != nil {
		// Our caller gave up: no verdict on the gateway. A probe hands its
		// turn to the next call.
		if probe {
			g.probing = false
		}
		return
	}

	failure, status, retry, reason := Transient, 0, time.Duration(0), ""
	var ge *Error
	if errors.As(err, &ge) {
		failure, status, retry, reason = ge.Failure, ge.Status, ge.RetryAfter, ge.Reason
	}
	attrs := []any{"gateway", g.name, "failure", failure.String(), "status", status, "reason", reason}

	switch {
	case probe:
		g.probing = false
		g.cooldown = min(g.cooldown*2, g.cfg.MaxCooldown)
		g.openUntil = now.Add(max(g.cooldown, retry))
		g.log.Warn("gateway breaker re-opened: probe failed",
			append(attrs, "for", g.openUntil.Sub(now))...)
	case g.open:
		// A call admitted before the breaker opened; it is open already.
	case failure == Transient:
		g.run++
		if g.run >= g.cfg.FailureRun {
			g.trip(now, retry, append(attrs, "run", g.run))
		}
	default:
		g.trip(now, retry, attrs)
	}
}

// trip opens a closed breaker. g.mu must be held.
func (g *Guard) trip(now time.Time, retry time.Duration, attrs []any) {
	g.open, g.run = true, 0
	g.openUntil = now.Add(max(g.cooldown, retry))
	g.log.Warn("gateway breaker opened", append(attrs, "for", g.openUntil.Sub(now))...)
}
