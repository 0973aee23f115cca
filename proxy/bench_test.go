package proxy

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/avatarproxy/avatarproxy/logging"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// benchKey signs the signed-mode benchmarks.
var benchKey = []byte("0123456789abcdef-key")

func withSigning(c *Config) { c.SigningKeys = [][]byte{benchKey} }

// fastCtx is a fasthttp request context for target, served in memory by the
// fiber app's own handler: no socket, no app.Test goroutine and pipe, so a
// benchmark measures routing, parsing, the cache lookup and header writing.
func fastCtx(target string, hdr ...string) *fasthttp.RequestCtx {
	var req fasthttp.Request
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(target)
	req.Header.SetHost("avatars.example.com")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}, nil)
	return ctx
}

// serveFast runs one request through handler and checks the answer; the
// response is reset afterwards so ctx can be reused.
func serveCtx(tb testing.TB, handler fasthttp.RequestHandler, ctx *fasthttp.RequestCtx, wantCode int, wantCacheStatus string) {
	handler(ctx)
	if code := ctx.Response.StatusCode(); code != wantCode {
		tb.Fatalf("status %d, want %d: %q", code, wantCode, firstBytes(ctx.Response.Body()))
	}
	if wantCacheStatus != "" {
		if cs := string(ctx.Response.Header.Peek("Cache-Status")); cs != wantCacheStatus {
			tb.Fatalf("Cache-Status %q, want %q", cs, wantCacheStatus)
		}
	}
	ctx.Response.Reset()
}

const benchChat = "79001234561@c.us"

// warmHit scripts benchChat, fills its 128 px JPEG through the real miss
// path and returns a context whose next request is a memory hit.
func warmHit(b *testing.B, h *harness, target string, hdr ...string) (fasthttp.RequestHandler, *fasthttp.RequestCtx) {
	b.Helper()
	return warmHitWith(b, h, h.srv.Handler(), target, hdr...)
}

func warmHitWith(b *testing.B, h *harness, handler fasthttp.RequestHandler, target string, hdr ...string) (fasthttp.RequestHandler, *fasthttp.RequestCtx) {
	b.Helper()
	h.avatar(benchChat, 640)
	ctx := fastCtx(target, hdr...)
	serveCtx(b, handler, ctx, 200, csMiss)
	h.settle()
	serveCtx(b, handler, ctx, 200, csHit)
	return handler, ctx
}

// BenchmarkHit is the memory-hit path: parse, cache lookup, headers, a
// shared body. It runs through the server's whole handler (the fast path)
// with one reused fasthttp context (no socket), unsigned as in the demo.
func BenchmarkHit(b *testing.B) {
	h := newHarness(b)
	handler, ctx := warmHit(b, h, "/avatar/"+benchChat+".jpg?size=128")
	b.ReportAllocs()
	for b.Loop() {
		serveCtx(b, handler, ctx, 200, "")
	}
}

// BenchmarkHitFiber is BenchmarkHit through the fiber route alone, without
// the fast path: what fiber's per-request work costs.
func BenchmarkHitFiber(b *testing.B) {
	h := newHarness(b)
	handler, ctx := warmHitWith(b, h, h.srv.App().Handler(), "/avatar/"+benchChat+".jpg?size=128")
	b.ReportAllocs()
	for b.Loop() {
		serveCtx(b, handler, ctx, 200, "")
	}
}

// BenchmarkHitSigned adds the HMAC-SHA256 signature check of signed mode.
func BenchmarkHitSigned(b *testing.B) {
	h := newHarness(b, withSigning)
	sig := NewSigner([][]byte{benchKey}).Sign(benchChat)
	handler, ctx := warmHit(b, h, "/avatar/"+benchChat+".jpg?size=128&name=Anna+Petrova&sig="+sig)
	b.ReportAllocs()
	for b.Loop() {
		serveCtx(b, handler, ctx, 200, "")
	}
}

// BenchmarkHitParallel is BenchmarkHit from GOMAXPROCS goroutines, each with
// its own context: contention on the cache and the counters shows here.
func BenchmarkHitParallel(b *testing.B) {
	h := newHarness(b)
	target := "/avatar/" + benchChat + ".jpg?size=128"
	handler, _ := warmHit(b, h, target)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := fastCtx(target)
		for pb.Next() {
			serveCtx(b, handler, ctx, 200, "")
		}
	})
}

// BenchmarkNotModified is a revalidation: If-None-Match with the current tag.
func BenchmarkNotModified(b *testing.B) {
	h := newHarness(b)
	target := "/avatar/" + benchChat + ".jpg?size=128"
	handler, ctx := warmHit(b, h, target)
	handler(ctx)
	etag := string(ctx.Response.Header.Peek("ETag"))
	ctx.Response.Reset()
	if etag == "" {
		b.Fatal("no ETag on a hit")
	}
	ctx = fastCtx(target, "If-None-Match", etag)
	b.ReportAllocs()
	for b.Loop() {
		serveCtx(b, handler, ctx, 304, "")
	}
}

// BenchmarkColdMiss is a whole cold miss per iteration: a new chat, one
// gateway call and one CDN download over loopback HTTP, the validating
// decode, the 640->128 render and the cache fill. All chats share one
// picture (one CDN path) so that generating pictures is not measured.
func BenchmarkColdMiss(b *testing.B) {
	h := newHarness(b, func(c *Config) { c.MemoryBytes = 256 << 20 })
	link := h.cdn.URL(h.cdnURL, h.cdn.Add(fake.Portrait("bench", 640)), h.clock.Now().Add(48*time.Hour))
	answer := fake.AvatarAnswer(link)
	handler := h.srv.Handler()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		chat := strconv.Itoa(79100000000+i) + "@c.us"
		i++
		h.gw.Set(chat, answer)
		serveCtx(b, handler, fastCtx("/avatar/"+chat+".jpg?size=128"), 200, csMiss)
	}
}

// The pieces of the hit path on their own, to attribute BenchmarkHit.

func BenchmarkParseAvatar(b *testing.B) {
	q := query{Size: "128", Name: "Anna Petrova", Sig: "yPRrwGpwyPMRd7RiWGq4Hxpc7AzK_YiJLTcdfxsBJsc"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseAvatar(benchChat+".jpg", q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMaskPath: the access line's masking, which every request pays.
func BenchmarkMaskPath(b *testing.B) {
	path := "/avatar/" + benchChat + ".jpg"
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendMaskedPath(buf[:0], path)
	}
}

func BenchmarkVariantKey(b *testing.B) {
	r, err := parseAvatar(benchChat+".jpg", query{Size: "128"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = variantKey(&r)
	}
}

func BenchmarkSignerVerify(b *testing.B) {
	s := NewSigner([][]byte{benchKey})
	sig := s.Sign(benchChat)
	b.ReportAllocs()
	for b.Loop() {
		if !s.Verify(benchChat, sig) {
			b.Fatal("signature refused")
		}
	}
}

// BenchmarkHitAccessLog is BenchmarkHit with the access log on, as the
// binary runs by default: the record is queued on the hit path, and
// formatted and written by the log's own goroutine (to io.Discard here).
func BenchmarkHitAccessLog(b *testing.B) {
	lines := logging.NewLines(io.Discard, 2<<20, AccessFormat(false))
	b.Cleanup(func() { _ = lines.Close(context.Background()) })
	h := newHarness(b, func(c *Config) { c.AccessLog = lines })
	handler, ctx := warmHit(b, h, "/avatar/"+benchChat+".jpg?size=128")
	b.ReportAllocs()
	for b.Loop() {
		serveCtx(b, handler, ctx, 200, "")
	}
}
