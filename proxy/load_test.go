package proxy

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
)

// arrivalResolver holds every Resolve until release closes, reporting each
// arrival on arrived, so a test can gather requests behind cold fills
// without sleeping.
type arrivalResolver struct {
	inner   Resolver
	arrived chan string
	release chan struct{}
}

func (r *arrivalResolver) Resolve(ctx context.Context, req upstream.Request) (upstream.Result, error) {
	r.arrived <- req.Chat.String()
	select {
	case <-r.release:
	case <-ctx.Done():
		return upstream.Result{}, ctx.Err()
	}
	return r.inner.Resolve(ctx, req)
}

// TestCoalescingUnderLoad sends 1,000 concurrent requests for 10 cold chats
// (several sizes and formats each, so both the variant fills and the source
// loads collapse) and holds the gateway until all 1,000 wait on a fill:
// exactly one gateway call and one download per chat, and one request per
// chat reported as the miss. Every other request is collapsed, or, for a
// variant whose fill goroutine only reached the source after it was loaded,
// rendered from the loaded source: either way no further gateway call.
func TestCoalescingUnderLoad(t *testing.T) {
	const (
		chats    = 10
		requests = 1000
	)
	hold := &arrivalResolver{arrived: make(chan string, chats*2), release: make(chan struct{})}
	h := newHarness(t, func(c *Config) {
		hold.inner = c.Resolver
		c.Resolver = hold
		c.FirstLoadTimeout = 5 * time.Minute // never the placeholder: this test counts fills
	})
	ids := make([]string, chats)
	for i := range ids {
		ids[i] = "7900123450" + strconv.Itoa(i) + "@c.us"
		h.avatar(ids[i], 256)
	}
	variants := []string{".jpg?size=64", ".jpg?size=128", ".png?size=128", ".jpg?size=32&name=Anna"}

	type answer struct {
		code        int
		cacheStatus string
		err         error
	}
	answers := make(chan answer, requests)
	var wg sync.WaitGroup
	for i := range requests {
		target := "/avatar/" + ids[i%chats] + variants[(i/chats)%len(variants)]
		wg.Go(func() {
			resp, err := h.srv.App().Test(httptest.NewRequest("GET", target, nil), -1)
			if err != nil {
				answers <- answer{err: fmt.Errorf("%s: %w", target, err)}
				return
			}
			resp.Body.Close()
			answers <- answer{code: resp.StatusCode, cacheStatus: resp.Header.Get("Cache-Status")}
		})
	}

	// One source load per chat reaches the gateway; the rest must be
	// waiting on a fill before the gateway answers.
	seen := map[string]bool{}
	for range chats {
		select {
		case c := <-hold.arrived:
			if seen[c] {
				t.Fatalf("a second gateway call for %s while the first is held", c)
			}
			seen[c] = true
		case <-time.After(time.Minute): // a failure guard, not synchronisation
			t.Fatalf("only %d of %d chats reached the gateway", len(seen), chats)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for h.srv.waiting.Load() < requests {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests waiting on a fill", h.srv.waiting.Load(), requests)
		}
		runtime.Gosched()
	}
	close(hold.release)
	wg.Wait()
	close(answers)

	misses, collapsed, rendered := 0, 0, 0
	for a := range answers {
		switch {
		case a.err != nil:
			t.Fatal(a.err)
		case a.code != 200:
			t.Fatalf("status %d (Cache-Status %q), want 200", a.code, a.cacheStatus)
		case a.cacheStatus == csMiss:
			misses++
		case a.cacheStatus == csMissCollapse:
			collapsed++
		case a.cacheStatus == csHitRender:
			rendered++
		default:
			t.Fatalf("Cache-Status %q, want a miss, a collapsed miss or a render", a.cacheStatus)
		}
	}
	if got := h.gw.Recorder.Calls(); got != chats {
		t.Errorf("gateway calls = %d, want %d", got, chats)
	}
	if got := h.cdn.Recorder.Calls(); got != chats {
		t.Errorf("CDN downloads = %d, want %d", got, chats)
	}
	if misses != chats || collapsed+rendered != requests-chats {
		t.Errorf("%d misses, %d collapsed, %d rendered: want %d misses and %d others", misses, collapsed, rendered, chats, requests-chats)
	}
	if got := h.srv.Stats().Collapsed.Load(); got != int64(collapsed) {
		t.Errorf("Stats().Collapsed = %d, want %d", got, collapsed)
	}
}
