//go:build !linux || (race && !sockio_raw) || msan || asan

package sockio

// Where raw calls are not used (other systems; race and sanitizer builds,
// see raw_linux.go), a Conn reads and writes through the standard calls.
type rawCall struct{}

func initRaw(*Conn) {}

func (c *Conn) read(p []byte) (int, error) { return c.tc.Read(p) }

func (c *Conn) write(p []byte) (int, error) { return c.tc.Write(p) }
