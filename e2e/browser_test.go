// Package e2e runs the avatarproxy binary in demo mode and loads the example
// pages of package examples in headless Chromium, the way a CRM user or an
// email reader sees them. It holds tests only: it checks what no unit test
// can, that a real browser shows every avatar and placeholder at the size
// asked for, and what the browser cache does with the proxy's headers.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

const installHint = "apt-get update && apt-get install -y chromium"

// TestBrowser loads /demo/crm.html and /demo/email.html from a real
// avatarproxy in a real Chromium and checks every image, the placeholders,
// the browser cache on reload and ETag revalidation, and writes full-page
// screenshots to AVATAR_E2E_ARTIFACTS (default e2e/artifacts/).
func TestBrowser(t *testing.T) {
	chrome := findChromium(t)
	artifacts := artifactDir(t)
	bin := buildProxy(t)

	// One bound for the rest of the test, the build excluded (a cold build
	// cache alone can take a minute): it stops the browser and every wait.
	// Not t.Context(): that ends before the cleanups, which need it to close
	// the browser gracefully.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)

	base := "http://" + startProxy(ctx, t, bin)
	bctx, nl := startBrowser(ctx, t, chrome)

	t.Run("crm", func(t *testing.T) {
		pageURL := base + "/demo/crm.html"
		run(bctx, t, 20*time.Second, chromedp.EmulateViewport(1280, 800))
		first := nl.next()
		run(bctx, t, 20*time.Second, chromedp.Navigate(pageURL))
		imgs := loadedImages(bctx, t)
		if len(imgs) < 30 {
			t.Fatalf("crm.html shows %d images, want at least 30", len(imgs))
		}
		statuses := checkImages(t, imgs, nl.snapshot(first))
		for _, want := range []string{"ok", "privacy", "no-avatar", "invalid"} {
			if statuses[want] == 0 {
				t.Errorf("crm.html shows no image with X-Avatar-Status %q; the page should cover every kind", want)
			}
		}
		screenshot(bctx, t, filepath.Join(artifacts, "crm.png"))

		t.Run("reload", func(t *testing.T) {
			reload := nl.next()
			run(bctx, t, 20*time.Second, chromedp.Reload())
			imgs := loadedImages(bctx, t)
			checkReload(t, pageURL, imgs, nl.snapshot(reload))
		})

		t.Run("revalidate", func(t *testing.T) {
			checkRevalidation(bctx, t, imgs, nl, nl.snapshot(first))
		})
	})

	t.Run("email", func(t *testing.T) {
		run(bctx, t, 20*time.Second, chromedp.EmulateViewport(800, 800))
		first := nl.next()
		run(bctx, t, 20*time.Second, chromedp.Navigate(base+"/demo/email.html"))
		imgs := loadedImages(bctx, t)
		if len(imgs) < 6 {
			t.Fatalf("email.html shows %d images, want at least 6", len(imgs))
		}
		for _, im := range imgs {
			if !strings.HasSuffix(avatarPath(im.Src), ".jpg") {
				t.Errorf("email.html asks for %s: email avatars must be .jpg (clients do not all show PNG)", im.Src)
			}
		}
		statuses := checkImages(t, imgs, nl.snapshot(first))
		if statuses["ok"] == 0 || len(statuses) < 2 {
			t.Errorf("email.html statuses %v, want avatars and at least one placeholder", statuses)
		}
		screenshot(bctx, t, filepath.Join(artifacts, "email.png"))
	})
}

// findChromium returns the browser to drive. Without one the test fails on
// CI, which must never skip it, and skips elsewhere with the install command.
func findChromium(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err == nil {
		return chromiumPath
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium is not installed, and CI must run the browser test: %s", installHint)
	}
	t.Skipf("chromium is not installed; to run the browser test: %s", installHint)
	return ""
}

func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("AVATAR_E2E_ARTIFACTS")
	if dir == "" {
		dir = "artifacts"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifact directory: %v", err)
	}
	return dir
}

