package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// cdnT0 is the fake CDN's clock: links are judged against it, not the wall.
var cdnT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type cdnEnv struct {
	cdn *fake.CDN
	srv *httptest.Server
}

func cdnServe(t *testing.T, tls bool) *cdnEnv {
	t.Helper()
	c := fake.NewCDN()
	c.Now = func() time.Time { return cdnT0 }
	var srv *httptest.Server
	if tls {
		srv = httptest.NewTLSServer(c)
	} else {
		srv = httptest.NewServer(c)
	}
	t.Cleanup(srv.Close)
	return &cdnEnv{cdn: c, srv: srv}
}

// link stores data and returns a link to it valid for two days.
func (e *cdnEnv) link(data []byte) string {
	return e.cdn.URL(e.srv.URL, e.cdn.Add(data), cdnT0.Add(48*time.Hour))
}

func cdnFetcher(t *testing.T, cfg upstream.FetcherConfig) *upstream.Fetcher {
	t.Helper()
	if cfg.Allow == nil {
		cfg.Allow = []string{"127.0.0.1:*"}
	}
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return cdnT0 }
	}
	f, err := upstream.NewFetcher(cfg)
	if err != nil {
		t.Fatalf("NewFetcher: %v", err)
	}
	return f
}

// cdnTrust makes f trust the TLS server srv.
func cdnTrust(f *upstream.Fetcher, srv *httptest.Server) {
	upstream.SetTLSForTest(f, srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone())
}

// cdnWant checks that err is an unavailable *Error (Gateway "cdn") matching
// exactly the sentinels in want among the three specific ones.
func cdnWant(t *testing.T, err error, want ...error) *upstream.Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Fetch succeeded, want an error")
	}
	t.Logf("error: %v", err)
	var e *upstream.Error
	if !errors.As(err, &e) || e.Gateway != "cdn" || !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("error %v (%T) is not a cdn *upstream.Error matching ErrUnavailable", err, err)
	}
	for _, s := range []error{upstream.ErrLinkExpired, upstream.ErrForbiddenTarget, upstream.ErrTooLarge} {
		wanted := false
		for _, w := range want {
			wanted = wanted || w == s
		}
		if errors.Is(err, s) != wanted {
			t.Errorf("errors.Is(%v, %v) = %v, want %v", err, s, !wanted, wanted)
		}
	}
	return e
}

func TestFetchSuccess(t *testing.T) {
	env := cdnServe(t, false)
	data := fake.Portrait("79001234567", 96)
	f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true})
	// Extra parameters in forms a URL library likes to normalise: the CDN
	// signs the query as sent, so it must arrive byte for byte.
	link := env.link(data) + "&_nc_ohc=AbC%2F%3d%3D&_nc_ht=pps.whatsapp.net&x=%7e&y=a+b&z"
	got, err := f.Fetch(context.Background(), link)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("Fetch returned %d bytes, want the %d stored", len(got), len(data))
	}
	u, _ := url.Parse(link)
	reqs := env.cdn.Requests()
	if len(reqs) != 1 {
		t.Fatalf("CDN saw %d requests, want 1", len(reqs))
	}
	if reqs[0].RawQuery != u.RawQuery || reqs[0].Path != u.EscapedPath() {
		t.Errorf("CDN saw %s?%s\nwant      %s?%s", reqs[0].Path, reqs[0].RawQuery, u.EscapedPath(), u.RawQuery)
	}
	if reqs[0].UserAgent != "avatarproxy" {
		t.Errorf("User-Agent %q", reqs[0].UserAgent)
	}
}

