package cache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// fakeStore is a Store built from function fields; a nil field answers a
// miss or success. It counts every call.
type fakeStore struct {
	get func(ctx context.Context, key string) ([]byte, bool, error)
	put func(ctx context.Context, key string, data []byte) error
	del func(ctx context.Context, key string) error

	gets, puts, dels atomic.Int64
}

var _ Store = (*fakeStore)(nil)

func (f *fakeStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	f.gets.Add(1)
	if f.get == nil {
		return nil, false, nil
	}
	return f.get(ctx, key)
}

func (f *fakeStore) Put(ctx context.Context, key string, data []byte) error {
	f.puts.Add(1)
	if f.put == nil {
		return nil
	}
	return f.put(ctx, key, data)
}

func (f *fakeStore) Delete(ctx context.Context, key string) error {
	f.dels.Add(1)
	if f.del == nil {
		return nil
	}
	return f.del(ctx, key)
}

// journal records the order of Store operations.
type journal struct {
	mu  sync.Mutex
	ops []string
}

func (j *journal) add(op string) {
	j.mu.Lock()
	j.ops = append(j.ops, op)
	j.mu.Unlock()
}

func (j *journal) list() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.ops...)
}

var errStore = errors.New("fake store: 503 slow down")

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newTestDurable(t *testing.T, s Store, cfg DurableConfig) *Durable {
	t.Helper()
	d := NewDurable(s, cfg, quietLogger())
	t.Cleanup(func() {
		if err := d.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func TestDurableConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     DurableConfig
		wantErr bool
	}{
		{name: "zero value", cfg: DurableConfig{}},
		{name: "explicit", cfg: DurableConfig{QueueSize: 8, Workers: 1, MinBackoff: time.Second, MaxBackoff: time.Minute}},
		{name: "negative queue", cfg: DurableConfig{QueueSize: -1}, wantErr: true},
		{name: "negative read timeout", cfg: DurableConfig{ReadTimeout: -time.Second}, wantErr: true},
		{name: "min above max", cfg: DurableConfig{MinBackoff: time.Minute, MaxBackoff: time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrConfig)) {
				t.Fatalf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
	d := DurableConfig{QueueSize: -3, MinBackoff: time.Minute, MaxBackoff: time.Second}.withDefaults()
	if d.QueueSize != DefaultQueueSize || d.Workers != DefaultWorkers || d.MaxBackoff != time.Minute || d.Now == nil {
		t.Errorf("withDefaults = %+v", d)
	}
}

func TestDurableNilStore(t *testing.T) {
	d := newTestDurable(t, nil, DurableConfig{})
	ctx := context.Background()
	if data, ok, err := d.Get(ctx, "a"); data != nil || ok || err != nil {
		t.Errorf("Get = %q, %v, %v; want a miss", data, ok, err)
	}
	if d.PutAsync("a", []byte("x")) {
		t.Error("PutAsync accepted a write with no store")
	}
	if err := d.Delete(ctx, "a"); err != nil {
		t.Errorf("Delete = %v", err)
	}
	if st := d.Stats(); st != (DurableStats{}) {
		t.Errorf("Stats = %+v, want all zero", st)
	}
}

func TestDurableGet(t *testing.T) {
	tests := []struct {
		name     string
		get      func(context.Context, string) ([]byte, bool, error)
		wantData string
		wantOK   bool
		wantErr  error
		wantDown bool
	}{
		{
			name: "hit",
			get: func(context.Context, string) ([]byte, bool, error) {
				return []byte("jpeg"), true, nil
			},
			wantData: "jpeg", wantOK: true,
		},
		{
			name: "miss is not an error",
			get:  func(context.Context, string) ([]byte, bool, error) { return nil, false, nil },
		},
		{
			name:    "store error marks the tier down",
			get:     func(context.Context, string) ([]byte, bool, error) { return nil, false, errStore },
			wantErr: errStore, wantDown: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDurable(t, &fakeStore{get: tt.get}, DurableConfig{})
			data, ok, err := d.Get(context.Background(), "a")
			if string(data) != tt.wantData || ok != tt.wantOK || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Get = %q, %v, %v; want %q, %v, %v", data, ok, err, tt.wantData, tt.wantOK, tt.wantErr)
			}
			if st := d.Stats(); st.Down != tt.wantDown {
				t.Errorf("Down = %v, want %v", st.Down, tt.wantDown)
			}
		})
	}
}

func TestDurableWriteBehind(t *testing.T) {
	got := make(chan string, 1)
	s := &fakeStore{put: func(_ context.Context, key string, data []byte) error {
		got <- key + "=" + string(data)
		return nil
	}}
	d := newTestDurable(t, s, DurableConfig{})
	if !d.PutAsync("a/128", []byte("jpeg")) {
		t.Fatal("PutAsync dropped the write")
	}
	if w := <-got; w != "a/128=jpeg" {
		t.Errorf("store got %q", w)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.Written != 1 || st.Dropped != 0 || st.QueueLen != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// blockingPut returns a put func that blocks writes of key until release is
// closed, signalling started when the first one reaches the store; other
// keys are recorded in j.
func blockingPut(key string, started, release chan struct{}, j *journal) func(context.Context, string, []byte) error {
	var once sync.Once
	return func(ctx context.Context, k string, data []byte) error {
		if k == key {
			once.Do(func() { close(started) })
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		j.add("put " + k + "=" + string(data))
		return nil
	}
}

func TestDurableQueue(t *testing.T) {
	tests := []struct {
		name        string
		queueSize   int
		puts        []string // "key=data", after the worker is busy
		wantQueued  []bool
		wantLen     int
		wantDropped uint64
		wantWrites  []string
	}{
		{
			name:       "a full queue drops without blocking",
			queueSize:  2,
			puts:       []string{"a=1", "b=1", "c=1"},
			wantQueued: []bool{true, true, false},
			wantLen:    2, wantDropped: 1,
			wantWrites: []string{"put busy=", "put a=1", "put b=1"},
		},
		{
			name:       "a queued write of the same key is replaced, not duplicated",
			queueSize:  1,
			puts:       []string{"a=1", "a=2", "a=3"},
			wantQueued: []bool{true, true, true},
			wantLen:    1,
			wantWrites: []string{"put busy=", "put a=3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j journal
			started, release := make(chan struct{}), make(chan struct{})
			s := &fakeStore{put: blockingPut("busy", started, release, &j)}
			d := newTestDurable(t, s, DurableConfig{Workers: 1, QueueSize: tt.queueSize})
			d.PutAsync("busy", nil)
			<-started // the only worker is now stuck at the store

			for i, p := range tt.puts {
				k, v, _ := cut(p)
				if got := d.PutAsync(k, []byte(v)); got != tt.wantQueued[i] {
					t.Errorf("PutAsync(%s) = %v, want %v", p, got, tt.wantQueued[i])
				}
			}
			if st := d.Stats(); st.QueueLen != tt.wantLen || st.Dropped != tt.wantDropped {
				t.Errorf("QueueLen, Dropped = %d, %d; want %d, %d", st.QueueLen, st.Dropped, tt.wantLen, tt.wantDropped)
			}
			close(release)
			if err := d.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(j.list()); got != fmt.Sprint(tt.wantWrites) {
				t.Errorf("writes = %v, want %v", got, tt.wantWrites)
			}
		})
	}
}

func cut(s string) (string, string, bool) {
	for i := range len(s) {
		if s[i] == '=' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func TestDurableReadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStore{get: func(ctx context.Context, _ string) ([]byte, bool, error) {
			<-ctx.Done() // a hung store that at least honours ctx
			return nil, false, ctx.Err()
		}}
		d := newTestDurable(t, s, DurableConfig{ReadTimeout: 300 * time.Millisecond})
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // the request's own deadline
		defer cancel()
		start := time.Now()
		_, ok, err := d.Get(ctx, "a")
		if ok || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get = %v, %v; want a DeadlineExceeded error", ok, err)
		}
		if waited := time.Since(start); waited != 300*time.Millisecond { // the bubble's clock: exact
			t.Errorf("Get returned after %v, want the 300ms ReadTimeout", waited)
		}
		if st := d.Stats(); !st.Down || st.Errors != 1 {
			t.Errorf("Down, Errors = %v, %d; want true, 1 (a hung store is a failing store)", st.Down, st.Errors)
		}
	})
}

// A Store that ignores its context (a read stuck on a wedged volume) must
// not hold the caller: Get returns at its deadline, the call counts as a
// failure, and the next Get skips the tier. Before, Get never returned and
// the tier was never marked down.
func TestDurableAbandonsHungGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		release := make(chan struct{})
		s := &fakeStore{get: func(context.Context, string) ([]byte, bool, error) {
			<-release
			return []byte("late"), true, nil
		}}
		d := newTestDurable(t, s, DurableConfig{Now: clock.Now, ReadTimeout: 300 * time.Millisecond})
		start := time.Now()
		_, ok, err := d.Get(context.Background(), "a")
		if ok || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Get = %v, %v; want a DeadlineExceeded error", ok, err)
		}
		if waited := time.Since(start); waited != 300*time.Millisecond { // the bubble's clock: exact
			t.Errorf("Get returned after %v, want the 300ms ReadTimeout", waited)
		}
		if st := d.Stats(); !st.Down || st.Errors != 1 || st.Abandoned != 1 {
			t.Errorf("Down, Errors, Abandoned = %v, %d, %d; want true, 1, 1", st.Down, st.Errors, st.Abandoned)
		}
		if _, _, err := d.Get(context.Background(), "b"); !errors.Is(err, ErrDown) || s.gets.Load() != 1 {
			t.Errorf("second Get = %v with %d store Gets; want ErrDown without a call", err, s.gets.Load())
		}
		close(release)
		synctest.Wait()
		if st := d.Stats(); st.Abandoned != 0 || !st.Down {
			t.Errorf("after the stuck call returned: Abandoned %d, Down %v; want 0, true (its late answer is not a probe)", st.Abandoned, st.Down)
		}
	})
}

