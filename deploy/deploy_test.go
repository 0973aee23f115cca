package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/avatarproxy/avatarproxy/config"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// ---------------------------------------------------------------------------
// What the recipes are checked against: the README's settings table, the
// Dockerfile, the routes the server registers, and nginx.conf's upstreams.

var (
	settingRow    = regexp.MustCompile("(?m)^\\| `(AVATAR_[A-Z0-9_]+)` \\|")
	entrypointRe  = regexp.MustCompile(`(?m)^ENTRYPOINT\s+\["([^"]+)"`)
	routeRe       = regexp.MustCompile(`app\.Get\("(/[^"]*)"`)
	upstreamRe    = regexp.MustCompile(`(?m)^\s*server\s+([^\s;]+)`)
	nginxListenRe = regexp.MustCompile(`(?m)^\s*listen\s+(\d+);`)

	// secretName matches the variables whose values are secrets.
	secretName = regexp.MustCompile(`(^|_)(KEY|TOKEN|PASSWORD|SECRET)(_|$)`)
	// requiredRef is compose's required-variable reference, ${VAR:?message}.
	requiredRef = regexp.MustCompile(`^\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}$`)
	// interpolation finds ${VAR...} references (a $$ is an escaped $).
	interpolation = regexp.MustCompile(`(^|[^$])\$\{([A-Za-z_][A-Za-z0-9_]*)`)
)

// fleetEnv is what the compose and Kubernetes checks compare the files with.
type fleetEnv struct {
	settings    map[string]bool // AVATAR_* names of README.md's settings table
	entrypoint  string          // the binary of the Dockerfile's ENTRYPOINT
	routes      []string        // GET routes the server registers
	upstreams   []string        // host:port of nginx.conf's upstream servers
	nginxListen string          // the port nginx.conf listens on
}

func loadFleetEnv(t *testing.T) fleetEnv {
	t.Helper()
	var env fleetEnv

	readme := readFile(t, "../README.md")
	begin := strings.Index(readme, "<!-- settings:begin")
	end := strings.Index(readme, "<!-- settings:end -->")
	if begin < 0 || end < begin {
		t.Fatal("README.md: no settings table between <!-- settings:begin and <!-- settings:end -->")
	}
	env.settings = map[string]bool{}
	for _, m := range settingRow.FindAllStringSubmatch(readme[begin:end], -1) {
		env.settings[m[1]] = true
	}
	// A reformatted table must not turn the name checks into no checks.
	if len(env.settings) < 20 {
		t.Fatalf("README.md settings table: found only %d AVATAR_* rows", len(env.settings))
	}

	m := entrypointRe.FindStringSubmatch(readFile(t, "../Dockerfile"))
	if m == nil {
		t.Fatal(`Dockerfile: no ENTRYPOINT ["..."]`)
	}
	env.entrypoint = m[1]

	for _, m := range routeRe.FindAllStringSubmatch(readFile(t, "../proxy/server.go"), -1) {
		env.routes = append(env.routes, m[1])
	}
	if !slices.Contains(env.routes, "/healthz") {
		t.Fatalf("proxy/server.go: found GET routes %v, no /healthz", env.routes)
	}

	conf := readFile(t, "nginx.conf")
	up := strings.Index(conf, "\n    upstream ")
	if up < 0 {
		t.Fatal("nginx.conf: no upstream block")
	}
	block := conf[up:]
	block = block[:strings.Index(block, "}")]
	for _, m := range upstreamRe.FindAllStringSubmatch(block, -1) {
		env.upstreams = append(env.upstreams, m[1])
	}
	l := nginxListenRe.FindAllStringSubmatch(conf, -1)
	if len(l) != 1 {
		t.Fatalf("nginx.conf: want one `listen PORT;`, found %d", len(l))
	}
	env.nginxListen = l[0][1]
	return env
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pinned reports whether an image reference names a fixed version: a digest,
// or a tag with a version number in it (not latest, not a bare name).
func pinned(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	colon, slash := strings.LastIndex(ref, ":"), strings.LastIndex(ref, "/")
	if colon < 0 || colon < slash {
		return false
	}
	tag := ref[colon+1:]
	return tag != "latest" && strings.ContainsAny(tag, "0123456789")
}

// listenPort is the port of an AVATAR_LISTEN value ("" is the default :8080).
func listenPort(listen string) (string, error) {
	if listen == "" {
		listen = ":8080"
	}
	_, port, err := net.SplitHostPort(listen)
	return port, err
}

// parseBytes reads a Kubernetes memory quantity (512Mi) or a GOMEMLIMIT
// value (448MiB).
func parseBytes(s string) (int64, error) {
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"B", 1}} {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			return n * u.mul, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func subset(small, big map[string]string) bool {
	if len(small) == 0 {
		return false
	}
	for k, v := range small {
		if big[k] != v {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// nginx.conf

// nginxBinary finds nginx. CI must have it (scripts/test.sh installs it);
// elsewhere its absence skips the test.
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"nginx", "/usr/sbin/nginx"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("nginx is not installed (scripts/test.sh installs it: apt-get install -y nginx)")
	}
	t.Skip("nginx is not installed: apt-get install -y nginx (the service need not run)")
	return ""
}

// nginxSite says where the test's copy of nginx.conf points.
type nginxSite struct {
	upstreams map[string]string // "avatarproxy-a:8080" -> "127.0.0.1:PORT"
	listen    string            // replaces "80"
	cache     bool              // uncomment the "#+cache " lines
}

// renderNginx returns nginx.conf as the test runs it: the replica names
// (which resolve only inside compose) pointed at 127.0.0.1, the listen
// address moved, and the temporary paths in dir. Each substitution must
// match exactly as often as expected, or it is an error, so an edit of
// nginx.conf cannot make one silently miss; and each swaps a token for one of
// the same shape or adds lines, never removes any, so none can hide a syntax
// error (TestNginxConfigBroken shows nginx -t still failing on one).
func renderNginx(conf, dir string, site nginxSite) (string, error) {
	replace := func(old, new string, want int) error {
		if n := strings.Count(conf, old); n != want {
			return fmt.Errorf("nginx.conf: %q appears %d times, want %d", old, n, want)
		}
		conf = strings.ReplaceAll(conf, old, new)
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(site.upstreams)) {
		if err := replace("server "+name+" ", "server "+site.upstreams[name]+" ", 1); err != nil {
			return "", err
		}
	}
	if err := replace("listen 80;", "listen "+site.listen+";", 1); err != nil {
		return "", err
	}
	var temp strings.Builder
	for _, d := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temp, "    %s_temp_path %s;\n", d, filepath.Join(dir, d))
	}
	if err := replace("\nhttp {\n", "\nhttp {\n"+temp.String(), 1); err != nil {
		return "", err
	}
	if site.cache {
		if n := strings.Count(conf, "\n    #+cache ") + strings.Count(conf, "\n            #+cache "); n < 2 {
			return "", fmt.Errorf("nginx.conf: found %d #+cache lines, want the cache path and the location's directives", n)
		}
		conf = strings.ReplaceAll(conf, "#+cache ", "")
		if err := replace("/var/cache/nginx/avatars", filepath.Join(dir, "cache"), 1); err != nil {
			return "", err
		}
	}
	path := filepath.Join(dir, "nginx.conf")
	return path, os.WriteFile(path, []byte(conf), 0o644)
}

