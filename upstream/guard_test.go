package upstream

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// gdBackend is the guarded gateway: a ResolverFunc with a Recorder and a
// swappable outcome (nil: an OK result).
type gdBackend struct {
	Rec     fake.Recorder
	mu      sync.Mutex
	outcome func(ctx context.Context, req Request) (Result, error)
}

func (b *gdBackend) set(o func(ctx context.Context, req Request) (Result, error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.outcome = o
}

// fail makes every call fail with a scripted *Error.
func (b *gdBackend) fail(f Failure, retry time.Duration) {
	b.set(func(context.Context, Request) (Result, error) {
		return Result{}, &Error{Gateway: "green", Failure: f, Status: 400, RetryAfter: retry, Reason: "instance account not authorized"}
	})
}

func (b *gdBackend) succeed(s State) {
	b.set(func(context.Context, Request) (Result, error) { return Result{State: s}, nil })
}

func (b *gdBackend) Resolve(ctx context.Context, req Request) (Result, error) {
	defer b.Rec.Begin()()
	b.mu.Lock()
	o := b.outcome
	b.mu.Unlock()
	if o == nil {
		return Result{State: StateOK, URL: "https://pps.whatsapp.net/v/x.jpg"}, nil
	}
	return o(ctx, req)
}

func gdChat(i int) ChatID {
	c, err := ParseChatID(fmt.Sprintf("7900%07d", i))
	if err != nil {
		panic(err)
	}
	return c
}

// gdRefresh starts a background Resolve of chat i on g, inside a synctest
// bubble, and returns its error's channel once the bubble is idle: the
// refresh is then queued, in the gateway, or done.
func gdRefresh(g *Guard, ctx context.Context, i int) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := g.Resolve(ctx, Request{Chat: gdChat(i), Background: true})
		done <- err
	}()
	synctest.Wait()
	return done
}

func gdIsBusy(err error) bool {
	return errors.Is(err, ErrBusy) && errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrBreakerOpen)
}

func gdIsOpen(err error) bool {
	return errors.Is(err, ErrBreakerOpen) && errors.Is(err, ErrUnavailable) && !errors.Is(err, ErrBusy)
}

func TestGuardDefaults(t *testing.T) {
	cases := []struct {
		cfg              GuardConfig
		rps              float64
		burst, slots     int
		minCool, maxCool time.Duration
	}{
		{GuardConfig{}, 5, 5, 4, 5 * time.Second, 5 * time.Minute},
		{GuardConfig{RPS: 2.5}, 2.5, 3, 4, 5 * time.Second, 5 * time.Minute},
		{GuardConfig{RPS: 0.2}, 0.2, 1, 4, 5 * time.Second, 5 * time.Minute},
		{GuardConfig{RPS: 10, Burst: 2, Concurrency: 9, MinCooldown: time.Minute, MaxCooldown: time.Second}, 10, 2, 9, time.Minute, time.Minute},
		// Rates no bucket can run fall back to the default.
		{GuardConfig{RPS: -1}, 5, 5, 4, 5 * time.Second, 5 * time.Minute},
		{GuardConfig{RPS: math.NaN()}, 5, 5, 4, 5 * time.Second, 5 * time.Minute},
		{GuardConfig{RPS: math.Inf(1)}, 5, 5, 4, 5 * time.Second, 5 * time.Minute},
		// A huge rate is kept, but its burst must still fit an int.
		{GuardConfig{RPS: 1e300}, 1e300, math.MaxInt32, 4, 5 * time.Second, 5 * time.Minute},
	}
	for _, tc := range cases {
		g := NewGuard("g", &gdBackend{}, tc.cfg, nil)
		if g.cfg.RPS != tc.rps || g.cfg.Burst != tc.burst || cap(g.slots) != tc.slots || g.cfg.MinCooldown != tc.minCool || g.cfg.MaxCooldown != tc.maxCool || g.cfg.FailureRun != 5 {
			t.Errorf("%+v: got rps %v burst %d slots %d cooldown %v..%v run %d", tc.cfg, g.cfg.RPS, g.cfg.Burst, cap(g.slots), g.cfg.MinCooldown, g.cfg.MaxCooldown, g.cfg.FailureRun)
		}
		if s := g.State(); s.Tokens != float64(tc.burst) || s.Open || s.InFlight != 0 || s.Waiting != 0 || !s.OpenUntil.IsZero() {
			t.Errorf("%+v: fresh state %+v", tc.cfg, s)
		}
	}
}

