package proxy

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

func TestAvatarOK(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)

	resp, body := h.get("/avatar/79001234567@c.us.jpg?size=128")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", resp.StatusCode, body)
	}
	if f, w, hgt := decode(t, body); f != "jpeg" || w != 128 || hgt != 128 {
		t.Fatalf("got %s %dx%d, want jpeg 128x128", f, w, hgt)
	}
	wantHeader(t, resp, "Content-Type", "image/jpeg")
	wantHeader(t, resp, "Content-Length", strconv.Itoa(len(body)))
	wantHeader(t, resp, "X-Content-Type-Options", "nosniff")
	wantHeader(t, resp, "Access-Control-Allow-Origin", "*")
	wantHeader(t, resp, "X-Avatar-Status", "ok")
	wantHeader(t, resp, "Cache-Status", "avatarproxy; fwd=uri-miss")
	wantHeader(t, resp, "Cache-Control", "public, max-age=86400, stale-while-revalidate=604800, stale-if-error=604800")
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Errorf("ETag %q is not a strong tag", etag)
	}
	h.settle()

	h.clock.Advance(time.Hour)
	resp2, body2 := h.get("/avatar/79001234567@c.us.jpg?size=128")
	wantHeader(t, resp2, "Cache-Status", "avatarproxy; hit")
	wantHeader(t, resp2, "ETag", etag)
	wantHeader(t, resp2, "Cache-Control", "public, max-age=82800, stale-while-revalidate=604800, stale-if-error=604800")
	if !bytes.Equal(body, body2) {
		t.Error("hit body differs from miss body")
	}
	if n := h.gw.Recorder.Calls(); n != 1 {
		t.Errorf("gateway calls = %d, want 1", n)
	}
}

func TestSameChatEveryForm(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	for _, p := range []string{
		"/avatar/79001234567@c.us.jpg?size=64",
		"/avatar/79001234567.jpg?size=64",
		"/avatar/79001234567@s.whatsapp.net.jpg?size=64",
		"/avatar/79001234567%40c.us.jpg?size=64",
		"/avatar/79001234567@c.us.jpeg?size=64",
	} {
		resp, body := h.get(p)
		if resp.StatusCode != 200 || resp.Header.Get("X-Avatar-Status") != "ok" {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, resp.Header.Get("X-Avatar-Status"))
		}
		if _, w, _ := decode(t, body); w != 64 {
			t.Fatalf("%s: width %d", p, w)
		}
		h.settle()
	}
	if got := h.gw.Chats(); len(got) != 1 || got[0] != "79001234567@c.us" {
		t.Errorf("gateway saw %q, want one call for 79001234567@c.us", got)
	}
}

