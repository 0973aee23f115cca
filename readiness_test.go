package main

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// wedgedStore is a durable tier whose Ping does not return until released,
// as Disk's does on a hung volume: file I/O cannot be interrupted.
type wedgedStore struct {
	release chan struct{}
	calls   atomic.Int32
}

func (s *wedgedStore) Ping(context.Context) error {
	s.calls.Add(1)
	<-s.release
	return nil
}

// TestReadinessWedgedStore: /readyz answers "durable tier not answering" by
// its deadline when the store's Ping hangs, instead of hanging with it, and
// repeated probes share the one stuck Ping rather than piling up more.
func TestReadinessWedgedStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := &wedgedStore{release: make(chan struct{})}
		ready := readiness(nil, store)
		probe := func() string {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return ready(ctx)
		}
		for range 3 {
			if got := probe(); got != "durable tier not answering" {
				t.Errorf("wedged store: readiness = %q", got)
			}
		}
		if n := store.calls.Load(); n != 1 {
			t.Errorf("%d Pings started on a wedged store, want 1", n)
		}
		close(store.release)
		synctest.Wait()
		if got := probe(); got != "" {
			t.Errorf("store answering again: readiness = %q, want ready", got)
		}
	})
}