func TestFetchAnswers(t *testing.T) {
	env := cdnServe(t, false)
	data := fake.Portrait("79001234567", 64)
	path := env.cdn.Add(data)
	valid := env.cdn.URL(env.srv.URL, path, cdnT0.Add(time.Hour))
	script := func(name string, b fake.Behavior) string {
		p := "/v/t61.24694-24/" + name + "_n.jpg"
		env.cdn.Script(p, b)
		return env.cdn.URL(env.srv.URL, p, cdnT0.Add(time.Hour))
	}
	answer := func(a fake.Answer) *fake.Answer { return &a }
	truncPath := env.cdn.Add(fake.Portrait("truncated", 64))
	env.cdn.Script(truncPath, fake.Behavior{Body: fake.BodyTruncated, Sent: 100})
	html := fake.HTMLAnswer(200)
	tests := []struct {
		name   string
		link   string
		status int
		want   []error // sentinels besides ErrUnavailable; nil with ok
		ok     []byte  // the expected bytes, for successes
		retry  time.Duration
	}{
		{name: "expired link", link: env.cdn.URL(env.srv.URL, path, cdnT0.Add(-time.Second)), status: 403, want: []error{upstream.ErrLinkExpired}},
		{name: "expiring now", link: env.cdn.URL(env.srv.URL, path, cdnT0), status: 403, want: []error{upstream.ErrLinkExpired}},
		{name: "unknown path", link: env.cdn.URL(env.srv.URL, "/v/t61.24694-24/1_2_3_n.jpg", cdnT0.Add(time.Hour)), status: 404, want: []error{upstream.ErrLinkExpired}},
		{name: "gone", link: script("gone", fake.Behavior{Answer: answer(fake.StatusAnswer(410))}), status: 410, want: []error{upstream.ErrLinkExpired}},
		{name: "tampered signature", link: strings.Replace(valid, "oh=01_", "oh=01_x", 1), status: 403},
		{name: "no expiry", link: env.srv.URL + path + "?ccb=11-4", status: 403},
		{name: "server error", link: script("e500", fake.Behavior{Answer: answer(fake.StatusAnswer(500))}), status: 500},
		{name: "not modified is not success", link: script("e304", fake.Behavior{Answer: answer(fake.Answer{Status: 304})}), status: 304},
		{name: "rate limited", link: script("e429", fake.Behavior{Answer: answer(fake.TooManyRequests(9 * time.Second))}), status: 429, retry: 9 * time.Second},
		{name: "empty body", link: script("empty", fake.Behavior{Answer: answer(fake.Answer{})}), status: 200},
		{name: "html is returned unsniffed", link: script("html", fake.Behavior{Answer: &html}), ok: []byte(html.Body)},
		{name: "truncated body", link: env.cdn.URL(env.srv.URL, truncPath, cdnT0.Add(time.Hour)), status: 200},
	}
	f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.Fetch(context.Background(), tt.link)
			if tt.ok != nil {
				if err != nil || !bytes.Equal(got, tt.ok) {
					t.Fatalf("Fetch = %q, %v; want %q", got, err, tt.ok)
				}
				return
			}
			e := cdnWant(t, err, tt.want...)
			if e.Status != tt.status || e.RetryAfter != tt.retry {
				t.Errorf("error %+v, want status %d retry %v", e, tt.status, tt.retry)
			}
			if tt.retry > 0 && e.Failure != upstream.RateLimited {
				t.Errorf("failure %v, want rate-limited", e.Failure)
			}
			if strings.Contains(err.Error(), "oh=") || strings.Contains(err.Error(), "oe=") {
				t.Errorf("error %q shows the signed link", err)
			}
			// The text is all a log line shows: a sentinel or cause
			// wrapped with a missing partner prints as %!w(<nil>).
			if prefix := fmt.Sprintf("cdn: %s (HTTP %d): ", e.Failure, tt.status); !strings.HasPrefix(err.Error(), prefix) ||
				strings.Contains(err.Error(), "%!") || strings.HasSuffix(err.Error(), ": ") {
				t.Errorf("error %q, want it to start %q and read cleanly", err, prefix)
			}
		})
	}
}