// TestGuardForegroundConcurrency fires 1,000 cold misses at once at a
// gateway whose calls hang: exactly Concurrency get in, every other one is
// turned away at once. Were any foreground call to queue, this test would
// hang (the slots are only freed after every refusal has come back).
func TestGuardForegroundConcurrency(t *testing.T) {
	const n, slots = 1000, 4
	b := &gdBackend{}
	release := make(chan struct{})
	entered := make(chan struct{}, n)
	b.set(func(ctx context.Context, req Request) (Result, error) {
		entered <- struct{}{}
		<-release
		return Result{State: StateOK, URL: "https://pps.whatsapp.net/v/x.jpg"}, nil
	})
	g := NewGuard("green", b, GuardConfig{RPS: 50, Burst: 10, Concurrency: slots}, nil)
	results := make(chan error, n)
	for i := range n {
		go func() {
			_, err := g.Resolve(context.Background(), Request{Chat: gdChat(i)})
			results <- err
		}()
	}
	in, busy := 0, 0
	for in+busy < n {
		select {
		case <-entered:
			in++
		case err := <-results:
			if !gdIsBusy(err) {
				t.Fatalf("refusal %v is not ErrBusy", err)
			}
			busy++
		}
	}
	if s := g.State(); s.InFlight != in {
		t.Errorf("State().InFlight = %d, want %d", s.InFlight, in)
	}
	close(release)
	for range in {
		if err := <-results; err != nil {
			t.Errorf("admitted call: %v", err)
		}
	}
	if in != slots || b.Rec.PeakConcurrency() != slots || b.Rec.Calls() != slots {
		t.Errorf("admitted %d, peak %d, calls %d; want %d each", in, b.Rec.PeakConcurrency(), b.Rec.Calls(), slots)
	}
}

