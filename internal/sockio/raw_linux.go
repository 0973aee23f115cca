//go:build linux && (!race || sockio_raw) && !msan && !asan

package sockio

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// rawCall is one direction's raw system call: its buffer and result live
// here, under direction.mu, so the callback bound once per connection
// allocates nothing per call.
//
// Race and sanitizer builds use the standard calls instead (raw_other.go):
// their tools learn what a socket carries from annotations in syscall.Read
// and syscall.Write. The sockio_raw tag forces this file into a race build,
// to race-test its own state (scripts/test.sh does).
type rawCall struct {
	fn    func(fd uintptr) bool
	buf   []byte
	n     int
	errno syscall.Errno
	short bool // write(2) took nothing and said nothing
}

func initRaw(c *Conn) {
	rc, err := c.tc.SyscallConn()
	if err != nil {
		return // c.rawConn stays nil: the standard calls then
	}
	c.rawConn = rc
	c.rd.raw.fn = c.rd.raw.readOnce
	c.wr.raw.fn = c.wr.raw.writeSome
}

// read is called with c.rd.mu held.
func (c *Conn) read(p []byte) (int, error) {
	if c.rawConn == nil {
		return c.tc.Read(p)
	}
	r := &c.rd.raw
	r.buf, r.n, r.errno = p, 0, 0
	err := c.rawConn.Read(r.fn)
	r.buf = nil
	switch {
	case err != nil: // deadline, closed: the poller's own error
		return 0, c.opError("read", err)
	case r.errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", r.errno))
	case r.n == 0 && len(p) > 0:
		return 0, io.EOF // unwrapped, as bufio and fasthttp compare with ==
	}
	return r.n, nil
}

// readOnce is one read(2); false asks the poller to wait for data.
func (r *rawCall) readOnce(fd uintptr) bool {
	if len(r.buf) == 0 {
		return true // the poller has checked the connection is open
	}
	n, e := rawRW(syscall.SYS_READ, fd, r.buf)
	if e == syscall.EAGAIN {
		return false
	}
	r.n, r.errno = n, e
	return true
}

// rawRW is one read(2) or write(2) of p on fd, retried on EINTR.
func rawRW(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if e != syscall.EINTR {
			return int(n), e
		}
	}
}

// write is called with c.wr.mu held.
func (c *Conn) write(p []byte) (int, error) {
	if c.rawConn == nil {
		return c.tc.Write(p)
	}
	r := &c.wr.raw
	r.buf, r.n, r.errno, r.short = p, 0, 0, false
	err := c.rawConn.Write(r.fn)
	n := r.n
	r.buf = nil
	switch {
	case err != nil:
		return n, c.opError("write", err)
	case r.errno != 0:
		return n, c.opError("write", os.NewSyscallError("write", r.errno))
	case r.short:
		return n, c.opError("write", io.ErrUnexpectedEOF) // as internal/poll does
	}
	return n, nil
}

// writeSome writes what the socket takes; false asks the poller to wait
// until it takes more.
func (r *rawCall) writeSome(fd uintptr) bool {
	for len(r.buf) > 0 {
		n, e := rawRW(syscall.SYS_WRITE, fd, r.buf[:min(len(r.buf), maxRW)])
		switch {
		case e == syscall.EAGAIN:
			return false
		case e != 0:
			r.errno = e
			return true
		case n == 0:
			r.short = true
			return true
		}
		r.n += n
		r.buf = r.buf[n:]
	}
	return true
}