// buildProxy builds the binary from the module root, the parent of e2e/.
func buildProxy(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build avatarproxy: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "avatarproxy")
	if out, err := exec.CommandContext(ctx, goTool, "build", "-o", bin, "..").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startProxy runs the binary in demo mode on a free loopback port and
// returns the address from its "avatarproxy listening" log line. It stops
// the process when the test ends and prints its output if the test failed.
func startProxy(ctx context.Context, t *testing.T, bin string) string {
	t.Helper()
	cmd := exec.Command(bin, "--demo", "--listen=127.0.0.1:0", "--log-format=json")
	// No inherited AVATAR_* settings, no credentials: demo mode needs nothing
	// from the environment, and a stray AVATAR_STORAGE must not change it.
	cmd.Env = []string{}
	cmd.Dir = t.TempDir()
	var stdout, stderr testkit.Buffer
	cmd.Stdout = &stdout
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start avatarproxy: %v", err)
	}

	ready := make(chan string, 1)
	exited := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			fmt.Fprintf(&stderr, "%s\n", line)
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "avatarproxy listening" && rec.Addr != "" {
				select {
				case ready <- rec.Addr:
				default:
				}
			}
		}
		// Wait only after the pipe is drained, as os/exec requires.
		exited <- cmd.Wait()
	}()

	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		var err error
		select {
		case err = <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			err = errors.Join(errors.New("no clean stop within 20s of SIGINT; killed"), <-exited)
		}
		if err != nil {
			t.Errorf("avatarproxy did not stop cleanly: %v", err)
		}
		if t.Failed() {
			t.Logf("avatarproxy stderr:\n%s", stderr.String())
			t.Logf("avatarproxy stdout:\n%s", stdout.String())
		}
	})

	select {
	case addr := <-ready:
		host, _, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("avatarproxy listens on %q, want 127.0.0.1:port", addr)
		}
		return addr
	case err := <-exited:
		exited <- err // for the cleanup
		t.Fatalf("avatarproxy exited before listening: %v", err)
	case <-ctx.Done():
		t.Fatalf("no \"avatarproxy listening\" log line: %v", ctx.Err())
	}
	return ""
}

// startBrowser starts Chromium with a fresh profile and no network beyond
// loopback, and records its network events from the first page on.
func startBrowser(ctx context.Context, t *testing.T, chrome string) (context.Context, *netLog) {
	t.Helper()
	var output testkit.Buffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		// Belt and braces: no host name resolves, so nothing but the proxy
		// on 127.0.0.1 can be reached even if a page asked for more.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.CombinedOutput(&output),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		_ = chromedp.Cancel(cctx)
		cancelBrowser()
		cancelAlloc()
		if t.Failed() {
			t.Logf("chromium output (D-Bus complaints left out):\n%s", withoutDBus(output.String()))
		}
	})
	// The first Do starts the browser under ctx, the bound of the whole test.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium %s: %v", chrome, err)
	}
	nl := newNetLog()
	if err := chromedp.Listen(bctx, nl.record); err != nil {
		t.Fatalf("listen to network events: %v", err)
	}
	return bctx, nl
}

// run runs one action under its own deadline.
func run(ctx context.Context, t *testing.T, d time.Duration, a chromedp.Action[chromedp.Void]) {
	t.Helper()
	actx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(actx, a); err != nil {
		t.Fatalf("chromium: %v", err)
	}
}

// pageImage is what the page reports about one <img>.
type pageImage struct {
	Src           string `json:"src"`    // currentSrc: the absolute URL as requested
	Size          string `json:"size"`   // data-size: the edge the page asks for
	Status        string `json:"status"` // data-status: the X-Avatar-Status the page expects
	Width         string `json:"width"`  // width attribute
	Height        string `json:"height"` // height attribute
	Complete      bool   `json:"complete"`
	NaturalWidth  int    `json:"naturalWidth"`
	NaturalHeight int    `json:"naturalHeight"`
}