// TestFetchExpiredByOE: Meta CDNs refuse a stale link with texts other
// than "URL signature expired" ("Bad URL timestamp", "Bad URL date param"),
// so a 403 at or past the link's oe is ErrLinkExpired whatever it says, and
// a link more than a minute past its oe is not even asked for. A minute of
// disagreement between our clock and the CDN's is tolerated both ways.
func TestFetchExpiredByOE(t *testing.T) {
	data := fake.Portrait("79001234567", 64)
	tests := []struct {
		name    string
		text    string        // the CDN's body for a stale link
		cdnSkew time.Duration // the CDN's clock minus ours
		oe      time.Duration // the link's expiry minus our clock
		status  int           // 0: no request made
		expired bool
	}{
		{"bad url timestamp", "Bad URL timestamp", 0, -30 * time.Second, 403, true},
		{"bad url date param", "Bad URL date param", 0, -time.Second, 403, true},
		{"cdn clock ahead", "Bad URL timestamp", time.Minute, 30 * time.Second, 403, true},
		{"a minute past is still asked", "Bad URL timestamp", 0, -time.Minute, 403, true},
		{"long past is not asked", "Bad URL timestamp", 0, -61 * time.Second, 0, true},
		{"a day past", "", 0, -24 * time.Hour, 0, true},
		{"fresh", "Bad URL timestamp", 0, time.Hour, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fake.NewCDN()
			c.Now = func() time.Time { return cdnT0.Add(tt.cdnSkew) }
			c.ExpiredText = tt.text
			srv := httptest.NewServer(c)
			defer srv.Close()
			link := c.URL(srv.URL, c.Add(data), cdnT0.Add(tt.oe))
			got, err := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true}).Fetch(context.Background(), link)
			if n, want := c.Recorder.Calls(), min(tt.status, 1); n != want {
				t.Errorf("CDN saw %d requests, want %d", n, want)
			}
			if !tt.expired {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Fetch = %d bytes, %v", len(got), err)
				}
				return
			}
			if e := cdnWant(t, err, upstream.ErrLinkExpired); e.Status != tt.status {
				t.Errorf("status %d, want %d", e.Status, tt.status)
			}
		})
	}

	// A 403 that is not about time stays a refusal while the link is fresh.
	env := cdnServe(t, false)
	path := "/v/t61.24694-24/7_7_7_n.jpg"
	refusal := fake.Text(403, "Bad URL timestamp")
	env.cdn.Script(path, fake.Behavior{Answer: &refusal})
	_, err := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true}).Fetch(context.Background(), env.cdn.URL(env.srv.URL, path, cdnT0.Add(2*time.Minute)))
	if e := cdnWant(t, err); e.Status != 403 {
		t.Errorf("status %d, want 403", e.Status)
	}
}

// TestFetchReusesConnectionAfterError: a failed fetch reads the short error
// body before closing it, so HTTP/1.1 keeps the connection for the next
// fetch instead of dialling (and, on the real CDN, a TLS handshake).
func TestFetchReusesConnectionAfterError(t *testing.T) {
	c := fake.NewCDN()
	c.Now = func() time.Time { return cdnT0 }
	srv := httptest.NewUnstartedServer(c)
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	data := fake.Portrait("79001234567", 64)
	path := c.Add(data)
	e500 := fake.StatusAnswer(500)
	c.Script("/v/t61.24694-24/5_5_5_n.jpg", fake.Behavior{Answer: &e500})
	f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true})
	for _, link := range []string{
		c.URL(srv.URL, "/v/t61.24694-24/1_2_3_n.jpg", cdnT0.Add(time.Hour)),                 // 404
		strings.Replace(c.URL(srv.URL, path, cdnT0.Add(time.Hour)), "oh=01_", "oh=01_x", 1), // 403 Bad URL hash
		c.URL(srv.URL, "/v/t61.24694-24/5_5_5_n.jpg", cdnT0.Add(time.Hour)),                 // 500
	} {
		if _, err := f.Fetch(context.Background(), link); err == nil {
			t.Fatalf("Fetch(%s) succeeded", link)
		}
	}
	if got, err := f.Fetch(context.Background(), c.URL(srv.URL, path, cdnT0.Add(time.Hour))); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Fetch = %d bytes, %v", len(got), err)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("4 fetches opened %d connections, want 1", n)
	}
}

func TestFetchAllowList(t *testing.T) {
	env := cdnServe(t, false)
	link := env.link(fake.Portrait("a", 32))
	tests := []struct {
		name string
		cfg  upstream.FetcherConfig
		link string
	}{
		{"host not allowed", upstream.FetcherConfig{Allow: []string{"pps.whatsapp.net"}, AllowPrivate: true}, link},
		{"default list", upstream.FetcherConfig{Allow: nil, AllowPrivate: true}, link},
		{"port not allowed", upstream.FetcherConfig{Allow: []string{"127.0.0.1:1"}, AllowPrivate: true}, link},
		{"portless pattern is default port only", upstream.FetcherConfig{Allow: []string{"127.0.0.1"}, AllowPrivate: true}, link},
		{"plain http without AllowPrivate", upstream.FetcherConfig{Allow: []string{"127.0.0.1:*"}}, link},
		{"ftp", upstream.FetcherConfig{Allow: []string{"127.0.0.1:*"}, AllowPrivate: true}, strings.Replace(link, "http://", "ftp://", 1)},
		{"credentials", upstream.FetcherConfig{Allow: []string{"127.0.0.1:*"}, AllowPrivate: true}, strings.Replace(link, "http://", "http://u:p@", 1)},
		{"relative", upstream.FetcherConfig{Allow: []string{"127.0.0.1:*"}, AllowPrivate: true}, "/v/t61.24694-24/1_n.jpg"},
		{"garbage", upstream.FetcherConfig{Allow: []string{"127.0.0.1:*"}, AllowPrivate: true}, "http://[::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "default list" {
				tt.cfg.Allow = nil
			}
			f, err := upstream.NewFetcher(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Fetch(context.Background(), tt.link)
			cdnWant(t, err, upstream.ErrForbiddenTarget)
		})
	}
	if n := env.cdn.Recorder.Calls(); n != 0 {
		t.Errorf("CDN saw %d requests for refused targets", n)
	}
}