// testSite is a site whose upstreams and listen address are never dialled.
func testSite() nginxSite {
	return nginxSite{
		upstreams: map[string]string{"avatarproxy-a:8080": "127.0.0.1:18081", "avatarproxy-b:8080": "127.0.0.1:18082"},
		listen:    "127.0.0.1:18080",
	}
}

// nginxT runs `nginx -t` on a rendered configuration.
func nginxT(t *testing.T, bin, conf, dir string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-t", "-q", "-e", "stderr", "-p", dir+"/", "-c", conf,
		"-g", "pid "+filepath.Join(dir, "nginx.pid")+";").CombinedOutput()
	return string(out), err
}

func TestNginxConfig(t *testing.T) {
	bin := nginxBinary(t)
	src := readFile(t, "nginx.conf")
	for _, tc := range []struct {
		name  string
		cache bool
	}{{"as shipped", false}, {"with the optional cache", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			site := testSite()
			site.cache = tc.cache
			conf, err := renderNginx(src, dir, site)
			if err != nil {
				t.Fatal(err)
			}
			if out, err := nginxT(t, bin, conf, dir); err != nil {
				t.Fatalf("nginx -t: %v\n%s", err, out)
			}
		})
	}

	// What nginx -t cannot tell: the directives this design rests on.
	for _, want := range []string{
		`(?m)^\s*hash \$avatar_route consistent;`,
		`(?m)^\s*keepalive \d+;`,
		`(?m)^\s*proxy_http_version 1\.1;`,
		`(?m)^\s*proxy_set_header Connection "";`,
		`(?m)^\s*proxy_set_header Host \$host;`,
		`(?m)^\s*proxy_set_header X-Request-ID \$avatar_request_id;`,
		`(?m)^\s*proxy_next_upstream error timeout;`,
		`(?m)^\s*access_log \S+ avatar;`,
		// Upstream errors quote the request line (number, signature).
		`(?m)^error_log \S+ crit;`,
	} {
		if !regexp.MustCompile(want).MatchString(src) {
			t.Errorf("nginx.conf: no line matching %s", want)
		}
	}
	// The log format must not carry the query or the raw path.
	format := src[strings.Index(src, "log_format"):]
	format = format[:strings.Index(format, ";\n")]
	for _, leak := range []string{"$request", "$request_uri", "$args", "$query_string", "$uri", "$http_referer"} {
		if regexp.MustCompile(regexp.QuoteMeta(leak) + `\b`).MatchString(format) {
			t.Errorf("nginx.conf: log_format logs %s", leak)
		}
	}
}

// TestNginxConfigBroken shows that the rendered copy still fails nginx -t
// when nginx.conf is broken: the substitutions hide nothing.
func TestNginxConfigBroken(t *testing.T) {
	bin := nginxBinary(t)
	src := readFile(t, "nginx.conf")
	for _, tc := range []struct{ name, old, new string }{
		{"missing semicolon", "keepalive 32;", "keepalive 32"},
		{"misspelt directive", "proxy_read_timeout 10s;", "proxy_read_timout 10s;"},
		{"unknown variable", "hash $avatar_route consistent;", "hash $avatar_rout consistent;"},
		{"bad parameter", "hash $avatar_route consistent;", "hash $avatar_route consistant;"},
		{"unbalanced brace", "    upstream avatarproxy {\n", "    upstream avatarproxy {\n    {\n"},
		{"bad regular expression", "(?<tail>[0-9]{4}", "(?<tail[0-9]{4}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(src, tc.old) != 1 {
				t.Fatalf("nginx.conf no longer has %q once: update this case", tc.old)
			}
			dir := t.TempDir()
			conf, err := renderNginx(strings.Replace(src, tc.old, tc.new, 1), dir, testSite())
			if err != nil {
				t.Fatal(err)
			}
			if out, err := nginxT(t, bin, conf, dir); err == nil {
				t.Fatalf("nginx -t accepted a broken configuration\n%s", out)
			}
		})
	}
}

func TestRenderNginxRefusesDrift(t *testing.T) {
	src := readFile(t, "nginx.conf")
	for _, tc := range []struct{ name, old, new string }{
		{"replica renamed", "server avatarproxy-b:8080 ", "server avatarproxy-2:8080 "},
		{"replica twice", "server avatarproxy-b:8080 ", "server avatarproxy-b:8080 max_fails=1;\n        server avatarproxy-b:8080 "},
		{"listen moved", "listen 80;", "listen 8080;"},
		{"no http block", "\nhttp {\n", "\nhttp  {\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(src, tc.old) {
				t.Fatalf("nginx.conf no longer has %q: update this case", tc.old)
			}
			if _, err := renderNginx(strings.Replace(src, tc.old, tc.new, 1), t.TempDir(), testSite()); err == nil {
				t.Fatal("renderNginx accepted a configuration its substitutions do not fit")
			}
		})
	}
}

// fakeReplica stands in for an avatarproxy replica: it answers every request
// with its name and records what nginx sent.
type fakeReplica struct {
	name string
	srv  *httptest.Server
	mu   sync.Mutex
	seen []seenRequest
}

type seenRequest struct {
	method, uri, host, requestID, forwardedFor, proto string
	close                                             bool
}

func newFakeReplica(t *testing.T, name string) *fakeReplica {
	r := &fakeReplica{name: name}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, seenRequest{
			method: req.Method, uri: req.RequestURI, host: req.Host, requestID: req.Header.Get("X-Request-ID"),
			forwardedFor: req.Header.Get("X-Forwarded-For"), proto: req.Proto, close: req.Close,
		})
		r.mu.Unlock()
		w.Header().Set("X-Replica", name)
		if req.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Status", "avatarproxy; hit")
		w.Header().Set("X-Avatar-Status", "ok")
		io.WriteString(w, "avatar from "+name)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *fakeReplica) find(uri string) (seenRequest, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.seen {
		if s.uri == uri {
			return s, true
		}
	}
	return seenRequest{}, false
}

