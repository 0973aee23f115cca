package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/valyala/fasthttp"

	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

func TestOpaqueTokens(t *testing.T) {
	key := []byte("0123456789abcdef-opaque")
	old := []byte("an-older-key-0123456789")
	h := newHarness(t, func(c *Config) { c.SigningKeys = [][]byte{key, old} })
	h.avatar("79001234567@c.us", 640)
	s := NewSigner([][]byte{key})
	tok := s.Seal("79001234567@c.us")
	if tok != s.Seal("79001234567@c.us") {
		t.Fatal("tokens are not deterministic")
	}
	if strings.Contains(tok, "79001234567") || tok == s.Seal("79001234568@c.us") {
		t.Fatal("token shows the number, or two chats share one")
	}
	resp, body := h.get("/avatar/t/" + tok + ".jpg?size=48")
	if resp.StatusCode != 200 || resp.Header.Get("X-Avatar-Status") != "ok" {
		t.Fatalf("opaque: %d %s", resp.StatusCode, resp.Header.Get("X-Avatar-Status"))
	}
	if _, w, _ := decode(t, body); w != 48 {
		t.Errorf("width %d", w)
	}
	// The plain URL of the same chat shares the cache entry.
	h.settle()
	resp, _ = h.get("/avatar/79001234567@c.us.jpg?size=48&sig=" + s.Sign("79001234567@c.us"))
	wantHeader(t, resp, "Cache-Status", "avatarproxy; hit")

	// Tokens sealed under a rotated-out key still open.
	oldTok := NewSigner([][]byte{old}).Seal("79001234567@c.us")
	if resp, _ := h.get("/avatar/t/" + oldTok + ".png?size=16"); resp.StatusCode != 200 {
		t.Errorf("old-key token: %d", resp.StatusCode)
	}
	// Forged, altered, foreign-key and garbage tokens are refused.
	raw := []byte(tok)
	raw[len(raw)/2] ^= 1
	foreign := NewSigner([][]byte{[]byte("someone-elses-key-0123")}).Seal("79001234567@c.us")
	// So are the spellings with the unused low bits of the last character
	// set: one chat, one URL.
	if len(tok)%4 == 0 {
		t.Fatalf("a token of %d characters has no unused bits; seal a chat of another length", len(tok))
	}
	bad := []string{string(raw), foreign, "AAAA", strings.Repeat("A", 300), "!!!"}
	for bits := byte(1); bits <= 3; bits++ {
		bad = append(bad, flipLast(t, tok, bits))
	}
	for _, bad := range bad {
		if resp, _ := h.get("/avatar/t/" + bad + ".jpg"); resp.StatusCode != http.StatusForbidden {
			t.Errorf("token %q: %d, want 403", bad, resp.StatusCode)
		}
	}
	// A token that opens to something that is not a chat id is a 400.
	if resp, _ := h.get("/avatar/t/" + s.Seal("not a chat") + ".jpg"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad sealed chat: %d", resp.StatusCode)
	}
}

