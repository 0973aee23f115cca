package sockio

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// pair is a server-side Conn from Listen and the plain client connection
// that dialled it, both on 127.0.0.1.
func pair(t *testing.T) (*Conn, *net.TCPConn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(inner, time.Second)
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	client, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	c, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close() })
	conn, ok := c.(*Conn)
	if !ok {
		t.Fatalf("Accept gave %T, want *sockio.Conn", c)
	}
	return conn, client.(*net.TCPConn)
}

// within runs f and reports whether it returned within d: the calls below
// must return at all (a deadline that never reached the poller would hang
// them), not by a given time.
func within(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// wantTimeout checks err is what the standard connection gives for a
// deadline: fasthttp type-asserts *net.OpError directly, so no wrapping.
func wantTimeout(t *testing.T, err error, op string) {
	t.Helper()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	oe, ok := err.(*net.OpError)
	if !ok || oe.Op != op || !oe.Timeout() {
		t.Fatalf("err = %#v, want a *net.OpError with Op %q that is a timeout", err, op)
	}
}

const hang = 10 * time.Second // what "did not return" means below

func TestEchoLargePayload(t *testing.T) {
	srv, client := pair(t)
	payload := make([]byte, 8<<20) // far past the socket buffers: writes wait for the poller
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := srv.Read(buf)
			if n > 0 {
				if _, werr := srv.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				srv.CloseWrite()
				return
			}
		}
	}()
	go func() {
		_, _ = client.Write(payload)
		client.CloseWrite()
	}()
	var got bytes.Buffer
	var err error
	if !within(3*hang, func() { _, err = got.ReadFrom(client) }) {
		t.Fatal("the echo did not finish")
	}
	if err != nil {
		t.Fatalf("reading the echo: %v", err)
	}
	if !bytes.Equal(got.Bytes(), payload) {
		t.Fatalf("echo differs: got %d bytes, sent %d", got.Len(), len(payload))
	}
}

// A reader and a writer at once, each with its own stream: neither may see
// the other's buffer or count.
func TestFullDuplex(t *testing.T) {
	srv, client := pair(t)
	up := make([]byte, 8<<20)
	down := make([]byte, 8<<20)
	if _, err := rand.Read(up); err != nil {
		t.Fatal(err)
	}
	if _, err := rand.Read(down); err != nil {
		t.Fatal(err)
	}
	var gotUp, gotDown []byte
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); gotUp, _ = io.ReadAll(srv) }()
	go func() { defer wg.Done(); _, _ = srv.Write(down); srv.CloseWrite() }()
	go func() { defer wg.Done(); _, _ = client.Write(up); client.CloseWrite() }()
	go func() { defer wg.Done(); gotDown, _ = io.ReadAll(client) }()
	if !within(3*hang, wg.Wait) {
		t.Fatal("full duplex did not finish")
	}
	if !bytes.Equal(gotUp, up) {
		t.Errorf("client to server: got %d bytes, sent %d, or different bytes", len(gotUp), len(up))
	}
	if !bytes.Equal(gotDown, down) {
		t.Errorf("server to client: got %d bytes, sent %d, or different bytes", len(gotDown), len(down))
	}
}

func TestEOFIsPlain(t *testing.T) {
	srv, client := pair(t)
	if n, err := srv.Read(nil); n != 0 || err != nil {
		t.Fatalf("empty read: %d, %v; want 0, nil", n, err)
	}
	if _, err := client.Write([]byte("last")); err != nil {
		t.Fatal(err)
	}
	client.Close()
	buf := make([]byte, 16)
	n, err := io.ReadFull(srv, buf[:4])
	if err != nil || string(buf[:n]) != "last" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	// bufio and fasthttp compare with ==, so EOF must not be wrapped.
	if n, err := srv.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("after the peer closed: %d, %v; want 0, io.EOF", n, err)
	}
	srv.Close()
	if _, err := srv.Read(nil); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("empty read of a closed connection: %v, want net.ErrClosed", err)
	}
}

func TestReadDeadline(t *testing.T) {
	srv, client := pair(t)
	buf := make([]byte, 8)
	if err := srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var err error
	if !within(hang, func() { _, err = srv.Read(buf) }) {
		t.Fatal("Read ignored its deadline")
	}
	wantTimeout(t, err, "read")
	// The connection still works once the deadline is lifted.
	if err := srv.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	var n int
	if !within(hang, func() { n, err = srv.Read(buf) }) {
		t.Fatal("Read after lifting the deadline did not return")
	}
	if err != nil || string(buf[:n]) != "ok" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
}

