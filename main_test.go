package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"image"
	_ "image/jpeg"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/config"
	"github.com/avatarproxy/avatarproxy/demo"
	"github.com/avatarproxy/avatarproxy/internal/testkit"
	"github.com/avatarproxy/avatarproxy/proxy"
)

// startRun runs the whole program on a free loopback port and returns its
// base URL; the test's end stops it and checks it shut down cleanly.
func startRun(t *testing.T, args []string, env map[string]string) (base string, stdout, stderr *testkit.Buffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr = &testkit.Buffer{}, &testkit.Buffer{}
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, func(k string) string { return env[k] }, stdout, stderr, func(a string) { addr <- a })
	}()
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("run exited early: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("run did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not stop")
		}
	})
	return base, stdout, stderr
}

func get(t *testing.T, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestDemoEndToEnd(t *testing.T) {
	base, stdout, stderr := startRun(t, []string{"--demo", "--listen=127.0.0.1:0", "--first-load-timeout=10s"}, nil)
	if !strings.Contains(stdout.String(), "/avatar/79001234561@c.us.jpg?size=128") {
		t.Errorf("demo printed no sample URLs:\n%s", stdout.String())
	}
	cases := []struct {
		path, status string
	}{
		{"/avatar/79001234561@c.us.jpg?size=128", "ok"},
		{"/avatar/120363043968066561@g.us.jpg?size=128", "ok"},
		{"/avatar/79001234567@c.us.jpg?size=128", "ok"}, // legacy answer shape
		{"/avatar/79001234565@c.us.jpg?size=128&name=Anna", "privacy"},
		{"/avatar/79001234566@c.us.jpg?size=128", "no-avatar"},
		{"/avatar/79001234568@c.us.jpg?size=128", "invalid"},
	}
	for _, c := range cases {
		resp, body := get(t, base+c.path)
		if resp.StatusCode != 200 || resp.Header.Get("X-Avatar-Status") != c.status {
			t.Errorf("%s: %d %s, want 200 %s", c.path, resp.StatusCode, resp.Header.Get("X-Avatar-Status"), c.status)
			continue
		}
		img, _, err := image.Decode(bytes.NewReader(body))
		if err != nil || img.Bounds().Dx() != 128 {
			t.Errorf("%s: not a 128 px image: %v", c.path, err)
		}
	}
	if r, _ := get(t, base+"/healthz"); r.StatusCode != 200 {
		t.Errorf("/healthz %d", r.StatusCode)
	}
	// The container HEALTHCHECK subcommand against the live server.
	addr := strings.TrimPrefix(base, "http://")
	hc := func(k string) string { return map[string]string{"AVATAR_LISTEN": addr}[k] }
	if err := run(context.Background(), []string{"healthcheck"}, hc, io.Discard, io.Discard, nil); err != nil {
		t.Errorf("healthcheck against a live server: %v", err)
	}
	// The access log's goroutine formats and writes lines every 10 ms.
	want := `"msg":"request","id":`
	for deadline := time.Now().Add(10 * time.Second); strings.Count(stderr.String(), want) < len(cases)+1; {
		if time.Now().After(deadline) {
			t.Fatalf("access lines missing:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if line := `"method":"GET","path":"/avatar/*******4561@c.us.jpg","status":200,"bytes":`; !strings.Contains(stderr.String(), line) {
		t.Errorf("no access line with %s:\n%s", line, stderr.String())
	}
	if strings.Contains(stderr.String(), "79001234561") {
		t.Error("an unmasked phone number in the logs")
	}
}

func TestHealthcheckFailsWithoutServer(t *testing.T) {
	env := func(k string) string { return map[string]string{"AVATAR_LISTEN": "127.0.0.1:1"}[k] }
	if err := run(context.Background(), []string{"healthcheck"}, env, io.Discard, io.Discard, nil); err == nil {
		t.Fatal("healthcheck passed with nothing listening")
	}
}

// The health check reads the port as the server does: --listen beats
// AVATAR_LISTEN, and the server's other flags may come along.
func TestHealthcheckHonoursListenFlag(t *testing.T) {
	flags := []string{"--upstream=none", "--storage=none", "--allow-unsigned"}
	base, _, _ := startRun(t, append(flags, "--listen=127.0.0.1:0"), nil)
	live := "--listen=" + strings.TrimPrefix(base, "http://")
	dead := map[string]string{"AVATAR_LISTEN": "127.0.0.1:1"}
	getenv := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, args := range [][]string{{live}, append(flags, live)} {
		if err := run(context.Background(), append([]string{"healthcheck"}, args...), getenv(dead), io.Discard, io.Discard, nil); err != nil {
			t.Errorf("healthcheck %q with %v: %v", args, dead, err)
		}
	}
	liveEnv := map[string]string{"AVATAR_LISTEN": strings.TrimPrefix(base, "http://")}
	if err := run(context.Background(), []string{"healthcheck", "--listen=127.0.0.1:1"}, getenv(liveEnv), io.Discard, io.Discard, nil); err == nil {
		t.Error("healthcheck ignored --listen for AVATAR_LISTEN")
	}
	if err := run(context.Background(), []string{"healthcheck", "--listen", "secret-value", "x"}, getenv(nil), io.Discard, io.Discard, nil); err == nil || strings.Contains(err.Error(), "secret-value") {
		t.Errorf("bad arguments: %v", err)
	}
}

// TestHealthcheckIgnoresProxy: with HTTP_PROXY in the environment and
// --listen on a non-loopback address (which Go does not exempt from the
// proxy), the check still asks the server itself. The proxy here answers
// 200 to everything, as a check passed through one to the wrong server
// would. The check runs in a child process: net/http reads the proxy
// variables once per process, and this one has made requests already.
func TestHealthcheckIgnoresProxy(t *testing.T) {
	if addr := os.Getenv("AVATARPROXY_TEST_HEALTHCHECK_ADDR"); addr != "" {
		if err := run(context.Background(), []string{"healthcheck", "--listen=" + addr}, func(string) string { return "" }, io.Discard, io.Discard, nil); err != nil {
			t.Fatal(err)
		}
		return
	}
	ip := nonLoopbackIPv4(t)
	var proxied, direct atomic.Int32
	fakeProxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer fakeProxy.Close()
	target := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			direct.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	target.Listener = ln
	target.Start()
	defer target.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHealthcheckIgnoresProxy$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		"AVATARPROXY_TEST_HEALTHCHECK_ADDR="+ln.Addr().String(),
		"HTTP_PROXY="+fakeProxy.URL, "http_proxy="+fakeProxy.URL, "NO_PROXY=", "no_proxy=", "REQUEST_METHOD=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("healthcheck with HTTP_PROXY set: %v\n%s", err, out)
	}
	if n := proxied.Load(); n != 0 {
		t.Errorf("the proxy got %d requests", n)
	}
	if n := direct.Load(); n != 1 {
		t.Errorf("the server got %d /healthz requests, want 1", n)
	}
}

// nonLoopbackIPv4 is an IPv4 address of this machine other than loopback, or
// skips the test.
func nonLoopbackIPv4(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address to listen on")
	return ""
}

func TestBadConfigListsEveryProblem(t *testing.T) {
	err := run(context.Background(), nil, func(k string) string {
		return map[string]string{"AVATAR_TTL": "x", "AVATAR_STORAGE": "tape", "AVATAR_GREENAPI_API_TOKEN_INSTANCE": "s3cr3t-token",
			"AVATAR_STORAGE_NAME_KEY": "short-n4me-key"}[k]
	}, io.Discard, io.Discard, nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"AVATAR_TTL", "AVATAR_STORAGE", "AVATAR_SIGNING_KEY", "AVATAR_GREENAPI_ID_INSTANCE", "AVATAR_STORAGE_NAME_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "s3cr3t-token") || strings.Contains(err.Error(), "n4me") {
		t.Error("secret in the config error")
	}
}

func TestSignCommand(t *testing.T) {
	var out bytes.Buffer
	env := func(k string) string {
		if k == "AVATAR_SIGNING_KEY" {
			return "0123456789abcdef-key,old-key-0123456789"
		}
		return ""
	}
	if err := run(context.Background(), []string{"sign", "79001234567@c.us"}, env, &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	// HMAC-SHA256("0123456789abcdef-key", "79001234567@c.us"), base64url without padding.
	// Computed independently, as the README's shell snippet does:
	// printf %s 79001234567@c.us | openssl dgst -sha256 -hmac 0123456789abcdef-key -binary | base64 | tr '+/' '-_' | tr -d =
	if got, want := strings.TrimSpace(out.String()), "yPRrwGpwyPMRd7RiWGq4Hxpc7AzK_YiJLTcdfxsBJsc"; got != want {
		t.Fatalf("signature %q, want %q", got, want)
	}
	if err := run(context.Background(), []string{"sign", "not-a-chat"}, env, &out, io.Discard, nil); err == nil {
		t.Error("signed an invalid chat id")
	}
	out.Reset()
	if err := run(context.Background(), []string{"sign", "--exp", "1893456000", "79001234567@c.us"}, env, &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	// printf %s 79001234567@c.us:1893456000 | openssl dgst -sha256 -hmac 0123456789abcdef-key -binary | base64 | tr '+/' '-_' | tr -d =
	if got, want := strings.TrimSpace(out.String()), "_i1h8QmRRb_X5ToMhX4Llhw8rwE5czd9eZDWPigSoWA"; got != want {
		t.Errorf("expiring signature %q, want %q", got, want)
	}
	out.Reset()
	if err := run(context.Background(), []string{"sign", "--opaque", "79001234567@c.us"}, env, &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	if chat, err := proxy.NewSigner([][]byte{[]byte("0123456789abcdef-key")}).Open(tok); err != nil || chat != "79001234567@c.us" {
		t.Errorf("opaque token %q opens to %q, %v", tok, chat, err)
	}
	if tok != "6EeXXhRO66_I-7Ud83JS0eekuflarVsKng4ULySCFAh64TIthA5jCLDMDik" {
		t.Errorf("opaque token %q changed: the README's snippets produce 6EeXXhRO66_I-7Ud83JS0eekuflarVsKng4ULySCFAh64TIthA5jCLDMDik", tok)
	}
}

// AVATAR_MAX_STALE=0 means never serving stale, which proxy.Config spells
// as a negative window (its zero is the default of 7 days).
func TestStaleWindow(t *testing.T) {
	for _, c := range []struct{ in, want time.Duration }{{0, -1}, {time.Hour, time.Hour}, {7 * 24 * time.Hour, 7 * 24 * time.Hour}} {
		if got := staleWindow(c.in); got != c.want {
			t.Errorf("staleWindow(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A stderr that takes nothing (a stuck log shipper, a paused pipe) holds
// neither the service, its readiness nor its exit: every log line goes
// through a buffer that drops rather than waits.
func TestStuckStderr(t *testing.T) {
	stuck := make(chan struct{})
	defer close(stuck)
	stderr := writerFunc(func(p []byte) (int, error) { <-stuck; return len(p), nil })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--demo", "--listen=127.0.0.1:0", "--shutdown-timeout=2s"},
			func(string) string { return "" }, io.Discard, stderr, func(a string) { addr <- a })
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("run exited early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("run did not start with stderr stuck")
	}
	for range 300 { // access lines and the gateway's log lines pile up
		get(t, base+"/avatar/79001234561@c.us.jpg?size=64")
	}
	get(t, base+"/avatar/79001234563@c.us.jpg?size=64")
	if resp, _ := get(t, base+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz = %d", resp.StatusCode)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after its context ended, with stderr stuck")
	}
}

// With a signing key the demo signs the URLs it prints, and does not serve
// the example pages, whose URLs are unsigned (they would show only broken
// images).
func TestDemoWithSigningKey(t *testing.T) {
	base, stdout, _ := startRun(t, []string{"--demo", "--listen=127.0.0.1:0"}, map[string]string{"AVATAR_SIGNING_KEY": "0123456789abcdef-demo-key"})
	out := stdout.String()
	if !strings.Contains(out, "not served while AVATAR_SIGNING_KEY is set") || strings.Contains(out, "/demo/crm.html") {
		t.Errorf("demo output with a key:\n%s", out)
	}
	if resp, _ := get(t, base+"/demo/crm.html"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/demo/crm.html = %d, want 404", resp.StatusCode)
	}
	i := strings.Index(out, base+"/avatar/")
	if i < 0 {
		t.Fatalf("no avatar URL printed:\n%s", out)
	}
	u := strings.Fields(out[i:])[0]
	if resp, _ := get(t, u); resp.StatusCode != http.StatusOK || !strings.Contains(u, "&sig=") {
		t.Errorf("printed URL %s: %d", u, resp.StatusCode)
	}
}

// TestAllowUnsignedKeepsSignatures: AVATAR_ALLOW_UNSIGNED only lets a
// server start without a key; with a key set, an unsigned URL is still a
// 403 and a signed one works (README, "The URL" and "Signed URLs").
func TestAllowUnsignedKeepsSignatures(t *testing.T) {
	const key = "0123456789abcdef-key"
	base, _, _ := startRun(t, []string{"--demo", "--listen=127.0.0.1:0", "--first-load-timeout=10s"},
		map[string]string{"AVATAR_SIGNING_KEY": key, "AVATAR_ALLOW_UNSIGNED": "true"})
	u := base + "/avatar/79001234561@c.us.jpg?size=16"
	if resp, _ := get(t, u); resp.StatusCode != http.StatusForbidden {
		t.Errorf("unsigned %s with a key and AVATAR_ALLOW_UNSIGNED=true: %d, want 403", u, resp.StatusCode)
	}
	sig := proxy.NewSigner([][]byte{[]byte(key)}).Sign("79001234561@c.us")
	if resp, _ := get(t, u+"&sig="+sig); resp.StatusCode != http.StatusOK {
		t.Errorf("signed %s: %d, want 200", u, resp.StatusCode)
	}
}

// TestStorageNameKey: the disk tier names a chat's record by the keyed hash
// when AVATAR_STORAGE_NAME_KEY is set (by the plain one when not), the
// startup line says which, and the key is on no log line.
func TestStorageNameKey(t *testing.T) {
	const chatRecord = "src/79001234561@c.us/full" // proxy's durable key of the chat below
	const nameKey = "storage-n4me-key-0123456789"
	keyed := func() string {
		m := hmac.New(sha256.New, []byte(nameKey))
		m.Write([]byte(chatRecord))
		return hex.EncodeToString(m.Sum(nil))
	}()
	plain := sha256.Sum256([]byte(chatRecord))
	for _, tc := range []struct {
		name, key, hash, logged string
	}{
		{"keyed", nameKey, keyed, `"storage_names_keyed":true`},
		{"unkeyed", "", hex.EncodeToString(plain[:]), `"storage_names_keyed":false`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			base, _, stderr := startRun(t, []string{"--demo", "--listen=127.0.0.1:0", "--storage=disk", "--disk-dir=" + dir, "--first-load-timeout=10s"},
				map[string]string{"AVATAR_STORAGE_NAME_KEY": tc.key})
			if resp, _ := get(t, base+"/avatar/79001234561@c.us.jpg?size=64"); resp.StatusCode != http.StatusOK {
				t.Fatalf("avatar: %d", resp.StatusCode)
			}
			// The record is written behind the response, and log lines by
			// the log's own goroutine: wait for both.
			want := filepath.Join(dir, tc.hash[:2], tc.hash[2:4], tc.hash)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				_, err := os.Stat(want)
				if err == nil && strings.Contains(stderr.String(), tc.logged) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after 10 s: record %s: %v; startup line with %s:\n%s", want, err, tc.logged, stderr.String())
				}
			}
			if strings.Contains(stderr.String(), nameKey) || strings.Contains(stderr.String(), "n4me") {
				t.Error("the name key is in the log")
			}
		})
	}
}

// durableWriters counts the goroutines running the durable tier's writer
// loop, in this whole process.
func durableWriters() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "avatarproxy/cache.(*Durable).work(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestFailedStartClosesWhatItOpened: a start that fails once the durable
// tier is open (a metrics port or the avatar port already taken) returns an
// error with the tier's writers stopped and the metrics port given back.
// Closing the tier waits for its writers to exit, so counting them right
// after run returns is exact.
func TestFailedStartClosesWhatItOpened(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	freeAddr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	for _, tc := range []struct {
		name, listen, metrics string
	}{
		{"metrics port taken", "127.0.0.1:0", taken.Addr().String()},
		{"avatar port taken", taken.Addr().String(), freeAddr()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := durableWriters()
			args := []string{"--upstream=none", "--allow-unsigned", "--storage=disk", "--disk-dir=" + t.TempDir(),
				"--listen=" + tc.listen, "--metrics-listen=" + tc.metrics}
			err := run(context.Background(), args, func(string) string { return "" }, io.Discard, io.Discard, func(string) {
				t.Error("run started serving")
			})
			if err == nil {
				t.Fatal("run started with a port taken")
			}
			if n := durableWriters() - before; n != 0 {
				t.Errorf("%d durable writers left running after the failed start", n)
			}
			if tc.metrics != taken.Addr().String() {
				l, err := net.Listen("tcp", tc.metrics)
				if err != nil {
					t.Fatalf("the metrics port is still held: %v", err)
				}
				l.Close()
			}
		})
	}
}

// The demo raises the gateway budget for its stand-in gateway, but only
// the settings left at their defaults: a concurrency given as a flag or in
// the environment is kept, as flags and variables win everywhere else.
func TestDemoConfigKeepsGivenGatewayBudget(t *testing.T) {
	d := &demo.Demo{GreenAPIURL: "http://127.0.0.1:1", CDNHost: "127.0.0.1:2"}
	load := func(args []string, env map[string]string) config.Config {
		t.Helper()
		getenv := func(k string) string { return env[k] }
		cfg, err := config.Load(append([]string{"--demo"}, args...), getenv, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		return demoConfig(cfg, d, getenv)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		env   map[string]string
		rps   float64
		slots int
	}{
		{"defaults", nil, nil, 200, 16},
		{"concurrency flag", []string{"--upstream-concurrency=2"}, nil, 200, 2},
		{"concurrency variable", nil, map[string]string{"AVATAR_UPSTREAM_CONCURRENCY": "4"}, 200, 4},
		{"rps flag", []string{"--upstream-rps=3"}, nil, 3, 16},
		{"rps variable", nil, map[string]string{"AVATAR_UPSTREAM_RPS": "5"}, 5, 16},
	} {
		cfg := load(tc.args, tc.env)
		if cfg.UpstreamRPS != tc.rps || cfg.UpstreamConcurrency != tc.slots {
			t.Errorf("%s: rps %v, concurrency %d; want %v, %d", tc.name, cfg.UpstreamRPS, cfg.UpstreamConcurrency, tc.rps, tc.slots)
		}
	}
}