func TestExpiringSignatures(t *testing.T) {
	key := []byte("0123456789abcdef-exp-key")
	h := newHarness(t, func(c *Config) { c.SigningKeys = [][]byte{key} })
	h.avatar("79001234567@c.us", 640)
	s := NewSigner([][]byte{key})
	exp := h.clock.Now().Add(time.Hour).Unix()
	e := strconv.FormatInt(exp, 10)
	good := "/avatar/79001234567@c.us.jpg?size=32&exp=" + e + "&sig=" + s.SignExpiring("79001234567@c.us", exp)
	// The miss (fiber's route) and the hit (the fast path) alike: no cache
	// may keep the answer past the link's end, or serve it stale after.
	for _, cs := range []string{"avatarproxy; fwd=uri-miss", "avatarproxy; hit"} {
		resp, _ := h.get(good)
		if resp.StatusCode != 200 {
			t.Fatalf("valid expiring link: %d", resp.StatusCode)
		}
		wantHeader(t, resp, "Cache-Status", cs)
		wantHeader(t, resp, "Cache-Control", "public, max-age=3600")
		h.settle()
	}
	h.clock.Advance(59 * time.Minute)
	resp, _ := h.get(good)
	wantHeader(t, resp, "Cache-Control", "public, max-age=60")
	// A link that expires after the avatar's freshness ends, even past
	// 2262, says the avatar's own max-age.
	far := "/avatar/79001234567@c.us.jpg?size=32&exp=9999999999&sig=" + s.SignExpiring("79001234567@c.us", 9999999999)
	resp, _ = h.get(far)
	wantHeader(t, resp, "Cache-Control", "public, max-age=82860")
	// The same avatar through a link without an expiry keeps its own terms.
	resp, _ = h.get("/avatar/79001234567@c.us.jpg?size=32&sig=" + s.Sign("79001234567@c.us"))
	wantHeader(t, resp, "Cache-Control", "public, max-age=82860, stale-while-revalidate=604800, stale-if-error=604800")
	// A plain signature does not cover exp, and exp cannot be moved.
	for _, bad := range []string{
		"/avatar/79001234567@c.us.jpg?size=32&exp=" + e + "&sig=" + s.Sign("79001234567@c.us"),
		"/avatar/79001234567@c.us.jpg?size=32&exp=" + strconv.FormatInt(exp+3600, 10) + "&sig=" + s.SignExpiring("79001234567@c.us", exp),
		"/avatar/79001234567@c.us.jpg?size=32&exp=soon&sig=" + s.SignExpiring("79001234567@c.us", exp),
	} {
		if resp, _ := h.get(bad); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", bad, resp.StatusCode)
		}
	}
	h.clock.Advance(time.Hour)
	if resp, _ := h.get(good); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired link: %d, want 403", resp.StatusCode)
	}
}

func TestHideStatus(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.HideStatus = true })
	const chat = "79001234561@c.us"
	const path = "/avatar/" + chat + ".jpg?size=64&name=Ann+Lee"
	// The same chat in each hidden state: a URL holder must not tell them apart.
	var first *http.Response
	var firstBody []byte
	for i, a := range []fake.Answer{fake.PrivacyAnswer(), fake.NoAvatarAnswer(), fake.LegacyNoAvatarAnswer()} {
		h.gw.Set(chat, a)
		resp, body := h.get(path)
		if resp.Header.Get("X-Avatar-Status") != "" {
			t.Fatal("X-Avatar-Status sent with HideStatus")
		}
		if i == 0 {
			first, firstBody = resp, body
		} else {
			if !bytes.Equal(body, firstBody) {
				t.Errorf("answer %d differs from the privacy answer", i)
			}
			for _, k := range []string{"Content-Type", "Content-Length", "Cache-Control", "ETag", "Cache-Status"} {
				if resp.Header.Get(k) != first.Header.Get(k) {
					t.Errorf("answer %d: %s %q vs %q", i, k, resp.Header.Get(k), first.Header.Get(k))
				}
			}
		}
		if err := h.srv.Purge(context.Background(), mustChat(t, chat)); err != nil {
			t.Fatal(err)
		}
		h.settle()
	}
}

func TestClientRateLimit(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ClientRPS = 1 })
	h.avatar("79001234567@c.us", 640)
	limited := 0
	for range 10 {
		resp, body := h.get("/avatar/79001234567@c.us.jpg?size=24")
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
			if resp.Header.Get("Retry-After") == "" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("limited answer headers: %v", resp.Header)
			}
			if f, w, _ := decode(t, body); f != "jpeg" || w != 24 {
				t.Errorf("limited answer is not a 24 px placeholder: %s %d", f, w)
			}
		}
	}
	if limited < 7 {
		t.Errorf("%d of 10 requests limited at 1 rps (burst 2)", limited)
	}
	h.clock.Advance(10 * time.Second)
	if resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=24"); resp.StatusCode != 200 {
		t.Errorf("after waiting: %d", resp.StatusCode)
	}
}