// TestFetchRefusesPrivateAtDial allows the loopback host by name or address
// and relies on the dial-time check alone to refuse it.
func TestFetchRefusesPrivateAtDial(t *testing.T) {
	env := cdnServe(t, true)
	link := env.link(fake.Portrait("a", 32))
	_, port, _ := net.SplitHostPort(env.srv.Listener.Addr().String())
	tests := []struct {
		name  string
		allow string
		link  string
	}{
		{"ip literal", "127.0.0.1:*", link},
		{"name resolving to loopback", "localhost:" + port, strings.Replace(link, "127.0.0.1", "localhost", 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := cdnFetcher(t, upstream.FetcherConfig{Allow: []string{tt.allow}})
			cdnTrust(f, env.srv)
			_, err := f.Fetch(context.Background(), tt.link)
			cdnWant(t, err, upstream.ErrForbiddenTarget)
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" {
				t.Errorf("error %v was not raised while dialling", err)
			}
		})
	}
	if n := env.cdn.Recorder.Calls(); n != 0 {
		t.Errorf("CDN saw %d requests", n)
	}
	// The control: the same fetcher setup reaches the server once the
	// address check lets its address through.
	f := cdnFetcher(t, upstream.FetcherConfig{Allow: []string{"127.0.0.1:*"}})
	cdnTrust(f, env.srv)
	upstream.SetDialCheckForTest(f, func(ap netip.AddrPort) bool { return ap.String() == env.srv.Listener.Addr().String() })
	if _, err := f.Fetch(context.Background(), link); err != nil {
		t.Fatalf("Fetch with the server's address let through: %v", err)
	}
}

func TestFetchRedirects(t *testing.T) {
	a := cdnServe(t, true)
	b := cdnServe(t, true)
	data := fake.Portrait("r", 32)
	final := a.link(data)
	onB := b.link(data)
	aAddr := a.srv.Listener.Addr().String()
	_, aPort, _ := net.SplitHostPort(aAddr)

	// chain scripts n redirects on a ending at final.
	chain := func(name string, n int) string {
		next := final
		for i := n; i >= 1; i-- {
			p := "/v/t61.24694-24/" + name + "_" + string(rune('0'+i)) + "_n.jpg"
			a.cdn.Script(p, fake.Behavior{Redirect: next})
			next = a.srv.URL + p
		}
		return next
	}
	toB := "/v/t61.24694-24/tob_n.jpg"
	a.cdn.Script(toB, fake.Behavior{Redirect: onB})
	toHTTP := "/v/t61.24694-24/tohttp_n.jpg"
	a.cdn.Script(toHTTP, fake.Behavior{Redirect: strings.Replace(final, "https://", "http://", 1)})

	tests := []struct {
		name      string
		allow     []string
		redirects int
		link      string
		want      []error
		ok        bool
		dialAll   bool // the address check lets everything through: only the allow-list guards
	}{
		{name: "three hops", allow: []string{"127.0.0.1:*"}, link: chain("three", 3), ok: true},
		{name: "four hops over a cap of three", allow: []string{"127.0.0.1:*"}, link: chain("four", 4)},
		{name: "cap of one", allow: []string{"127.0.0.1:*"}, redirects: 1, link: chain("two", 2)},
		{name: "one hop under a cap of one", allow: []string{"127.0.0.1:*"}, redirects: 1, link: chain("once", 1), ok: true},
		{name: "no redirects", allow: []string{"127.0.0.1:*"}, redirects: -1, link: chain("one", 1)},
		{name: "to a host off the list", allow: []string{"127.0.0.1:" + aPort}, link: a.srv.URL + toB, want: []error{upstream.ErrForbiddenTarget}, dialAll: true},
		{name: "to a private address", allow: []string{"127.0.0.1:*"}, link: a.srv.URL + toB, want: []error{upstream.ErrForbiddenTarget}},
		{name: "down to plain http", allow: []string{"127.0.0.1:*"}, link: a.srv.URL + toHTTP, want: []error{upstream.ErrForbiddenTarget}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := cdnFetcher(t, upstream.FetcherConfig{Allow: tt.allow, MaxRedirects: tt.redirects})
			cdnTrust(f, a.srv)
			// Only a's address is let through; b stays a private address.
			upstream.SetDialCheckForTest(f, func(ap netip.AddrPort) bool { return tt.dialAll || ap.String() == aAddr })
			got, err := f.Fetch(context.Background(), tt.link)
			if tt.ok {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("Fetch = %d bytes, %v; want the picture", len(got), err)
				}
				return
			}
			cdnWant(t, err, tt.want...)
		})
	}
	if n := b.cdn.Recorder.Calls(); n != 0 {
		t.Errorf("the refused redirect target saw %d requests", n)
	}
}