// TestGuardForegroundRate fires 1,000 cold misses at a fast gateway on the
// real clock, counting only. A token bucket lets through at most Burst +
// RPS*W calls in any window of W, so the recorder's peak per second is at
// most Burst + RPS. Only counts are asserted, never timings.
func TestGuardForegroundRate(t *testing.T) {
	const n, rps, burst = 1000, 50, 10
	b := &gdBackend{}
	g := NewGuard("green", b, GuardConfig{RPS: rps, Burst: burst, Concurrency: n}, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, busy := 0, 0
	for i := range n {
		wg.Go(func() {
			res, err := g.Resolve(context.Background(), Request{Chat: gdChat(i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil && res.State == StateOK:
				ok++
			case gdIsBusy(err):
				busy++
			default:
				t.Errorf("Resolve = %+v, %v", res, err)
			}
		})
	}
	wg.Wait()
	if ok+busy != n || ok != b.Rec.Calls() {
		t.Errorf("ok %d + busy %d != %d, or ok != calls %d", ok, busy, n, b.Rec.Calls())
	}
	if ok < burst {
		t.Errorf("only %d calls admitted; the full bucket holds %d", ok, burst)
	}
	if peak := b.Rec.PeakRate(); peak > burst+rps {
		t.Errorf("peak %d calls in one second, bound %d", peak, burst+rps)
	}
}

// TestGuardRateBoundExact drives the bucket with the injectable clock,
// shared with the recorder: waves of cold misses every 10 ms for 3 s. The
// peak per second reaches Burst + RPS*1s and never exceeds it.
func TestGuardRateBoundExact(t *testing.T) {
	const rps, burst, wave = 20, 5, 8
	clk := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b := &gdBackend{}
	b.Rec.Now = clk.Now
	g := NewGuard("green", b, GuardConfig{RPS: rps, Burst: burst, Concurrency: 100, Now: clk.Now}, nil)
	for step := range 300 {
		var wg sync.WaitGroup
		for i := range wave {
			wg.Go(func() {
				_, err := g.Resolve(context.Background(), Request{Chat: gdChat(step*wave + i)})
				if err != nil && !gdIsBusy(err) {
					t.Errorf("Resolve: %v", err)
				}
			})
		}
		wg.Wait()
		clk.Advance(10 * time.Millisecond)
	}
	bound := burst + rps
	if peak := b.Rec.PeakRate(); peak > bound || peak < bound-1 {
		t.Errorf("peak %d calls per second, want %d (or one less for float rounding)", peak, bound)
	}
	// 2.99 s of refill after the first wave, plus the burst.
	if calls := b.Rec.Calls(); calls > burst+rps*3 || calls < burst+rps*3-2 {
		t.Errorf("%d calls in 3 s, want about %d", calls, burst+rps*3)
	}
}

func TestGuardBackgroundWaits(t *testing.T) {
	const n = 30
	b := &gdBackend{}
	g := NewGuard("green", b, GuardConfig{RPS: 2000, Burst: 1, Concurrency: 2}, nil)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			res, err := g.Resolve(context.Background(), Request{Chat: gdChat(i), Background: true})
			if err != nil || res.State != StateOK {
				t.Errorf("background %d: %+v, %v", i, res, err)
			}
		})
	}
	wg.Wait()
	if b.Rec.Calls() != n || b.Rec.PeakConcurrency() > 2 {
		t.Errorf("calls %d (want %d), peak concurrency %d (cap 2)", b.Rec.Calls(), n, b.Rec.PeakConcurrency())
	}
	if s := g.State(); s.Waiting != 0 || s.InFlight != 0 {
		t.Errorf("state after: %+v", s)
	}
}