// syncBuffer collects a process's output; ready closes once marker appears.
type syncBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	marker []byte
	ready  chan struct{}
	once   sync.Once
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if b.marker != nil && bytes.Contains(b.buf.Bytes(), b.marker) {
		b.once.Do(func() { close(b.ready) })
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runningNginx is an nginx started by the test, in the foreground.
type runningNginx struct {
	cmd    *exec.Cmd
	stdout *syncBuffer // the access log
	stderr *syncBuffer
	done   chan struct{} // closed once Wait has returned, with err set
	err    error
}

func startNginx(t *testing.T, bin, conf, dir string) *runningNginx {
	t.Helper()
	n := &runningNginx{
		stdout: &syncBuffer{},
		// The master logs this (at notice) once its sockets listen.
		stderr: &syncBuffer{marker: []byte("start worker process"), ready: make(chan struct{})},
		done:   make(chan struct{}),
	}
	n.cmd = exec.Command(bin, "-e", "stderr", "-p", dir+"/", "-c", conf,
		"-g", "daemon off; pid "+filepath.Join(dir, "nginx.pid")+"; error_log stderr notice;")
	n.cmd.Stdout, n.cmd.Stderr = n.stdout, n.stderr
	// Its own process group, so the cleanup can end the workers too (they
	// hold the output pipes open); WaitDelay bounds Wait if one survives.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	n.cmd.WaitDelay = 10 * time.Second
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.err = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() {
		select {
		case <-n.done:
		default:
			syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
			<-n.done
		}
	})
	select {
	case <-n.stderr.ready:
	case <-n.done:
		t.Fatalf("nginx exited: %v\n%s", n.err, n.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("nginx did not start\n%s", n.stderr)
	}
	return n
}

// stop asks nginx to finish its requests and exit; after it, the access log
// is complete.
func (n *runningNginx) stop(t *testing.T) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGQUIT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("nginx did not stop\n%s", n.stderr)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestNginxFleet runs nginx.conf in front of two fake replicas on 127.0.0.1.
func TestNginxFleet(t *testing.T) {
	bin := nginxBinary(t)
	a, b := newFakeReplica(t, "a"), newFakeReplica(t, "b")
	replicas := map[string]*fakeReplica{"a": a, "b": b}
	dir := t.TempDir()
	site := nginxSite{
		upstreams: map[string]string{
			"avatarproxy-a:8080": a.srv.Listener.Addr().String(),
			"avatarproxy-b:8080": b.srv.Listener.Addr().String(),
		},
		listen: "127.0.0.1:" + freePort(t),
	}
	conf, err := renderNginx(readFile(t, "nginx.conf"), dir, site)
	if err != nil {
		t.Fatal(err)
	}
	n := startNginx(t, bin, conf, dir)

	client := &http.Client{Timeout: 20 * time.Second}
	do := func(t *testing.T, method, path string, header map[string]string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, "http://"+site.listen+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "avatars.example.test"
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}
	// replicaOf sends a request that must reach a replica and says which.
	replicaOf := func(t *testing.T, method, path string) string {
		t.Helper()
		resp, _ := do(t, method, path, nil)
		if resp.StatusCode >= 300 || resp.Header.Get("X-Replica") == "" {
			t.Fatalf("%s %s: %d from %q", method, path, resp.StatusCode, resp.Header.Get("X-Replica"))
		}
		return resp.Header.Get("X-Replica")
	}

	t.Run("one chat, one replica", func(t *testing.T) {
		for _, group := range [][]struct{ method, path string }{
			{ // every size, format, spelling and signature of one person, and its purge
				{"GET", "/avatar/79001234567@c.us.jpg?size=64&sig=SIGVALUE123"},
				{"GET", "/avatar/79001234567@c.us.jpg?size=128&name=Anna%20Petrova&sig=SIGVALUE123"},
				{"HEAD", "/avatar/79001234567@c.us.jpeg"},
				{"GET", "/avatar/79001234567.png?size=32"},
				{"GET", "/avatar/79001234567@s.whatsapp.net.jpg"},
				{"GET", "/avatar/79001234567%40c.us.jpg?size=96"},
				{"GET", "/AVATAR/79001234567@C.US.JPG?size=97"},
				{"DELETE", "/avatar/79001234567@c.us"},
			},
			{
				{"GET", "/avatar/120363043968066561@g.us.jpg?size=64"},
				{"GET", "/avatar/120363043968066561@g.us.png?size=512"},
			},
			{
				{"GET", "/avatar/t/AbCdEf_-0123456789.jpg?size=64"},
				{"GET", "/avatar/t/AbCdEf_-0123456789.png"},
			},
		} {
			first := replicaOf(t, group[0].method, group[0].path)
			for _, r := range group[1:] {
				if got := replicaOf(t, r.method, r.path); got != first {
					t.Errorf("%s %s went to replica %s, %s went to %s", r.method, r.path, got, group[0].path, first)
				}
			}
		}
	})

	chatOn := map[string]string{} // replica -> a chat it serves
	t.Run("chats spread over both replicas", func(t *testing.T) {
		for i := range 40 {
			path := fmt.Sprintf("/avatar/790000%05d@c.us.jpg?size=64", i)
			chatOn[replicaOf(t, "GET", path)] = path
		}
		if len(chatOn) != 2 {
			t.Fatalf("40 chats all went to %v", slices.Collect(maps.Keys(chatOn)))
		}
	})

	t.Run("headers reach the replica", func(t *testing.T) {
		const withID, withoutID, badID = "/avatar/79001234567@c.us.jpg?size=200", "/avatar/79001234567@c.us.jpg?size=201", "/avatar/79001234567@c.us.jpg?size=202"
		do(t, "GET", withID, map[string]string{"X-Request-ID": "req-123"})
		do(t, "GET", withoutID, nil)
		// One avatarproxy would refuse (and replace) must not get through.
		do(t, "GET", badID, map[string]string{"X-Request-ID": `req 123","status":200`})
		for uri, wantID := range map[string]*regexp.Regexp{
			withID:    regexp.MustCompile(`^req-123$`),
			withoutID: regexp.MustCompile(`^[0-9a-f]{32}$`),
			badID:     regexp.MustCompile(`^[0-9a-f]{32}$`),
		} {
			var s seenRequest
			var ok bool
			for _, r := range replicas {
				if s, ok = r.find(uri); ok {
					break
				}
			}
			if !ok {
				t.Fatalf("no replica saw %s", uri)
			}
			if s.host != "avatars.example.test" {
				t.Errorf("%s: Host %q", uri, s.host)
			}
			if !wantID.MatchString(s.requestID) {
				t.Errorf("%s: X-Request-ID %q, want %s", uri, s.requestID, wantID)
			}
			if s.forwardedFor != "127.0.0.1" {
				t.Errorf("%s: X-Forwarded-For %q", uri, s.forwardedFor)
			}
			// HTTP/1.1 without "Connection: close": upstream keepalive.
			if s.proto != "HTTP/1.1" || s.close {
				t.Errorf("%s: %s, close=%v: want HTTP/1.1 kept alive", uri, s.proto, s.close)
			}
		}
	})

	t.Run("metrics stay inside", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/METRICS/", "/%6detrics"} {
			if resp, _ := do(t, "GET", path, nil); resp.StatusCode != http.StatusNotFound || resp.Header.Get("X-Replica") != "" {
				t.Errorf("GET %s: %d from replica %q, want nginx's 404", path, resp.StatusCode, resp.Header.Get("X-Replica"))
			}
		}
		if resp, body := do(t, "GET", "/nginx-health", nil); resp.StatusCode != http.StatusOK || body != "ok\n" {
			t.Errorf("GET /nginx-health: %d %q", resp.StatusCode, body)
		}
	})

	t.Run("a dead replica is skipped", func(t *testing.T) {
		path, ok := chatOn["a"]
		if !ok {
			t.Fatal("no chat known to go to replica a")
		}
		a.srv.Close() // refuses connections from now on
		resp, body := do(t, "GET", path, map[string]string{"X-Request-ID": "failover-1"})
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Replica") != "b" || body != "avatar from b" {
			t.Fatalf("GET %s with replica a down: %d from %q", path, resp.StatusCode, resp.Header.Get("X-Replica"))
		}
	})

	n.stop(t)

	t.Run("the access log keeps numbers and signatures out", func(t *testing.T) {
		log := n.stdout.String()
		for _, leak := range []string{"79001234567", "7900123", "SIGVALUE123", "sig=", "size=", "Anna", "AbCdEf", "120363043968066561"} {
			if strings.Contains(log, leak) {
				t.Errorf("access log contains %q", leak)
			}
		}
		byID := map[string]map[string]any{}
		lines := strings.Split(strings.TrimSpace(log), "\n")
		for _, line := range lines {
			var entry map[string]any
			if err := json.Unmarshal([]byte(line), &entry); err != nil {
				t.Fatalf("access log line is not JSON: %v\n%s", err, line)
			}
			if _, ok := entry["status"].(float64); !ok {
				t.Errorf("status is not a number: %s", line)
			}
			if path := fmt.Sprint(entry["path"]); regexp.MustCompile(`[0-9]{5}`).MatchString(path) {
				t.Errorf("access log path %q shows a number", path)
			}
			byID[fmt.Sprint(entry["id"])] = entry
		}
		if len(lines) < 50 {
			t.Fatalf("access log has %d lines, want one per request\n%s", len(lines), log)
		}
		for id, want := range map[string]map[string]string{
			"req-123":    {"path": "/avatar/***4567@c.us.jpg", "method": "GET", "cache": "avatarproxy; hit", "avatar": "ok"},
			"failover-1": {"upstream_status": "502, 200"},
		} {
			entry, ok := byID[id]
			if !ok {
				t.Fatalf("no access log line with id %s\n%s", id, log)
			}
			for k, v := range want {
				if entry[k] != v {
					t.Errorf("%s: %s = %v, want %q", id, k, entry[k], v)
				}
			}
		}
		paths := map[string]bool{}
		for _, e := range byID {
			paths[fmt.Sprint(e["path"])] = true
		}
		for _, want := range []string{"/avatar/t/***", "/avatar/***6561@g.us.png", "/avatar/***4567@c.us", "/avatar/***4567.png"} {
			if !paths[want] {
				t.Errorf("access log has no path %q; paths: %v", want, slices.Sorted(maps.Keys(paths)))
			}
		}
	})
}

