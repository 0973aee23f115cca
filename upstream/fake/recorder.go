package fake

import (
	"sync"
	"time"
)

// Recorder counts the calls a fake receives and keeps the peaks a guard test
// asserts on: the most calls in flight at once and the most calls started in
// any sliding window of Window (one second unless set). Safe for concurrent use.
type Recorder struct {
	// Window is the width of the rate window; zero means one second.
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu          sync.Mutex
	calls       int
	inFlight    int
	peakFlight  int
	starts      []time.Time // start times still inside the window
	peakInRange int
}

// Begin records the start of a call and returns the function that ends it.
func (r *Recorder) Begin() (end func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.calls++
	r.inFlight++
	r.peakFlight = max(r.peakFlight, r.inFlight)
	w := r.Window
	if w <= 0 {
		w = time.Second
	}
	cut := 0
	for cut < len(r.starts) && now.Sub(r.starts[cut]) >= w {
		cut++
	}
	r.starts = append(r.starts[cut:], now)
	r.peakInRange = max(r.peakInRange, len(r.starts))
	return func() {
		r.mu.Lock()
		r.inFlight--
		r.mu.Unlock()
	}
}

func (r *Recorder) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// Calls is the number of calls begun so far.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

// PeakConcurrency is the most calls that were in flight at once.
func (r *Recorder) PeakConcurrency() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peakFlight
}

// PeakRate is the most calls begun within any one Window.
func (r *Recorder) PeakRate() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peakInRange
}
