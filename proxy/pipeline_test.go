package proxy

import (
	"bytes"
	"context"
	"image/png"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

func TestUnavailable(t *testing.T) {
	h := newHarness(t)
	// Each chat's gateway or CDN has a different bad day.
	h.gw.Set("79001234501@c.us", fake.StatusAnswer(500))
	h.gw.Set("79001234502@c.us", fake.StatusAnswer(502))
	h.gw.Set("79001234503@c.us", fake.TooManyRequests(2*time.Second))
	h.gw.Set("79001234504@c.us", fake.Quota466())
	h.gw.Set("79001234505@c.us", fake.Unauthorized401())
	h.gw.Set("79001234506@c.us", fake.Forbidden403())
	h.gw.Set("79001234507@c.us", fake.Text400("instance in starting process try later"))
	h.gw.Set("79001234508@c.us", fake.ReasonAnswer("get avatar timeout limit exceeded"))
	h.gw.Set("79001234509@c.us", fake.HTMLAnswer(200))
	h.gw.Set("79001234510@c.us", fake.Unauthorized200())
	slow := fake.NoAvatarAnswer()
	slow.Delay = 5 * time.Second // beyond the resolver's 2 s deadline
	h.gw.Set("79001234511@c.us", slow)

	cdnCase := func(chat string, b fake.Behavior) {
		link := h.avatar(chat, 640)
		path := link[len(h.cdnURL):strings.IndexByte(link, '?')]
		h.cdn.Script(path, b)
	}
	html := fake.Text(200, "<html><body>not an image</body></html>")
	cdnCase("79001234521@c.us", fake.Behavior{Answer: &html})
	cdnCase("79001234522@c.us", fake.Behavior{Body: fake.BodyTruncated, Sent: 500})
	cdnCase("79001234523@c.us", fake.Behavior{Redirect: "http://10.0.0.1/x.jpg"})
	cdnCase("79001234524@c.us", fake.Behavior{Redirect: "http://evil.example/x.jpg"})
	bombAnswer := fake.Answer{ContentType: "image/jpeg", Body: string(fake.Bomb(30000, 30000))}
	cdnCase("79001234525@c.us", fake.Behavior{Answer: &bombAnswer})
	cut := fake.Answer{ContentType: "image/jpeg", Body: string(fake.Portrait("x", 640)[:2000])}
	cdnCase("79001234526@c.us", fake.Behavior{Answer: &cut})
	s500 := fake.Text(500, "oops")
	cdnCase("79001234527@c.us", fake.Behavior{Answer: &s500})

	for _, chat := range []string{
		"79001234501@c.us", "79001234502@c.us", "79001234503@c.us", "79001234504@c.us",
		"79001234505@c.us", "79001234506@c.us", "79001234507@c.us", "79001234508@c.us",
		"79001234509@c.us", "79001234510@c.us", "79001234511@c.us",
		"79001234521@c.us", "79001234522@c.us", "79001234523@c.us", "79001234524@c.us",
		"79001234525@c.us", "79001234526@c.us", "79001234527@c.us",
	} {
		t.Run(chat, func(t *testing.T) {
			resp, body := h.get("/avatar/" + chat + ".jpg?size=40&name=Zoe")
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %q", resp.StatusCode, body)
			}
			if f, w, _ := decode(t, body); f != "jpeg" || w != 40 {
				t.Fatalf("got %s %d, want a 40 px jpeg placeholder", f, w)
			}
			wantHeader(t, resp, "X-Avatar-Status", "unavailable")
			wantHeader(t, resp, "Cache-Control", "no-store")
			// Trouble is never cached: the next request asks again.
			before := h.gw.Recorder.Calls()
			h.settle()
			h.get("/avatar/" + chat + ".jpg?size=40&name=Zoe")
			if h.gw.Recorder.Calls() == before {
				t.Error("an unavailable answer was cached")
			}
		})
	}
	if strings.Contains(h.logs.String(), testToken) {
		t.Error("token in the logs")
	}
}