// ---------------------------------------------------------------------------
// compose.yaml

type composeFile struct {
	Services map[string]*composeService `yaml:"services"`
	Volumes  map[string]any             `yaml:"volumes"`
}

type composeService struct {
	Image       string                       `yaml:"image"`
	Build       *composeBuild                `yaml:"build"`
	Command     []string                     `yaml:"command"`
	Restart     string                       `yaml:"restart"`
	Environment map[string]string            `yaml:"environment"`
	Ports       []string                     `yaml:"ports"`
	Volumes     []string                     `yaml:"volumes"`
	Healthcheck *composeHealthcheck          `yaml:"healthcheck"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
}

type composeBuild struct {
	Context    string `yaml:"context"`
	Dockerfile string `yaml:"dockerfile"`
}

type composeHealthcheck struct {
	Test []string `yaml:"test"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

func parseCompose(t *testing.T, raw string) *composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return &c
}

// checkCompose lists what is wrong with a compose file. Problems never quote
// an environment value: it could be a secret.
func checkCompose(c *composeFile, raw string, env fleetEnv) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := slices.Sorted(maps.Keys(c.Services))

	var replicas []string
	for _, name := range names {
		if c.Services[name].Build != nil {
			replicas = append(replicas, name)
		}
	}
	if len(replicas) != 2 {
		bad("want 2 avatarproxy replicas (services built from ../Dockerfile), got %v", replicas)
	}
	minio, nginx, init := c.Services["minio"], c.Services["nginx"], c.Services["minio-init"]
	if minio == nil || nginx == nil || init == nil {
		bad("want services minio, minio-init and nginx, got %v", names)
	}

	for _, name := range names {
		s := c.Services[name]
		if s.Build == nil && !pinned(s.Image) {
			bad("service %s: image %q is not pinned to a version", name, s.Image)
		}
		if s.Restart != "no" && (s.Healthcheck == nil || len(s.Healthcheck.Test) == 0) {
			bad("service %s has no healthcheck", name)
		}
		if name != "nginx" && len(s.Ports) > 0 {
			bad("service %s publishes ports: only nginx may", name)
		}
		for _, k := range slices.Sorted(maps.Keys(s.Environment)) {
			if secretName.MatchString(k) && !requiredRef.MatchString(s.Environment[k]) {
				bad("service %s: %s must be a ${VAR:?message} reference, never a value", name, k)
			}
			if strings.HasPrefix(k, "AVATAR_") && !env.settings[k] {
				bad("service %s sets %s, which README.md's settings table does not list", name, k)
			}
		}
	}
	for _, m := range interpolation.FindAllStringSubmatch(raw, -1) {
		if strings.HasPrefix(m[2], "AVATAR_") && !env.settings[m[2]] {
			bad("compose.yaml uses ${%s}, which README.md's settings table does not list", m[2])
		}
	}

	if minio != nil {
		named := false
		for _, v := range minio.Volumes {
			parts := strings.Split(v, ":")
			if _, declared := c.Volumes[parts[0]]; declared && len(parts) > 1 && parts[1] == "/data" {
				named = true
			}
		}
		if !named || !slices.Contains(minio.Command, "/data") {
			bad("minio: /data must be served from a named volume declared under volumes:")
		}
	}
	if init != nil && init.DependsOn["minio"].Condition != "service_healthy" {
		bad("minio-init must wait for minio to be healthy")
	}

	for i, name := range replicas {
		s := c.Services[name]
		e := s.Environment
		if s.Build.Context != ".." || s.Build.Dockerfile != "Dockerfile" {
			bad("%s: build ../Dockerfile, not %s/%s", name, s.Build.Context, s.Build.Dockerfile)
		}
		if s.Healthcheck == nil || !reflect.DeepEqual(s.Healthcheck.Test, []string{"CMD", env.entrypoint, "healthcheck"}) {
			bad("%s: the healthcheck must be [CMD, %s, healthcheck] (the image has no shell)", name, env.entrypoint)
		}
		if e["AVATAR_STORAGE"] != "s3" || e["AVATAR_S3_SECURE"] != "false" {
			bad("%s: want AVATAR_STORAGE=s3 and AVATAR_S3_SECURE=false", name)
		}
		if host, _, err := net.SplitHostPort(e["AVATAR_S3_ENDPOINT"]); err != nil || host != "minio" {
			bad("%s: AVATAR_S3_ENDPOINT must be the minio service", name)
		}
		if e["AVATAR_SIGNING_KEY"] == "" {
			bad("%s: no AVATAR_SIGNING_KEY", name)
		}
		// A shared bucket named by plain hashes is a list of phone numbers.
		if e["AVATAR_STORAGE_NAME_KEY"] == "" {
			bad("%s: no AVATAR_STORAGE_NAME_KEY", name)
		}
		for _, k := range []string{"AVATAR_ALLOW_UNSIGNED", "AVATAR_CDN_ALLOW_PRIVATE", "AVATAR_DEMO"} {
			if v, ok := e[k]; ok && v != "false" {
				bad("%s: %s has no place in a deployment", name, k)
			}
		}
		if i > 0 && !reflect.DeepEqual(e, c.Services[replicas[0]].Environment) {
			bad("%s and %s differ in their environment: replicas must share the bucket, the signing key and every setting", replicas[0], name)
		}
		if s.DependsOn["minio-init"].Condition != "service_completed_successfully" {
			bad("%s must wait for minio-init to complete", name)
		}
		if init != nil {
			for _, k := range []string{"AVATAR_S3_ACCESS_KEY", "AVATAR_S3_SECRET_KEY"} {
				if init.Environment[k] == "" || init.Environment[k] != e[k] {
					bad("%s: %s is not the one minio-init creates", name, k)
				}
			}
			bucket := cmpOr(e["AVATAR_S3_BUCKET"], "avatars")
			script := strings.Join(init.Command, "\n")
			if !regexp.MustCompile(`mc mb --ignore-existing \S+/`+regexp.QuoteMeta(bucket)+`\n`).MatchString(script) ||
				!strings.Contains(script, `"arn:aws:s3:::`+bucket+`/*"`) {
				bad("%s: minio-init does not create bucket %q and grant access to it", name, bucket)
			}
		}
		port, err := listenPort(e["AVATAR_LISTEN"])
		if err != nil || !slices.Contains(env.upstreams, name+":"+port) {
			bad("%s: nginx.conf has no upstream server %s:%s (it has %v)", name, name, port, env.upstreams)
		}
	}
	if len(env.upstreams) != len(replicas) {
		bad("nginx.conf has upstream servers %v for replicas %v", env.upstreams, replicas)
	}

	if nginx != nil {
		if !strings.HasPrefix(nginx.Image, "nginx:") {
			bad("nginx: want the official nginx image, got %q", nginx.Image)
		}
		if !slices.Contains(nginx.Volumes, "./nginx.conf:/etc/nginx/nginx.conf:ro") {
			bad("nginx: must mount ./nginx.conf read-only as /etc/nginx/nginx.conf")
		}
		if len(nginx.Ports) == 0 {
			bad("nginx publishes no port")
		}
		for _, p := range nginx.Ports {
			if !strings.HasSuffix(p, ":"+env.nginxListen) {
				bad("nginx: port %q does not reach nginx.conf's listen %s", p, env.nginxListen)
			}
		}
		for _, r := range replicas {
			if nginx.DependsOn[r].Condition != "service_healthy" {
				bad("nginx must wait for %s to be healthy (it resolves the names at start)", r)
			}
		}
	}
	return problems
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func TestCompose(t *testing.T) {
	env := loadFleetEnv(t)
	raw := readFile(t, "compose.yaml")
	for _, p := range checkCompose(parseCompose(t, raw), raw, env) {
		t.Error(p)
	}
}