// TestGuardBackgroundContextEnds: a refresh whose context ends before it
// could call gives back everything it held. The guard has one slot, so a
// leaked slot shows as a cold miss turned away once a token is due again.
func TestGuardBackgroundContextEnds(t *testing.T) {
	t.Run("deadline before the token", func(t *testing.T) {
		clk := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		b := &gdBackend{}
		// One token per 10,000 s: the next is out of reach of a 1 h deadline.
		g := NewGuard("green", b, GuardConfig{RPS: 0.0001, Burst: 1, Concurrency: 1, Now: clk.Now}, nil)
		if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(1)}); err != nil {
			t.Fatal(err)
		}
		before := g.State().Tokens
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		_, err := g.Resolve(ctx, Request{Chat: gdChat(2), Background: true})
		if !gdIsBusy(err) {
			t.Fatalf("err = %v, want ErrBusy at once", err)
		}
		if s := g.State(); s.Tokens < before-1e-6 || s.Waiting != 0 {
			t.Errorf("state %+v: the reservation was not handed back (tokens before %v)", s, before)
		}
		clk.Advance(3 * time.Hour)
		if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(3)}); err != nil {
			t.Errorf("cold miss after the refusal: %v", err)
		}
	})
	t.Run("deadline exactly at the token", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := &gdBackend{}
			g := NewGuard("green", b, GuardConfig{RPS: 1, Burst: 1}, nil)
			if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(1)}); err != nil {
				t.Fatal(err)
			}
			// The next token is due in exactly 1 s, the moment the context
			// ends: a call then would carry a context already done.
			ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(time.Second))
			defer cancel()
			done := gdRefresh(g, ctx, 2)
			select {
			case err := <-done:
				if !gdIsBusy(err) || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("err = %v, want ErrBusy at once", err)
				}
			default:
				t.Error("the refresh waits for a token due at its deadline")
				<-done
			}
			if s := g.State(); s.Waiting != 0 || s.Tokens != 0 || b.Rec.Calls() != 1 {
				t.Errorf("state %+v, calls %d: want the reservation handed back and no call", s, b.Rec.Calls())
			}
		})
	})
	t.Run("canceled while waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := &gdBackend{}
			g := NewGuard("green", b, GuardConfig{RPS: 0.0001, Burst: 1, Concurrency: 1}, nil)
			if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(1)}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := gdRefresh(g, ctx, 2)
			if s := g.State(); s.Waiting != 1 || s.Tokens >= 0 {
				t.Fatalf("state while waiting: %+v", s)
			}
			cancel()
			err := <-done
			if !gdIsBusy(err) || !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want ErrBusy and Canceled", err)
			}
			if s := g.State(); s.Waiting != 0 || s.Tokens < 0 {
				t.Errorf("state after: %+v", s)
			}
			time.Sleep(3 * time.Hour) // the bubble's clock: a token is due
			if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(3)}); err != nil {
				t.Errorf("cold miss after the refusal: %v", err)
			}
			if b.Rec.Calls() != 2 {
				t.Errorf("calls = %d, want 2", b.Rec.Calls())
			}
		})
	})
	t.Run("canceled waiting for a slot", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := &gdBackend{}
			release := make(chan struct{})
			b.set(func(context.Context, Request) (Result, error) {
				<-release
				return Result{State: StateOK}, nil
			})
			g := NewGuard("green", b, GuardConfig{RPS: 100, Burst: 10, Concurrency: 1}, nil)
			held := make(chan error)
			go func() {
				_, err := g.Resolve(context.Background(), Request{Chat: gdChat(1)})
				held <- err
			}()
			synctest.Wait()
			ctx, cancel := context.WithCancel(context.Background())
			done := gdRefresh(g, ctx, 2)
			if s := g.State(); s.Waiting != 1 || s.InFlight != 1 {
				t.Fatalf("state while queued for the slot: %+v", s)
			}
			cancel()
			if err := <-done; !gdIsBusy(err) || !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want ErrBusy and Canceled", err)
			}
			close(release)
			if err := <-held; err != nil {
				t.Fatal(err)
			}
			// The queue is empty again, so cold misses are no longer held back.
			if s := g.State(); s.Waiting != 0 {
				t.Errorf("state after: %+v", s)
			}
			if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(3)}); err != nil {
				t.Errorf("cold miss after the refusal: %v", err)
			}
			if b.Rec.Calls() != 2 {
				t.Errorf("calls = %d, want 2", b.Rec.Calls())
			}
		})
	})
}

// TestGuardRefreshesFirst: with a refresh queued, a cold miss is turned
// away even though the bucket has a token for it. The bucket runs on a
// manual clock moved past the refresh's wait; the refresh itself sleeps on
// the bubble's timer, which has not fired yet.
func TestGuardRefreshesFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		b := &gdBackend{}
		g := NewGuard("green", b, GuardConfig{RPS: 1, Burst: 1, Concurrency: 4, Now: clk.Now}, nil)
		if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(1)}); err != nil {
			t.Fatal(err)
		}
		done := gdRefresh(g, context.Background(), 2) // the refresh holds a reservation and sleeps
		clk.Advance(10 * time.Second)
		if s := g.State(); s.Waiting != 1 || s.Tokens < 1 {
			t.Fatalf("want a queued refresh and a free token, state %+v", s)
		}
		if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(3)}); !gdIsBusy(err) {
			t.Fatalf("cold miss with a refresh queued: err = %v, want ErrBusy", err)
		}
		time.Sleep(time.Second) // the bubble's clock: the refresh's timer fires
		if err := <-done; err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(4)}); err != nil {
			t.Fatalf("cold miss after the refresh: %v", err)
		}
		if b.Rec.Calls() != 3 {
			t.Errorf("calls = %d, want 3", b.Rec.Calls())
		}
	})
}

