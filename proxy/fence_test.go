package proxy

import (
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// The fence turns away exactly the stores of loads that started before
// their own chat's purge, whatever other purges came in between, and
// forgets a purge once no load can still be running from before it.
func TestPurgeFence(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	f := newPurgeFence(time.Minute, clock.Now)
	x, y := mustChat(t, "79001234567@c.us"), mustChat(t, "79001234568@c.us")
	store := func(chat string, gen uint64) bool {
		return f.store(mustChat(t, chat), gen, func() {})
	}

	before := f.generation()
	f.purge(x)
	between := f.generation()
	f.purge(y) // a later purge must not lift x's
	after := f.generation()
	for _, c := range []struct {
		chat string
		gen  uint64
		want bool
	}{
		{"79001234567@c.us", before, false},
		{"79001234567@c.us", between, true},
		{"79001234568@c.us", before, false},
		{"79001234568@c.us", between, false}, // started after x's purge, before y's
		{"79001234568@c.us", after, true},
		{"79001234569@c.us", before, true}, // never purged
	} {
		if got := store(c.chat, c.gen); got != c.want {
			t.Errorf("store %s from generation %d of %d: %v, want %v", c.chat, c.gen, after, got, c.want)
		}
	}

	clock.Advance(time.Minute + time.Second)
	f.purge(y)
	if _, ok := f.purged[x.String()]; ok || len(f.purged) != 1 {
		t.Errorf("purges remembered past their time: %v", f.purged)
	}
}