// sampleSecrets are plausible values for the settings both recipes take
// from outside them (compose from the shell, Kubernetes from its Secret).
var sampleSecrets = map[string]string{
	"AVATAR_GREENAPI_URL":                "https://1103.api.green-api.com",
	"AVATAR_GREENAPI_ID_INSTANCE":        "1103000001",
	"AVATAR_GREENAPI_API_TOKEN_INSTANCE": "0123456789abcdef0123456789abcdef",
	"AVATAR_SIGNING_KEY":                 "c2lnbmluZy1rZXktb2YtMzItYnl0ZXMtLS0tLS0tLS0=",
	"AVATAR_S3_ACCESS_KEY":               "avatarproxy",
	"AVATAR_S3_SECRET_KEY":               "0123456789abcdef",
	"AVATAR_STORAGE_NAME_KEY":            "bmFtZS1rZXktb2YtMzItYnl0ZXMtLS0tLS0tLS0tLS0=",
}

// TestComposeEnvLoads hands each replica's environment, with plausible
// values for the secrets compose takes from the shell, to config.Load.
func TestComposeEnvLoads(t *testing.T) {
	c := parseCompose(t, readFile(t, "compose.yaml"))
	interpolation := regexp.MustCompile(`^\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}$`)
	for _, name := range []string{"avatarproxy-a", "avatarproxy-b"} {
		svc := c.Services[name]
		if svc == nil {
			t.Fatalf("no service %s", name)
		}
		env := map[string]string{}
		for k, v := range svc.Environment {
			if m := interpolation.FindStringSubmatch(v); m != nil {
				sample, ok := sampleSecrets[m[1]]
				if !ok {
					t.Fatalf("%s: %s: no sample value for ${%s}", name, k, m[1])
				}
				v = sample
			}
			env[k] = v
		}
		if _, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard); err != nil {
			t.Errorf("%s: its settings do not load: %v", name, err)
		}
	}
}

// TestComposeCheckCatches shows each kind of mistake failing TestCompose.
func TestComposeCheckCatches(t *testing.T) {
	env := loadFleetEnv(t)
	raw := readFile(t, "compose.yaml")
	for _, tc := range []struct {
		name   string
		raw    string // appended to compose.yaml before parsing
		mutate func(c *composeFile)
		want   string
	}{
		{name: "literal secret", want: "AVATAR_S3_SECRET_KEY must be a ${VAR:?message} reference",
			mutate: func(c *composeFile) { c.Services["avatarproxy-b"].Environment["AVATAR_S3_SECRET_KEY"] = "minio123" }},
		{name: "optional secret", want: "AVATAR_SIGNING_KEY must be",
			mutate: func(c *composeFile) {
				for _, r := range []string{"avatarproxy-a", "avatarproxy-b"} {
					c.Services[r].Environment["AVATAR_SIGNING_KEY"] = "${AVATAR_SIGNING_KEY:-}"
				}
			}},
		{name: "replica publishes a port", want: "avatarproxy-a publishes ports",
			mutate: func(c *composeFile) { c.Services["avatarproxy-a"].Ports = []string{"8081:8080"} }},
		{name: "no name key", want: "no AVATAR_STORAGE_NAME_KEY",
			mutate: func(c *composeFile) {
				for _, r := range []string{"avatarproxy-a", "avatarproxy-b"} {
					delete(c.Services[r].Environment, "AVATAR_STORAGE_NAME_KEY")
				}
			}},
		{name: "replicas with different name keys", want: "differ in their environment",
			mutate: func(c *composeFile) {
				c.Services["avatarproxy-b"].Environment["AVATAR_STORAGE_NAME_KEY"] = "${AVATAR_STORAGE_NAME_KEY_B:?set it}"
			}},
		{name: "replicas on different buckets", want: "differ in their environment",
			mutate: func(c *composeFile) { c.Services["avatarproxy-b"].Environment["AVATAR_S3_BUCKET"] = "other" }},
		{name: "bucket not created", want: "does not create bucket",
			mutate: func(c *composeFile) {
				for _, r := range []string{"avatarproxy-a", "avatarproxy-b"} {
					c.Services[r].Environment["AVATAR_S3_BUCKET"] = "other"
				}
			}},
		{name: "S3 elsewhere", want: "AVATAR_S3_ENDPOINT must be the minio service",
			mutate: func(c *composeFile) {
				c.Services["avatarproxy-a"].Environment["AVATAR_S3_ENDPOINT"] = "s3.example.com:443"
			}},
		{name: "unsigned", want: "AVATAR_ALLOW_UNSIGNED has no place",
			mutate: func(c *composeFile) { c.Services["avatarproxy-a"].Environment["AVATAR_ALLOW_UNSIGNED"] = "true" }},
		{name: "setting not in README", want: "AVATAR_NOT_A_SETTING, which README.md",
			mutate: func(c *composeFile) { c.Services["avatarproxy-a"].Environment["AVATAR_NOT_A_SETTING"] = "1" }},
		{name: "interpolated name not in README", want: "${AVATAR_NOPE}", raw: "\nx-extra: ${AVATAR_NOPE:?no}\n"},
		{name: "minio without healthcheck", want: "service minio has no healthcheck",
			mutate: func(c *composeFile) { c.Services["minio"].Healthcheck = nil }},
		{name: "minio on a bind mount", want: "named volume",
			mutate: func(c *composeFile) { c.Services["minio"].Volumes = []string{"./data:/data"} }},
		{name: "replica healthcheck with curl", want: "the healthcheck must be",
			mutate: func(c *composeFile) {
				c.Services["avatarproxy-b"].Healthcheck.Test = []string{"CMD", "curl", "-f", "http://localhost:8080/healthz"}
			}},
		{name: "floating image", want: `image "nginx:latest" is not pinned`,
			mutate: func(c *composeFile) { c.Services["nginx"].Image = "nginx:latest" }},
		{name: "nginx without its configuration", want: "must mount ./nginx.conf",
			mutate: func(c *composeFile) { c.Services["nginx"].Volumes = nil }},
		{name: "third replica not in nginx.conf", want: "want 2 avatarproxy replicas",
			mutate: func(c *composeFile) {
				s := *c.Services["avatarproxy-a"]
				s.Ports = nil
				c.Services["avatarproxy-c"] = &s
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCompose(t, raw+tc.raw)
			if tc.mutate != nil {
				tc.mutate(c)
			}
			problems := checkCompose(c, raw+tc.raw, env)
			for _, p := range problems {
				if strings.Contains(p, "minio123") {
					t.Errorf("a problem quotes a secret: %s", p)
				}
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Fatalf("no problem mentions %q; got %q", tc.want, problems)
		})
	}
}

// ---------------------------------------------------------------------------
// kubernetes.yaml

type kubeMeta struct {
	Name        string            `yaml:"name"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type kubeSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

type kubeManifest struct {
	Kinds      []string
	ConfigMaps map[string]map[string]string
	Deployment kubeDeployment
	Service    kubeService
	Ingress    kubeIngress
	PDB        kubePDB
}

type kubeDeployment struct {
	Name     string       `yaml:"-"`
	Replicas int          `yaml:"replicas"`
	Selector kubeSelector `yaml:"selector"`
	Template struct {
		Metadata kubeMeta `yaml:"metadata"`
		Spec     struct {
			TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
			SecurityContext               struct {
				RunAsNonRoot bool `yaml:"runAsNonRoot"`
			} `yaml:"securityContext"`
			Containers []kubeContainer `yaml:"containers"`
		} `yaml:"spec"`
	} `yaml:"template"`
}

type kubeContainer struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env       []kubeEnv `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	StartupProbe   *kubeProbe `yaml:"startupProbe"`
	LivenessProbe  *kubeProbe `yaml:"livenessProbe"`
	ReadinessProbe *kubeProbe `yaml:"readinessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type kubeEnv struct {
	Name      string  `yaml:"name"`
	Value     *string `yaml:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `yaml:"name"`
			Key  string `yaml:"key"`
		} `yaml:"secretKeyRef"`
	} `yaml:"valueFrom"`
}

type kubeProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
}

type kubeService struct {
	Name     string            `yaml:"-"`
	Selector map[string]string `yaml:"selector"`
	Ports    []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type kubeIngress struct {
	Annotations      map[string]string `yaml:"-"`
	IngressClassName string            `yaml:"ingressClassName"`
	Rules            []struct {
		HTTP struct {
			Paths []struct {
				Path    string `yaml:"path"`
				Backend struct {
					Service struct {
						Name string `yaml:"name"`
						Port struct {
							Name string `yaml:"name"`
						} `yaml:"port"`
					} `yaml:"service"`
				} `yaml:"backend"`
			} `yaml:"paths"`
		} `yaml:"http"`
	} `yaml:"rules"`
}

type kubePDB struct {
	MinAvailable int          `yaml:"minAvailable"`
	Selector     kubeSelector `yaml:"selector"`
}

func parseKube(t *testing.T, raw string) *kubeManifest {
	t.Helper()
	m := &kubeManifest{ConfigMaps: map[string]map[string]string{}}
	dec := yaml.NewDecoder(strings.NewReader(raw))
	for {
		var doc struct {
			Kind     string            `yaml:"kind"`
			Metadata kubeMeta          `yaml:"metadata"`
			Data     map[string]string `yaml:"data"`
			Spec     yaml.Node         `yaml:"spec"`
		}
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("kubernetes.yaml: %v", err)
		}
		m.Kinds = append(m.Kinds, doc.Kind)
		var target any
		switch doc.Kind {
		case "ConfigMap":
			m.ConfigMaps[doc.Metadata.Name] = doc.Data
		case "Deployment":
			m.Deployment.Name, target = doc.Metadata.Name, &m.Deployment
		case "Service":
			m.Service.Name, target = doc.Metadata.Name, &m.Service
		case "Ingress":
			m.Ingress.Annotations, target = doc.Metadata.Annotations, &m.Ingress
		case "PodDisruptionBudget":
			target = &m.PDB
		}
		if target != nil {
			if err := doc.Spec.Decode(target); err != nil {
				t.Fatalf("kubernetes.yaml: %s: %v", doc.Kind, err)
			}
		}
	}
	return m
}