// TestGuardCanceledRefreshesReturnTheirTokens: refreshes that give up hand
// their reservations back as of the moment they give up, so the bucket ends
// as if they had never queued. The later one gives up first, which moves the
// bucket's clock on before the earlier one cancels.
func TestGuardCanceledRefreshesReturnTheirTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		g := NewGuard("green", &gdBackend{}, GuardConfig{RPS: 1, Burst: 1, Now: clk.Now}, nil)
		if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(1)}); err != nil {
			t.Fatal(err)
		}
		refresh := func(i int) (cancel func(), done <-chan error) {
			ctx, cancel := context.WithCancel(context.Background())
			done = gdRefresh(g, ctx, i) // queued behind its reservation, sleeping on the bubble's timer
			return cancel, done
		}
		cancelFirst, firstDone := refresh(2)
		clk.Advance(500 * time.Millisecond)
		cancelSecond, secondDone := refresh(3)
		clk.Advance(200 * time.Millisecond)
		cancelSecond()
		if err := <-secondDone; !gdIsBusy(err) {
			t.Fatalf("second refresh: %v", err)
		}
		clk.Advance(100 * time.Millisecond)
		cancelFirst()
		if err := <-firstDone; !gdIsBusy(err) {
			t.Fatalf("first refresh: %v", err)
		}
		// One token spent at the start, 0.8 s of refill since.
		if s := g.State(); math.Abs(s.Tokens-0.8) > 1e-9 || s.Waiting != 0 {
			t.Errorf("state %+v, want 0.8 tokens and no one waiting", s)
		}
	})
}

// TestGuardBreakerOpensWhileRefreshWaits: a refresh queued before the
// breaker opened is refused when it wakes, without calling the gateway, and
// frees its slot; one arriving while the breaker is open is refused at once
// rather than queued for a token.
func TestGuardBreakerOpensWhileRefreshWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &gdBackend{}
		release := make(chan struct{})
		b.set(func(context.Context, Request) (Result, error) {
			<-release
			return Result{}, &Error{Gateway: "green", Failure: Account, Status: 466, Reason: "quota"}
		})
		g := NewGuard("green", b, GuardConfig{RPS: 1, Burst: 1, Concurrency: 1}, (&testkit.Buffer{}).Logger())
		failing := make(chan error)
		go func() {
			_, err := g.Resolve(context.Background(), Request{Chat: gdChat(1)})
			failing <- err
		}()
		synctest.Wait() // in the gateway with the only slot and the only token
		refreshed := gdRefresh(g, context.Background(), 2)
		close(release)
		if err := <-failing; err == nil || gdIsOpen(err) {
			t.Fatalf("failing call: %v", err)
		}
		if !g.State().Open {
			t.Error("breaker not open")
		}
		// The refresh got the slot and now sleeps until its token is due (1 s).
		if err := <-refreshed; !gdIsOpen(err) {
			t.Fatalf("refresh queued before the breaker opened: err = %v, want ErrBreakerOpen", err)
		}
		late := gdRefresh(g, context.Background(), 3)
		select {
		case err := <-late:
			if !gdIsOpen(err) {
				t.Fatalf("refresh while open: err = %v, want ErrBreakerOpen", err)
			}
		default:
			t.Error("a refresh queued behind an open breaker")
			<-late
		}
		if s := g.State(); s.Waiting != 0 || s.InFlight != 0 {
			t.Errorf("state while open: %+v", s)
		}
		time.Sleep(5 * time.Second) // the bubble's clock: the cooldown ends
		b.succeed(StateOK)
		if _, err := g.Resolve(context.Background(), Request{Chat: gdChat(4)}); err != nil {
			t.Fatalf("probe after the cooldown: %v", err)
		}
		if b.Rec.Calls() != 2 {
			t.Errorf("calls = %d, want 2 (the failure, the probe)", b.Rec.Calls())
		}
	})
}