func TestFormatsAndSizes(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	h.avatar("120363043968066561@g.us", 96)
	cases := []struct {
		path   string
		format string
		edge   int
	}{
		{"/avatar/79001234567@c.us.png?size=200", "png", 200},
		{"/avatar/79001234567@c.us.jpg", "jpeg", 640}, // no size: the source's own
		{"/avatar/79001234567@c.us.jpg?size=1", "jpeg", 1},
		{"/avatar/79001234567@c.us.jpg?size=1024", "jpeg", 1024},
		{"/avatar/120363043968066561@g.us.jpg", "jpeg", 96},
		{"/avatar/120363043968066561@g.us.png?size=512", "png", 512},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, body := h.get(c.path)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d %q", resp.StatusCode, body)
			}
			f, w, hh := decode(t, body)
			if f != c.format || w != c.edge || hh != c.edge {
				t.Fatalf("got %s %dx%d, want %s %dx%d", f, w, hh, c.format, c.edge, c.edge)
			}
			wantHeader(t, resp, "Content-Type", "image/"+c.format)
		})
	}
	h.settle()
	if n := h.cdn.Recorder.Calls(); n != 2 {
		t.Errorf("downloads = %d, want 2 (one per chat, whatever the variants)", n)
	}
	if n := h.gw.Recorder.Calls(); n != 2 {
		t.Errorf("gateway calls = %d, want 2", n)
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t)
	cases := []struct{ path, want string }{
		{"/avatar/79001234567@c.us.gif", "unknown image format"},
		{"/avatar/79001234567@c.us", "unknown image format"},
		{"/avatar/+79001234567@c.us.jpg", "invalid chat id"},
		{"/avatar/79001234567@example.com.jpg", "invalid chat id"},
		{"/avatar/7900%20123@c.us.jpg", "invalid chat id"},
		{"/avatar/09001234567@c.us.jpg", "invalid chat id"},
		{"/avatar/abc@c.us.jpg", "invalid chat id"},
		{"/avatar/..%2F..%2Fetc%2Fpasswd.jpg", "invalid chat id"},
		{"/avatar/" + strings.Repeat("1", 80) + "@c.us.jpg", "invalid chat id"},
		{"/avatar/79001234567:12@c.us.jpg", "invalid chat id"},
		{"/avatar/79001234567@c.us.jpg?size=0", "bad size"},
		{"/avatar/79001234567@c.us.jpg?size=-5", "bad size"},
		{"/avatar/79001234567@c.us.jpg?size=abc", "bad size"},
		{"/avatar/79001234567@c.us.jpg?size=1025", "bad size"},
		{"/avatar/79001234567@c.us.jpg?size=99999999999999999999", "bad size"},
		{"/avatar/79001234567@c.us.jpg?size=064", "bad size"},
		{"/avatar/79001234567@c.us.jpg?d=wavatar", "bad d"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			resp, body := h.get(c.path)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			if !strings.Contains(string(body), c.want) {
				t.Errorf("body %q does not say %q", body, c.want)
			}
			wantHeader(t, resp, "Content-Type", "text/plain; charset=utf-8")
		})
	}
	if n := h.gw.Recorder.Calls(); n != 0 {
		t.Errorf("bad requests reached the gateway %d times", n)
	}
}

// A name that is not UTF-8 (a legacy CRM's Latin-1 "René") is repaired,
// not refused: the picture, or initials from what is left, still show.
func TestNameNotUTF8(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234561@c.us", 640)
	h.gw.Set("79001234562@c.us", fake.NoAvatarAnswer())
	for _, path := range []string{
		"/avatar/79001234561@c.us.jpg?size=64&name=Ren%E9",
		"/avatar/79001234562@c.us.png?size=64&name=%ff%feAnn",
	} {
		resp, body := h.get(path)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, want 200 (%q)", path, resp.StatusCode, firstBytes(body))
		}
		if _, w, _ := decode(t, body); w != 64 {
			t.Errorf("%s: width %d, want 64", path, w)
		}
	}
}

func TestMethods(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	_, body := h.get("/avatar/79001234567@c.us.jpg?size=32")

	head := h.do(http.MethodHead, "/avatar/79001234567@c.us.jpg?size=32")
	if head.StatusCode != 200 {
		t.Fatalf("HEAD status %d", head.StatusCode)
	}
	wantHeader(t, head, "Content-Length", strconv.Itoa(len(body)))
	wantHeader(t, head, "Content-Type", "image/jpeg")
	if b := readAll(t, head); len(b) != 0 {
		t.Errorf("HEAD has a %d-byte body", len(b))
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := h.do(m, "/avatar/79001234567@c.us.jpg")
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s: status %d, want 405", m, r.StatusCode)
		}
	}
	r, _ := h.get("/healthz")
	if r.StatusCode != 200 {
		t.Errorf("/healthz: %d", r.StatusCode)
	}
	wantHeader(t, r, "Cache-Control", "no-store")
}