// Each window lets one probe through; against a Store that never returns
// each probe would leave one more goroutine behind. At MaxAbandoned stuck
// calls nothing more is sent, Deletes included, until some return.
func TestDurableBoundsAbandonedCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		release := make(chan struct{})
		s := &fakeStore{get: func(context.Context, string) ([]byte, bool, error) {
			<-release
			return nil, false, nil
		}}
		d := newTestDurable(t, s, DurableConfig{Now: clock.Now, MinBackoff: time.Second, MaxAbandoned: 2})
		d.Get(context.Background(), "a") // stuck: down for 1s
		clock.Advance(time.Second)
		d.Get(context.Background(), "a") // the probe, stuck too: down for 2s
		clock.Advance(2 * time.Second)   // the window is over, but the bound is reached
		if _, _, err := d.Get(context.Background(), "a"); !errors.Is(err, ErrDown) {
			t.Errorf("Get at the bound = %v, want ErrDown", err)
		}
		if err := d.Delete(context.Background(), "a"); !errors.Is(err, ErrDown) {
			t.Errorf("Delete at the bound = %v, want ErrDown", err)
		}
		if d.PutAsync("a", []byte("x")) {
			t.Error("PutAsync queued a write at the bound")
		}
		if st := d.Stats(); s.gets.Load() != 2 || s.dels.Load() != 0 || st.Abandoned != 2 || !st.Down {
			t.Errorf("store Gets %d, Deletes %d, Stats %+v; want 2, 0, two abandoned and down", s.gets.Load(), s.dels.Load(), st)
		}

		close(release)
		synctest.Wait()
		if _, _, err := d.Get(context.Background(), "a"); err != nil {
			t.Fatalf("Get once the stuck calls returned = %v, want the probe's miss", err)
		}
		if st := d.Stats(); s.gets.Load() != 3 || st.Abandoned != 0 || st.Down {
			t.Errorf("store Gets %d, Stats %+v; want 3, none abandoned and up", s.gets.Load(), st)
		}
	})
}