// checkKube lists what is wrong with the Kubernetes manifest. Problems never
// quote an environment value.
func checkKube(m *kubeManifest, env fleetEnv) []string {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	for _, kind := range []string{"ConfigMap", "Deployment", "Service", "Ingress", "PodDisruptionBudget"} {
		if n := len(slices.DeleteFunc(slices.Clone(m.Kinds), func(k string) bool { return k != kind })); n != 1 {
			bad("want one %s, got %d", kind, n)
		}
	}
	d := m.Deployment
	if d.Replicas != 2 {
		bad("Deployment: want 2 replicas, got %d", d.Replicas)
	}
	pod := d.Template.Metadata.Labels
	if !subset(d.Selector.MatchLabels, pod) {
		bad("Deployment: selector does not match the pod labels")
	}
	if len(d.Template.Spec.Containers) != 1 {
		bad("Deployment: want one container, got %d", len(d.Template.Spec.Containers))
		return problems
	}
	c := d.Template.Spec.Containers[0]
	if !pinned(c.Image) {
		bad("Deployment: image %q is not pinned to a version", c.Image)
	}

	// The environment the container gets: the ConfigMaps, then env.
	values := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			continue
		}
		data, ok := m.ConfigMaps[ef.ConfigMapRef.Name]
		if !ok {
			bad("Deployment: envFrom names ConfigMap %q, which is not in the manifest", ef.ConfigMapRef.Name)
		}
		for _, k := range slices.Sorted(maps.Keys(data)) {
			if secretName.MatchString(k) {
				bad("ConfigMap %s: %s is a secret: take it from a Secret", ef.ConfigMapRef.Name, k)
			}
			values[k] = data[k]
		}
	}
	fromSecret := map[string]bool{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.Value == nil:
			fromSecret[e.Name] = true
		case secretName.MatchString(e.Name):
			bad("Deployment: %s must come from a secretKeyRef, never a value", e.Name)
		case e.Value != nil:
			values[e.Name] = *e.Value
		}
	}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		if strings.HasPrefix(k, "AVATAR_") && !env.settings[k] {
			bad("%s is set, but README.md's settings table does not list it", k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(fromSecret)) {
		if strings.HasPrefix(k, "AVATAR_") && !env.settings[k] {
			bad("%s is set, but README.md's settings table does not list it", k)
		}
	}
	if values["AVATAR_STORAGE"] != "s3" || values["AVATAR_S3_ENDPOINT"] == "" {
		bad("want AVATAR_STORAGE=s3 and an AVATAR_S3_ENDPOINT")
	}
	for _, k := range []string{"AVATAR_SIGNING_KEY", "AVATAR_S3_ACCESS_KEY", "AVATAR_S3_SECRET_KEY", "AVATAR_STORAGE_NAME_KEY"} {
		if !fromSecret[k] {
			bad("%s must come from the Secret", k)
		}
	}
	for _, k := range []string{"AVATAR_ALLOW_UNSIGNED", "AVATAR_CDN_ALLOW_PRIVATE", "AVATAR_DEMO"} {
		if v, ok := values[k]; ok && v != "false" {
			bad("%s has no place in a deployment", k)
		}
	}

	port, err := listenPort(values["AVATAR_LISTEN"])
	if err != nil || len(c.Ports) != 1 || c.Ports[0].Name != "http" || strconv.Itoa(c.Ports[0].ContainerPort) != port {
		bad("Deployment: want one container port named http on the AVATAR_LISTEN port %s", port)
	}
	for _, p := range []struct {
		name  string
		probe *kubeProbe
		paths []string
	}{
		{"startupProbe", c.StartupProbe, []string{"/healthz"}},
		{"livenessProbe", c.LivenessProbe, []string{"/healthz"}},
		// /readyz only once it no longer fails on conditions every replica
		// shares (see the manifest).
		{"readinessProbe", c.ReadinessProbe, []string{"/healthz", "/readyz"}},
	} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			bad("Deployment: no %s over HTTP", p.name)
		case !slices.Contains(p.paths, p.probe.HTTPGet.Path) || !slices.Contains(env.routes, p.probe.HTTPGet.Path):
			bad("Deployment: %s asks %s: want one of %v that the server routes", p.name, p.probe.HTTPGet.Path, p.paths)
		case p.probe.HTTPGet.Port != "http":
			bad("Deployment: %s must use the port named http", p.name)
		}
	}

	// Memory: the memory tier under the Go heap limit under the container's.
	memMB, err1 := strconv.ParseInt(cmpOr(values["AVATAR_MEMORY_MB"], "256"), 10, 64)
	goLimit, err2 := parseBytes(values["GOMEMLIMIT"])
	limit, err3 := parseBytes(c.Resources.Limits["memory"])
	request, err4 := parseBytes(c.Resources.Requests["memory"])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		bad("resources: want AVATAR_MEMORY_MB, GOMEMLIMIT and memory requests and limits: %v", err)
	} else if !(memMB<<20 < goLimit && goLimit < limit && request <= limit) {
		bad("resources: want AVATAR_MEMORY_MB (%d MiB) < GOMEMLIMIT (%d) < memory limit (%d), request <= limit", memMB, goLimit, limit)
	}
	if c.Resources.Requests["cpu"] == "" {
		bad("resources: no CPU request")
	}

	sc := c.SecurityContext
	if !d.Template.Spec.SecurityContext.RunAsNonRoot || !sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		bad("Deployment: want runAsNonRoot, readOnlyRootFilesystem and no privilege escalation")
	}
	shutdown, err := time.ParseDuration(cmpOr(values["AVATAR_SHUTDOWN_TIMEOUT"], "15s"))
	if grace := time.Duration(d.Template.Spec.TerminationGracePeriodSeconds) * time.Second; err != nil ||
		grace <= shutdown+time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second {
		bad("Deployment: terminationGracePeriodSeconds must exceed the preStop pause plus AVATAR_SHUTDOWN_TIMEOUT")
	}

	s := m.Service
	if !subset(s.Selector, pod) {
		bad("Service: selector does not match the pod labels")
	}
	var servicePorts []string
	for _, p := range s.Ports {
		servicePorts = append(servicePorts, p.Name)
		if p.TargetPort != "http" {
			bad("Service: port %s must target the container port named http", p.Name)
		}
	}

	in := m.Ingress
	if in.Annotations["nginx.ingress.kubernetes.io/upstream-hash-by"] != "$uri" {
		bad(`Ingress: want nginx.ingress.kubernetes.io/upstream-hash-by: "$uri" (one chat, one replica)`)
	}
	if in.IngressClassName != "nginx" {
		bad("Ingress: the annotations are ingress-nginx's: want ingressClassName nginx")
	}
	for _, r := range in.Rules {
		for _, p := range r.HTTP.Paths {
			if p.Backend.Service.Name != s.Name || !slices.Contains(servicePorts, p.Backend.Service.Port.Name) {
				bad("Ingress: path %s goes to %s:%s, not the Service", p.Path, p.Backend.Service.Name, p.Backend.Service.Port.Name)
			}
		}
	}

	if !subset(m.PDB.Selector.MatchLabels, pod) || m.PDB.MinAvailable < 1 || m.PDB.MinAvailable >= d.Replicas {
		bad("PodDisruptionBudget: want the pod labels and 1 <= minAvailable < replicas")
	}
	return problems
}

func TestKubernetes(t *testing.T) {
	env := loadFleetEnv(t)
	for _, p := range checkKube(parseKube(t, readFile(t, "kubernetes.yaml")), env) {
		t.Error(p)
	}
}

// TestKubernetesEnvLoads hands the Deployment's environment (its ConfigMap
// and its env, with plausible values for the Secret's keys) to config.Load:
// a recipe whose settings the binary refuses would crash-loop every pod.
func TestKubernetesEnvLoads(t *testing.T) {
	m := parseKube(t, readFile(t, "kubernetes.yaml"))
	env := map[string]string{}
	c := m.Deployment.Template.Spec.Containers[0]
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			maps.Copy(env, m.ConfigMaps[from.ConfigMapRef.Name])
		}
	}
	for _, e := range c.Env {
		switch {
		case e.Value != nil:
			env[e.Name] = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			v, ok := sampleSecrets[e.Name]
			if !ok {
				t.Fatalf("%s (secret key %q): no sample value", e.Name, e.ValueFrom.SecretKeyRef.Key)
			}
			env[e.Name] = v
		}
	}
	if _, err := config.Load(nil, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Errorf("the Deployment's settings do not load: %v", err)
	}
}