func TestConditional(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	etag := resp.Header.Get("ETag")
	h.settle()
	for _, inm := range []string{etag, `"nope", ` + etag, "*", "W/" + etag, `W/"x",W/` + etag} {
		r, body := h.get("/avatar/79001234567@c.us.jpg?size=64", "If-None-Match", inm)
		if r.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match %s: status %d, want 304", inm, r.StatusCode)
		}
		if len(body) != 0 {
			t.Errorf("304 with a body")
		}
		wantHeader(t, r, "ETag", etag)
		if !strings.HasPrefix(r.Header.Get("Cache-Control"), "public, max-age=") {
			t.Errorf("304 Cache-Control %q", r.Header.Get("Cache-Control"))
		}
	}
	for _, inm := range []string{`"other"`, `garbage`, `"unterminated`} {
		if r, _ := h.get("/avatar/79001234567@c.us.jpg?size=64", "If-None-Match", inm); r.StatusCode != 200 {
			t.Errorf("If-None-Match %s: status %d, want 200", inm, r.StatusCode)
		}
	}
}

func TestPlaceholders(t *testing.T) {
	h := newHarness(t)
	h.gw.Set("79001234561@c.us", fake.PrivacyAnswer())
	h.gw.Set("79001234562@c.us", fake.NoAvatarAnswer())
	h.gw.Set("79001234563@c.us", fake.LegacyNoAvatarAnswer())
	h.gw.Set("79001234564@c.us", fake.ReasonAnswer("bad request data"))
	h.gw.Set("79001234565@c.us", fake.Text400("bad request data"))
	h.gw.Set("79001234566@c.us", fake.NestValidation400("/waInstance"+testID+"/getAvatar/x"))
	cases := []struct {
		chat, query, status string
		format              string
		edge                int
	}{
		{"79001234561@c.us", "?size=96&name=Анна+Петрова", "privacy", "jpeg", 96},
		{"79001234562@c.us", "?size=48", "no-avatar", "jpeg", 48},
		{"79001234563@c.us", "", "no-avatar", "jpeg", defaultPlaceholderSize},
		{"79001234564@c.us", "?size=32&d=blank", "invalid", "jpeg", 32},
		{"79001234565@c.us", "?size=32&d=mp", "invalid", "jpeg", 32},
		{"79001234566@c.us", "?size=32&d=initials&name=Bob", "invalid", "jpeg", 32},
	}
	for _, c := range cases {
		for _, ext := range []string{".jpg", ".png"} {
			t.Run(c.chat+ext+c.query, func(t *testing.T) {
				resp, body := h.get("/avatar/" + c.chat + ext + c.query)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d %q", resp.StatusCode, body)
				}
				f, w, hh := decode(t, body)
				want := c.format
				if ext == ".png" {
					want = "png"
				}
				if f != want || w != c.edge || hh != c.edge {
					t.Fatalf("got %s %dx%d, want %s %d", f, w, hh, want, c.edge)
				}
				wantHeader(t, resp, "X-Avatar-Status", c.status)
				wantHeader(t, resp, "Cache-Control", "public, max-age=21600") // the negative TTL, nothing more
			})
		}
	}
	// d=404 answers 404 for a known no-avatar state, cached like the image.
	resp, body := h.get("/avatar/79001234562@c.us.jpg?d=404")
	if resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Avatar-Status") != "no-avatar" {
		t.Fatalf("d=404: %d %s %q", resp.StatusCode, resp.Header.Get("X-Avatar-Status"), body)
	}
	if resp.Header.Get("Content-Type") == "image/jpeg" {
		t.Error("d=404 answered with an image content type")
	}
}