// A hung Put frees its worker at WriteTimeout but keeps its key until it
// returns, so a Delete of that key cannot land before it.
func TestDurableAbandonsHungPut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		var j journal
		release := make(chan struct{})
		s := &fakeStore{
			put: func(_ context.Context, key string, data []byte) error {
				if key == "a" {
					<-release
				}
				j.add("put " + key)
				return nil
			},
			del: func(_ context.Context, key string) error {
				j.add("del " + key)
				return nil
			},
		}
		const writeTimeout = time.Second
		d := newTestDurable(t, s, DurableConfig{Now: clock.Now, Workers: 1, WriteTimeout: writeTimeout})
		d.PutAsync("a", []byte("x"))
		time.Sleep(writeTimeout) // the bubble's clock: the Put's deadline passes
		synctest.Wait()
		if st := d.Stats(); !st.Down || st.Errors != 1 || st.Abandoned != 1 {
			t.Fatalf("after the deadline: Stats %+v; want down, 1 error, 1 abandoned", st)
		}

		clock.Advance(DefaultMinBackoff)
		if !d.PutAsync("b", []byte("y")) {
			t.Fatal("PutAsync after the window dropped the write")
		}
		synctest.Wait()
		if st := d.Stats(); st.Written != 1 || st.Down {
			t.Errorf("after the probe write: Stats %+v; want b written by the only worker and the tier up", st)
		}

		deleted := make(chan error)
		go func() { deleted <- d.Delete(context.Background(), "a") }()
		synctest.Wait()
		if got := s.dels.Load(); got != 0 {
			t.Errorf("Delete reached the store while the Put of its key was still running")
		}
		close(release)
		if err := <-deleted; err != nil {
			t.Fatalf("Delete = %v", err)
		}
		if got, want := j.list(), []string{"put b", "put a", "del a"}; !slices.Equal(got, want) {
			t.Errorf("store saw %q, want %q", got, want)
		}
	})
}