// gdBreakerEnv is a guard on a manual clock with a budget large enough that
// only the breaker ever refuses.
type gdBreakerEnv struct {
	clk  *testkit.Clock
	b    *gdBackend
	g    *Guard
	logs *testkit.Buffer
}

func newGDBreakerEnv(cfg GuardConfig) *gdBreakerEnv {
	e := &gdBreakerEnv{clk: testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), b: &gdBackend{}, logs: &testkit.Buffer{}}
	cfg.RPS, cfg.Burst, cfg.Now = 1000, 1000, e.clk.Now
	e.g = NewGuard("green-1", e.b, cfg, e.logs.Logger())
	return e
}

func (e *gdBreakerEnv) call(ctx context.Context) (Result, error) {
	return e.g.Resolve(ctx, Request{Chat: gdChat(7)})
}

// wantOpenFor checks the breaker refuses until exactly d from now, then
// moves the clock there.
func (e *gdBreakerEnv) wantOpenFor(t *testing.T, d time.Duration) {
	t.Helper()
	s := e.g.State()
	if !s.Open || !s.OpenUntil.Equal(e.clk.Now().Add(d)) {
		t.Fatalf("state %+v, want open for %v from %v", s, d, e.clk.Now())
	}
	calls := e.b.Rec.Calls()
	e.clk.Advance(d - time.Millisecond)
	for _, bg := range []bool{false, true} {
		if _, err := e.g.Resolve(context.Background(), Request{Chat: gdChat(8), Background: bg}); !gdIsOpen(err) {
			t.Fatalf("background=%v 1ms before the end: err = %v, want ErrBreakerOpen", bg, err)
		}
	}
	if e.b.Rec.Calls() != calls {
		t.Fatalf("a call reached the gateway while open")
	}
	e.clk.Advance(time.Millisecond)
}