// An earlier deadline must replace an armed later one: a keep-alive wait
// arms the idle deadline, and a request that then stalls must be cut at the
// shorter read deadline (fasthttp's sequence).
func TestEarlierDeadlineReplacesArmed(t *testing.T) {
	srv, client := pair(t)
	buf := make([]byte, 8)
	if err := srv.SetReadDeadline(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Write([]byte("G")); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Read(buf); err != nil { // arms the hour
		t.Fatal(err)
	}
	if err := srv.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	var err error
	if !within(hang, func() { _, err = srv.Read(buf) }) {
		t.Fatal("the hour stayed armed")
	}
	wantTimeout(t, err, "read")
}

// A deadline set while a Read waits applies to that Read, as net.Conn
// promises; so does lifting one.
func TestDeadlineReachesPendingRead(t *testing.T) {
	srv, client := pair(t)
	got := waitingRead(t, srv)
	if err := srv.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	wantTimeout(t, result(t, got, "the Read under a new deadline"), "read")

	// Lifted while waiting: a deadline of 100 ms must not fire. (A fresh
	// connection: on this one the expired deadline stays armed for a
	// deadline less than a granularity later, and fires at once.)
	srv, client = pair(t)
	if err := srv.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	got = waitingRead(t, srv)
	if err := srv.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // well past the 100 ms that no longer applies
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := result(t, got, "the Read whose deadline was lifted"); err != nil {
		t.Fatalf("the Read whose deadline was lifted: %v", err)
	}
}

// Two Reads at once: the second waits for the first, and a deadline set
// while both wait reaches both.
func TestOverlappingReads(t *testing.T) {
	srv, _ := pair(t)
	first, second := waitingRead(t, srv), waitingRead(t, srv)
	if err := srv.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	wantTimeout(t, result(t, first, "a waiting Read"), "read")
	wantTimeout(t, result(t, second, "a waiting Read"), "read")
}

// waitingRead starts a Read of c and returns once a Read waits; the
// Read's error arrives on the channel.
func waitingRead(t *testing.T, c *Conn) <-chan error {
	t.Helper()
	got := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		got <- err
	}()
	waitPending(t, &c.rd.deadline)
	return got
}

// result is the error of a call in the background; what names the call
// if it does not return.
func result(t *testing.T, got <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-got:
		return err
	case <-time.After(hang):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

// waitPending waits until a call is under way on d.
func waitPending(t *testing.T, d *lazyDeadline) {
	t.Helper()
	for start := time.Now(); time.Since(start) < hang; time.Sleep(time.Millisecond) {
		d.mu.Lock()
		p := d.pending
		d.mu.Unlock()
		if p {
			return
		}
	}
	t.Fatal("no call got under way")
}

// A Write to a client that stops reading ends at its deadline with the
// count of what went out.
func TestWriteDeadline(t *testing.T) {
	srv, client := pair(t)
	big := make([]byte, 64<<20)
	type result struct {
		n   int
		err error
	}
	got := make(chan result, 1)
	go func() {
		n, err := srv.Write(big)
		got <- result{n, err}
	}()
	if _, err := io.ReadFull(client, make([]byte, 1)); err != nil { // the Write is under way
		t.Fatal(err)
	}
	waitPending(t, &srv.wr.deadline)
	if err := srv.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		wantTimeout(t, r.err, "write")
		if r.n <= 0 || r.n >= len(big) {
			t.Errorf("wrote %d of %d bytes, want a partial count", r.n, len(big))
		}
	case <-time.After(hang):
		t.Fatal("the waiting Write did not see its deadline")
	}
}

// What the standard library does with a connection on its own (io.Copy
// from a file, net.Buffers' writev) must go through Write and its
// deadline, not around it: a Conn has no SyscallConn, ReadFrom or
// writeBuffers to find.
func TestStandardLibraryPathsKeepDeadline(t *testing.T) {
	srv, _ := pair(t) // the client never reads
	if _, ok := any(srv).(syscall.Conn); ok {
		t.Fatal("a Conn exposes SyscallConn")
	}
	f, err := os.CreateTemp(t.TempDir(), "big")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(256 << 20); err != nil {
		t.Fatal(err)
	}
	if err := srv.SetWriteDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if !within(hang, func() { _, err = io.Copy(srv, f) }) {
		t.Fatal("io.Copy from a file went around the write deadline")
	}
	wantTimeout(t, err, "write")
	bufs := net.Buffers{make([]byte, 64<<20)}
	if !within(hang, func() { _, err = bufs.WriteTo(srv) }) {
		t.Fatal("net.Buffers went around the write deadline")
	}
	wantTimeout(t, err, "write")
}