func TestPlaceholderLooks(t *testing.T) {
	h := newHarness(t)
	h.gw.Set("79001234562@c.us", fake.NoAvatarAnswer())
	h.gw.Set("120363043968066561@g.us", fake.NoAvatarAnswer())
	_, person := h.get("/avatar/79001234562@c.us.png?size=64")
	_, group := h.get("/avatar/120363043968066561@g.us.png?size=64")
	_, initials := h.get("/avatar/79001234562@c.us.png?size=64&name=Ann")
	_, blank := h.get("/avatar/79001234562@c.us.png?size=64&d=blank")
	if bytes.Equal(person, group) || bytes.Equal(person, initials) || bytes.Equal(person, blank) {
		t.Error("person, group, initials and blank placeholders are not all different")
	}
	_, initialsAgain := h.get("/avatar/79001234562@c.us.png?size=64&name=Ann&d=initials")
	if !bytes.Equal(initials, initialsAgain) {
		t.Error("d=initials with a name differs from the default with a name")
	}
}

func TestSignatures(t *testing.T) {
	key := []byte("0123456789abcdef-test-key")
	old := []byte("old-key-0123456789abcdef")
	h := newHarness(t, func(c *Config) { c.SigningKeys = [][]byte{key, old} })
	h.avatar("79001234567@c.us", 640)
	signNew, signOld := NewSigner([][]byte{key}), NewSigner([][]byte{old})

	cases := []struct {
		name, path string
		want       int
	}{
		{"missing", "/avatar/79001234567@c.us.jpg?size=32", 403},
		{"garbage", "/avatar/79001234567@c.us.jpg?size=32&sig=abc", 403},
		{"other chat's", "/avatar/79001234567@c.us.jpg?size=32&sig=" + signNew.Sign("79001234568@c.us"), 403},
		{"canonical form when the bare number was asked", "/avatar/79001234567.jpg?size=32&sig=" + signNew.Sign("79001234567@c.us"), 403},
		{"good", "/avatar/79001234567@c.us.jpg?size=32&sig=" + signNew.Sign("79001234567@c.us"), 200},
		{"good, percent-encoded @", "/avatar/79001234567%40c.us.jpg?size=32&sig=" + signNew.Sign("79001234567@c.us"), 200},
		{"good, bare number", "/avatar/79001234567.jpg?size=32&sig=" + signNew.Sign("79001234567"), 200},
		{"rotated-out key still verifies", "/avatar/79001234567@c.us.jpg?size=32&sig=" + signOld.Sign("79001234567@c.us"), 200},
	}
	// The last character of a signature carries 2 bits that encode
	// nothing: a spelling with them set is another URL for the same
	// picture, so it is refused.
	for bits := byte(1); bits <= 3; bits++ {
		cases = append(cases, struct {
			name, path string
			want       int
		}{"unused bits " + strconv.Itoa(int(bits)), "/avatar/79001234567@c.us.jpg?size=32&sig=" + flipLast(t, signNew.Sign("79001234567@c.us"), bits), 403})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.get(c.path)
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, c.want, body)
			}
		})
	}
	if h.srv.Sign("79001234567@c.us") != signNew.Sign("79001234567@c.us") {
		t.Error("the first key does not sign")
	}
}

