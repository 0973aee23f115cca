package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// A kept-alive connection waits under the 75 s idle deadline; a request
// that then stalls half-way must still be cut at the 10 s read timeout.
// Serve's connections re-arm deadlines lazily (internal/sockio), so this
// is the case where an armed, later deadline must give way to an earlier
// one. The test takes readTimeout (10 s) and runs in parallel.
func TestStalledRequestCutAtReadTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c, err := net.Dial("tcp", h.listen())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)

	// One whole request: the connection is then kept alive, idle.
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: avatars\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Close {
		t.Fatalf("first request: %d, close=%v; want 200 on a kept-alive connection", resp.StatusCode, resp.Close)
	}

	// Half a request, then nothing.
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: av"); err != nil {
		t.Fatal(err)
	}
	guard := readTimeout + deadlineGranularity + 10*time.Second // well under idleTimeout
	if err := c.SetReadDeadline(time.Now().Add(guard)); err != nil {
		t.Fatal(err)
	}
	// The server may answer 408 before closing; either way the connection ends.
	_, err = io.Copy(io.Discard, br)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the stalled request still held the connection after %v (read timeout %v, idle %v)", guard, readTimeout, idleTimeout)
	}
}

// Answers bigger than the write buffer go out in several writes through
// the server's connections; over a real socket they must arrive whole and
// identical to the in-memory route's, on a miss and on a fast-path hit.
func TestLargeAnswersOverSocket(t *testing.T) {
	const chat = "79001234561@c.us"
	h := newHarness(t)
	h.avatar(chat, 640)
	addr := h.listen()
	client := &http.Client{Timeout: 30 * time.Second}
	biggest := 0
	for _, target := range []string{
		"/avatar/" + chat + ".png?size=512",
		"/avatar/" + chat + ".jpg?size=512",
		"/avatar/" + chat + ".png?size=64",
	} {
		for _, pass := range []string{"miss", "hit"} {
			resp, err := client.Get("http://" + addr + target)
			if err != nil {
				t.Fatalf("%s (%s): %v", target, pass, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("%s (%s): %d, %v", target, pass, resp.StatusCode, err)
			}
			_, want := h.get(target)
			if !bytes.Equal(body, want) {
				t.Fatalf("%s (%s): %d bytes over the socket differ from the %d in memory", target, pass, len(body), len(want))
			}
			biggest = max(biggest, len(body))
		}
	}
	if biggest <= 16<<10 {
		t.Fatalf("the biggest answer is %d bytes: the test no longer exceeds the 16 KiB write buffer", biggest)
	}
}