func TestServerTiming(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ServerTiming = true })
	h.avatar("79001234567@c.us", 640)
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64")
	st := resp.Header.Get("Server-Timing")
	for _, stage := range []string{"resolve;dur=", "download;dur=", "resize;dur="} {
		if !strings.Contains(st, stage) {
			t.Errorf("Server-Timing %q lacks %s", st, stage)
		}
	}
	h2 := newHarness(t)
	h2.avatar("79001234567@c.us", 640)
	if resp, _ := h2.get("/avatar/79001234567@c.us.jpg?size=64"); resp.Header.Get("Server-Timing") != "" {
		t.Error("Server-Timing without the setting")
	}
}

func TestReadyz(t *testing.T) {
	reason := ""
	h := newHarness(t, func(c *Config) { c.Ready = func(context.Context) string { return reason } })
	resp, body := h.get("/readyz")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ready"`) {
		t.Fatalf("ready: %d %s", resp.StatusCode, body)
	}
	reason = "gateway breaker open"
	resp, body = h.get("/readyz")
	var got readyBody
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 503 || got.Reason != reason {
		t.Fatalf("not ready: %d %s %v", resp.StatusCode, body, err)
	}
	if r, _ := h.get("/healthz"); r.StatusCode != 200 {
		t.Error("healthz follows readiness; it must stay a liveness check")
	}
}

func TestAccessLog(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, func(c *Config) {
		c.AccessLog = &buf
	})
	h.avatar("79001234567@c.us", 640)
	resp, _ := h.get("/avatar/79001234567@c.us.jpg?size=64&name=Secret+Name", "X-Request-ID", "abc-123")
	wantHeader(t, resp, "X-Request-ID", "abc-123")
	resp2, _ := h.get("/avatar/bad.jpg", "X-Request-ID", "evil\"id with spaces")
	gen := resp2.Header.Get("X-Request-ID")
	if gen == "" || strings.Contains(gen, " ") {
		t.Errorf("invalid request id echoed: %q", gen)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2:\n%s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first["id"] != "abc-123" || first["status"] != float64(200) || first["level"] != "INFO" || first["cache"] != "avatarproxy; fwd=uri-miss" {
		t.Errorf("first line %v", first)
	}
	if second["status"] != float64(400) || second["level"] != "WARN" || second["id"] != gen {
		t.Errorf("second line %v", second)
	}
	if strings.Contains(buf.String(), "79001234567") || strings.Contains(buf.String(), "Secret") {
		t.Errorf("the access log shows a number or a name:\n%s", buf.String())
	}
}

// Over a socket, where the path reaches the log exactly as the client sent
// it: another case and percent-encoded digits are masked too, on the fast
// path (the percent-encoded memory hits), in fiber (the upper-case prefix,
// which the fast path leaves to fiber, and the misses) and on a 404.
func TestAccessLogMasksEveryForm(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, func(c *Config) { c.AccessLog = &buf })
	h.avatar("79001234561@c.us", 640)
	// New's wiring again, with a count of the requests fiber gets: a
	// Cache-Status cannot tell the fast path from fiber's route.
	var reachedFiber atomic.Int64
	fiberApp := h.srv.App().Handler()
	h.srv.App().Server().Handler = h.srv.handler(func(ctx *fasthttp.RequestCtx) {
		reachedFiber.Add(1)
		fiberApp(ctx)
	})
	addr := h.listen()
	for _, c := range []struct {
		path string
		code int
		fast bool // answered by the fast path
	}{
		{"/AVATAR/79001234561@c.us.jpg?size=64", 200, false},
		{"/AVATAR/79001234561@c.us.jpg?size=64", 200, false},
		{"/avatar/%37%39%30%30%31%32%33%34%35%36%31%40c.us.jpg?size=32", 200, false},
		{"/avatar/%37%39%30%30%31%32%33%34%35%36%31%40c.us.jpg?size=32", 200, true},
		{"/avatar/7900123456%31@c.us.jpg?size=32", 200, true},
		{"//avatar/79001234561@c.us.jpg", 404, false},
		{"/avatar/t/../79001234561@c.us.jpg", 404, false},
		// A number as a CRM stores it, and in Arabic-Indic digits: 400s.
		{"/avatar/%2B7%20(900)%20123-45-61.jpg", 400, false},
		{"/avatar/%D9%A7%D9%A9%D9%A0%D9%A0%D9%A1.jpg", 400, false},
	} {
		before := reachedFiber.Load()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		// Written by hand: an HTTP client would clean or re-encode the path.
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", c.path)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		conn.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s: %d, want %d", c.path, resp.StatusCode, c.code)
		}
		if fast := reachedFiber.Load() == before; fast != c.fast {
			t.Errorf("%s: answered by the fast path: %v, want %v", c.path, fast, c.fast)
		}
		h.settle()
	}
	logs := buf.String()
	if n := strings.Count(logs, "\n"); n != 9 {
		t.Fatalf("%d access lines, want 9:\n%s", n, logs)
	}
	for _, leak := range []string{"7900123", "%3", "456%31", "(900)", "123-", "%D9"} {
		if strings.Contains(logs, leak) {
			t.Errorf("the access log shows %q:\n%s", leak, logs)
		}
	}
}