func TestCloseWakesPendingRead(t *testing.T) {
	srv, _ := pair(t)
	got := waitingRead(t, srv)
	srv.Close()
	if err := result(t, got, "the Read waiting on a closed connection"); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("err = %v, want net.ErrClosed", err)
	}
	if _, err := srv.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
	}
}

// Writing to a peer that reset the connection, or after our own
// CloseWrite, is an error (ECONNRESET, EPIPE), every time, and not a
// SIGPIPE that ends the process.
func TestWriteErrors(t *testing.T) {
	srv, client := pair(t)
	if err := client.SetLinger(0); err != nil {
		t.Fatal(err)
	}
	client.Close() // RST
	var err error
	if !within(hang, func() {
		for range 200 {
			if _, err = srv.Write(make([]byte, 64<<10)); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}) {
		t.Fatal("writes to a reset connection hung")
	}
	if oe, ok := err.(*net.OpError); !ok || oe.Op != "write" {
		t.Fatalf("err = %v, want a write *net.OpError", err)
	}
	if _, err := srv.Write([]byte("again")); err == nil {
		t.Fatal("a second write to a reset connection succeeded")
	}

	srv2, _ := pair(t)
	if err := srv2.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := srv2.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Fatalf("write after CloseWrite: %v, want EPIPE", err)
	}
}

func TestArmsOnlyWhenNeeded(t *testing.T) {
	var calls []time.Time
	d := lazyDeadline{set: func(t time.Time) error { calls = append(calls, t); return nil }}
	g := time.Second
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	step := func(want time.Time, io bool) {
		t.Helper()
		if err := d.want(want, g); err != nil {
			t.Fatal(err)
		}
		if io {
			if err := d.begin(g); err != nil {
				t.Fatal(err)
			}
			d.end()
		}
	}
	step(base.Add(75*time.Second), false) // no I/O: nothing armed yet
	if len(calls) != 0 {
		t.Fatalf("armed without I/O: %v", calls)
	}
	step(base.Add(75*time.Second), true)                      // armed
	step(base.Add(75*time.Second+900*time.Millisecond), true) // later by < g: kept
	step(base.Add(10*time.Second), false)                     // earlier, but no I/O waits on it
	step(base.Add(76*time.Second), true)                      // later by 1 s: armed
	step(base.Add(10*time.Second), true)                      // earlier: armed
	step(time.Time{}, true)                                   // none: armed
	step(time.Time{}, true)                                   // still none: kept
	want := []time.Time{base.Add(75 * time.Second), base.Add(76 * time.Second), base.Add(10 * time.Second), {}}
	if len(calls) != len(want) {
		t.Fatalf("armed %v, want %v", calls, want)
	}
	for i := range want {
		if !calls[i].Equal(want[i]) {
			t.Fatalf("armed %v, want %v", calls, want)
		}
	}
}

func TestMustArm(t *testing.T) {
	g := time.Second
	at := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name          string
		wanted, armed time.Time
		arm           bool
	}{
		{"same", at, at, false},
		{"later by less than g", at.Add(999 * time.Millisecond), at, false},
		{"later by g", at.Add(g), at, true},
		{"earlier by 1 ns", at.Add(-1), at, true},
		{"none wanted", time.Time{}, at, true},
		{"none armed", at, time.Time{}, true},
		{"none either", time.Time{}, time.Time{}, false},
	} {
		if got := mustArm(c.wanted, c.armed, g); got != c.arm {
			t.Errorf("%s: mustArm = %v, want %v", c.name, got, c.arm)
		}
	}
}

func TestNonTCPPassesThrough(t *testing.T) {
	dir := t.TempDir()
	inner, err := net.Listen("unix", dir+"/s")
	if err != nil {
		t.Skip("no unix sockets here:", err)
	}
	ln := Listen(inner, time.Second)
	defer ln.Close()
	go func() {
		if c, err := net.Dial("unix", dir+"/s"); err == nil {
			c.Close()
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.UnixConn); !ok {
		t.Fatalf("Accept gave %T, want the *net.UnixConn itself", c)
	}
}