func TestExpiredLinkAsksAgainOnce(t *testing.T) {
	h := newHarness(t)
	path := h.cdn.Add(fake.Portrait("79001234567@c.us", 640))
	expired := h.cdn.URL(h.cdnURL, path, h.clock.Now().Add(-time.Minute))
	fresh := h.cdn.URL(h.cdnURL, path, h.clock.Now().Add(48*time.Hour))
	var calls atomic.Int32
	var refresh [2]atomic.Bool // what each call said of the previous link
	h.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		n := calls.Add(1)
		if n <= 2 {
			refresh[n-1].Store(req.Refresh)
		}
		if n == 1 {
			return upstream.Result{State: upstream.StateOK, URL: expired}, nil
		}
		return upstream.Result{State: upstream.StateOK, URL: fresh}, nil
	})
	resp, body := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	decode(t, body)
	if calls.Load() != 2 {
		t.Errorf("gateway calls = %d, want 2 (one more after the 403)", calls.Load())
	}
	// The second call asks the gateway to look again (WAHA would otherwise
	// answer the same dead link from its own cache).
	if refresh[0].Load() || !refresh[1].Load() {
		t.Errorf("Refresh on the calls = %v, %v; want false, true", refresh[0].Load(), refresh[1].Load())
	}
	reqs := h.cdn.Requests()
	if len(reqs) != 2 || "?"+reqs[1].RawQuery != fresh[strings.IndexByte(fresh, '?'):] {
		t.Errorf("CDN saw %+v, want the expired link then the fresh one untouched", reqs)
	}

	// A link that stays expired is asked for once more, not forever.
	h2 := newHarness(t)
	calls.Store(0)
	h2.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		calls.Add(1)
		return upstream.Result{State: upstream.StateOK, URL: h2.cdn.URL(h2.cdnURL, h2.cdn.Add(fake.Portrait("a", 64)), h2.clock.Now().Add(-time.Hour))}, nil
	})
	resp, _ = h2.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "unavailable")
	if calls.Load() != 2 {
		t.Errorf("gateway calls = %d, want 2", calls.Load())
	}

	// A gateway that names the same dead link again is not fetched again.
	h3 := newHarness(t)
	dead := h3.cdn.Add(fake.Portrait("b", 64))
	h3.cdn.Script(dead, fake.Behavior{Answer: &fake.Answer{Status: 404}})
	link := h3.cdn.URL(h3.cdnURL, dead, h3.clock.Now().Add(48*time.Hour))
	h3.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		return upstream.Result{State: upstream.StateOK, URL: link}, nil
	})
	resp, _ = h3.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "unavailable")
	if n := h3.cdn.Recorder.Calls(); n != 1 {
		t.Errorf("CDN requests = %d, want 1: the same dead link is not fetched twice", n)
	}
}

// A negative answer the gateway also gives for its own failures
// (Result.Uncertain) is kept for minutes, not the negative TTL.
func TestUncertainAnswerIsKeptBriefly(t *testing.T) {
	h := newHarness(t)
	var calls atomic.Int32
	h.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		calls.Add(1)
		return upstream.Result{State: upstream.StateNotOnWhatsApp, Uncertain: true}, nil
	})
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "not-on-whatsapp")
	wantHeader(t, resp, "Cache-Control", "public, max-age=600")
	h.settle()
	h.clock.Advance(5 * time.Minute)
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	if n := calls.Load(); n != 1 {
		t.Fatalf("gateway calls within the 10 minutes = %d, want 1", n)
	}
	h.clock.Advance(6*time.Minute + 20*time.Minute) // past fresh and its stale window
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	if n := calls.Load(); n != 2 {
		t.Errorf("gateway calls after the 10 minutes = %d, want 2", n)
	}
}

func TestFirstLoadBudget(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, func(c *Config) { c.FirstLoadTimeout = 20 * time.Millisecond })
	h.avatar("79001234567@c.us", 640)
	h.srv.cfg.Resolver = holdResolver{h.srv.cfg.Resolver, release}

	resp, body := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "unavailable")
	wantHeader(t, resp, "Cache-Control", "no-store")
	if _, w, _ := decode(t, body); w != 64 {
		t.Fatalf("placeholder width %d", w)
	}
	close(release) // the fill goes on without any client
	req, err := parseAvatar("79001234567@c.us.jpg", query{Size: "64"})
	if err != nil {
		t.Fatal(err)
	}
	key := variantKey(&req)
	waitFor(t, func() bool { _, ok := h.srv.mem.Get(key); return ok })
	resp, _ = h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
}