func TestAccessLogText(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, func(c *Config) { c.AccessLog = textLog{&buf} })
	h.avatar("79001234567@c.us", 640)
	h.get("/avatar/79001234567@c.us.jpg?size=64&name=Secret+Name", "X-Request-ID", "abc-123")
	h.get("/nope")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d access lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		` level=INFO msg=request id=abc-123 method=GET path=/avatar/*******4567@c.us.jpg status=200 bytes=`,
		` level=INFO msg=request id=`,
	} {
		if !strings.HasPrefix(lines[i], "time=") || !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %q, want it to contain %q", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], ` cache="avatarproxy; fwd=uri-miss" avatar=ok`) || !strings.Contains(lines[1], "path=/nope status=404") {
		t.Errorf("lines:\n%s", buf.String())
	}
}

// textLog is an access log formatting its lines as text at once.
type textLog struct{ *syncBuffer }

func (l textLog) WriteLine(_ uint64, rec []byte) { _, _ = l.Write(textAccess(nil, rec)) }

var textAccess = AccessFormat(true)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(c *Config) { c.Metrics = reg; c.GatewayName = "greenapi" })
	h.avatar("79001234567@c.us", 640)
	h.gw.Set("79001234568@c.us", fake.PrivacyAnswer())
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.settle()
	h.get("/avatar/79001234567@c.us.jpg?size=64")
	h.get("/avatar/79001234568@c.us.jpg?size=64")
	h.get("/avatar/x.jpg")
	for name, want := range map[string]float64{
		`avatarproxy_requests_total{outcome="memory_hit"}`:                      1,
		`avatarproxy_requests_total{outcome="miss"}`:                            2,
		`avatarproxy_requests_total{outcome="bad_request"}`:                     1,
		`avatarproxy_placeholders_total{reason="privacy"}`:                      1,
		`avatarproxy_gateway_calls_total{gateway="greenapi",outcome="ok"}`:      1,
		`avatarproxy_gateway_calls_total{gateway="greenapi",outcome="privacy"}`: 1,
		`avatarproxy_events_total{event="download"}`:                            1,
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "avatarproxy_stage_duration_seconds"); err != nil || n < 3 {
		t.Errorf("stage histograms: %d series, %v", n, err)
	}
}

