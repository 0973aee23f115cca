package proxy

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/storage"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// gatedResolver holds every Resolve until gate closes, then reports the chat
// it was asked for on asked and asks the real resolver.
type gatedResolver struct {
	inner Resolver
	gate  chan struct{}
	asked chan string
}

func (g *gatedResolver) Resolve(ctx context.Context, req upstream.Request) (upstream.Result, error) {
	<-g.gate
	g.asked <- req.Chat.String()
	return g.inner.Resolve(ctx, req)
}

// A fill that outlives its request (past the first-load timeout) must keep
// asking for its own chat even after fiber reuses the request's memory for
// the next request: the path bytes are not the fill's to keep.
func TestFillOutlivingItsRequestKeepsItsChat(t *testing.T) {
	g := &gatedResolver{gate: make(chan struct{}), asked: make(chan string, 8)}
	h := newHarness(t, func(c *Config) {
		g.inner = c.Resolver
		c.Resolver = g
		c.FirstLoadTimeout = time.Nanosecond // answer at once, fill behind
	})
	const a, b = "79001234561@c.us", "79009999991@c.us" // same length: same buffer bytes
	h.avatar(a, 64)
	h.avatar(b, 64)
	for _, chat := range []string{a, b} {
		if resp, _ := h.get("/avatar/" + chat + ".jpg?size=32"); resp.Header.Get("X-Avatar-Status") != statusUnavailable {
			t.Fatalf("%s: want the first-load placeholder, got %q", chat, resp.Header.Get("X-Avatar-Status"))
		}
	}
	close(g.gate)
	var got []string
	timeout := time.After(20 * time.Second) // a failure guard, not synchronisation
	for len(got) < 2 {
		select {
		case c := <-g.asked:
			got = append(got, c)
		case <-timeout:
			t.Fatalf("gateway asked for %q only, want %q and %q", got, a, b)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{a, b}) {
		t.Fatalf("gateway asked for %q, want %q and %q", got, a, b)
	}
}

// A purge is final: a fill already waiting on the gateway when the chat is
// purged answers its request but stores nothing, in memory or in the
// durable tier, once it comes back.
func TestPurgeBeatsAFillUnderWay(t *testing.T) {
	in, gate := make(chan struct{}), make(chan struct{})
	h := newHarness(t, func(c *Config) {
		inner := c.Resolver
		c.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
			in <- struct{}{}
			<-gate
			return inner.Resolve(ctx, req)
		})
	})
	h.avatar("79001234567@c.us", 640)
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := newDurable(t, disk)
	r := h.replica(t, d)
	req, err := parseAvatar("79001234567@c.us.jpg", query{Size: "64"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *fillResult)
	go func() {
		fr, err := r.srv.fill(context.Background(), &req, variantKey(&req))
		if err != nil {
			t.Error(err)
		}
		done <- fr
	}()
	<-in // the fill waits on the gateway when the purge comes
	if err := r.srv.Purge(context.Background(), req.Chat); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if fr := <-done; fr.e.status != "ok" {
		t.Fatalf("the fill under way answered %q, want its avatar", fr.e.status)
	}
	r.settle()
	if _, ok := r.srv.mem.Get(sourceKey(req.Chat, false)); ok {
		t.Error("the purged chat's source is back in memory")
	}
	if _, ok := r.srv.mem.Get(variantKey(&req)); ok {
		t.Error("the purged chat's variant is back in memory")
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := disk.Get(context.Background(), durableKey(req.Chat, false)); ok {
		t.Error("the purged chat's record is back in the durable tier")
	}
}
