package proxy

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// d=404 means "404 when there is no avatar"; gateway or CDN trouble and a
// client over its rate are something else, and a script must be able to
// tell: 503 and 429, each with Retry-After and no-store.
func TestFallback404Trouble(t *testing.T) {
	check := func(t *testing.T, resp *http.Response, body []byte, code int, text string) {
		t.Helper()
		if resp.StatusCode != code || string(body) != text {
			t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, code, text)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		wantHeader(t, resp, "Cache-Control", "no-store")
		wantHeader(t, resp, "Content-Type", "text/plain; charset=utf-8")
	}

	t.Run("gateway trouble", func(t *testing.T) {
		h := newHarness(t)
		h.gw.Set("79001234501@c.us", fake.StatusAnswer(502))
		// A gateway too slow to answer: the Green API client is called with
		// its deadline already past, which is where a slow answer leaves it,
		// without the wait. In time, the answer would be a 404.
		const slow = "79001234502@c.us"
		h.gw.Set(slow, fake.NoAvatarAnswer())
		next := h.srv.cfg.Resolver
		h.srv.cfg.Resolver = upstream.ResolverFunc(func(ctx context.Context, req upstream.Request) (upstream.Result, error) {
			if req.Chat.String() == slow {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, 0)
				defer cancel()
			}
			return next.Resolve(ctx, req)
		})
		for _, chat := range []string{"79001234501@c.us", "79001234502@c.us"} {
			resp, body := h.get("/avatar/" + chat + ".jpg?size=40&d=404")
			check(t, resp, body, http.StatusServiceUnavailable, "avatar unavailable, retry later\n")
			wantHeader(t, resp, "X-Avatar-Status", "unavailable")
		}
		// A known no-avatar state is still the 404 it always was.
		h.gw.Set("79001234503@c.us", fake.NoAvatarAnswer())
		if resp, body := h.get("/avatar/79001234503@c.us.jpg?d=404"); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Retry-After") != "" {
			t.Errorf("no avatar: %d %q, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	})

	t.Run("first load timeout", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		h := newHarness(t, func(c *Config) { c.FirstLoadTimeout = 20 * time.Millisecond })
		h.avatar("79001234567@c.us", 640)
		h.srv.cfg.Resolver = holdResolver{h.srv.cfg.Resolver, release}
		resp, body := h.get("/avatar/79001234567@c.us.jpg?size=64&d=404")
		check(t, resp, body, http.StatusServiceUnavailable, "avatar unavailable, retry later\n")
	})

	t.Run("client limit", func(t *testing.T) {
		h := newHarness(t, func(c *Config) { c.ClientRPS = 1 })
		h.gw.Set("79001234503@c.us", fake.NoAvatarAnswer())
		limited := 0
		for range 5 {
			resp, body := h.get("/avatar/79001234503@c.us.jpg?d=404")
			if resp.StatusCode == http.StatusNotFound {
				continue
			}
			limited++
			check(t, resp, body, http.StatusTooManyRequests, "too many requests, retry later\n")
		}
		if limited != 3 {
			t.Errorf("%d of 5 limited at 1 rps (burst 2), want 3", limited)
		}
	})
}