// metricValue finds one series in reg's exposition by its name and labels.
func metricValue(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	name, labels, _ := strings.Cut(series, "{")
	labels = strings.TrimSuffix(labels, "}")
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, l := range m.GetLabel() {
				parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if strings.Join(parts, ",") == labels {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// Behind a trusted proxy each client gets its own bucket; a header from an
// untrusted peer is ignored, and what a client writes into the header
// itself does not pick its bucket.
func TestClientRateLimitBehindProxy(t *testing.T) {
	h := newHarness(t, func(c *Config) {
		c.ClientRPS = 1
		c.ClientIPHeader = "X-Forwarded-For"
		c.TrustedProxies = []string{"0.0.0.0", "10.0.0.0/8"} // app.Test's peer is 0.0.0.0
	})
	h.avatar("79001234567@c.us", 640)
	codes := func(xff string) (ok int) {
		for range 3 {
			if r, _ := h.get("/avatar/79001234567@c.us.jpg?size=24", "X-Forwarded-For", xff); r.StatusCode == 200 {
				ok++
			}
		}
		return ok
	}
	// Burst 2 per client: two different clients, one of them behind a
	// second trusted hop, each get 2 of 3 through.
	if a, b := codes("203.0.113.1, 10.0.0.1"), codes("203.0.113.2"); a != 2 || b != 2 {
		t.Errorf("clients got %d and %d answers through, want 2 and 2", a, b)
	}
	// One client, 203.0.113.7, sending a header of its own that the proxy
	// appends to: a new forged address each time is still one bucket.
	ok := 0
	for i := range 6 {
		xff := "198.51.100." + strconv.Itoa(i) + ", 203.0.113.7"
		if r, _ := h.get("/avatar/79001234567@c.us.jpg?size=24", "X-Forwarded-For", xff); r.StatusCode == 200 {
			ok++
		}
	}
	if ok != 2 {
		t.Errorf("a rotated header got %d of 6 through, want 2 (the burst)", ok)
	}
	h2 := newHarness(t, func(c *Config) {
		c.ClientRPS = 1
		c.ClientIPHeader = "X-Forwarded-For"
		c.TrustedProxies = []string{"192.0.2.1"} // not the peer
	})
	h2.avatar("79001234567@c.us", 640)
	ok = 0
	for i := range 6 {
		if r, _ := h2.get("/avatar/79001234567@c.us.jpg?size=24", "X-Forwarded-For", "203.0.113."+strconv.Itoa(i)); r.StatusCode == 200 {
			ok++
		}
	}
	if ok != 2 {
		t.Errorf("untrusted peer's header was believed: %d of 6 through, want 2", ok)
	}
}

func TestClientKey(t *testing.T) {
	l, err := newClientLimiter(1, "X-Forwarded-For", []string{"10.0.0.0/8", "192.0.2.1", "2001:db8:ffff::/48"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer string
		xff  []string // one header line each
		want string
	}{
		{"198.51.100.9", []string{"203.0.113.1"}, "198.51.100.9"}, // untrusted peer
		{"10.1.2.3", nil, "10.1.2.3"},                             // trusted, no header: the proxy itself
		{"10.1.2.3", []string{"203.0.113.1"}, "203.0.113.1"},
		{"10.1.2.3", []string{"1.1.1.1, 2.2.2.2, 203.0.113.1"}, "203.0.113.1"},
		{"10.1.2.3", []string{"1.1.1.1, 203.0.113.1, 192.0.2.1, 10.9.9.9"}, "203.0.113.1"},
		{"10.1.2.3", []string{"1.1.1.1", "203.0.113.1, 10.0.0.2"}, "203.0.113.1"}, // two header lines
		{"10.1.2.3", []string{"10.0.0.7, 10.0.0.2"}, "10.0.0.7"},                  // all trusted: the farthest
		{"10.1.2.3", []string{"1.1.1.1, garbage, 10.0.0.2"}, "10.0.0.2"},          // stops at the last trusted hop
		{"10.1.2.3", []string{"1.1.1.1, 203.0.113.1:4711 ,"}, "203.0.113.1"},
		{"10.1.2.3", []string{"[2001:db8::1]:443"}, "2001:db8::"},
		{"10.1.2.3", []string{"[2001:db8::1]"}, "2001:db8::"},
		{"10.1.2.3", []string{"[]"}, "10.1.2.3"},
		// A proxy appending to an empty header writes ", addr": the first
		// comma is the value's first byte.
		{"10.1.2.3", []string{", 203.0.113.1"}, "203.0.113.1"},
		{"10.1.2.3", []string{"2001:db8:0:0:aaaa::1"}, "2001:db8::"}, // one /64
		{"10.1.2.3", []string{"2001:db8:0:1::1"}, "2001:db8:0:1::"},
		{"10.1.2.3", []string{"::ffff:203.0.113.1"}, "203.0.113.1"},
		{"2001:db8:ffff:1::5", []string{"203.0.113.1, 2001:db8:ffff:2::1"}, "203.0.113.1"},
		{"2001:db8:1:2:3::9", nil, "2001:db8:1:2::"},
	} {
		var req fasthttp.Request
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(c.peer), Port: 1}, nil)
		if got := l.client(&ctx).String(); got != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", c.peer, c.xff, got, c.want)
		}
	}
}

// However many addresses come, the buckets stay bounded, and a new client
// still gets its own.
func TestClientBucketsBounded(t *testing.T) {
	l, err := newClientLimiter(1, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i := range 3 * maxClients {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if _, ok := l.allow(a, now); !ok {
			t.Fatalf("new client %s refused", a)
		}
	}
	n := 0
	for i := range l.shards {
		n += len(l.shards[i].clients)
	}
	// Each of the 3*maxClients new clients past the bound takes the place
	// of one bucket, not of its whole shard: the limiter stays full.
	if n != maxClients {
		t.Errorf("%d buckets, want %d", n, maxClients)
	}
}

// A client that has used up its burst stays limited when its shard is
// swept, and only buckets left idle are forgotten.
func TestClientBucketsSwept(t *testing.T) {
	l, err := newClientLimiter(1, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("203.0.113.1")
	l.allow(a, t0) // its shard is swept now, and next after idleAfter
	t1 := t0.Add(idleAfter)
	for range 2 { // the burst
		if _, ok := l.allow(a, t1); !ok {
			t.Fatal("burst refused")
		}
	}
	if _, ok := l.allow(a, t1.Add(time.Millisecond)); ok {
		t.Error("a sweep forgot a busy client's bucket")
	}

	// 1000 idle clients, then 1000 others idleAfter later: every shard
	// (32) is swept with near certainty, and only the new ones are left.
	for i := range 1000 {
		l.allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), t1)
	}
	t2 := t1.Add(idleAfter + time.Second)
	for i := range 1000 {
		l.allow(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), t2)
	}
	n := 0
	for i := range l.shards {
		for k := range l.shards[i].clients {
			n++
			if k.As4()[1] != 1 {
				t.Errorf("idle client %s kept", k)
			}
		}
	}
	if n != 1000 {
		t.Errorf("%d buckets, want 1000", n)
	}
}

