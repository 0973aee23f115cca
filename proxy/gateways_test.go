package proxy

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// gowaHarness is a harness whose gateway is a fake GOWA (basic auth) behind
// a real upstream.GOWA resolver, with previews for sizes up to 96.
func gowaHarness(t *testing.T) (*harness, *fake.GOWA) {
	h := newHarness(t)
	g := &fake.GOWA{Users: map[string]string{"kemal": "secret-pass"}}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	r, err := upstream.NewGOWA(upstream.GOWAConfig{BaseURL: srv.URL, User: "kemal", Password: "secret-pass", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.cfg.Resolver = r
	h.srv.cfg.PreviewMaxSize = 96
	return h, g
}

func TestGOWAPreviewsAndPictureID(t *testing.T) {
	h, g := gowaHarness(t)
	full := h.cdn.URL(h.cdnURL, h.cdn.Add(fake.Portrait("full", 640)), h.clock.Now().Add(48*time.Hour))
	preview := h.cdn.URL(h.cdnURL, h.cdn.Add(fake.Portrait("preview", 96)), h.clock.Now().Add(48*time.Hour))
	var mu sync.Mutex
	pictureID := "1635239861"
	g.Default = func(q fake.GOWAQuery) fake.Answer {
		mu.Lock()
		defer mu.Unlock()
		if q.Preview {
			return fake.GOWAAvatar(preview, pictureID, true)
		}
		return fake.GOWAAvatar(full, pictureID, false)
	}

	for _, c := range []struct {
		size     string
		wantEdge int
	}{{"48", 48}, {"96", 96}, {"128", 128}, {"", 640}} {
		resp, body := h.get("/avatar/79001234567@c.us.jpg?size=" + c.size)
		wantHeader(t, resp, "X-Avatar-Status", "ok")
		if _, w, _ := decode(t, body); w != c.wantEdge {
			t.Errorf("size %q: width %d", c.size, w)
		}
		h.settle()
	}
	// Thumbnails came from the 96 px preview, larger sizes from the full
	// picture: two gateway calls and two downloads, not one per size.
	if n := g.Recorder.Calls(); n != 2 {
		t.Errorf("gateway calls = %d, want 2 (preview + full)", n)
	}
	if n := h.cdn.Recorder.Calls(); n != 2 {
		t.Errorf("downloads = %d, want 2", n)
	}
	for _, p := range g.Phones() {
		if strings.Contains(p, "@c.us") {
			t.Errorf("GOWA was sent %q", p)
		}
	}

	// Past the TTL the same picture id means no download, even though the
	// link (query string) changed.
	h.clock.Advance(25 * time.Hour)
	full = h.cdn.URL(h.cdnURL, h.cdn.Add(fake.Portrait("full", 640)), h.clock.Now().Add(48*time.Hour))
	h.get("/avatar/79001234567@c.us.jpg?size=128")
	h.settle()
	if n := h.cdn.Recorder.Calls(); n != 2 {
		t.Errorf("downloads after an unchanged refresh = %d, want 2", n)
	}
	// A new picture id is a new picture.
	mu.Lock()
	pictureID = "1700000000"
	full = h.cdn.URL(h.cdnURL, h.cdn.Add(fake.Portrait("new face", 640)), h.clock.Now().Add(48*time.Hour))
	mu.Unlock()
	h.clock.Advance(25 * time.Hour)
	h.get("/avatar/79001234567@c.us.jpg?size=128")
	h.settle()
	if n := h.cdn.Recorder.Calls(); n != 3 {
		t.Errorf("downloads after a new picture id = %d, want 3", n)
	}
}

func TestGOWAStates(t *testing.T) {
	h, g := gowaHarness(t)
	g.Set("79001234561@s.whatsapp.net", fake.GOWANoAvatar())
	g.Set("79001234562@s.whatsapp.net", fake.GOWAPrivacy())
	g.Set("79001234563@s.whatsapp.net", fake.GOWANotOnWhatsApp("79001234563@s.whatsapp.net"))
	g.Set("79001234564@s.whatsapp.net", fake.GOWAIQError(429, "rate-overlimit"))
	g.Set("79001234565@s.whatsapp.net", fake.GOWANotLoggedIn())
	for chat, want := range map[string]string{
		"79001234561@c.us": "no-avatar", "79001234562@c.us": "privacy", "79001234563@c.us": "not-on-whatsapp",
		"79001234564@c.us": "unavailable", "79001234565@c.us": "unavailable",
	} {
		resp, body := h.get("/avatar/" + chat + ".png?size=40")
		wantHeader(t, resp, "X-Avatar-Status", want)
		if f, w, _ := decode(t, body); f != "png" || w != 40 {
			t.Errorf("%s: %s %d", chat, f, w)
		}
	}
}

// TestGuardProtectsAccount: the gateway says "not authorized"; the breaker
// opens, the gateway sees no more calls, every request still gets an image,
// and once the account is fixed a probe closes the breaker.
func TestGuardProtectsAccount(t *testing.T) {
	h := newHarness(t)
	for i := range 30 {
		h.gw.Set(chatN(i), fake.Text400("instance account not authorized"))
	}
	guard := upstream.NewGuard("greenapi", h.srv.cfg.Resolver, upstream.GuardConfig{RPS: 1000, Concurrency: 4, Now: h.clock.Now}, nil)
	h.srv.cfg.Resolver = guard
	for i := range 30 {
		resp, body := h.get("/avatar/" + chatN(i) + ".jpg?size=32")
		wantHeader(t, resp, "X-Avatar-Status", "unavailable")
		wantHeader(t, resp, "Cache-Control", "no-store")
		if _, w, _ := decode(t, body); w != 32 {
			t.Fatalf("request %d: no placeholder image", i)
		}
	}
	if n := h.gw.Recorder.Calls(); n != 1 {
		t.Errorf("gateway calls = %d, want 1: the breaker must open at once on 'not authorized'", n)
	}
	if !guard.State().Open {
		t.Fatal("breaker not open")
	}
	// The operator fixes the account; after the cool-down one probe goes
	// through and closes the breaker.
	for i := range 30 {
		h.avatar(chatN(i), 64)
	}
	h.clock.Advance(10 * time.Minute)
	resp, _ := h.get("/avatar/" + chatN(0) + ".jpg?size=32")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	if guard.State().Open {
		t.Error("a successful probe did not close the breaker")
	}
	resp, _ = h.get("/avatar/" + chatN(1) + ".jpg?size=32")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
}

func chatN(i int) string { return fmt.Sprintf("7900123%04d@c.us", i) }

// TestBurstNeverExceedsRate: 1,000 distinct cold chats at once, through the
// whole proxy, against the fake Green API: the gateway never sees more than
// the token bucket allows in any one-second window, nor more calls at once
// than the cap, and every request still gets an image.
func TestBurstNeverExceedsRate(t *testing.T) {
	h := newHarness(t)
	h.gw.Default = func(string) fake.Answer { return fake.NoAvatarAnswer() }
	const rps, burst, conc = 50, 10, 4
	h.srv.cfg.Resolver = upstream.NewGuard("greenapi", h.srv.cfg.Resolver, upstream.GuardConfig{RPS: rps, Burst: burst, Concurrency: conc}, nil)

	const n = 1000
	var wg sync.WaitGroup
	statuses := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := h.get("/avatar/" + chatN(i) + ".jpg?size=16")
			if resp.StatusCode != 200 {
				t.Errorf("chat %d: status %d", i, resp.StatusCode)
				return
			}
			decode(t, body)
			statuses[i] = resp.Header.Get("X-Avatar-Status")
		}()
	}
	wg.Wait()
	// A token bucket admits at most burst + rps*window calls in a window.
	if peak := h.gw.Recorder.PeakRate(); peak > burst+rps {
		t.Errorf("gateway saw %d calls in one second, bucket allows %d", peak, burst+rps)
	}
	if peak := h.gw.Recorder.PeakConcurrency(); peak > conc {
		t.Errorf("gateway saw %d calls at once, cap is %d", peak, conc)
	}
	answered, busy := 0, 0
	for _, s := range statuses {
		switch s {
		case "no-avatar":
			answered++
		case "unavailable":
			busy++
		default:
			t.Errorf("unexpected status %q", s)
		}
	}
	if answered == 0 || answered+busy != n || answered != h.gw.Recorder.Calls() {
		t.Errorf("%d answered by the gateway, %d placeholders for lack of budget, %d gateway calls", answered, busy, h.gw.Recorder.Calls())
	}
}