const allLoadedJS = `document.readyState === "complete" && Array.from(document.images).every(i => i.complete)`

const imagesJS = `Array.from(document.images).map(i => ({
	src: i.currentSrc, size: i.dataset.size || "", status: i.dataset.status || "",
	width: i.getAttribute("width") || "", height: i.getAttribute("height") || "",
	complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight,
}))`

// loadedImages waits until every image of the page has finished loading (or
// failed) and returns them.
func loadedImages(ctx context.Context, t *testing.T) []pageImage {
	t.Helper()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](allLoadedJS, chromedp.WithPollingTimeout(0))); err != nil {
		t.Fatalf("images still loading: %v", err)
	}
	imgs, err := chromedp.Run(wctx, chromedp.Evaluate[[]pageImage](imagesJS))
	if err != nil {
		t.Fatalf("read images: %v", err)
	}
	return imgs
}

// checkImages asserts that every image loaded at exactly the size its page
// asks for, in the format of its extension, with the X-Avatar-Status the page
// expects, as the network log of the first load shows. It returns how many
// images had each status.
func checkImages(t *testing.T, imgs []pageImage, log []*exchange) map[string]int {
	t.Helper()
	statuses := map[string]int{}
	for _, im := range imgs {
		name := avatarPath(im.Src)
		if !strings.HasPrefix(name, "/avatar/") {
			t.Errorf("image %s is not an avatar URL", im.Src)
			continue
		}
		size, err := strconv.Atoi(im.Size)
		if err != nil || size <= 0 {
			t.Errorf("%s: data-size %q, want the size in pixels", name, im.Size)
			continue
		}
		if q := queryParam(im.Src, "size"); q != im.Size || im.Width != im.Size || im.Height != im.Size {
			t.Errorf("%s: size=%s width=%s height=%s data-size=%s, want all equal", name, q, im.Width, im.Height, im.Size)
		}
		if !im.Complete || im.NaturalWidth != size || im.NaturalHeight != size {
			t.Errorf("%s: complete=%v natural %dx%d, want a loaded %dx%d image", name, im.Complete, im.NaturalWidth, im.NaturalHeight, size, size)
		}

		ex := firstResponse(log, im.Src)
		if ex == nil {
			t.Errorf("%s: no response in the network log", name)
			continue
		}
		wantMime := "image/jpeg"
		if strings.HasSuffix(name, ".png") {
			wantMime = "image/png"
		}
		if ex.status != 200 || ex.mime != wantMime {
			t.Errorf("%s: status %d %s, want 200 %s", name, ex.status, ex.mime, wantMime)
		}
		got := header(ex.headers, "X-Avatar-Status")
		if got != im.Status {
			t.Errorf("%s: X-Avatar-Status %q, page expects %q", name, got, im.Status)
		}
		if header(ex.headers, "ETag") == "" {
			t.Errorf("%s: no ETag", name)
		}
		statuses[got]++
	}
	t.Logf("%d images, X-Avatar-Status counts %v", len(imgs), statuses)
	return statuses
}

// checkReload asserts what a normal reload (Page.reload, ignoreCache false,
// what chromedp.Reload sends and what F5 does) costs the proxy. Chromium
// revalidates the document only ("Cache-Control: max-age=0") and takes
// subresources that are still fresh from its cache without asking: the
// avatars' max-age means a reload costs the proxy no avatar request. If a
// browser did ask, the answer must be a 304, never the image again.
func checkReload(t *testing.T, pageURL string, imgs []pageImage, log []*exchange) {
	t.Helper()
	doc := firstResponse(log, pageURL)
	if doc == nil {
		t.Fatalf("reload: no request for %s in the network log", pageURL)
	}
	if cc := header(doc.reqHeaders, "Cache-Control"); cc != "max-age=0" {
		t.Errorf("reload: document request Cache-Control %q, want max-age=0 (a normal reload)", cc)
	}
	var memory, disk, notModified int
	for _, src := range distinctSrcs(imgs) {
		for _, ex := range log {
			if ex.url != src {
				continue
			}
			switch {
			case ex.fromMemory:
				memory++
			case ex.fromDisk:
				disk++
			case ex.wireStatus == 304:
				notModified++
			default:
				t.Errorf("reload: %s went to the proxy and got %d (status %d), want the browser cache or a 304", avatarPath(src), ex.wireStatus, ex.status)
			}
		}
	}
	if memory+disk+notModified == 0 {
		t.Errorf("reload: no avatar request seen in the network log")
	}
	t.Logf("reload: avatars from Chromium's memory cache %d, from its disk cache %d, revalidated with 304 %d", memory, disk, notModified)
}

