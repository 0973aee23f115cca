package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// answer is one response as a client sees it, with the headers that change
// per request (Date; a generated X-Request-ID) blanked.
func answer(ctx *fasthttp.RequestCtx, sentID bool) string {
	var hdr []string
	ctx.Response.Header.VisitAll(func(k, v []byte) {
		switch {
		case string(k) == "Date":
			v = []byte("<date>")
		case strings.EqualFold(string(k), "X-Request-ID") && !sentID:
			v = []byte("<generated>")
		}
		hdr = append(hdr, string(k)+": "+string(v))
	})
	sort.Strings(hdr)
	return fmt.Sprintf("%d\n%s\n%x", ctx.Response.StatusCode(), strings.Join(hdr, "\n"), ctx.Response.Body())
}

// switchLog passes access lines on to whichever log the test points it at.
type switchLog struct{ to LineWriter }

func (s *switchLog) WriteLine(hint uint64, line []byte) {
	if s.to != nil {
		s.to.WriteLine(hint, line)
	}
}

// logFields blanks what differs between two lines of the same request.
var logFields = regexp.MustCompile(`"(time|duration|id)":("[^"]*"|\d+)`)

// TestFastPathMatchesFiber sends every kind of request through the server's
// handler (fast path first) and through the fiber app alone, and wants the
// same bytes back, the same access-log line, and the fast path to have
// served exactly the memory hits, leaving everything else untouched.
func TestFastPathMatchesFiber(t *testing.T) {
	const chat, chat2 = "79001234561@c.us", "79001234562@c.us"
	key := []byte("fast-path-key")
	signer := NewSigner([][]byte{key})
	for _, mode := range []string{"unsigned", "signed", "hidden status"} {
		t.Run(mode, func(t *testing.T) {
			var fastLog, fiberLog syncBuffer
			sink := &switchLog{}
			h := newHarness(t, func(c *Config) {
				c.AccessLog = sink
				if mode != "unsigned" {
					c.SigningKeys = [][]byte{key}
				}
				c.HideStatus = mode == "hidden status"
			})
			h.avatar(chat, 640)
			h.avatar(chat2, 320)
			sig := func(c string) string {
				if mode == "unsigned" {
					return ""
				}
				return "&sig=" + signer.Sign(c)
			}
			url := func(c, ext, q string) string { return "/avatar/" + c + "." + ext + "?size=128" + q + sig(c) }
			exp := h.clock.Now().Add(time.Hour).Unix()
			expired := h.clock.Now().Add(-time.Hour).Unix()
			expURL := func(at int64) string {
				return "/avatar/" + chat + ".jpg?size=128&exp=" + strconv.FormatInt(at, 10) + "&sig=" + signer.SignExpiring(chat, at)
			}

			fast := h.srv.Handler()
			fiberOnly := h.srv.App().Handler()
			warm := func(target string) {
				for range 2 {
					fiberOnly(fastCtx(target))
					h.settle()
				}
			}
			hit := url(chat, "jpg", "")
			warm(hit)
			warm(url(chat, "png", "&name=Ann+Lee&d=initials"))
			warm(url(chat2, "jpg", ""))
			etag := func() string {
				ctx := fastCtx(hit)
				fiberOnly(ctx)
				return string(ctx.Response.Header.Peek("ETag"))
			}()

			type tc struct {
				name   string
				method string
				target string
				hdr    []string
				served bool // by the fast path
				// fastTarget, when set, is what the second run asks for:
				// a miss fills the cache, so the runs need two cold chats.
				fastTarget string
			}
			cases := []tc{
				{"hit", "GET", hit, nil, true, ""},
				{"hit, request id", "GET", hit, []string{"X-Request-ID", "req-42"}, true, ""},
				{"hit, png, name", "GET", url(chat, "png", "&name=Ann+Lee&d=initials"), nil, true, ""},
				{"hit, other chat", "GET", url(chat2, "jpg", ""), nil, true, ""},
				{"HEAD", "HEAD", hit, nil, true, ""},
				{"304", "GET", hit, []string{"If-None-Match", etag}, true, ""},
				{"304, weak list", "GET", hit, []string{"If-None-Match", `"x", W/` + etag}, true, ""},
				{"200, other etag", "GET", hit, []string{"If-None-Match", `"other"`}, true, ""},
				{"hit, repeated size", "GET", hit + "&size=64", nil, true, ""},
				{"hit, valueless and empty pairs", "GET", hit + "&&flag&x=", nil, true, ""},
				{"hit, absolute URI", "GET", "http://avatars.example.com" + hit, nil, true, ""},
				{"miss", "GET", url("79001234563@c.us", "jpg", ""), nil, false, url("79001234564@c.us", "jpg", "")},
				{"bad size", "GET", "/avatar/" + chat + ".jpg?size=99999" + sig(chat), nil, false, ""},
				{"bad chat", "GET", "/avatar/12ab@c.us.jpg", nil, false, ""},
				{"bad format", "GET", "/avatar/" + chat + ".gif" + strings.Replace(sig(chat), "&", "?", 1), nil, false, ""},
				{"sub path", "GET", "/avatar/x/" + chat + ".jpg", nil, false, ""},
				{"other route", "GET", "/healthz", nil, false, ""},
				{"not found", "GET", "/nope", nil, false, ""},
				{"POST", "POST", hit, nil, false, ""},
			}
			if mode != "unsigned" {
				cases = append(cases,
					tc{"no sig", "GET", "/avatar/" + chat + ".jpg?size=128", nil, false, ""},
					tc{"bad sig", "GET", "/avatar/" + chat + ".jpg?size=128&sig=AAAA", nil, false, ""},
					tc{"other chat's sig", "GET", "/avatar/" + chat2 + ".jpg?size=128" + sig(chat), nil, false, ""},
					tc{"expiring, valid", "GET", expURL(exp), nil, true, ""},
					tc{"expiring, expired", "GET", expURL(expired), nil, false, ""},
				)
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					mkFor := func(target string) *fasthttp.RequestCtx {
						ctx := fastCtx(target, c.hdr...)
						ctx.Request.Header.SetMethod(c.method)
						return ctx
					}
					mk := func() *fasthttp.RequestCtx { return mkFor(c.target) }
					probe := mk()
					if served := h.srv.serveFast(probe); served != c.served {
						t.Fatalf("fast path served=%v, want %v", served, c.served)
					} else if !served && answer(probe, true) != answer(mk(), true) {
						t.Fatalf("fast path declined but wrote: %s", answer(probe, true))
					}
					h.settle()

					sink.to = &fiberLog
					a := mk()
					fiberOnly(a)
					h.settle()
					sink.to = &fastLog
					b := mk()
					if c.fastTarget != "" {
						b = mkFor(c.fastTarget)
					}
					fast(b)
					h.settle()
					sink.to = nil
					sentID := len(c.hdr) > 0 && c.hdr[0] == "X-Request-ID"
					if x, y := answer(a, sentID), answer(b, sentID); x != y {
						t.Errorf("fiber and fast path differ:\nfiber:\n%s\nfast:\n%s", x, y)
					}
				})
			}
			// The fiber app logs the requests the fast path declines, and
			// each path logs every request once.
			masked := regexp.MustCompile(`\*+456[34]@`)
			fl := masked.ReplaceAllString(logFields.ReplaceAllString(fiberLog.String(), "$1"), "<cold>@")
			sl := masked.ReplaceAllString(logFields.ReplaceAllString(fastLog.String(), "$1"), "<cold>@")
			if fl != sl || strings.Count(fl, "\n") != len(cases) {
				t.Errorf("access logs differ or miss lines:\nfiber:\n%s\nfast:\n%s", fl, sl)
			}
		})
	}
}

