package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestGracefulShutdown runs the real binary: SIGTERM while a slow request is
// in flight lets that request finish, flushes the durable write queue, and
// exits 0 within the shutdown budget.
func TestGracefulShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "avatarproxy")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data := t.TempDir()
	cmd := exec.Command(bin, "--demo", "--listen=127.0.0.1:0", "--storage=disk", "--disk-dir="+data,
		"--first-load-timeout=20s", "--shutdown-timeout=15s")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	lines := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				lines <- m
			}
		}
		close(lines)
	}()
	var addr string
	for addr == "" {
		select {
		case m, ok := <-lines:
			if !ok {
				t.Fatal("the binary exited before listening")
			}
			if m["msg"] == "avatarproxy listening" {
				addr, _ = m["addr"].(string)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no listening line")
		}
	}

	// A normal avatar first, so the durable queue has something to flush,
	// then a request that waits on the demo's slow gateway (4 s).
	if resp, err := http.Get("http://" + addr + "/avatar/79001234561@c.us.jpg?size=64"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("warm-up: %v %v", resp, err)
	}
	type result struct {
		status string
		code   int
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/avatar/79001234569@c.us.jpg?size=64")
		if err != nil {
			slow <- result{err: err}
			return
		}
		resp.Body.Close()
		slow <- result{status: resp.Header.Get("X-Avatar-Status"), code: resp.StatusCode}
	}()
	// Wait until the slow request is inside the server: /metrics shows a
	// request waiting on a fill. (Polling: the process is not ours to hook.)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(b), "avatarproxy_fill_waiters 1") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the slow request never started waiting")
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-slow
	if r.err != nil || r.code != 200 || r.status != "ok" {
		t.Errorf("in-flight request during shutdown: %+v", r)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("shutdown took %s, over its 15 s budget", d)
	}
	clean := false
	for m := range lines {
		if m["msg"] == "stopped cleanly" {
			clean = true
		}
	}
	if !clean {
		t.Error(`no "stopped cleanly" line`)
	}
	// The durable queue was flushed: both chats' records are on disk.
	n := 0
	_ = filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.Contains(p, ".tmp") {
			n++
		}
		return nil
	})
	if n < 2 {
		t.Errorf("%d records on disk after shutdown, want 2", n)
	}
}