func TestGuardBreakerAccountFailure(t *testing.T) {
	e := newGDBreakerEnv(GuardConfig{})
	e.b.fail(Account, 0)
	_, err := e.call(t.Context())
	var ge *Error
	if !errors.As(err, &ge) || ge.Failure != Account {
		t.Fatalf("first call: %v, want the gateway's own error", err)
	}
	e.wantOpenFor(t, 5*time.Second)

	// Half-open: one probe, held inside the gateway; a second call is refused.
	entered, release := make(chan struct{}), make(chan struct{})
	e.b.set(func(context.Context, Request) (Result, error) {
		close(entered)
		<-release
		return Result{State: StateNoAvatar}, nil
	})
	probe := make(chan error)
	go func() { _, err := e.call(context.Background()); probe <- err }()
	<-entered
	for _, bg := range []bool{false, true} {
		if _, err := e.g.Resolve(context.Background(), Request{Chat: gdChat(9), Background: bg}); !gdIsOpen(err) {
			t.Fatalf("second call during the probe (background=%v): %v", bg, err)
		}
	}
	if s := e.g.State(); !s.Open || s.InFlight != 1 {
		t.Errorf("state during probe: %+v", s)
	}
	close(release)
	if err := <-probe; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if s := e.g.State(); s.Open || !s.OpenUntil.IsZero() {
		t.Fatalf("state after a good probe: %+v", s)
	}
	e.b.succeed(StateOK)
	if _, err := e.call(t.Context()); err != nil {
		t.Fatalf("after close: %v", err)
	}
	if got := e.b.Rec.Calls(); got != 3 {
		t.Errorf("calls = %d, want 3 (failure, probe, after)", got)
	}
	logs := e.logs.String()
	for _, want := range []string{"level=WARN msg=\"gateway breaker opened\" gateway=green-1 failure=account", "half-open", "level=INFO msg=\"gateway breaker closed\" gateway=green-1"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// TestGuardBreakerProbeKinds: a refresh may be the half-open probe as well
// as a cold miss; either way no other call passes while it is under way, and
// its success closes the breaker.
func TestGuardBreakerProbeKinds(t *testing.T) {
	for _, bg := range []bool{false, true} {
		t.Run(fmt.Sprintf("background=%v", bg), func(t *testing.T) {
			e := newGDBreakerEnv(GuardConfig{})
			e.b.fail(Account, 0)
			e.call(t.Context())
			e.wantOpenFor(t, 5*time.Second)

			// Only the first call is held, so a second one let through fails
			// the test rather than hanging it.
			entered, release := make(chan struct{}), make(chan struct{})
			var first sync.Once
			e.b.set(func(context.Context, Request) (Result, error) {
				held := false
				first.Do(func() { held = true; close(entered) })
				if held {
					<-release
				}
				return Result{State: StateOK}, nil
			})
			probe := make(chan error)
			go func() {
				_, err := e.g.Resolve(context.Background(), Request{Chat: gdChat(7), Background: bg})
				probe <- err
			}()
			<-entered
			for _, other := range []bool{false, true} {
				if _, err := e.g.Resolve(context.Background(), Request{Chat: gdChat(9), Background: other}); !gdIsOpen(err) {
					t.Errorf("call during the probe (background=%v): err = %v, want ErrBreakerOpen", other, err)
				}
			}
			close(release)
			if err := <-probe; err != nil {
				t.Fatalf("probe: %v", err)
			}
			if s := e.g.State(); s.Open {
				t.Errorf("state after a good probe: %+v", s)
			}
			if got := e.b.Rec.Calls(); got != 2 {
				t.Errorf("calls = %d, want 2 (failure, probe)", got)
			}
		})
	}
}

// TestGuardBreakerIgnoresStragglers: calls admitted before the breaker
// opened and answering after it did neither stretch the open period nor
// close the breaker; only the probe decides.
func TestGuardBreakerIgnoresStragglers(t *testing.T) {
	e := newGDBreakerEnv(GuardConfig{})
	entered, answers := make(chan struct{}), make(chan error)
	e.b.set(func(context.Context, Request) (Result, error) {
		entered <- struct{}{}
		if err := <-answers; err != nil {
			return Result{}, err
		}
		return Result{State: StateOK}, nil
	})
	results := make(chan error)
	for range 3 {
		go func() { _, err := e.call(context.Background()); results <- err }()
		<-entered
	}
	account := &Error{Gateway: "green", Failure: Account, Status: 466, Reason: "quota"}
	answers <- account
	<-results
	e.clk.Advance(3 * time.Second)
	answers <- account
	<-results
	answers <- nil
	if err := <-results; err != nil {
		t.Fatalf("straggler's success: %v", err)
	}
	e.wantOpenFor(t, 2*time.Second)
}

func TestGuardBreakerOpensAtOnce(t *testing.T) {
	for _, f := range []Failure{Account, Config, RateLimited} {
		t.Run(f.String(), func(t *testing.T) {
			e := newGDBreakerEnv(GuardConfig{})
			e.b.fail(f, 0)
			if _, err := e.call(t.Context()); err == nil {
				t.Fatal("no error")
			}
			e.wantOpenFor(t, 5*time.Second)
		})
	}
}

func TestGuardBreakerProbeBackoff(t *testing.T) {
	e := newGDBreakerEnv(GuardConfig{MinCooldown: 5 * time.Second, MaxCooldown: 15 * time.Second})
	e.b.fail(Config, 0)
	e.call(t.Context())
	e.wantOpenFor(t, 5*time.Second)
	e.b.fail(Transient, 0) // a failing probe of any kind re-opens
	for _, want := range []time.Duration{10 * time.Second, 15 * time.Second, 15 * time.Second} {
		if _, err := e.call(t.Context()); err == nil || gdIsOpen(err) {
			t.Fatalf("probe not let through: %v", err)
		}
		e.wantOpenFor(t, want)
	}
	e.b.succeed(StatePrivacy)
	if _, err := e.call(t.Context()); err != nil {
		t.Fatalf("probe: %v", err)
	}
	// Closed, and the cooldown is back to its minimum.
	e.b.fail(RateLimited, 0)
	e.call(t.Context())
	e.wantOpenFor(t, 5*time.Second)
	if !strings.Contains(e.logs.String(), "re-opened") {
		t.Errorf("no re-open logged:\n%s", e.logs)
	}
}

func TestGuardBreakerRetryAfter(t *testing.T) {
	e := newGDBreakerEnv(GuardConfig{})
	e.b.fail(RateLimited, 42*time.Second)
	e.call(t.Context())
	e.wantOpenFor(t, 42*time.Second)
	e.b.fail(RateLimited, time.Second) // shorter than the doubled cooldown
	e.call(t.Context())
	e.wantOpenFor(t, 10*time.Second)
	e.b.fail(RateLimited, 100*time.Second) // longer, and past MaxCooldown's reach
	e.call(t.Context())
	e.wantOpenFor(t, 100*time.Second)
}

func TestGuardBreakerFailureRun(t *testing.T) {
	e := newGDBreakerEnv(GuardConfig{FailureRun: 5})
	transient := func() {
		t.Helper()
		_, err := e.call(t.Context())
		if err == nil || gdIsOpen(err) {
			t.Fatalf("transient failure: %v", err)
		}
	}
	e.b.fail(Transient, 0)
	for range 4 {
		transient()
	}
	e.b.succeed(StateNotOnWhatsApp) // a known state resets the run
	if _, err := e.call(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A plain error (not *Error) counts as transient too.
	e.b.set(func(context.Context, Request) (Result, error) { return Result{}, errors.New("boom") })
	for range 4 {
		transient()
	}
	if e.g.State().Open {
		t.Fatal("open after 4 failures in a row")
	}
	transient()
	e.wantOpenFor(t, 5*time.Second)
	if got := e.b.Rec.Calls(); got != 10 {
		t.Errorf("calls = %d, want 10", got)
	}
}

// A call whose own caller went away says nothing about the gateway.
func TestGuardCallerCancelIsNeutral(t *testing.T) {
	e := newGDBreakerEnv(GuardConfig{FailureRun: 2})
	canceledCall := func() {
		t.Helper()
		ctx, cancel := context.WithCancel(context.Background())
		e.b.set(func(ctx context.Context, _ Request) (Result, error) {
			cancel()
			return Result{}, &Error{Gateway: "green", Failure: Transient, Reason: "canceled", Err: ctx.Err()}
		})
		if _, err := e.call(ctx); err == nil || gdIsOpen(err) {
			t.Fatalf("canceled call: %v", err)
		}
	}
	for range 5 {
		canceledCall()
	}
	if e.g.State().Open {
		t.Fatal("caller cancellations opened the breaker")
	}
	e.b.fail(Account, 0)
	e.call(t.Context())
	e.wantOpenFor(t, 5*time.Second)
	canceledCall() // the probe's caller gives up: the next call probes again
	e.b.fail(Transient, 0)
	if _, err := e.call(t.Context()); err == nil || gdIsOpen(err) {
		t.Fatalf("second probe refused: %v", err)
	}
	e.wantOpenFor(t, 10*time.Second) // doubled once, not twice
}

func TestGuardLogsNoSecrets(t *testing.T) {
	const secret = "tok-3f9a6b1e7c2d"
	e := newGDBreakerEnv(GuardConfig{})
	e.b.set(func(context.Context, Request) (Result, error) {
		return Result{}, &Error{Gateway: "green", Failure: Config, Status: 401, Reason: "unauthorized",
			Err: errors.New("GET https://api/waInstance1/getAvatar/" + secret)}
	})
	e.call(t.Context())
	e.clk.Advance(5 * time.Second)
	e.call(t.Context())
	logs := e.logs.String()
	if !strings.Contains(logs, "breaker opened") || !strings.Contains(logs, "re-opened") {
		t.Fatalf("missing state changes:\n%s", logs)
	}
	if strings.Contains(logs, secret) || strings.Contains(logs, "79000000007") {
		t.Errorf("logs leak:\n%s", logs)
	}
}
