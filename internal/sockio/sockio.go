// Package sockio serves TCP connections for the HTTP server at a lower cost
// per request than the standard net.Conn, without changing what the server
// promises its clients.
//
// Two costs of the standard connection show under a load of small, cached
// answers (perf under wrk, issue 6: together about a tenth of the server's
// CPU):
//
//   - Deadlines. fasthttp sets three per request: the idle wait, the
//     request's read and the response's write. Each one moves a runtime
//     timer. A Conn re-arms a deadline only when it must: when it moves
//     earlier, or later by at least the granularity, and only when an I/O
//     call is about to wait on it. A deadline can therefore fire up to one
//     granularity early, never late.
//   - The blocking-syscall protocol (Linux, outside race and sanitizer
//     builds). The standard connection makes its non-blocking read and write
//     through syscall.Syscall, which tells the scheduler the thread may
//     block. When the kernel preempts the thread inside the write that wakes
//     the client, the runtime's monitor takes the thread's P away and starts
//     another thread, and the first goes to sleep on its return: thread
//     churn, and a monitor that polls every 20 µs because it keeps finding
//     work. A Conn makes the same calls through syscall.RawSyscall, as calls
//     on a non-blocking socket never block, and waits for readiness through
//     the connection's own poller (syscall.RawConn), deadlines included. See
//     golang/go#19563 on RawSyscall for non-blocking descriptors.
//
// A Conn does not expose its *net.TCPConn: SyscallConn, File, ReadFrom and
// WriteTo would reach the socket past the lazy deadlines (sendfile, splice,
// writev), or could clear O_NONBLOCK, on which the raw calls rely. The
// standard library falls back to Read and Write on it. One cost of that:
// fasthttp's single writev for an answer larger than its write buffer
// becomes two writes, so size that buffer for the common answer.
package sockio

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Listen wraps ln: its TCP connections are Conns whose deadlines have the
// given granularity. Other connections pass through unchanged.
//
// Keep granularity well under the shortest timeout the server sets (a tenth
// is a good rule): a deadline may fire up to one granularity early.
func Listen(ln net.Listener, granularity time.Duration) net.Listener {
	return &listener{Listener: ln, granularity: granularity}
}

type listener struct {
	net.Listener
	granularity time.Duration
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	return newConn(tc, l.granularity), nil
}

// Conn is a TCP connection with lazily armed deadlines and, where
// supported, raw non-blocking I/O. Like any net.Conn it is safe for
// concurrent use; calls in one direction (two Reads) run one at a time.
type Conn struct {
	tc          *net.TCPConn
	rawConn     syscall.RawConn // nil: the standard calls (raw_other.go)
	granularity time.Duration
	rd, wr      direction
}

// direction is the state of one direction (reads or writes).
type direction struct {
	mu       sync.Mutex // held through a whole call: one call at a time
	deadline lazyDeadline
	raw      rawCall
}

var _ net.Conn = (*Conn)(nil)

func newConn(tc *net.TCPConn, granularity time.Duration) *Conn {
	c := &Conn{tc: tc, granularity: granularity}
	c.rd.deadline.set = tc.SetReadDeadline
	c.wr.deadline.set = tc.SetWriteDeadline
	initRaw(c)
	return c
}

// maxRW caps one system call, as the standard library does (1 GiB).
const maxRW = 1 << 30

// Read reads like net.TCPConn.Read.
func (c *Conn) Read(p []byte) (int, error) {
	d := &c.rd
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.deadline.begin(c.granularity); err != nil {
		return 0, c.opError("read", err)
	}
	defer d.deadline.end()
	if len(p) > maxRW {
		p = p[:maxRW]
	}
	return c.read(p)
}

// Write writes like net.TCPConn.Write: all of p, or an error.
func (c *Conn) Write(p []byte) (int, error) {
	d := &c.wr
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.deadline.begin(c.granularity); err != nil {
		return 0, c.opError("write", err)
	}
	defer d.deadline.end()
	return c.write(p)
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline records t; it is armed when a Read waits on it, or at
// once when a Read is already waiting.
func (c *Conn) SetReadDeadline(t time.Time) error {
	return c.opError("set", c.rd.deadline.want(t, c.granularity))
}

// SetWriteDeadline records t; it is armed when a Write waits on it, or at
// once when a Write is already waiting.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	return c.opError("set", c.wr.deadline.want(t, c.granularity))
}

// The rest forwards to the TCP connection.

func (c *Conn) Close() error                             { return c.tc.Close() }
func (c *Conn) LocalAddr() net.Addr                      { return c.tc.LocalAddr() }
func (c *Conn) RemoteAddr() net.Addr                     { return c.tc.RemoteAddr() }
func (c *Conn) CloseRead() error                         { return c.tc.CloseRead() }
func (c *Conn) CloseWrite() error                        { return c.tc.CloseWrite() }
func (c *Conn) SetNoDelay(noDelay bool) error            { return c.tc.SetNoDelay(noDelay) }
func (c *Conn) SetLinger(sec int) error                  { return c.tc.SetLinger(sec) }
func (c *Conn) SetKeepAlive(keepalive bool) error        { return c.tc.SetKeepAlive(keepalive) }
func (c *Conn) SetKeepAlivePeriod(d time.Duration) error { return c.tc.SetKeepAlivePeriod(d) }

// opError wraps err the way the standard connection does, so callers that
// type-assert *net.OpError (fasthttp does, for timeouts) find one.
func (c *Conn) opError(op string, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := err.(*net.OpError); ok {
		oe.Op = op
		return oe
	}
	if errors.As(err, new(*net.OpError)) {
		return err // already carries one inside
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// lazyDeadline is one direction's deadline: the one asked for and the one
// armed on the connection's poller.
type lazyDeadline struct {
	set func(time.Time) error // the TCPConn's own setter

	mu      sync.Mutex
	wanted  time.Time
	armed   time.Time
	pending bool // a call in this direction is under way (direction.mu makes it one)
}

// want records t and arms it when a call is waiting and must see it.
func (d *lazyDeadline) want(t time.Time, granularity time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.wanted = t
	if d.pending {
		return d.arm(granularity)
	}
	return nil
}

// begin marks a call under way and arms the wanted deadline for it.
func (d *lazyDeadline) begin(granularity time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.arm(granularity); err != nil {
		return err
	}
	d.pending = true
	return nil
}

func (d *lazyDeadline) end() {
	d.mu.Lock()
	d.pending = false
	d.mu.Unlock()
}

func (d *lazyDeadline) arm(granularity time.Duration) error {
	if !mustArm(d.wanted, d.armed, granularity) {
		return nil
	}
	if err := d.set(d.wanted); err != nil {
		return err
	}
	d.armed = d.wanted
	return nil
}

// mustArm reports whether the poller's deadline armed must become wanted.
// It may stay when wanted is later by less than the granularity: the call
// then times out up to one granularity before wanted, never after it. (If
// armed has already passed, wanted is less than a granularity away, and the
// call times out at once: still within that bound.) The zero time means no
// deadline, so a change to or from it always arms.
func mustArm(wanted, armed time.Time, granularity time.Duration) bool {
	if wanted.IsZero() || armed.IsZero() {
		return !wanted.Equal(armed)
	}
	ahead := wanted.Sub(armed)
	return ahead < 0 || ahead >= granularity
}
