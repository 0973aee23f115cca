// Package miniotest runs a real MinIO server on 127.0.0.1 for tests, so the
// S3 tier and its users are tested against the genuine protocol rather than
// a fake. Each Server has its own free port, data folder and random root
// credentials; it can be stopped and restarted on the same port and data to
// test outages. It is imported only by tests.
package miniotest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// InstallCommand installs the MinIO release these tests are known to pass
// with.
const InstallCommand = "go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

const (
	readyTimeout = 30 * time.Second
	pollInterval = 50 * time.Millisecond
	// startAttempts covers the gap between freeing a probed port and
	// MinIO binding it, in which another process may take it.
	startAttempts = 3
)

// Server is a running MinIO. Its methods are meant for the test goroutine
// and are not safe for concurrent use with each other.
type Server struct {
	// Endpoint is host:port (127.0.0.1:N) for S3 clients; plain HTTP.
	Endpoint string
	// AccessKey and SecretKey are the root credentials, random per Server.
	AccessKey string
	SecretKey string

	bin         string
	consoleAddr string
	dataDir     string
	certsDir    string
	homeDir     string
	out         *testkit.Buffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs `minio server` with a fresh data folder on a free loopback port
// and returns once it reports itself live and ready. t.Cleanup stops it, and
// its output is logged if the test failed.
//
// The binary is $AVATAR_MINIO_BIN, else minio on PATH, else
// $(go env GOPATH)/bin/minio. Without one the test is skipped, or fails when
// CI=true, so CI can never pass by silently skipping the S3 tests.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{
		AccessKey: "test" + rand.Text()[:12],
		SecretKey: rand.Text(),
		bin:       findBinary(t),
		dataDir:   t.TempDir(),
		certsDir:  t.TempDir(),
		homeDir:   t.TempDir(),
		out:       &testkit.Buffer{},
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("minio output:\n%s", s.out.String())
		}
	})
	var err error
	for range startAttempts {
		if err = s.pickPorts(); err != nil {
			break
		}
		err = s.launch()
		if !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		t.Fatalf("miniotest: start: %v\nminio output:\n%s", err, s.out.String())
	}
	return s
}

// Stop kills the server (as a crash would) and waits for it to exit. It does
// nothing if the server is not running.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // fails only if it already exited; done tells
	<-done
}

// Restart stops the server if it runs and starts it again on the same port,
// data and credentials, returning once it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.launch(); err != nil {
		t.Fatalf("miniotest: restart: %v\nminio output:\n%s", err, s.out.String())
	}
}

var errExited = errors.New("minio exited before it was ready")

func (s *Server) pickPorts() error {
	api, err := freePort()
	if err != nil {
		return err
	}
	console, err := freePort()
	if err != nil {
		return err
	}
	s.Endpoint = net.JoinHostPort("127.0.0.1", strconv.Itoa(api))
	s.consoleAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(console))
	return nil
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before MinIO binds it; Start retries for that.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

func (s *Server) launch() error {
	cmd := exec.Command(s.bin, "server",
		"--address", s.Endpoint,
		// The console is off (MINIO_BROWSER) but pin its address to
		// loopback anyway in case a release ignores that.
		"--console-address", s.consoleAddr,
		"--certs-dir", s.certsDir,
		"--anonymous", // keep credentials out of the captured output
		s.dataDir)
	// A clean environment: nothing from the test's own (CI=true changes
	// MinIO's behaviour, proxies could route loopback elsewhere), and
	// nothing that phones home (update check, call-home) or listens
	// beyond the API port.
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.homeDir,
		"TMPDIR=" + s.homeDir,
		"MINIO_ROOT_USER=" + s.AccessKey,
		"MINIO_ROOT_PASSWORD=" + s.SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
	}
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status of a killed server says nothing useful
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	if err := s.waitReady(done); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// waitReady polls MinIO's health endpoints until all answer 200, the process
// exits, or readyTimeout passes. live and ready answer 200 while the object
// layer is still starting (only a header says so, and S3 calls then fail
// with "Server not initialized yet"); cluster also waits for IAM and bucket
// metadata, which S3 calls need.
func (s *Server) waitReady(exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second}
	base := "http://" + s.Endpoint + "/minio/health/"
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return errExited
		case <-deadline.C:
			return fmt.Errorf("minio not ready on %s after %v", s.Endpoint, readyTimeout)
		case <-tick.C:
			if healthy(client, base+"live") && healthy(client, base+"ready") && healthy(client, base+"cluster") {
				return nil
			}
		}
	}
}

func healthy(client *http.Client, url string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get("X-Minio-Server-Status") == ""
}

func findBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("AVATAR_MINIO_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("miniotest: AVATAR_MINIO_BIN: %v", err)
		}
		return bin
	}
	if bin, err := exec.LookPath("minio"); err == nil {
		return bin
	}
	bin := filepath.Join(gopath(), "bin", "minio")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	msg := "miniotest: no minio binary (set AVATAR_MINIO_BIN, put minio on PATH, or install it: " + InstallCommand + ")"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + "; CI must run the S3 tests")
	}
	t.Skip(msg)
	return ""
}

// gopath is the first entry of `go env GOPATH`, which also sees values set
// with `go env -w`; build.Default is the fallback when go is not on PATH.
func gopath() string {
	dirs := build.Default.GOPATH
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = strings.TrimSpace(string(out))
	}
	return filepath.SplitList(dirs)[0]
}
