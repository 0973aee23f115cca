package proxy

import (
	"bytes"
	"context"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

const (
	testID    = "1101000042"
	testToken = "sekret0token0a1b2c3d4e5f"
)

// syncBuffer is a goroutine-safe log sink, and an access log.
type syncBuffer struct{ testkit.Buffer }

// WriteLine makes a syncBuffer the server's access log, with its lines
// formatted at once.
func (s *syncBuffer) WriteLine(_ uint64, rec []byte) { _, _ = s.Write(jsonAccess(nil, rec)) }

var jsonAccess = AccessFormat(false)

// harness is a Server wired to a fake Green API and a fake CDN, both real
// HTTP servers on 127.0.0.1, with the real resolver and fetcher between.
type harness struct {
	t      testing.TB
	gw     *fake.GreenAPI
	gwURL  string
	cdn    *fake.CDN
	cdnURL string
	clock  *testkit.Clock
	logs   *syncBuffer
	srv    *Server
}

type option func(*Config)

// newHarness serves tests and benchmarks alike.
func newHarness(t testing.TB, opts ...option) *harness {
	t.Helper()
	h := &harness{t: t, clock: testkit.NewClock(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)), logs: &syncBuffer{}}
	h.gw = fake.NewGreenAPI(testID, testToken)
	gws := httptest.NewServer(h.gw)
	t.Cleanup(gws.Close)
	h.gwURL = gws.URL
	h.cdn = fake.NewCDN()
	h.cdn.Now = h.clock.Now
	cdns := httptest.NewServer(h.cdn)
	t.Cleanup(cdns.Close)
	h.cdnURL = cdns.URL

	logger := h.logs.Logger()
	gw, err := upstream.NewGreenAPI(upstream.GreenAPIConfig{
		BaseURL: gws.URL, IDInstance: testID, Token: testToken, Timeout: 2 * time.Second, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	fetcher, err := upstream.NewFetcher(upstream.FetcherConfig{
		Allow: []string{strings.TrimPrefix(cdns.URL, "http://")}, AllowPrivate: true, Timeout: 2 * time.Second, Logger: logger, Now: h.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Resolver:         gw,
		Fetcher:          fetcher,
		MemoryBytes:      64 << 20,
		FirstLoadTimeout: 10 * time.Second,
		Logger:           logger,
		Now:              h.clock.Now,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.srv, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.srv.Shutdown(ctx)
	})
	return h
}

// listen serves the harness's server on a loopback socket, as Serve runs
// in production (internal/sockio connections, the real clock of the
// socket), and returns its address. Shutdown at cleanup stops it.
func (h *harness) listen() string {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	go func() { _ = h.srv.Serve(ln) }()
	return ln.Addr().String()
}

// avatar scripts chat to have a generated picture of the given edge on the
// fake CDN and returns the picture's link.
func (h *harness) avatar(chat string, edge int) string {
	path := h.cdn.Add(fake.Portrait(chat, edge))
	link := h.cdn.URL(h.cdnURL, path, h.clock.Now().Add(48*time.Hour))
	h.gw.Set(chat, fake.AvatarAnswer(link))
	return link
}

// do sends one request through the fiber app (in memory, no socket).
func (h *harness) do(method, target string, hdr ...string) *http.Response {
	h.t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := h.srv.App().Test(req, -1)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, target, err)
	}
	return resp
}

func (h *harness) get(target string, hdr ...string) (*http.Response, []byte) {
	h.t.Helper()
	resp := h.do(http.MethodGet, target, hdr...)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, body
}

// settle waits for background refreshes and buffered cache writes.
func (h *harness) settle() {
	h.srv.bg.Wait()
	h.srv.mem.Wait()
}

// decode returns the format and size of an image body.
func decode(t *testing.T, body []byte) (string, int, int) {
	t.Helper()
	img, format, err := image.Decode(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("body is not an image (%d bytes, %q...): %v", len(body), firstBytes(body), err)
	}
	b := img.Bounds()
	return format, b.Dx(), b.Dy()
}

func firstBytes(b []byte) string {
	if len(b) > 32 {
		b = b[:32]
	}
	return string(b)
}

func wantHeader(t *testing.T, resp *http.Response, key, want string) {
	t.Helper()
	if got := resp.Header.Get(key); got != want {
		t.Errorf("%s = %q, want %q", key, got, want)
	}
}
