package proxy

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/cache"
	"github.com/avatarproxy/avatarproxy/storage"
	"github.com/avatarproxy/avatarproxy/storage/miniotest"
	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// replica is another Server (a restart, or a second replica of a fleet)
// wired to the same fake gateway and CDN as h, with its own memory.
func (h *harness) replica(t *testing.T, d Durable) *harness {
	t.Helper()
	cfg := h.srv.cfg
	cfg.Durable = d
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	r := *h
	r.srv = srv
	return &r
}

func newDurable(t *testing.T, s cache.Store) *cache.Durable {
	t.Helper()
	d := cache.NewDurable(s, cache.DurableConfig{MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, nil)
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

// flush waits until d has written at least n records and has none queued.
// (An empty queue alone is not enough: a worker may still be writing.)
func flush(t *testing.T, d *cache.Durable, n uint64) {
	t.Helper()
	waitFor(t, func() bool { st := d.Stats(); return st.QueueLen == 0 && st.Written >= n })
}

func newS3(t *testing.T, m *miniotest.Server, bucket string) *storage.S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := storage.NewS3(ctx, storage.S3Config{Endpoint: m.Endpoint, Bucket: bucket, AccessKey: m.AccessKey, SecretKey: m.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testRestart: what one server fetched, a restarted one serves from the
// durable tier without a gateway call, in every variant.
func testRestart(t *testing.T, open func() cache.Store) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	h.gw.Set("79001234568@c.us", fake.PrivacyAnswer())
	d1 := newDurable(t, open())
	h1 := h.replica(t, d1)
	_, want := h1.get("/avatar/79001234567@c.us.jpg?size=64")
	h1.get("/avatar/79001234568@c.us.jpg?size=64")
	h1.settle()
	flush(t, d1, 2)
	calls := h.gw.Recorder.Calls()

	h2 := h.replica(t, newDurable(t, open()))
	resp, body := h2.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=storage")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	if string(body) != string(want) {
		t.Error("restarted server rendered different bytes")
	}
	resp, _ = h2.get("/avatar/79001234567@c.us.png?size=300")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	resp, _ = h2.get("/avatar/79001234568@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "privacy")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=storage")
	if n := h.gw.Recorder.Calls(); n != calls {
		t.Errorf("gateway calls after restart = %d, want %d", n-calls, 0)
	}
	if n := h.cdn.Recorder.Calls(); n != 1 {
		t.Errorf("downloads = %d, want 1", n)
	}
}

func TestRestartDisk(t *testing.T) {
	dir := t.TempDir()
	testRestart(t, func() cache.Store {
		d, err := storage.NewDisk(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestS3Fleet(t *testing.T) {
	m := miniotest.Start(t)
	t.Run("restart", func(t *testing.T) {
		testRestart(t, func() cache.Store { return newS3(t, m, "restart") })
	})
	t.Run("two replicas share a bucket", func(t *testing.T) {
		h := newHarness(t)
		h.avatar("79001234567@c.us", 640)
		da, db := newDurable(t, newS3(t, m, "fleet")), newDurable(t, newS3(t, m, "fleet"))
		a, b := h.replica(t, da), h.replica(t, db)
		a.get("/avatar/79001234567@c.us.jpg?size=64")
		a.settle()
		flush(t, da, 1)
		resp, body := b.get("/avatar/79001234567@c.us.jpg?size=128")
		wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=storage")
		if _, w, _ := decode(t, body); w != 128 {
			t.Errorf("width %d", w)
		}
		if n := h.gw.Recorder.Calls(); n != 1 {
			t.Errorf("gateway calls = %d, want 1 for the whole fleet", n)
		}
	})
	t.Run("S3 down then back", func(t *testing.T) {
		h := newHarness(t)
		for _, c := range []string{"79001234561@c.us", "79001234562@c.us", "79001234563@c.us"} {
			h.avatar(c, 640)
		}
		d := newDurable(t, newS3(t, m, "outage"))
		r := h.replica(t, d)
		r.get("/avatar/79001234561@c.us.jpg?size=64")
		r.settle()
		flush(t, d, 1)

		m.Stop()
		// Requests keep succeeding while the durable tier is down.
		for _, c := range []string{"79001234562@c.us", "79001234563@c.us"} {
			resp, body := r.get("/avatar/" + c + ".jpg?size=64")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Avatar-Status") != "ok" {
				t.Fatalf("%s during the outage: %d %s", c, resp.StatusCode, resp.Header.Get("X-Avatar-Status"))
			}
			decode(t, body)
			r.settle()
		}
		m.Restart(t)
		// It recovers by itself: once a write lands again (writes made while
		// it is still marked down are dropped, so keep making new chats
		// until one does), a new chat's record is written and a new replica
		// reads it and what was written before the outage.
		written := d.Stats().Written
		for i := 0; d.Stats().Written == written; i++ {
			if i == 200 {
				t.Fatal("no write landed after S3 came back")
			}
			chat := fmt.Sprintf("790012346%02d@c.us", i)
			h.avatar(chat, 64)
			r.get("/avatar/" + chat + ".jpg?size=64")
			r.settle()
			waitFor(t, func() bool { return d.Stats().QueueLen == 0 })
		}
		const landed = "79001234699@c.us"
		h.avatar(landed, 64)
		before := d.Stats().Written
		r.get("/avatar/" + landed + ".jpg?size=64")
		r.settle()
		flush(t, d, before+1)
		r2 := h.replica(t, newDurable(t, newS3(t, m, "outage")))
		resp, _ := r2.get("/avatar/79001234561@c.us.jpg?size=64")
		wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=storage")
		resp, _ = r2.get("/avatar/" + landed + ".jpg?size=64")
		wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=storage")
	})
}

func TestPurgeDurable(t *testing.T) {
	const admin = "admin-token-0123456789"
	h := newHarness(t, func(c *Config) { c.AdminToken = admin })
	h.avatar("79001234567@c.us", 640)
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d := newDurable(t, disk)
	r := h.replica(t, d)
	r.get("/avatar/79001234567@c.us.jpg?size=64")
	r.settle()
	flush(t, d, 1)
	if resp := r.do(http.MethodDelete, "/avatar/79001234567@c.us", "Authorization", "Bearer "+admin); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("purge: %d", resp.StatusCode)
	}
	if _, ok, _ := disk.Get(context.Background(), durableKey(mustChat(t, "79001234567@c.us"), false)); ok {
		t.Fatal("the durable record survived the purge")
	}
	r2 := h.replica(t, newDurable(t, disk))
	resp, _ := r2.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; fwd=uri-miss")
}

// A stored source that does not render (a corrupt object) is dropped from
// the durable tier too: the next request asks the gateway and gets the
// avatar, instead of reading the same bytes back until their TTL ends.
func TestUnrenderableStoredSource(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	disk, err := storage.NewDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	key := durableKey(mustChat(t, "79001234567@c.us"), false)
	bad, err := encodeRecord(&record{State: upstream.StateOK, ResolvedAt: h.clock.Now(), PictureKey: "/x", Picture: []byte("\xff\xd8\xff\xe0 cut short")})
	if err != nil {
		t.Fatal(err)
	}
	if err := disk.Put(context.Background(), key, bad); err != nil {
		t.Fatal(err)
	}
	r := h.replica(t, newDurable(t, disk))
	resp, _ := r.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "unavailable")
	if _, ok, _ := disk.Get(context.Background(), key); ok {
		t.Fatal("the record that does not render is still stored")
	}
	resp, _ = r.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; fwd=uri-miss")
	if n := h.gw.Recorder.Calls(); n != 1 {
		t.Errorf("gateway calls = %d, want 1", n)
	}
}

// A render that runs out of time (waiting for a CPU) keeps its source: it
// says nothing about the picture, and retiring it would expire every size
// already rendered from it.
func TestRenderTimeoutKeepsSource(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	req, err := parseAvatar("79001234567@c.us.jpg", query{Size: "32"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fr, err := h.srv.fill(ctx, &req, variantKey(&req))
	if err != nil || fr.e.status != statusUnavailable {
		t.Fatalf("fill with its time up: %v, %+v", err, fr)
	}
	src, ok := h.srv.mem.Get(sourceKey(req.Chat, false))
	if !ok || src.fresh.age(h.clock.Now()) != ageFresh {
		t.Fatal("the source was dropped for a render that only ran out of time")
	}
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit")
}

func TestRecordRoundTrip(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	in := &record{State: "ok", PictureKey: "https://pps.whatsapp.net/v/x_n.jpg", PictureID: "42", ResolvedAt: now, FetchedAt: now, LinkExpiry: now.Add(time.Hour), Picture: []byte{0xff, 0xd8, 0xff, 1, 2, 3}}
	b, err := encodeRecord(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := decodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.State != in.State || out.PictureKey != in.PictureKey || out.PictureID != in.PictureID || !out.ResolvedAt.Equal(now) || string(out.Picture) != string(in.Picture) {
		t.Errorf("round trip: %+v", out)
	}
	// An uncertain negative answer stays uncertain across a restart.
	b2, err := encodeRecord(&record{State: "not-on-whatsapp", ResolvedAt: now, Uncertain: true})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := decodeRecord(b2); err != nil || !out.Uncertain {
		t.Errorf("uncertain record round trip: %+v, %v", out, err)
	}
	for _, bad := range [][]byte{nil, []byte("AVP1"), []byte("XXXX\x00\x00\x00\x02{}"), append([]byte("AVP1\x00\x00\x00\x02{}"), 1), b[:len(b)-len(in.Picture)]} {
		if _, err := decodeRecord(bad); err == nil {
			t.Errorf("decodeRecord(%q) accepted", bad)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	ok, _ := encodeRecord(&record{State: "ok", ResolvedAt: time.Unix(1, 0), Picture: []byte("x")})
	neg, _ := encodeRecord(&record{State: "privacy", ResolvedAt: time.Unix(1, 0)})
	f.Add(ok)
	f.Add(neg)
	f.Add([]byte("AVP1\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if r.State == "ok" && len(r.Picture) == 0 {
			t.Fatal("an ok record without a picture")
		}
		again, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeRecord(again); err != nil {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
	})
}