// A Put abandoned on a wedged disk keeps its key until it returns, maybe
// never; a later write of that key must not hold the only worker with it.
func TestDurableWriteOfAKeyStillHeldIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		var j journal
		release := make(chan struct{})
		s := &fakeStore{put: func(_ context.Context, key string, data []byte) error {
			if key == "a" && string(data) == "1" {
				<-release
			}
			j.add("put " + key + "=" + string(data))
			return nil
		}}
		const writeTimeout = time.Second
		d := newTestDurable(t, s, DurableConfig{Now: clock.Now, Workers: 1, WriteTimeout: writeTimeout})
		d.PutAsync("a", []byte("1"))
		time.Sleep(writeTimeout) // the bubble's clock: the Put of a is abandoned
		synctest.Wait()
		clock.Advance(DefaultMinBackoff)

		if !d.PutAsync("a", []byte("2")) || !d.PutAsync("b", []byte("1")) {
			t.Fatal("PutAsync after the window dropped a write")
		}
		time.Sleep(writeTimeout) // the worker's wait for key a ends
		synctest.Wait()
		if st := d.Stats(); st.Written != 1 || st.Dropped != 1 || st.QueueLen != 0 {
			t.Errorf("Stats %+v; want b written, the second write of a dropped, nothing queued", st)
		}

		// The dropped job left nothing behind: a new write of a is queued
		// and written once the hung call is gone.
		close(release)
		synctest.Wait()
		if !d.PutAsync("a", []byte("3")) {
			t.Fatal("PutAsync of a dropped")
		}
		synctest.Wait()
		if got, want := j.list(), []string{"put b=1", "put a=1", "put a=3"}; !slices.Equal(got, want) {
			t.Errorf("store saw %q, want %q", got, want)
		}
	})
}

func TestDurableCallerCancellationIsNotAFailure(t *testing.T) {
	s := &fakeStore{get: func(ctx context.Context, _ string) ([]byte, bool, error) {
		return nil, false, ctx.Err()
	}}
	d := newTestDurable(t, s, DurableConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := d.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get = %v, want context.Canceled", err)
	}
	if st := d.Stats(); st.Down || st.Errors != 0 {
		t.Errorf("Down, Errors = %v, %d after the caller cancelled", st.Down, st.Errors)
	}
}

func TestDurableDownSkipsStore(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := &fakeStore{
		get: func(context.Context, string) ([]byte, bool, error) { return nil, false, errStore },
	}
	d := newTestDurable(t, s, DurableConfig{Now: clock.Now})
	if _, _, err := d.Get(context.Background(), "a"); !errors.Is(err, errStore) {
		t.Fatalf("first Get = %v, want the store error", err)
	}
	const n = 20
	for range n {
		if _, _, err := d.Get(context.Background(), "a"); !errors.Is(err, ErrDown) {
			t.Fatalf("Get while down = %v, want ErrDown", err)
		}
	}
	if d.PutAsync("a", []byte("x")) {
		t.Error("PutAsync queued a write while the tier is down")
	}
	if got := s.gets.Load(); got != 1 {
		t.Errorf("store saw %d Gets, want 1: the tier was not skipped", got)
	}
	if st := d.Stats(); st.Skipped != n || st.Dropped != 1 || st.Errors != 1 || !st.Down {
		t.Errorf("Stats = %+v", st)
	}
}