// revalidateJS asks again for every avatar of the page with cache mode
// "no-cache": Chromium then has to revalidate its cached copy, sending the
// ETag it stored as If-None-Match, as it does for an avatar whose max-age
// has run out.
const revalidateJS = `Promise.all(%s.map(u => fetch(u, {cache: "no-cache"}).then(r => ({url: u, status: r.status}))))`

// checkRevalidation asserts that Chromium revalidates each cached avatar with
// the ETag the proxy gave it and that the proxy answers 304 Not Modified, so
// the browser keeps the image it has.
func checkRevalidation(ctx context.Context, t *testing.T, imgs []pageImage, nl *netLog, firstLoad []*exchange) {
	t.Helper()
	srcs := distinctSrcs(imgs)
	list, err := json.Marshal(srcs)
	if err != nil {
		t.Fatal(err)
	}
	phase := nl.next()
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	results, err := chromedp.Run(wctx, chromedp.Evaluate[[]struct {
		URL    string `json:"url"`
		Status int    `json:"status"`
	}](fmt.Sprintf(revalidateJS, list), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch from the page: %v", err)
	}
	for _, r := range results {
		if r.Status != 200 {
			t.Errorf("revalidate: fetch(%s) resolved %d, want 200 (the cached image after a 304)", avatarPath(r.URL), r.Status)
		}
	}
	// Network.responseReceived reports the cached 200; the wire status comes
	// in Network.responseReceivedExtraInfo, which may arrive later.
	log, err := nl.waitFor(wctx, phase, func(log []*exchange) bool {
		for _, src := range srcs {
			if ex := firstResponse(log, src); ex == nil || ex.wireStatus == 0 || ex.reqHeaders == nil {
				return false
			}
		}
		return true
	})
	if err != nil {
		t.Fatalf("revalidate: network events incomplete: %v", err)
	}
	var notModified int
	for _, src := range srcs {
		ex, orig := firstResponse(log, src), firstResponse(firstLoad, src)
		if orig == nil {
			t.Errorf("revalidate: %s has no first-load response", avatarPath(src))
			continue
		}
		etag := header(orig.headers, "ETag")
		if inm := header(ex.reqHeaders, "If-None-Match"); inm != etag {
			t.Errorf("revalidate: %s sent If-None-Match %q, want the ETag %q from the first load", avatarPath(src), inm, etag)
		}
		if ex.wireStatus != 304 {
			t.Errorf("revalidate: %s answered %d on the wire, want 304", avatarPath(src), ex.wireStatus)
			continue
		}
		notModified++
	}
	if notModified == 0 {
		t.Errorf("revalidate: no 304")
	}
	t.Logf("revalidate: %d of %d avatars answered 304 Not Modified to the browser's If-None-Match", notModified, len(srcs))
}

// screenshot writes a full-page PNG of the current page.
func screenshot(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
}

// withoutDBus drops the lines a container without a D-Bus makes Chromium
// print on every start, so that what went wrong stays readable.
func withoutDBus(out string) string {
	var b strings.Builder
	for line := range strings.Lines(out) {
		if !strings.Contains(line, "dbus") {
			b.WriteString(line)
		}
	}
	return b.String()
}

func distinctSrcs(imgs []pageImage) []string {
	seen := map[string]bool{}
	var out []string
	for _, im := range imgs {
		if !seen[im.Src] && strings.HasPrefix(avatarPath(im.Src), "/avatar/") {
			seen[im.Src] = true
			out = append(out, im.Src)
		}
	}
	return out
}

func avatarPath(src string) string {
	u, err := url.Parse(src)
	if err != nil {
		return src
	}
	return u.Path
}

func queryParam(src, name string) string {
	u, err := url.Parse(src)
	if err != nil {
		return ""
	}
	return u.Query().Get(name)
}

// header reads a header from a CDP header map, whose names keep the case
// they had on the wire.
func header(h network.Headers, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			s, _ := v.(string)
			return s
		}
	}
	return ""
}

