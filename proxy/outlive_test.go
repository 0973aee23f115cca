package proxy

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/placeholder"
	"github.com/avatarproxy/avatarproxy/storage"
	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
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

// gateResolver makes every gateway call say so on in, then wait for gate
// to close.
func gateResolver(in chan<- struct{}, gate <-chan struct{}) option {
	return func(c *Config) {
		inner := c.Resolver
		c.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
			in <- struct{}{}
			<-gate
			return inner.Resolve(ctx, req)
		})
	}
}

// A purge is final: a fill already waiting on the gateway when the chat is
// purged answers its request but stores nothing, in memory or in the
// durable tier, once it comes back; nor does a fill that started after the
// purge and joined that load. Another chat's fill, under way at the same
// time, stores as usual.
func TestPurgeBeatsAFillUnderWay(t *testing.T) {
	in, gate := make(chan struct{}, 4), make(chan struct{})
	h := newHarness(t, gateResolver(in, gate))
	h.avatar("79001234567@c.us", 640)
	h.avatar("79001234568@c.us", 640)
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := newDurable(t, disk)
	r := h.replica(t, d)
	parse := func(file, size string) *avatarRequest {
		req, err := parseAvatar(file, query{Size: size})
		if err != nil {
			t.Fatal(err)
		}
		return &req
	}
	purged, joined, other := parse("79001234567@c.us.jpg", "64"), parse("79001234567@c.us.jpg", "32"), parse("79001234568@c.us.jpg", "64")
	done := make(chan *fillResult, 3)
	fill := func(req *avatarRequest) {
		fr, err := r.srv.fill(context.Background(), req, variantKey(req))
		if err != nil {
			t.Error(err)
		}
		done <- fr
	}
	go fill(purged)
	go fill(other)
	<-in // both fills wait on the gateway when the purge comes
	<-in
	if err := r.srv.Purge(context.Background(), purged.Chat); err != nil {
		t.Fatal(err)
	}
	go fill(joined)
	waitJoined(t)
	close(gate)
	for range 3 {
		if fr := <-done; fr.e.status != "ok" {
			t.Fatalf("a fill answered %q, want its avatar", fr.e.status)
		}
	}
	r.settle()
	if _, ok := r.srv.mem.Get(sourceKey(purged.Chat, false)); ok {
		t.Error("the purged chat's source is back in memory")
	}
	for _, req := range []*avatarRequest{purged, joined} {
		if _, ok := r.srv.mem.Get(variantKey(req)); ok {
			t.Errorf("the purged chat's %d px variant is back in memory", req.Size)
		}
	}
	if _, ok := r.srv.mem.Get(variantKey(other)); !ok {
		t.Error("the other chat's variant was not stored")
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := disk.Get(context.Background(), durableKey(purged.Chat, false)); ok {
		t.Error("the purged chat's record is back in the durable tier")
	}
	if _, ok, _ := disk.Get(context.Background(), durableKey(other.Chat, false)); !ok {
		t.Error("the other chat's record was not stored")
	}
}

// A chat without an avatar, asked for with a name, is drawn on the chat's
// colour: a fill waiting on the gateway when the chat is purged answers
// with that drawing but keeps it nowhere, as it keeps nothing else.
func TestPurgeBeatsAPlaceholderUnderWay(t *testing.T) {
	in, gate := make(chan struct{}, 1), make(chan struct{})
	h := newHarness(t, gateResolver(in, gate))
	h.gw.Set("79001234567@c.us", fake.NoAvatarAnswer())
	req, err := parseAvatar("79001234567@c.us.png", query{Size: "64", Name: "Ada Lovelace"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *fillResult, 1)
	go func() {
		fr, err := h.srv.fill(context.Background(), &req, variantKey(&req))
		if err != nil {
			t.Error(err)
		}
		done <- fr
	}()
	<-in
	if err := h.srv.Purge(context.Background(), req.Chat); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if fr := <-done; fr == nil || fr.e.status != "no-avatar" || len(fr.e.body) == 0 {
		t.Fatalf("the fill answered %+v, want a drawing for no-avatar", fr)
	}
	h.settle()
	key, tag := placeholderKey(placeholder.Params{Kind: placeholder.Initials, Seed: req.Chat.String(), Size: 64, Name: "Ada Lovelace"}, req.Format)
	if tag != req.Chat.String() {
		t.Fatalf("the drawing's tag is %q, want the chat", tag)
	}
	if _, ok := h.srv.mem.Get(key); ok {
		t.Error("the purged chat's drawing is in memory")
	}
}

// waitJoined waits until a goroutine waits on a singleflight call that
// another leads: the only trace a join leaves.
func waitJoined(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	waitFor(t, func() bool {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "singleflight.(*Group).Do(") && strings.Contains(g, "(*WaitGroup).Wait") {
				return true
			}
		}
		return false
	})
}

// A fill that Shutdown cancels answers unavailable and logs nothing: the
// gateway did no wrong, and the line would come after "stopped cleanly".
func TestShutdownCancelsAFillQuietly(t *testing.T) {
	in := make(chan struct{}, 1)
	h := newHarness(t, func(c *Config) {
		c.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
			in <- struct{}{}
			<-ctx.Done()
			return upstream.Result{}, &upstream.Error{Gateway: "greenapi", Reason: "canceled", Err: ctx.Err()}
		})
	})
	req, err := parseAvatar("79001234567@c.us.jpg", query{Size: "64"})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *fillResult)
	go func() {
		fr, _ := h.srv.fill(h.srv.bgCtx, &req, variantKey(&req))
		done <- fr
	}()
	<-in
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if fr := <-done; fr == nil || fr.e.status != statusUnavailable {
		t.Fatalf("the cancelled fill answered %+v", fr)
	}
	if logs := h.logs.String(); strings.Contains(logs, "upstream unavailable") || strings.Contains(logs, "fill failed") {
		t.Errorf("a fill cancelled by Shutdown logged:\n%s", logs)
	}
}

// A refresh that joins the foreground load which started it (a stale copy
// found inside that load, from memory or the durable tier) gets the stale
// copy back. It must still ask the gateway, not count that as done: here
// the foreground load is held until the refresh has joined it.
func TestRefreshThatJoinsAStaleLoadStillAsks(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	h.clock.Advance(25 * time.Hour)

	chat := mustChat(t, "79001234567@c.us")
	skey := sourceKey(chat, false)
	e, ok := h.srv.mem.Get(skey)
	if !ok || e.fresh.age(h.clock.Now()) != ageStale {
		t.Fatal("no stale source in memory")
	}
	started, release, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		h.srv.sources.Do(skey, func() (any, error) {
			close(started)
			<-release
			return &sourceResult{e, csHitStorage, h.srv.fence.generation()}, nil
		})
	}()
	<-started
	h.srv.refreshAsync(chat, false, e.fresh)
	waitJoined(t)
	close(release)
	<-done
	h.settle()
	if n := h.gw.Recorder.Calls(); n != 2 {
		t.Errorf("gateway calls = %d, want 2: the refresh asked nothing", n)
	}
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit")
}