// Below 1/idleAfter rps an emptied bucket takes longer than idleAfter to
// fill again: forgetting it then would hand the client a token early. At
// 1e-12 rps the time to fill is past a Duration's range.
func TestSlowClientRateOutlivesIdle(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	a := netip.MustParseAddr("203.0.113.1")
	for _, c := range []struct {
		rps   float64 // burst 1
		later time.Duration
		back  time.Duration // when the token is back; 0: not tried
	}{
		{0.001, idleAfter + time.Second, 1000 * time.Second},
		{1e-12, 365 * 24 * time.Hour, 0},
	} {
		l, err := newClientLimiter(c.rps, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := l.allow(a, t0); !ok {
			t.Fatalf("%g rps: first request refused", c.rps)
		}
		if _, ok := l.allow(a, t0.Add(c.later)); ok {
			t.Errorf("%g rps: a token again %v later", c.rps, c.later)
		}
		if c.back == 0 {
			continue
		}
		if _, ok := l.allow(a, t0.Add(c.back)); !ok {
			t.Errorf("%g rps: refused once the token is back", c.rps)
		}
	}
}

// Retry-After is the wait rounded up to whole seconds: at 0.5 rps (burst
// 1) the second request waits exactly 2 s, at 1 rps the third 1 s.
func TestClientLimitRetryAfter(t *testing.T) {
	for _, c := range []struct {
		rps  float64
		n    int // the request that is limited
		want string
	}{
		{0.5, 2, "2"},
		{1, 3, "1"},
	} {
		h := newHarness(t, func(cfg *Config) { cfg.ClientRPS = c.rps })
		h.gw.Set("79001234503@c.us", fake.NoAvatarAnswer())
		var resp *http.Response
		for range c.n {
			resp, _ = h.get("/avatar/79001234503@c.us.jpg?size=24")
		}
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("%g rps: request %d: %d, want 429", c.rps, c.n, resp.StatusCode)
			continue
		}
		wantHeader(t, resp, "Retry-After", c.want)
	}
}