func mustChat(t *testing.T, s string) upstream.ChatID {
	t.Helper()
	c, err := upstream.ParseChatID(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStaleWhileRevalidate(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	resp, body := h.get("/avatar/79001234567@c.us.jpg?size=64")
	etag := resp.Header.Get("ETag")
	h.settle()

	// Past the TTL the same picture is served at once and revalidated once
	// behind the response; the gateway names the same picture, so there is
	// no second download.
	h.clock.Advance(25 * time.Hour)
	resp, body2 := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=stale")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	if !strings.HasPrefix(resp.Header.Get("Cache-Control"), "public, max-age=0, stale-while-revalidate=") {
		t.Errorf("stale Cache-Control %q", resp.Header.Get("Cache-Control"))
	}
	if !bytes.Equal(body, body2) {
		t.Error("stale body differs")
	}
	h.settle()
	if n := h.gw.Recorder.Calls(); n != 2 {
		t.Errorf("gateway calls = %d, want 2", n)
	}
	if n := h.cdn.Recorder.Calls(); n != 1 {
		t.Errorf("downloads = %d, want 1: same picture, no download", n)
	}
	resp, _ = h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit")
	wantHeader(t, resp, "ETag", etag)
	wantHeader(t, resp, "Cache-Control", "public, max-age=86400, stale-while-revalidate=604800, stale-if-error=604800")

	// A new picture: new bytes, new ETag.
	h.clock.Advance(25 * time.Hour)
	path := h.cdn.Add(fake.Portrait("a new face", 640))
	h.gw.Set("79001234567@c.us", fake.AvatarAnswer(h.cdn.URL(h.cdnURL, path, h.clock.Now().Add(48*time.Hour))))
	h.get("/avatar/79001234567@c.us.jpg?size=64") // stale, starts the refresh
	h.settle()
	resp, body3 := h.get("/avatar/79001234567@c.us.jpg?size=64")
	if resp.Header.Get("ETag") == etag || bytes.Equal(body3, body) {
		t.Error("a changed picture kept its old bytes or ETag")
	}
	if n := h.cdn.Recorder.Calls(); n != 2 {
		t.Errorf("downloads = %d, want 2", n)
	}
}

func TestStaleIfError(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	_, body := h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	h.gw.Set("79001234567@c.us", fake.Text400("instance account not authorized"))

	for _, d := range []time.Duration{25 * time.Hour, 3 * 24 * time.Hour} {
		h.clock.Advance(d)
		resp, b := h.get("/avatar/79001234567@c.us.jpg?size=64")
		h.settle()
		wantHeader(t, resp, "X-Avatar-Status", "ok")
		if !bytes.Equal(b, body) {
			t.Fatal("stale avatar not served while the gateway fails")
		}
		// Another size is rendered from the stale source too.
		resp, _ = h.get("/avatar/79001234567@c.us.png?size=20")
		wantHeader(t, resp, "X-Avatar-Status", "ok")
		h.settle()
	}
	// Past max-stale the last good avatar is finally let go.
	h.clock.Advance(5 * 24 * time.Hour)
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "unavailable")
}