// exchange is one request as the network events tell it.
type exchange struct {
	url        string
	phase      int
	status     int64           // Network.responseReceived: for a revalidated entry, the cached 200
	wireStatus int64           // Network.responseReceivedExtraInfo: what came over the wire, e.g. 304
	mime       string          // MIME type of the response
	headers    network.Headers // response headers
	reqHeaders network.Headers // request headers as sent (Network.requestWillBeSentExtraInfo)
	fromMemory bool            // Network.requestServedFromCache: Blink's memory cache, no request
	fromDisk   bool            // served by the HTTP (disk) cache without a request
}

// netLog records the network events of the tab. Each request belongs to the
// phase that was current when its first event arrived, so the test can look
// at one page load at a time.
type netLog struct {
	mu      sync.Mutex
	phase   int
	byID    map[network.RequestID]*exchange
	order   []*exchange
	changed chan struct{} // closed and replaced on every event
}

func newNetLog() *netLog {
	return &netLog{byID: map[network.RequestID]*exchange{}, changed: make(chan struct{})}
}

// next starts a new phase and returns its number.
func (l *netLog) next() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase++
	return l.phase
}

func (l *netLog) get(id network.RequestID) *exchange {
	ex := l.byID[id]
	if ex == nil {
		ex = &exchange{phase: l.phase}
		l.byID[id] = ex
		l.order = append(l.order, ex)
	}
	return ex
}

// record is the chromedp listener: it runs on chromedp's reading goroutine
// and only copies what the test needs.
func (l *netLog) record(ev any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		l.get(e.RequestID).url = e.Request.URL
	case *network.EventRequestWillBeSentExtraInfo:
		l.get(e.RequestID).reqHeaders = e.Headers
	case *network.EventRequestServedFromCache:
		l.get(e.RequestID).fromMemory = true
	case *network.EventResponseReceived:
		ex := l.get(e.RequestID)
		ex.url = e.Response.URL
		ex.status = e.Response.Status
		ex.mime = e.Response.MimeType
		ex.headers = e.Response.Headers
		ex.fromDisk = e.Response.FromDiskCache
	case *network.EventResponseReceivedExtraInfo:
		l.get(e.RequestID).wireStatus = e.StatusCode
	default:
		return
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

// snapshot returns copies of the exchanges of a phase, in order.
func (l *netLog) snapshot(phase int) []*exchange {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*exchange
	for _, ex := range l.order {
		if ex.phase == phase {
			c := *ex
			out = append(out, &c)
		}
	}
	return out
}

// waitFor waits, event by event, until ok holds for the phase's exchanges.
func (l *netLog) waitFor(ctx context.Context, phase int, ok func([]*exchange) bool) ([]*exchange, error) {
	for {
		l.mu.Lock()
		changed := l.changed
		l.mu.Unlock()
		if log := l.snapshot(phase); ok(log) {
			return log, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// firstResponse returns the first exchange for url that got a response.
func firstResponse(log []*exchange, url string) *exchange {
	for _, ex := range log {
		if ex.url == url && ex.status != 0 {
			return ex
		}
	}
	return nil
}