// The purge's refusals are not cacheable, the scheme's case does not
// matter, and a 204 logs no body.
func TestPurgeAuth(t *testing.T) {
	const admin = "admin-token-0123456789"
	var buf syncBuffer
	h := newHarness(t, func(c *Config) { c.AdminToken = admin; c.AccessLog = &buf })
	for _, auth := range []string{"", "Bearer wrong", "Basic " + admin, "Bearer" + admin} {
		r := h.do(http.MethodDelete, "/avatar/79001234567@c.us", "Authorization", auth)
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("%q: %d, want 401", auth, r.StatusCode)
		}
		wantHeader(t, r, "WWW-Authenticate", `Bearer realm="avatarproxy"`)
		wantHeader(t, r, "Cache-Control", "no-store")
		wantHeader(t, r, "X-Content-Type-Options", "nosniff")
	}
	for _, auth := range []string{"Bearer " + admin, "bearer " + admin, "BEARER " + admin} {
		if r := h.do(http.MethodDelete, "/avatar/79001234567@c.us", "Authorization", auth); r.StatusCode != http.StatusNoContent {
			t.Errorf("%q: %d, want 204", auth, r.StatusCode)
		}
	}
	if !strings.Contains(buf.String(), `"status":204,"bytes":0,`) {
		t.Errorf("no 204 line with 0 bytes:\n%s", buf.String())
	}
}

// failingDelete is a durable tier whose deletes fail, as a bucket that
// refuses them does.
type failingDelete struct{}

func (failingDelete) Get(context.Context, string) ([]byte, bool, error) { return nil, false, nil }
func (failingDelete) PutAsync(string, []byte) bool                      { return true }
func (failingDelete) Delete(context.Context, string) error              { return errors.New("AccessDenied") }

// A purge the durable tier refuses is a 503 that no cache keeps, with
// the same headers as every other error answer, and a hint to retry.
func TestPurgeFailure(t *testing.T) {
	const admin = "admin-token-0123456789"
	h := newHarness(t, func(c *Config) { c.AdminToken = admin }).replica(t, failingDelete{})
	r := h.do(http.MethodDelete, "/avatar/79001234567@c.us", "Authorization", "Bearer "+admin)
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("purge: %d, want 503", r.StatusCode)
	}
	wantHeader(t, r, "Cache-Control", "no-store")
	wantHeader(t, r, "X-Content-Type-Options", "nosniff")
	wantHeader(t, r, "Retry-After", "1")
}

// A limited answer forwarded nothing, and its Cache-Status says so.
func TestClientLimitCacheStatus(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ClientRPS = 1 })
	h.gw.Set("79001234503@c.us", fake.NoAvatarAnswer())
	for range 2 {
		h.get("/avatar/79001234503@c.us.jpg?size=24")
	}
	resp, _ := h.get("/avatar/79001234503@c.us.jpg?size=24")
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", resp.StatusCode)
	}
	wantHeader(t, resp, "Cache-Status", "avatarproxy; fwd=bypass; detail=client-limit")
}

// A client over its rate gets 429 whatever it sends: preconditions apply
// only to an answer that would otherwise be 2xx (RFC 9110 13.2.1), so a
// matching If-None-Match (the limited placeholder's own tag, or "*") must
// not turn the 429 into a 304 that tells the client to go on.
func TestClientLimitIgnoresPreconditions(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ClientRPS = 1 })
	h.avatar("79001234567@c.us", 640)
	const target = "/avatar/79001234567@c.us.jpg?size=24"
	var tag string
	for range 5 {
		resp, _ := h.get(target)
		if resp.StatusCode == http.StatusTooManyRequests {
			tag = resp.Header.Get("ETag")
			break
		}
	}
	if tag == "" {
		t.Fatal("no tagged 429 in 5 requests at 1 rps")
	}
	for _, inm := range []string{tag, "*", `"x", W/` + tag} {
		resp, body := h.get(target, "If-None-Match", inm)
		if resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("If-None-Match %s while limited: %d, want 429", inm, resp.StatusCode)
			continue
		}
		wantHeader(t, resp, "Cache-Control", "no-store")
		if f, w, _ := decode(t, body); f != "jpeg" || w != 24 {
			t.Errorf("If-None-Match %s: not the 24 px placeholder: %s %d", inm, f, w)
		}
	}
}