func TestDurableRecovers(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	var fail atomic.Bool
	fail.Store(true)
	s := &fakeStore{get: func(context.Context, string) ([]byte, bool, error) {
		if fail.Load() {
			return nil, false, errStore
		}
		return []byte("jpeg"), true, nil
	}}
	d := newTestDurable(t, s, DurableConfig{Now: clock.Now, MinBackoff: time.Second, MaxBackoff: 3 * time.Second})

	steps := []struct {
		advance   time.Duration
		fail      bool
		wantErr   error // nil: a hit
		wantCalls int64 // store Gets so far
	}{
		{0, true, errStore, 1},                       // goes down for 1s
		{999 * time.Millisecond, true, ErrDown, 1},   // still inside the window
		{time.Millisecond, true, errStore, 2},        // probe fails: down for 2s
		{time.Second, true, ErrDown, 2},              //
		{time.Second, true, errStore, 3},             // probe fails: down for 3s (capped)
		{2999 * time.Millisecond, false, ErrDown, 3}, //
		{time.Millisecond, false, nil, 4},            // probe succeeds
		{0, false, nil, 5},                           // back to normal
		{0, true, errStore, 6},                       // a new outage starts at MinBackoff again
		{time.Second, false, nil, 7},                 //
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		fail.Store(st.fail)
		_, ok, err := d.Get(context.Background(), "a")
		if !errors.Is(err, st.wantErr) || (st.wantErr == nil && (err != nil || !ok)) {
			t.Fatalf("step %d: Get = %v, %v; want %v", i, ok, err, st.wantErr)
		}
		if got := s.gets.Load(); got != st.wantCalls {
			t.Fatalf("step %d: store saw %d Gets, want %d", i, got, st.wantCalls)
		}
	}
	if d.Stats().Down {
		t.Error("still down after a successful probe")
	}
}

// A call admitted before the tier went down says nothing about the outage
// when it ends: its late success must not clear the down state, and the
// probe's failure must open a window of at least MinBackoff. Before, the
// success zeroed the backoff while the probe was out and the failed probe
// then opened a window of 2*0: every later call went to the Store.
func TestDurableLateSuccessDoesNotEndOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		putAt, putRelease := make(chan struct{}), make(chan struct{})
		probeAt, probeRelease := make(chan struct{}), make(chan struct{})
		s := &fakeStore{put: func(context.Context, string, []byte) error {
			close(putAt)
			<-putRelease
			return nil // slow, but it worked
		}}
		s.get = func(context.Context, string) ([]byte, bool, error) {
			if s.gets.Load() == 2 {
				close(probeAt)
				<-probeRelease
			}
			return nil, false, errStore
		}
		const minBackoff = time.Second
		d := newTestDurable(t, s, DurableConfig{Now: clock.Now, MinBackoff: minBackoff, MaxBackoff: time.Minute})

		d.PutAsync("old", []byte("x")) // admitted while up
		<-putAt
		if _, _, err := d.Get(context.Background(), "a"); !errors.Is(err, errStore) {
			t.Fatalf("first Get = %v, want the store error", err)
		}
		clock.Advance(minBackoff)
		probeDone := make(chan error)
		go func() {
			_, _, err := d.Get(context.Background(), "a")
			probeDone <- err
		}()
		<-probeAt
		close(putRelease)
		synctest.Wait() // the old Put has returned and been accounted for
		if st := d.Stats(); st.Written != 1 || !st.Down {
			t.Errorf("after the old Put succeeded: Written %d, Down %v; want 1, true", st.Written, st.Down)
		}
		close(probeRelease)
		if err := <-probeDone; !errors.Is(err, errStore) {
			t.Fatalf("probe = %v, want the store error", err)
		}

		// The failed probe doubled the first window.
		for _, step := range []time.Duration{0, minBackoff, minBackoff - time.Nanosecond} {
			clock.Advance(step)
			if _, _, err := d.Get(context.Background(), "a"); !errors.Is(err, ErrDown) {
				t.Fatalf("Get inside the window = %v, want ErrDown", err)
			}
		}
		if got := s.gets.Load(); got != 2 {
			t.Fatalf("store saw %d Gets inside the window, want 2 (the failure and the probe)", got)
		}
		clock.Advance(time.Nanosecond)
		for range 3 {
			d.Get(context.Background(), "a")
		}
		if got := s.gets.Load(); got != 3 {
			t.Errorf("store saw %d Gets after the window, want 3: exactly one more probe", got)
		}
	})
}

func TestDurableOneProbeAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		var fail atomic.Bool
		fail.Store(true)
		inProbe, release := make(chan struct{}), make(chan struct{})
		var probes atomic.Int64
		s := &fakeStore{get: func(ctx context.Context, _ string) ([]byte, bool, error) {
			if fail.Load() {
				return nil, false, errStore
			}
			if probes.Add(1) == 1 {
				close(inProbe)
				<-release
			}
			return nil, false, nil
		}}
		d := newTestDurable(t, s, DurableConfig{Now: clock.Now})
		d.Get(context.Background(), "a") // down
		clock.Advance(DefaultMinBackoff)
		fail.Store(false)

		probeDone := make(chan error)
		go func() {
			_, _, err := d.Get(context.Background(), "a")
			probeDone <- err
		}()
		<-inProbe
		for range 5 {
			if _, _, err := d.Get(context.Background(), "b"); !errors.Is(err, ErrDown) {
				t.Errorf("Get during the probe = %v, want ErrDown", err)
			}
		}
		if d.PutAsync("b", nil) {
			t.Error("PutAsync queued a write during the probe")
		}
		close(release)
		if err := <-probeDone; err != nil {
			t.Fatalf("probe = %v", err)
		}
		if got := s.gets.Load(); got != 2 {
			t.Errorf("store saw %d Gets, want 2 (the failure and one probe)", got)
		}
		if _, _, err := d.Get(context.Background(), "b"); err != nil || d.Stats().Down {
			t.Errorf("after the probe: Get = %v, Down = %v", err, d.Stats().Down)
		}
	})
}

func TestDurableProbeCancelledByCallerIsReleased(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int64
	s := &fakeStore{get: func(ctx context.Context, _ string) ([]byte, bool, error) {
		switch calls.Add(1) {
		case 1:
			return nil, false, errStore
		case 2:
			cancel() // the probe's caller goes away while it is at the Store
			return nil, false, ctx.Err()
		default:
			return nil, false, nil
		}
	}}
	d := newTestDurable(t, s, DurableConfig{Now: clock.Now})
	d.Get(context.Background(), "a")
	clock.Advance(DefaultMinBackoff)
	if _, _, err := d.Get(ctx, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled probe = %v", err)
	}
	if _, _, err := d.Get(context.Background(), "a"); err != nil {
		t.Fatalf("next Get = %v; want it to be the new probe", err)
	}
	if calls.Load() != 3 || d.Stats().Down {
		t.Errorf("calls = %d, Down = %v", calls.Load(), d.Stats().Down)
	}
}

func TestDurablePutFailureMarksDown(t *testing.T) {
	done := make(chan struct{})
	s := &fakeStore{put: func(context.Context, string, []byte) error {
		defer close(done)
		return errStore
	}}
	d := newTestDurable(t, s, DurableConfig{Now: testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)).Now})
	d.PutAsync("a", []byte("x"))
	<-done
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); !st.Down || st.Errors != 1 || st.Written != 0 {
		t.Errorf("Stats = %+v", st)
	}
	if _, _, err := d.Get(context.Background(), "a"); !errors.Is(err, ErrDown) || s.gets.Load() != 0 {
		t.Errorf("Get after a failed Put = %v (store Gets %d), want ErrDown without a call", err, s.gets.Load())
	}
}

func TestDurableDeleteCancelsQueuedPut(t *testing.T) {
	var j journal
	started, release := make(chan struct{}), make(chan struct{})
	s := &fakeStore{
		put: blockingPut("busy", started, release, &j),
		del: func(_ context.Context, key string) error { j.add("delete " + key); return nil },
	}
	d := newTestDurable(t, s, DurableConfig{Workers: 1})
	d.PutAsync("busy", nil)
	<-started
	d.PutAsync("gone", []byte("personal data"))
	d.PutAsync("kept", []byte("1"))
	if err := d.Delete(context.Background(), "gone"); err != nil {
		t.Fatal(err)
	}
	if st := d.Stats(); st.QueueLen != 1 {
		t.Errorf("QueueLen = %d after Delete, want 1", st.QueueLen)
	}
	close(release)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"delete gone", "put busy=", "put kept=1"}
	if got := j.list(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("store ops = %v, want %v: the erasure was undone by a queued write", got, want)
	}
}

func TestDurableDeleteWaitsForWriteInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var j journal
		started, release := make(chan struct{}), make(chan struct{})
		s := &fakeStore{
			put: blockingPut("a", started, release, &j),
			del: func(_ context.Context, key string) error { j.add("delete " + key); return nil },
		}
		d := newTestDurable(t, s, DurableConfig{})
		d.PutAsync("a", []byte("1"))
		<-started

		deleted := make(chan error)
		go func() { deleted <- d.Delete(context.Background(), "a") }()
		synctest.Wait() // Delete is blocked, or has reached the store
		if n := s.dels.Load(); n != 0 {
			t.Fatal("Delete reached the store while a write of the same key was in flight")
		}
		close(release)
		if err := <-deleted; err != nil {
			t.Fatal(err)
		}
		want := []string{"put a=1", "delete a"}
		if got := j.list(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("store ops = %v, want %v", got, want)
		}
	})
}

func TestDurableDeleteWhileDown(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s := &fakeStore{get: func(context.Context, string) ([]byte, bool, error) { return nil, false, errStore }}
	d := newTestDurable(t, s, DurableConfig{Now: clock.Now})
	d.Get(context.Background(), "a")
	if err := d.Delete(context.Background(), "a"); err != nil {
		t.Fatalf("Delete while down = %v", err)
	}
	if s.dels.Load() != 1 {
		t.Error("Delete skipped the store while down: an erasure must be attempted")
	}
	if d.Stats().Down {
		t.Error("a successful Delete did not clear the down state")
	}
}

func TestDurableCloseFlushes(t *testing.T) {
	var j journal
	s := &fakeStore{put: func(_ context.Context, key string, _ []byte) error { j.add(key); return nil }}
	d := newTestDurable(t, s, DurableConfig{QueueSize: 100})
	const n = 50
	for i := range n {
		if !d.PutAsync(strconv.Itoa(i), []byte("x")) {
			t.Fatalf("PutAsync %d dropped", i)
		}
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(j.list()); got != n {
		t.Errorf("%d of %d writes flushed", got, n)
	}
	if d.PutAsync("late", nil) {
		t.Error("PutAsync accepted a write after Close")
	}
	if st := d.Stats(); st.Written != n || st.Dropped != 1 {
		t.Errorf("Written, Dropped = %d, %d; want %d, 1", st.Written, st.Dropped, n)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := d.Delete(context.Background(), "0"); err != nil || s.dels.Load() != 1 {
		t.Errorf("Delete after Close = %v, store Deletes %d; want it to reach the store", err, s.dels.Load())
	}
}

func TestDurableCloseRespectsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &fakeStore{put: func(ctx context.Context, _ string, _ []byte) error {
			<-ctx.Done() // a store that hangs but honours ctx
			return ctx.Err()
		}}
		d := NewDurable(s, DurableConfig{Workers: 1, WriteTimeout: time.Hour}, quietLogger())
		for _, k := range []string{"a", "b", "c"} {
			d.PutAsync(k, nil)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := d.Close(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v, want DeadlineExceeded", err)
		}
		if waited := time.Since(start); waited != time.Second {
			t.Errorf("Close returned after %v, want its 1s deadline", waited)
		}
		st := d.Stats()
		if st.Written != 0 || st.Dropped != 3 || st.Errors != 0 || st.Down {
			t.Errorf("Stats = %+v; want 3 dropped, no store errors", st)
		}
		if got := s.puts.Load(); got != 1 {
			t.Errorf("store saw %d Puts, want 1 (the others were dropped)", got)
		}
		// Close returned only after the workers stopped: the bubble would
		// report them as leaked otherwise.
	})
}