// A server with a per-client rate limit leaves every request to fiber,
// where the client address rules live.
func TestFastPathOffWithClientLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ClientRPS = 1000 })
	h.avatar(benchChat, 640)
	target := "/avatar/" + benchChat + ".jpg?size=64"
	h.get(target)
	h.settle()
	if resp, _ := h.get(target); resp.Header.Get("Cache-Status") != csHit {
		t.Fatalf("not a hit: %q", resp.Header.Get("Cache-Status"))
	}
	if h.srv.serveFast(fastCtx(target)) {
		t.Error("the fast path answered with a client limit set")
	}
}

// A panic on the fast path is a 500 with the usual body, not a dead process.
func TestFastPathRecovers(t *testing.T) {
	h := newHarness(t)
	h.avatar(benchChat, 640)
	target := "/avatar/" + benchChat + ".jpg?size=64"
	h.get(target)
	h.settle()
	h.srv.cfg.Now = func() time.Time { panic("clock broke") }
	ctx := fastCtx(target)
	h.srv.Handler()(ctx)
	if ctx.Response.StatusCode() != 500 || !bytes.Equal(ctx.Response.Body(), []byte("internal error\n")) {
		t.Errorf("got %d %q", ctx.Response.StatusCode(), ctx.Response.Body())
	}
	if !strings.Contains(h.logs.String(), "clock broke") || strings.Contains(h.logs.String(), "79001234561") {
		t.Errorf("panic not logged, or logged with the number:\n%s", h.logs.String())
	}
}

// TestWallClockOverSocket runs a server on the real clock behind a real
// listener, where a request's time is the one fasthttp reads for it (lazily,
// once): expiring links must still die on time on the fast path, and the
// access line must carry the wall-clock time and a sane duration.
func TestWallClockOverSocket(t *testing.T) {
	const chat = "79001234561@c.us"
	key := []byte("wall-clock-key")
	signer := NewSigner([][]byte{key})
	var logs syncBuffer
	h := newHarness(t, func(c *Config) {
		c.Now = nil // the wall clock
		c.SigningKeys = [][]byte{key}
		c.AccessLog = &logs
	})
	// The fakes' clock follows the wall clock, so the CDN link is fresh.
	h.clock.Advance(time.Since(h.clock.Now()))
	h.avatar(chat, 640)
	base := "http://" + h.listen()
	link := func(at int64) string {
		return base + "/avatar/" + chat + ".jpg?size=128&exp=" + strconv.FormatInt(at, 10) + "&sig=" + signer.SignExpiring(chat, at)
	}
	get := func(url string) *http.Response {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}

	before := time.Now()
	live := link(time.Now().Add(time.Hour).Unix())
	if resp := get(live); resp.StatusCode != 200 {
		t.Fatalf("first request: %d", resp.StatusCode)
	}
	h.settle()
	resp := get(live)
	wantHeader(t, resp, "Cache-Status", csHit)
	// The variant is in memory; a link that died a second ago must not get it.
	if resp := get(link(time.Now().Add(-time.Second).Unix())); resp.StatusCode != 403 {
		t.Errorf("expired link: %d, want 403", resp.StatusCode)
	}
	after := time.Now()

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d access lines, want 3:\n%s", len(lines), logs.String())
	}
	var rec struct {
		Time     time.Time
		Duration time.Duration
		Cache    string
	}
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Cache != csHit || rec.Time.Before(before) || rec.Time.After(after) || rec.Duration < 0 || rec.Duration > after.Sub(before) {
		t.Errorf("hit line %s: want cache %q, a time in [%v, %v] and a duration within it", lines[1], csHit, before, after)
	}
}