// TestKubernetesCheckCatches shows each kind of mistake failing
// TestKubernetes.
func TestKubernetesCheckCatches(t *testing.T) {
	env := loadFleetEnv(t)
	raw := readFile(t, "kubernetes.yaml")
	container := func(m *kubeManifest) *kubeContainer { return &m.Deployment.Template.Spec.Containers[0] }
	setEnv := func(m *kubeManifest, name, value string) {
		c := container(m)
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value, c.Env[i].ValueFrom = &value, nil
				return
			}
		}
		c.Env = append(c.Env, kubeEnv{Name: name, Value: &value})
	}
	for _, tc := range []struct {
		name   string
		mutate func(m *kubeManifest)
		want   string
	}{
		{"one replica", func(m *kubeManifest) { m.Deployment.Replicas = 1 }, "want 2 replicas"},
		{"literal secret", func(m *kubeManifest) { setEnv(m, "AVATAR_SIGNING_KEY", "hunter2") }, "AVATAR_SIGNING_KEY must come from a secretKeyRef"},
		{"secret in the ConfigMap", func(m *kubeManifest) { m.ConfigMaps["avatarproxy"]["AVATAR_S3_SECRET_KEY"] = "hunter2" }, "AVATAR_S3_SECRET_KEY is a secret"},
		{"no name key", func(m *kubeManifest) {
			c := container(m)
			c.Env = slices.DeleteFunc(c.Env, func(e kubeEnv) bool { return e.Name == "AVATAR_STORAGE_NAME_KEY" })
		}, "AVATAR_STORAGE_NAME_KEY must come from the Secret"},
		{"setting not in README", func(m *kubeManifest) { setEnv(m, "AVATAR_NOT_A_SETTING", "1") }, "AVATAR_NOT_A_SETTING is set"},
		{"disk storage", func(m *kubeManifest) { m.ConfigMaps["avatarproxy"]["AVATAR_STORAGE"] = "disk" }, "AVATAR_STORAGE=s3"},
		{"memory limit under the cache", func(m *kubeManifest) { container(m).Resources.Limits["memory"] = "200Mi" }, "GOMEMLIMIT"},
		{"cache over GOMEMLIMIT", func(m *kubeManifest) { setEnv(m, "AVATAR_MEMORY_MB", "1024") }, "GOMEMLIMIT"},
		{"probe on a missing route", func(m *kubeManifest) { container(m).ReadinessProbe.HTTPGet.Path = "/ready" }, "readinessProbe asks /ready"},
		{"no liveness probe", func(m *kubeManifest) { container(m).LivenessProbe = nil }, "no livenessProbe"},
		{"floating image", func(m *kubeManifest) { container(m).Image = "avatarproxy:latest" }, "not pinned"},
		{"writable root", func(m *kubeManifest) { container(m).SecurityContext.ReadOnlyRootFilesystem = false }, "readOnlyRootFilesystem"},
		{"short grace", func(m *kubeManifest) { m.Deployment.Template.Spec.TerminationGracePeriodSeconds = 15 }, "terminationGracePeriodSeconds"},
		{"Service selects nothing", func(m *kubeManifest) { m.Service.Selector = map[string]string{"app": "other"} }, "Service: selector"},
		{"no hashing", func(m *kubeManifest) { delete(m.Ingress.Annotations, "nginx.ingress.kubernetes.io/upstream-hash-by") }, "upstream-hash-by"},
		{"PDB blocks every eviction", func(m *kubeManifest) { m.PDB.MinAvailable = 2 }, "PodDisruptionBudget"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := parseKube(t, raw)
			tc.mutate(m)
			problems := checkKube(m, env)
			for _, p := range problems {
				if strings.Contains(p, "hunter2") {
					t.Errorf("a problem quotes a secret: %s", p)
				}
			}
			for _, p := range problems {
				if strings.Contains(p, tc.want) {
					return
				}
			}
			t.Fatalf("no problem mentions %q; got %q", tc.want, problems)
		})
	}
}

// TestEnvFileKeptOut: compose.yaml invites the secrets into deploy/.env,
// "kept out of git". It must be: git must ignore it, and the image build,
// whose context is the repository root, must not send it to the builder
// (COPY . . would put the keys in a build-stage layer).
func TestEnvFileKeptOut(t *testing.T) {
	for _, path := range []string{"deploy/.env", ".env"} {
		if !dockerIgnored(t, readFile(t, "../.dockerignore"), path) {
			t.Errorf(".dockerignore lets %s into the build context", path)
		}
		if !gitIgnored(t, path) {
			t.Errorf(".gitignore does not ignore %s", path)
		}
	}
}

// gitIgnored asks git whether path (from the repository root) is ignored.
func gitIgnored(t *testing.T, path string) bool {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	cmd := exec.Command("git", "check-ignore", "-q", "--no-index", path)
	cmd.Dir = ".."
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return true
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		return false
	}
	t.Fatalf("git check-ignore: %v", err)
	return false
}

// dockerIgnored applies .dockerignore's rules with moby/patternmatcher, the
// matcher Docker and BuildKit use for the build context.
func dockerIgnored(t *testing.T, rules, path string) bool {
	t.Helper()
	patterns, err := ignorefile.ReadAll(strings.NewReader(rules))
	if err != nil {
		t.Fatal(err)
	}
	ignored, err := patternmatcher.MatchesOrParentMatches(path, patterns)
	if err != nil {
		t.Fatal(err)
	}
	return ignored
}

// TestREADMEComposeExports: the README's compose recipe exports exactly the
// variables compose.yaml refuses to start without (its ${VAR:?...}), as does
// compose.yaml's own header, so a newcomer who pastes either block gets a
// fleet that starts.
func TestREADMEComposeExports(t *testing.T) {
	raw := readFile(t, "compose.yaml")
	var required []string
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*):\?`).FindAllStringSubmatch(raw, -1) {
		required = append(required, m[1])
	}
	required = slices.Compact(slices.Sorted(slices.Values(required)))

	exported := func(block string) []string {
		var names []string
		assign := regexp.MustCompile(`(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=`)
		for _, line := range strings.Split(block, "\n") {
			line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
			if rest, ok := strings.CutPrefix(line, "export "); ok {
				rest, _, _ = strings.Cut(rest, "  #") // a trailing comment
				for _, m := range assign.FindAllStringSubmatch(rest, -1) {
					names = append(names, m[1])
				}
			}
		}
		return slices.Compact(slices.Sorted(slices.Values(names)))
	}

	readme := readFile(t, "../README.md")
	const up = "docker compose -f deploy/compose.yaml up"
	end := strings.Index(readme, up)
	begin := strings.LastIndex(readme[:max(end, 0)], "```sh\n")
	if end < 0 || begin < 0 {
		t.Fatalf("README.md has no ```sh block ending in %q", up)
	}
	header, _, _ := strings.Cut(raw, "\nname:")
	for _, c := range []struct{ where, block string }{
		{"README.md's compose block", readme[begin:end]},
		{"compose.yaml's header", header},
	} {
		if got := exported(c.block); !slices.Equal(got, required) {
			t.Errorf("%s exports %q; compose.yaml requires %q", c.where, got, required)
		}
	}
}

// TestKubernetesSecretCommand: the `kubectl create secret` in
// kubernetes.yaml's header creates every key of the Secret the Deployment
// reads, and no other.
func TestKubernetesSecretCommand(t *testing.T) {
	raw := readFile(t, "kubernetes.yaml")
	m := parseKube(t, raw)
	var refs []string
	for _, e := range m.Deployment.Template.Spec.Containers[0].Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs = append(refs, e.ValueFrom.SecretKeyRef.Key)
		}
	}
	var created []string
	for _, m := range regexp.MustCompile(`--from-literal=([a-z0-9-]+)=`).FindAllStringSubmatch(raw, -1) {
		created = append(created, m[1])
	}
	refs, created = slices.Sorted(slices.Values(refs)), slices.Sorted(slices.Values(created))
	if len(refs) == 0 || !slices.Equal(refs, created) {
		t.Errorf("the Deployment reads secret keys %q; the kubectl command in the header creates %q", refs, created)
	}
}