// The name, which no signature covers, draws placeholders only: an avatar
// is rendered once per size and format whatever names it is asked with,
// and names with the same initials share one placeholder drawing.
func TestNameDoesNotForkRenders(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *Config) { c.Metrics = reg })
	h.avatar("79001234567@c.us", 640)
	h.gw.Set("79001234568@c.us", fake.PrivacyAnswer())
	var etag string
	for i, name := range []string{"", "Anna", "Bob", "Anna+Lee", ""} {
		resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64&name=" + name)
		h.settle()
		wantHeader(t, resp, "X-Avatar-Status", "ok")
		if i == 0 {
			etag = resp.Header.Get("ETag")
			continue
		}
		wantHeader(t, resp, "Cache-Status", "avatarproxy; hit")
		wantHeader(t, resp, "ETag", etag)
	}
	var tags []string
	for _, name := range []string{"Anna+Lee", "Alan+Lake", "Anna+Lee", "Bob"} {
		resp, _ := h.get("/avatar/79001234568@c.us.jpg?size=64&name=" + name)
		h.settle()
		wantHeader(t, resp, "X-Avatar-Status", "privacy")
		tags = append(tags, resp.Header.Get("ETag"))
	}
	if tags[0] != tags[1] || tags[0] != tags[2] || tags[0] == tags[3] {
		t.Errorf("placeholder ETags %q: want AL, AL, AL alike and B apart", tags)
	}
	for stage, want := range map[string]uint64{"resize": 1, "placeholder": 2} {
		if got := stageCount(t, reg, stage); got != want {
			t.Errorf("%s stage ran %d times, want %d", stage, got, want)
		}
	}
}

// Silhouettes and blanks do not depend on the chat: every chat without an
// avatar shares one drawing (and one cache entry) per kind, size and
// format, where initials take the chat's colour.
func TestSilhouetteDrawnOncePerLook(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *Config) { c.Metrics = reg })
	people := []string{"79001234561@c.us", "79001234562@c.us", "79001234563@c.us"}
	groups := []string{"79001234561-1581234048@g.us", "79001234562-1581234048@g.us"}
	for _, chat := range append(people, groups...) {
		h.gw.Set(chat, fake.NoAvatarAnswer())
	}
	etags := func(chats []string, query string) []string {
		var tags []string
		for _, chat := range chats {
			resp, _ := h.get("/avatar/" + chat + ".png" + query)
			h.settle()
			wantHeader(t, resp, "X-Avatar-Status", "no-avatar")
			tags = append(tags, resp.Header.Get("ETag"))
		}
		return tags
	}
	for _, tc := range []struct {
		chats []string
		query string
	}{
		{people, "?size=48"},
		{groups, "?size=48"},
		{people, "?size=48&d=blank"},
	} {
		tags := etags(tc.chats, tc.query)
		for _, tag := range tags[1:] {
			if tag != tags[0] {
				t.Errorf("%s: ETags %q differ", tc.query, tags)
			}
		}
	}
	if got := stageCount(t, reg, "placeholder"); got != 3 {
		t.Errorf("placeholder stage ran %d times for 3 looks over %d chats, want 3", got, len(people)+len(groups))
	}
	// Initials keep the chat's colour: two chats, two drawings.
	tags := etags(people[:2], "?size=48&name=Anna")
	if tags[0] == tags[1] {
		t.Errorf("initials of two chats share ETag %q; want each chat's colour", tags[0])
	}
}