// What fasthttp refuses before any handler runs (headers too large, a body
// over the limit, a request that does not parse) still gets the answer of
// every other error and an access line: an operator looking for abuse sees
// it, and the body names the status instead of a generic "bad request".
func TestServerRefusalsAreLogged(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, func(c *Config) { c.AccessLog = &buf })
	addr := h.listen()
	for _, c := range []struct {
		name, req string
		code      int
		body      string
		fields    string // the line's method and path
	}{
		{"headers too large", "GET /avatar/79001234567.jpg HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 9<<10) + "\r\n\r\n",
			http.StatusRequestHeaderFieldsTooLarge, "request header fields too large\n", `"method":"","path":""`},
		// The one refusal that comes after the request line parsed.
		{"body too large", "POST /avatar/79001234567.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("a", 5000),
			http.StatusRequestEntityTooLarge, "request entity too large\n", `"method":"POST","path":"/avatar/*******4567.jpg"`},
		{"does not parse", "GET /avatar/79001234567.jpg HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
			http.StatusBadRequest, "bad request\n", `"method":"","path":""`},
		{"garbage", "GARBAGE\r\n\r\n", http.StatusBadRequest, "bad request\n", `"method":"","path":""`},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := len(buf.String())
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_, _ = io.WriteString(conn, c.req)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.code || string(body) != c.body {
				t.Errorf("%d %q, want %d %q", resp.StatusCode, body, c.code, c.body)
			}
			wantHeader(t, resp, "Cache-Control", "no-store")
			wantHeader(t, resp, "X-Content-Type-Options", "nosniff")
			h.settle()
			line := buf.String()[before:]
			if !strings.Contains(line, fmt.Sprintf(`"status":%d`, c.code)) || !strings.Contains(line, `"level":"WARN"`) {
				t.Errorf("access log %q, want a WARN line with status %d", line, c.code)
			}
			if !strings.Contains(line, c.fields) {
				t.Errorf("access log %q, want %s", line, c.fields)
			}
			if strings.Contains(line, "79001234567") {
				t.Errorf("access log shows the number: %q", line)
			}
		})
	}
}

// A client that resets its connection mid-request is no error of ours: no
// "internal error" in the service log (fiber's handler made the read error
// a 502 and handleError logged it as one), and no access line for an answer
// nobody receives.
func TestClientResetMidRequest(t *testing.T) {
	var buf syncBuffer
	h := newHarness(t, func(c *Config) { c.AccessLog = &buf })
	addr := h.listen()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(conn, "GET /avatar/79001234567.jpg HTTP/1.1\r\nHo")
	// Let the server read the first bytes before the reset.
	srv := h.srv.App().Server()
	for i := 0; srv.GetOpenConnectionsCount() == 0; i++ {
		if i == 1000 {
			t.Fatal("the server never took the connection")
		}
		time.Sleep(time.Millisecond)
	}
	_ = conn.(*net.TCPConn).SetLinger(0) // Close sends a reset
	conn.Close()
	for i := 0; srv.GetOpenConnectionsCount() != 0; i++ {
		if i == 5000 {
			t.Fatal("the server never let the connection go")
		}
		time.Sleep(time.Millisecond)
	}
	if logs := h.logs.String(); strings.Contains(logs, "internal error") {
		t.Errorf("service log: %s", logs)
	}
	if lines := buf.String(); lines != "" {
		t.Errorf("access log: %s", lines)
	}
}