func TestFetchSizeCap(t *testing.T) {
	env := cdnServe(t, false)
	big := bytes.Repeat([]byte{0xAB}, 5000)
	path := env.cdn.Add(big)
	link := env.cdn.URL(env.srv.URL, path, cdnT0.Add(time.Hour))
	exact := env.cdn.Add(big[:1000])
	exactLink := env.cdn.URL(env.srv.URL, exact, cdnT0.Add(time.Hour))
	tests := []struct {
		name string
		b    fake.Behavior
		link string
		ok   bool
	}{
		// The body never comes: reading it would hit the timeout instead.
		{name: "declared length over the cap is refused unread", b: fake.Behavior{Body: fake.BodyStalled}, link: link},
		{name: "chunked body over the cap", b: fake.Behavior{Chunked: true}, link: link},
		{name: "exactly the cap", link: exactLink, ok: true},
		{name: "exactly the cap chunked", b: fake.Behavior{Chunked: true}, link: exactLink, ok: true},
	}
	f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true, MaxBytes: 1000, Timeout: 5 * time.Second})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := path
			if tt.link == exactLink {
				p = exact
			}
			env.cdn.Script(p, tt.b)
			got, err := f.Fetch(context.Background(), tt.link)
			if tt.ok {
				if err != nil || len(got) != 1000 {
					t.Fatalf("Fetch = %d bytes, %v; want 1000", len(got), err)
				}
				return
			}
			cdnWant(t, err, upstream.ErrTooLarge)
		})
	}
}

func TestFetchTimeouts(t *testing.T) {
	env := cdnServe(t, false)
	data := bytes.Repeat([]byte{1}, 5000)
	path := env.cdn.Add(data)
	link := env.cdn.URL(env.srv.URL, path, cdnT0.Add(time.Hour))
	tests := []struct {
		name string
		b    fake.Behavior
	}{
		{"slow headers", fake.Behavior{Delay: time.Minute}},
		{"stalled body", fake.Behavior{Body: fake.BodyStalled, Sent: 100}},
	}
	f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true, Timeout: 100 * time.Millisecond})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.cdn.Script(path, tt.b)
			start := time.Now()
			_, err := f.Fetch(context.Background(), link)
			cdnWant(t, err)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("error %v does not match context.DeadlineExceeded", err)
			}
			// Not a timing assertion: only that Fetch did not wait for the server.
			if time.Since(start) > 30*time.Second {
				t.Errorf("Fetch waited for the server")
			}
		})
	}
	t.Run("caller cancels", func(t *testing.T) {
		env.cdn.Script(path, fake.Behavior{Delay: time.Minute})
		f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.Fetch(ctx, link)
		cdnWant(t, err)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("error %v does not match context.Canceled", err)
		}
	})
}

func TestFetchNetworkErrorHidesLink(t *testing.T) {
	env := cdnServe(t, false)
	link := env.link(fake.Portrait("n", 32))
	env.srv.Close()
	f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true})
	_, err := f.Fetch(context.Background(), link)
	cdnWant(t, err)
	u, _ := url.Parse(link)
	if strings.Contains(err.Error(), u.RawQuery) || strings.Contains(err.Error(), u.Path) {
		t.Errorf("error %q shows the link", err)
	}
}

func TestNewFetcherValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  upstream.FetcherConfig
		ok   bool
	}{
		{"zero value", upstream.FetcherConfig{}, true},
		{"bad pattern", upstream.FetcherConfig{Allow: []string{"*.net"}}, false},
		{"negative size", upstream.FetcherConfig{MaxBytes: -1}, false},
		{"negative timeout", upstream.FetcherConfig{Timeout: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := upstream.NewFetcher(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewFetcher err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		ip     string
		public bool
	}{
		{"157.240.1.60", true}, // a Meta CDN edge
		{"8.8.8.8", true},
		{"1.1.1.1", true},
		{"2a03:2880:f12c:83:face:b00c:0:167", true},
		{"2606:4700:4700::1111", true},
		{"::ffff:157.240.1.60", true},
		{"127.0.0.1", false},
		{"127.255.255.254", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"172.31.255.255", false},
		{"172.32.0.1", true},
		{"192.168.1.1", false},
		{"169.254.169.254", false}, // cloud metadata
		{"100.64.0.1", false},
		{"100.127.255.255", false},
		{"100.128.0.1", true},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"192.0.0.8", false},
		{"192.0.2.1", false},
		{"198.18.0.1", false},
		{"198.19.255.255", false},
		{"198.51.100.7", false},
		{"203.0.113.9", false},
		{"224.0.0.1", false},
		{"239.255.255.250", false},
		{"240.0.0.1", false},
		{"255.255.255.255", false},
		{"::", false},
		{"::1", false},
		{"::127.0.0.1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:10.0.0.1", false},
		{"::ffff:169.254.169.254", false},
		{"64:ff9b::7f00:1", false},
		{"64:ff9b:1::a00:1", false},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false}, // Teredo
		{"2001:db8::1", false},
		{"2002:7f00:1::1", false}, // 6to4 of 127.0.0.1
		{"fc00::1", false},
		{"fd12:3456::1", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fec0::1", false},
		{"ff02::1", false},
		{"100::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			if got := upstream.PublicAddrForTest(ip); got != tt.public {
				t.Errorf("publicAddr(%s) = %v, want %v", tt.ip, got, tt.public)
			}
		})
	}
	if upstream.PublicAddrForTest(netip.Addr{}) {
		t.Errorf("the zero Addr is public")
	}
}