// A group whose name gives no drawable initials (a script the font lacks,
// or no letters at all) still gets a group glyph, on its colour, and not
// a single person.
func TestGroupInitialsFallbackIsGroup(t *testing.T) {
	h := newHarness(t)
	const group, s = "79001234561-1581234048@g.us", 100
	h.gw.Set(group, fake.NoAvatarAnswer())
	for _, name := range []string{"%E7%8E%8B%E5%B0%8F%E6%98%8E", "2024"} { // 王小明
		resp, body := h.get("/avatar/" + group + ".png?size=100&name=" + name)
		h.settle()
		wantHeader(t, resp, "X-Avatar-Status", "no-avatar")
		img, err := png.Decode(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		bg := img.At(0, 0)
		// The left figure's head of the group glyph; beside a lone
		// person's head, above its shoulders.
		if got := img.At(s/5, s*48/100); got == bg {
			t.Errorf("name %s: (20,48) is background %v; want the group's left figure", name, bg)
		}
	}
}

// stageCount is how many times reg's stage histogram saw stage.
func stageCount(t *testing.T, reg *prometheus.Registry, stage string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "avatarproxy_stage_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// A refresh that keeps failing backs off: a stale avatar whose new link the
// CDN refuses costs the gateway one refresh per back-off, not one per view.
func TestRefreshBacksOff(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	// The contact changes picture, and the new link is dead on the CDN.
	path := h.cdn.Add(fake.Portrait("a new face", 640))
	h.cdn.Script(path, fake.Behavior{Answer: &fake.Answer{Status: 404}})
	h.gw.Set("79001234567@c.us", fake.AvatarAnswer(h.cdn.URL(h.cdnURL, path, h.clock.Now().Add(72*time.Hour))))
	h.clock.Advance(25 * time.Hour)
	calls := func() int { return h.gw.Recorder.Calls() }
	before := calls()
	views := func(n int) {
		for range n {
			resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
			wantHeader(t, resp, "X-Avatar-Status", "ok")
			h.settle()
			h.clock.Advance(time.Second)
		}
	}
	views(20) // 20 s: one refresh (a resolve, and one more for the dead link)
	if n := calls() - before; n != 2 {
		t.Fatalf("gateway calls in the first 20 s of stale views = %d, want 2", n)
	}
	if n := h.srv.stats.RefreshErrors.Load(); n != 1 {
		t.Errorf("refresh errors = %d, want 1", n)
	}
	h.clock.Advance(time.Minute)
	views(1) // the back-off has passed: one more refresh, which fails too
	views(100)
	if n := calls() - before; n != 4 {
		t.Fatalf("gateway calls after the first back-off = %d, want 4", n)
	}
	// The CDN serves the new picture again: the next refresh after the
	// (now two-minute) back-off replaces the stale avatar and clears it.
	h.cdn.Script(path, fake.Behavior{})
	h.clock.Advance(2 * time.Minute)
	views(1)
	if n := calls() - before; n != 5 {
		t.Fatalf("gateway calls after the second back-off = %d, want 5", n)
	}
	// The old variant retired with its picture: this size is rendered anew
	// from the refreshed source, then a plain hit.
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=render")
	resp, _ = h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit")
}

// An uncertain negative answer to a refresh does not replace the avatar
// held: it is served stale, as for a failed refresh, and the refresh backs
// off. With HideStatus an uncertain answer keeps the negative TTL like the
// others, which would otherwise tell it apart.
func TestUncertainAnswerKeepsTheAvatar(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	_, body := h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	inner := h.srv.cfg.Resolver
	var calls atomic.Int32
	h.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		calls.Add(1)
		return upstream.Result{State: upstream.StateNoAvatar, Uncertain: true}, nil
	})
	h.clock.Advance(25 * time.Hour)
	for range 3 {
		resp, b := h.get("/avatar/79001234567@c.us.jpg?size=64")
		h.settle()
		wantHeader(t, resp, "X-Avatar-Status", "ok")
		if !bytes.Equal(b, body) {
			t.Fatal("the avatar was replaced by an uncertain answer")
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("gateway calls = %d, want 1 (then the refresh backs off)", n)
	}
	if n := h.srv.stats.RefreshErrors.Load(); n != 1 {
		t.Errorf("refresh errors = %d, want 1", n)
	}

	h2 := newHarness(t, func(c *Config) { c.HideStatus = true })
	h2.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		if req.Chat.String() == "79001234567@c.us" {
			return upstream.Result{State: upstream.StateNotOnWhatsApp, Uncertain: true}, nil
		}
		return inner.Resolve(ctx, req)
	})
	h2.gw.Set("79001234568@c.us", fake.PrivacyAnswer())
	a, _ := h2.get("/avatar/79001234567@c.us.jpg?size=64")
	b, _ := h2.get("/avatar/79001234568@c.us.jpg?size=64")
	wantHeader(t, a, "Cache-Control", b.Header.Get("Cache-Control"))
}

// A negative MaxStale (AVATAR_MAX_STALE=0) never serves past freshness and
// says so to downstream caches: no stale-* directives.
func TestNoStaleWindow(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxStale = -1 })
	h.avatar("79001234567@c.us", 640)
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Control", "public, max-age=86400")
	h.settle()
	h.clock.Advance(25 * time.Hour)
	resp, _ = h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; fwd=uri-miss")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	if n := h.gw.Recorder.Calls(); n != 2 {
		t.Errorf("gateway calls = %d, want 2: the expired avatar is asked for again", n)
	}
}