func TestStampede(t *testing.T) {
	h := newHarness(t)
	h.avatar("79001234567@c.us", 640)
	release := make(chan struct{})
	// Hold the gateway until every request is in, so they all miss together.
	h.srv.cfg.Resolver = holdResolver{h.srv.cfg.Resolver, release}

	const n = 200
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	statuses := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, body := h.get("/avatar/79001234567@c.us.jpg?size=128")
			bodies[i], statuses[i] = body, resp.Header.Get("Cache-Status")
		}()
	}
	waitFor(t, func() bool { return h.srv.waiting.Load() == n })
	close(release)
	wg.Wait()
	if c := h.gw.Recorder.Calls(); c != 1 {
		t.Errorf("gateway calls = %d, want 1", c)
	}
	if c := h.cdn.Recorder.Calls(); c != 1 {
		t.Errorf("downloads = %d, want 1", c)
	}
	collapsed := 0
	for i := range n {
		if !bytes.Equal(bodies[i], bodies[0]) {
			t.Fatalf("response %d differs", i)
		}
		if strings.HasSuffix(statuses[i], "; collapsed") {
			collapsed++
		}
	}
	if collapsed == 0 {
		t.Error("no response says it was collapsed")
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	h := newHarness(t)
	h.gw.Set("79001234561@c.us", fake.StatusAnswer(500))
	h.gw.Set("79001234562@c.us", fake.Unauthorized401())
	h.gw.Set("79001234563@c.us", fake.Text400("instance account not authorized"))
	for _, chat := range []string{"79001234561@c.us", "79001234562@c.us", "79001234563@c.us"} {
		resp, body := h.get("/avatar/" + chat + ".jpg?size=16")
		wantHeader(t, resp, "X-Avatar-Status", "unavailable")
		wantHeader(t, resp, "Cache-Control", "no-store")
		if strings.Contains(string(body), testToken) || strings.Contains(fmt.Sprint(resp.Header), testToken) {
			t.Fatal("token in a response")
		}
	}
	h.settle()
	if strings.Contains(h.logs.String(), testToken) {
		t.Fatal("token in the logs")
	}
	if strings.Contains(h.logs.String(), "79001234561") {
		t.Error("an unmasked phone number in the logs")
	}
}

func readAll(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	resp.Body.Close()
	return b.Bytes()
}

// waitFor polls cond: for waiting on goroutines the test cannot hook into.
// It never asserts a duration; the deadline only stops a hung test.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

// holdResolver blocks every call until release is closed.
type holdResolver struct {
	next    Resolver
	release chan struct{}
}

func (h holdResolver) Resolve(ctx context.Context, req upstream.Request) (upstream.Result, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return upstream.Result{}, ctx.Err()
	}
	return h.next.Resolve(ctx, req)
}

// flipLast returns the base64url text s with bits xored into the value of
// its last character.
func flipLast(t *testing.T, s string, bits byte) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	if i < 0 {
		t.Fatalf("%q does not end in base64url", s)
	}
	return s[:len(s)-1] + string(alphabet[byte(i)^bits])
}

// A method fiber does not know (an extension method, or a known one in the
// wrong case: methods are case-sensitive) is answered like every other
// error: through handleError, with no-store, nosniff, a request id and an
// access line. Fiber answers such a method itself, before any middleware
// or error handler runs, with a bare 400 "Invalid http method".
func TestUnknownMethod(t *testing.T) {
	sink := &switchLog{}
	h := newHarness(t, func(c *Config) { c.AccessLog = sink })
	h.avatar("79001234567@c.us", 640)
	handler := h.srv.Handler()
	for _, m := range []string{"FOO", "get", "PROPFIND"} {
		for _, target := range []string{"/avatar/79001234567@c.us.jpg?size=32", "/healthz", "/nope"} {
			var buf syncBuffer
			sink.to = &buf
			ctx := fastCtx(target)
			ctx.Request.Header.SetMethod(m)
			handler(ctx)
			resp := &ctx.Response
			if got := resp.StatusCode(); got != http.StatusNotImplemented {
				t.Errorf("%s %s: status %d, want 501", m, target, got)
			}
			for k, want := range map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"Content-Type":           "text/plain; charset=utf-8",
			} {
				if got := string(resp.Header.Peek(k)); got != want {
					t.Errorf("%s %s: %s = %q, want %q", m, target, k, got, want)
				}
			}
			if !strings.Contains(resp.Header.String(), "\r\nX-Request-ID: ") {
				t.Errorf("%s %s: no X-Request-ID", m, target)
			}
			line := buf.String()
			if !strings.Contains(line, `"status":501`) || !strings.Contains(line, `"method":"`+m+`"`) || !strings.Contains(line, `"level":"WARN"`) {
				t.Errorf("%s %s: access line %q, want one at WARN with status 501 and the method", m, target, line)
			}
			if strings.Contains(line, "79001234567") {
				t.Errorf("%s %s: the access line shows the number: %q", m, target, line)
			}
		}
	}
}