func TestDurableHealthBackoff(t *testing.T) {
	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	h := health{now: clock.Now, min: time.Second, max: 10 * time.Second, maxAbandoned: 1}
	want := []time.Duration{1, 2, 4, 8, 10, 10}
	for i, w := range want {
		tk, ok := h.admit()
		if !ok || tk.probe != (i > 0) {
			t.Fatalf("failure %d: admit = %+v, %v", i, tk, ok)
		}
		if _, backoff := h.failure(tk); backoff != w*time.Second {
			t.Fatalf("failure %d: window %v, want %v", i, backoff, w*time.Second)
		}
		clock.Advance(w*time.Second - time.Nanosecond)
		if _, ok := h.admit(); ok {
			t.Fatalf("failure %d: admitted before the window ended", i)
		}
		clock.Advance(time.Nanosecond)
	}

	// A call admitted before the outage that fails late does not extend it.
	h2 := health{now: clock.Now, min: time.Second, max: 10 * time.Second, maxAbandoned: 1}
	early, _ := h2.admit()
	first, _ := h2.admit()
	h2.failure(first)
	if opened, backoff := h2.failure(early); opened || backoff != time.Second {
		t.Errorf("second in-flight failure: opened %v, window %v", opened, backoff)
	}
	// Nor does it end it when it succeeds late, even with the probe out.
	clock.Advance(time.Second)
	probe, ok := h2.admit()
	if !ok || !probe.probe {
		t.Fatalf("admit after the window = %+v, %v; want the probe", probe, ok)
	}
	if h2.success(early) || !h2.isDown() {
		t.Error("a success admitted before the outage cleared it")
	}
	if _, ok := h2.admit(); ok {
		t.Error("a second call admitted while the probe is out")
	}
	if _, backoff := h2.failure(probe); backoff != 2*time.Second {
		t.Errorf("failed probe: window %v, want 2s", backoff)
	}
	// A release from an earlier generation does not free a newer probe.
	clock.Advance(2 * time.Second)
	probe2, _ := h2.admit()
	h2.release(early)
	if _, ok := h2.admit(); ok {
		t.Error("a stale release freed the probe")
	}
	if !h2.success(probe2) || h2.isDown() {
		t.Error("the probe's success did not clear the outage")
	}

	// Whatever the state, a failed probe opens at least MinBackoff.
	h3 := health{now: clock.Now, min: time.Second, max: 10 * time.Second, maxAbandoned: 1, down: true}
	p3, _ := h3.admit()
	if _, backoff := h3.failure(p3); backoff != time.Second {
		t.Errorf("failed probe with no previous window: window %v, want MinBackoff", backoff)
	}
}

// TestDurableConcurrent runs every operation at once against a flaky store;
// it exists for the race detector and for deadlocks.
func TestDurableConcurrent(t *testing.T) {
	var n atomic.Int64
	flaky := func() error {
		if n.Add(1)%7 == 0 {
			return errStore
		}
		return nil
	}
	s := &fakeStore{
		get: func(context.Context, string) ([]byte, bool, error) { return []byte("x"), true, flaky() },
		put: func(context.Context, string, []byte) error { return flaky() },
		del: func(context.Context, string) error { return flaky() },
	}
	clock := testkit.NewClock(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	d := NewDurable(s, DurableConfig{QueueSize: 16, Workers: 3, Now: clock.Now}, quietLogger())
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Go(func() {
			for i := range 500 {
				key := strconv.Itoa((i + w) % 10)
				switch i % 4 {
				case 0:
					d.Get(context.Background(), key)
				case 1:
					d.Delete(context.Background(), key)
				case 2:
					clock.Advance(time.Second)
					d.Stats()
				default:
					d.PutAsync(key, []byte(key))
				}
			}
		})
	}
	wg.Wait()
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := d.Stats()
	if st.QueueLen != 0 {
		t.Errorf("QueueLen = %d after Close", st.QueueLen)
	}
	if st.Written+st.Dropped+st.Errors == 0 {
		t.Error("no write was accounted for")
	}
}

// Workers is how many writes are at the Store at once: an object store's
// PUTs wait on the network, and main runs sixteen of them for S3.
func TestDurableWorkersWriteInParallel(t *testing.T) {
	const workers, writes = 16, 40
	var inFlight, most atomic.Int64
	release := make(chan struct{})
	s := &fakeStore{put: func(ctx context.Context, key string, data []byte) error {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		inFlight.Add(-1)
		return nil
	}}
	d := newTestDurable(t, s, DurableConfig{Workers: workers, QueueSize: writes})
	for i := range writes {
		if !d.PutAsync(fmt.Sprint("k", i), []byte("v")) {
			t.Fatalf("write %d dropped", i)
		}
	}
	for start := time.Now(); inFlight.Load() < workers; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("%d writes at the store at once, want %d", inFlight.Load(), workers)
		}
	}
	close(release)
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := most.Load(); got != workers {
		t.Errorf("at most %d writes at once, want %d", got, workers)
	}
	if got := s.puts.Load(); got != writes {
		t.Errorf("%d writes reached the store, want %d", got, writes)
	}
}