func TestNegativeTTL(t *testing.T) {
	h := newHarness(t)
	h.gw.Set("79001234567@c.us", fake.PrivacyAnswer())
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "privacy")
	h.settle()
	h.clock.Advance(5 * time.Hour)
	resp, _ = h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Control", "public, max-age=3600")
	if n := h.gw.Recorder.Calls(); n != 1 {
		t.Fatalf("gateway calls = %d within the negative TTL", n)
	}
	// The person sets a picture; after the negative TTL we notice.
	h.avatar("79001234567@c.us", 640)
	h.clock.Advance(2 * time.Hour)
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	resp, body := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	decode(t, body)
}

func TestPurge(t *testing.T) {
	const admin = "admin-token-0123456789"
	h := newHarness(t, func(c *Config) { c.AdminToken = admin })
	h.avatar("79001234567@c.us", 640)
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.get("/avatar/79001234567@c.us.png?size=32")
	h.settle()

	if r := h.do(http.MethodDelete, "/avatar/79001234567@c.us"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", r.StatusCode)
	}
	if r := h.do(http.MethodDelete, "/avatar/79001234567@c.us", "Authorization", "Bearer wrong"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", r.StatusCode)
	}
	if r := h.do(http.MethodDelete, "/avatar/79001234567", "Authorization", "Bearer "+admin); r.StatusCode != http.StatusNoContent {
		t.Fatalf("purge: %d", r.StatusCode)
	}
	h.settle()
	// The first variant goes to the gateway again; the second is rendered
	// from the new source, not served from its purged cache entry.
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; fwd=uri-miss")
	h.settle()
	resp, _ = h.get("/avatar/79001234567@c.us.png?size=32")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit; detail=render")
	h.settle()
	if n := h.gw.Recorder.Calls(); n != 2 {
		t.Errorf("gateway calls = %d, want 2 (the purge forgot the chat)", n)
	}
}

// A panic inside a fill (a decoder bug, say) costs that request an
// unavailable placeholder, not the process and not a 500.
func TestFillPanicIsContained(t *testing.T) {
	h := newHarness(t)
	h.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		panic("decoder exploded")
	})
	resp, body := h.get("/avatar/79001234567@c.us.jpg?size=32")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	wantHeader(t, resp, "X-Avatar-Status", "unavailable")
	wantHeader(t, resp, "Cache-Control", "no-store")
	decode(t, body)
	if !strings.Contains(h.logs.String(), "decoder exploded") {
		t.Error("the panic was not logged")
	}
}

// A source load that panics hands its callers an error, never the panic:
// singleflight re-raises a leader's panic in every caller that joined it,
// and a background refresh that joined has no recover above the join.
func TestSourcePanicIsAnError(t *testing.T) {
	h := newHarness(t)
	h.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
		panic("decoder exploded")
	})
	_, _, _, _, err := h.srv.source(context.Background(), mustChat(t, "79001234567@c.us"), false)
	if err == nil || !strings.Contains(err.Error(), "decoder exploded") {
		t.Fatalf("source: err %v, want the panic as an error", err)
	}
}

// Renders run one per CPU even when GOMAXPROCS is set above the CPU count
// for sharing cores, and never zero.
func TestRenderSlots(t *testing.T) {
	for _, c := range []struct{ procs, cpus, want int }{
		{2, 2, 2}, // the default
		{4, 2, 2}, // GOMAXPROCS raised for a co-located neighbour
		{1, 8, 1}, // GOMAXPROCS lowered, or a CPU quota
		{0, 0, 1}, // nonsense never means no renders at all
		{16, 16, 16},
	} {
		if got := renderSlots(c.procs, c.cpus); got != c.want {
			t.Errorf("renderSlots(%d, %d) = %d, want %d", c.procs, c.cpus, got, c.want)
		}
	}
}