func TestParseAllowList(t *testing.T) {
	tests := []struct {
		in   string
		want string // canonical, comma-joined; "!" for an error
	}{
		{"pps.whatsapp.net,*.whatsapp.net", "pps.whatsapp.net,*.whatsapp.net"},
		{" PPS.WhatsApp.net. , ,*.WhatsApp.NET:443 ", "pps.whatsapp.net,*.whatsapp.net:443"},
		{"", ""},
		{" , ", ""},
		{"127.0.0.1:*", "127.0.0.1:*"},
		{"localhost:8443", "localhost:8443"},
		{"[::1]:*", "[::1]:*"},
		{"[0:0::1]", "[::1]"},
		{"cdn-1.example.com", "cdn-1.example.com"},
		{"*.net", "!"},
		{"*", "!"},
		{"*.*.whatsapp.net", "!"},
		{"pps.*.net", "!"},
		{"::1", "!"},
		{"[::1", "!"},
		{"[::1]x", "!"},
		{"[127.0.0.1]", "!"},
		{"*.127.0.0.1", "!"},
		{"host:0", "!"},
		{"host:65536", "!"},
		{"host:080", "!"},
		{"host:", "!"},
		{"host:1:2", "!"},
		{"-bad.com", "!"},
		{"bad-.com", "!"},
		{"a..b", "!"},
		{"under_score.com", "!"},
		{"http://pps.whatsapp.net", "!"},
		{"pps.whatsapp.net/v", "!"},
		{"1.2.3", "!"},
		{"ok.com,bad_one", "!"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := upstream.ParseAllowList(tt.in)
			if tt.want == "!" {
				if err == nil {
					t.Fatalf("ParseAllowList(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("ParseAllowList(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestAllowedHost(t *testing.T) {
	defaults := []string{"pps.whatsapp.net", "*.whatsapp.net"}
	tests := []struct {
		patterns []string
		scheme   string
		host     string
		want     bool
	}{
		{defaults, "https", "pps.whatsapp.net", true},
		{defaults, "https", "PPS.WhatsApp.NET.", true},
		{defaults, "https", "pps.whatsapp.net:443", true},
		{defaults, "https", "pps.whatsapp.net:8443", false},
		{defaults, "http", "pps.whatsapp.net", true}, // port 80 is http's default; the scheme rule is separate
		{defaults, "https", "mmg.whatsapp.net", true},
		{defaults, "https", "a.b.whatsapp.net", true},
		{defaults, "https", "whatsapp.net", false},
		{defaults, "https", "evilwhatsapp.net", false},
		{defaults, "https", "pps.whatsapp.net.evil.com", false},
		{defaults, "https", "", false},
		{[]string{"127.0.0.1:*"}, "http", "127.0.0.1:8080", true},
		{[]string{"127.0.0.1:*"}, "http", "127.0.0.1", true},
		{[]string{"127.0.0.1:8080"}, "http", "127.0.0.1:8081", false},
		{[]string{"[::1]:*"}, "https", "[::1]:443", true},
		{[]string{"[::1]"}, "https", "[::1]", true},
		{[]string{"[::1]"}, "https", "[0::1]", true},
		{[]string{"[::1]:*"}, "https", "[::1%25lo]:443", false},
	}
	for _, tt := range tests {
		if got := upstream.AllowedHostForTest(tt.patterns, tt.scheme, tt.host); got != tt.want {
			t.Errorf("allowed(%v, %s, %q) = %v, want %v", tt.patterns, tt.scheme, tt.host, got, tt.want)
		}
	}
}

func TestLinkExpiry(t *testing.T) {
	tests := []struct {
		url  string
		want time.Time // zero: ok=false
	}{
		{"https://pps.whatsapp.net/v/t61.24694-24/1_2_3_n.jpg?ccb=11-4&oh=01_x&oe=66041D5F&_nc_sid=e6ed6c", time.Date(2024, 3, 27, 13, 21, 35, 0, time.UTC)},
		{"https://pps.whatsapp.net/v/x_n.jpg?oh=c5a47a&oe=61FA1D1B", time.Date(2022, 2, 2, 5, 56, 43, 0, time.UTC)},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=630f8f9d", time.Date(2022, 8, 31, 16, 43, 9, 0, time.UTC)},
		{"https://pps.whatsapp.net/v/x_n.jpg?a=%zz&oe=66041D5F", time.Date(2024, 3, 27, 13, 21, 35, 0, time.UTC)},
		// Every end of the hex ranges, either case, and the longest oe taken.
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=6a0f9A0F", time.Unix(0x6a0f9a0f, 0).UTC()},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=1fffffffff9", time.Unix(0x1fffffffff9, 0).UTC()},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=6a0f9g0f", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=xyz", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=-1F", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=0x1F", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=+1F", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=FFFFFFFFFFFF", time.Time{}},
		{"https://pps.whatsapp.net/v/x_n.jpg?oe=1&oe=2", time.Time{}},
		{"://bad", time.Time{}},
	}
	for _, tt := range tests {
		got, ok := upstream.LinkExpiry(tt.url)
		if ok != !tt.want.IsZero() || !got.Equal(tt.want) {
			t.Errorf("LinkExpiry(%q) = %v, %v; want %v", tt.url, got, ok, tt.want)
		}
	}
	// The fake CDN's links carry the expiry they were made with.
	link := fake.NewCDN().URL("https://pps.whatsapp.net", "/v/t61.24694-24/1_2_3_n.jpg", cdnT0)
	if got, ok := upstream.LinkExpiry(link); !ok || !got.Equal(cdnT0) {
		t.Errorf("LinkExpiry(fake link) = %v, %v; want %v", got, ok, cdnT0)
	}
}

func TestPictureKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://pps.whatsapp.net/v/t61.24694-24/1_2_3_n.jpg?ccb=11-4&oh=01_a&oe=66041D5F", "https://pps.whatsapp.net/v/t61.24694-24/1_2_3_n.jpg"},
		{"HTTPS://PPS.whatsapp.net/v/A_n.jpg?oe=1#frag", "https://pps.whatsapp.net/v/A_n.jpg"},
		{"https://pps.whatsapp.net:443/v/a%2Fb_n.jpg?x", "https://pps.whatsapp.net:443/v/a%2Fb_n.jpg"},
		{"/v/relative.jpg", ""},
		{"", ""},
		{"://bad", ""},
	}
	for _, tt := range tests {
		if got := upstream.PictureKey(tt.in); got != tt.want {
			t.Errorf("PictureKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	a := "https://pps.whatsapp.net/v/t61.24694-24/1_2_3_n.jpg?ccb=11-4&oh=01_a&oe=66041D5F"
	b := "https://pps.whatsapp.net/v/t61.24694-24/1_2_3_n.jpg?ccb=11-4&oh=01_b&oe=66051D5F"
	if upstream.PictureKey(a) != upstream.PictureKey(b) {
		t.Errorf("two links to one picture have different keys")
	}
}

// FuzzAllowList: parsing never panics, canonical output parses to itself,
// and matching a pattern against arbitrary hosts never panics.
func FuzzAllowList(f *testing.F) {
	for _, s := range []string{"pps.whatsapp.net,*.whatsapp.net", "127.0.0.1:*", "[::1]:443", "*.a.b:80", " x , y ", "[::ffff:1.2.3.4]", "a:*:*"} {
		f.Add(s, "pps.whatsapp.net:443")
	}
	f.Fuzz(func(t *testing.T, list, host string) {
		got, err := upstream.ParseAllowList(list)
		if err != nil {
			return
		}
		again, err := upstream.ParseAllowList(strings.Join(got, ","))
		if err != nil || strings.Join(again, ",") != strings.Join(got, ",") {
			t.Fatalf("canonical form %q reparses to %q, %v", got, again, err)
		}
		for _, p := range got {
			if strings.Contains(p, ",") || p != strings.TrimSpace(p) || p == "" {
				t.Fatalf("pattern %q is not canonical", p)
			}
		}
		if len(got) > 0 {
			upstream.AllowedHostForTest(got, "https", host)
		}
	})
}

// FuzzLinkExpiry: LinkExpiry and PictureKey never panic; an expiry found is
// the oe parameter printed back; a key has no query.
func FuzzLinkExpiry(f *testing.F) {
	for _, s := range []string{
		"https://pps.whatsapp.net/v/t61.24694-24/1_2_3_n.jpg?ccb=11-4&oh=01_x&oe=66041D5F&_nc_sid=e6ed6c&_nc_cat=104",
		"https://pps.whatsapp.net/v/x_n.jpg?oe=",
		"https://h/?oe=FFFFFFFFFFF",
		"https://h/?oe=%36%36",
		"//h/p?oe=1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if exp, ok := upstream.LinkExpiry(s); ok {
			u, err := url.Parse(s)
			if err != nil {
				t.Fatalf("expiry from an unparsable URL %q", s)
			}
			q, _ := url.ParseQuery(u.RawQuery)
			var n int64
			for _, c := range strings.ToLower(q.Get("oe")) {
				n = n*16 + int64(strings.IndexRune("0123456789abcdef", c))
			}
			if exp.Unix() != n {
				t.Fatalf("LinkExpiry(%q) = %d, oe says %d", s, exp.Unix(), n)
			}
		}
		if k := upstream.PictureKey(s); strings.ContainsAny(k, "?#") {
			t.Fatalf("PictureKey(%q) = %q has a query or fragment", s, k)
		}
	})
}

// BenchmarkFetch is one download of a 640 px portrait over loopback HTTP,
// the CDN half of a cold miss.
func BenchmarkFetch(b *testing.B) {
	c := fake.NewCDN()
	c.Now = func() time.Time { return cdnT0 }
	srv := httptest.NewServer(c)
	defer srv.Close()
	data := fake.Portrait("bench", 640)
	link := c.URL(srv.URL, c.Add(data), cdnT0.Add(time.Hour))
	f, err := upstream.NewFetcher(upstream.FetcherConfig{Allow: []string{"127.0.0.1:*"}, AllowPrivate: true, Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Fetch(context.Background(), link); err != nil {
			b.Fatal(err)
		}
	}
}

// A redirect whose Location does not parse is refused without the
// Location's text reaching the error: it may hold the next hop's signature.
func TestFetchMalformedRedirectHidesLocation(t *testing.T) {
	env := cdnServe(t, false)
	p := "/v/t61.24694-24/bad_n.jpg"
	env.cdn.Script(p, fake.Behavior{Redirect: "https://pps.whatsapp.net/%zz?oh=secretsig"})
	f := cdnFetcher(t, upstream.FetcherConfig{AllowPrivate: true})
	_, err := f.Fetch(context.Background(), env.srv.URL+p)
	e := cdnWant(t, err)
	if strings.Contains(err.Error(), "secretsig") || strings.Contains(err.Error(), "%zz") {
		t.Errorf("error %q shows the Location", err)
	}
	if e.Reason != "malformed redirect" {
		t.Errorf("Reason = %q, want %q", e.Reason, "malformed redirect")
	}
}
