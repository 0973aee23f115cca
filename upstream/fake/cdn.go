package fake

import (
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// CDN imitates pps.whatsapp.net: pictures under
// /v/t61.24694-24/<digits>_<digits>_<digits>_n.jpg, reachable only through a
// signed link whose oe (hex Unix seconds) has not passed and whose oh matches
// the rest of the query, so a client that re-encodes or trims the query is
// caught. Per-path Behaviors script the bad days. Safe for concurrent use.
type CDN struct {
	// Now is the clock the expiry is enforced against; nil means time.Now.
	Now func() time.Time
	// ExpiredText is the body of the 403 for a link at or past its oe.
	// Empty means "URL signature expired"; Meta CDNs also send "Bad URL
	// timestamp" and "Bad URL date param" for stale links.
	ExpiredText string
	// Recorder sees every request.
	Recorder Recorder

	mu       sync.Mutex
	pictures map[string][]byte
	scripts  map[string]Behavior
	requests []CDNRequest
}

// CDNRequest is what the fake saw of one request.
type CDNRequest struct {
	Path      string // escaped, exactly as sent
	RawQuery  string // exactly as sent
	UserAgent string
}

// BodyMode says how much of a picture a Behavior sends.
type BodyMode uint8

const (
	// BodyFull sends the whole picture.
	BodyFull BodyMode = iota
	// BodyTruncated declares the full Content-Length, sends Sent bytes and
	// drops the connection.
	BodyTruncated
	// BodyStalled sends Sent bytes, then holds the connection open without
	// sending more until the client goes away.
	BodyStalled
)

// Behavior scripts one path. The zero value serves the picture normally.
type Behavior struct {
	// Answer, when set, is sent instead of the picture (an HTML page, a
	// 500, an arbitrary body), before any signature check.
	Answer *Answer
	// Redirect, when set, answers 302 with this Location, before any
	// signature check.
	Redirect string
	// Delay holds back the headers; it ends early when the client leaves.
	Delay time.Duration
	// Chunked streams the picture without a Content-Length.
	Chunked bool
	// Body and Sent cut the body short (see BodyMode).
	Body BodyMode
	Sent int
}

// NewCDN returns an empty CDN.
func NewCDN() *CDN { return &CDN{} }

// Add stores data (copied) and returns its path. The path is derived from the
// bytes, so the same picture always gets the same path and a new picture a
// new one, as on the real CDN.
func (c *CDN) Add(data []byte) string {
	sum := sha256.Sum256(data)
	path := fmt.Sprintf("/v/t61.24694-24/%d_%d_%d_n.jpg",
		100000+binary.BigEndian.Uint32(sum[0:4])%900000000,
		binary.BigEndian.Uint64(sum[4:12])>>1,
		binary.BigEndian.Uint64(sum[12:20])>>1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pictures == nil {
		c.pictures = make(map[string][]byte)
	}
	c.pictures[path] = append([]byte(nil), data...)
	return path
}

// Script sets the behaviour of path (which need not hold a picture).
func (c *CDN) Script(path string, b Behavior) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.scripts == nil {
		c.scripts = make(map[string]Behavior)
	}
	c.scripts[path] = b
}

// Requests lists every request seen, in arrival order.
func (c *CDN) Requests() []CDNRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]CDNRequest(nil), c.requests...)
}

// URL is a realistic signed link to path on base (e.g. the httptest server
// URL, no trailing slash), valid until expiry:
// ?ccb=11-4&oh=01_<sig>&oe=<HEX>&_nc_sid=<6 hex>&_nc_cat=<n>. It is
// deterministic.
func (c *CDN) URL(base, path string, expiry time.Time) string {
	oe := fmt.Sprintf("%X", expiry.Unix())
	h := sha256.Sum256([]byte("sid|" + path))
	sid := fmt.Sprintf("%x", h[:3])
	cat := strconv.Itoa(1 + int(h[3])%200)
	return base + path + "?ccb=11-4&oh=" + cdnSignature(path, oe, sid, cat) + "&oe=" + oe + "&_nc_sid=" + sid + "&_nc_cat=" + cat
}

// cdnSignature imitates oh: "01_" and 43 base64url characters.
func cdnSignature(path, oe, sid, cat string) string {
	h := sha256.Sum256([]byte(path + "|" + oe + "|" + sid + "|" + cat))
	return "01_" + base64.RawURLEncoding.EncodeToString(h[:])
}

func (c *CDN) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// ServeHTTP answers as the CDN does: 404 for unknown paths, 403 "Bad URL
// hash" for a tampered query, 403 ExpiredText at or after oe.
func (c *CDN) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer c.Recorder.Begin()()
	path, rawQuery, _ := strings.Cut(r.RequestURI, "?")
	c.mu.Lock()
	c.requests = append(c.requests, CDNRequest{Path: path, RawQuery: rawQuery, UserAgent: r.UserAgent()})
	b, scripted := c.scripts[r.URL.Path]
	data, known := c.pictures[r.URL.Path]
	c.mu.Unlock()

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		Text(http.StatusMethodNotAllowed, "Method Not Allowed").Write(w, r)
		return
	}
	if scripted && b.Delay > 0 && !cdnWait(r, b.Delay) {
		return
	}
	switch {
	case scripted && b.Redirect != "":
		http.Redirect(w, r, b.Redirect, http.StatusFound)
		return
	case scripted && b.Answer != nil:
		b.Answer.Write(w, r)
		return
	case !known:
		Text(http.StatusNotFound, "Not Found").Write(w, r)
		return
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	oe := q.Get("oe")
	secs, perr := strconv.ParseInt(oe, 16, 64)
	switch {
	case err != nil || oe == "" || perr != nil:
		Text(http.StatusForbidden, "Bad URL timestamp").Write(w, r)
		return
	case q.Get("oh") != cdnSignature(r.URL.Path, oe, q.Get("_nc_sid"), q.Get("_nc_cat")) || q.Get("ccb") != "11-4":
		Text(http.StatusForbidden, "Bad URL hash").Write(w, r)
		return
	case !c.now().Before(time.Unix(secs, 0)):
		Text(http.StatusForbidden, cmp.Or(c.ExpiredText, "URL signature expired")).Write(w, r)
		return
	}

	w.Header().Set("Content-Type", http.DetectContentType(data))
	w.Header().Set("Cache-Control", "max-age=1209600, no-transform")
	if !b.Chunked {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	switch b.Body {
	case BodyTruncated:
		_, _ = w.Write(data[:min(b.Sent, len(data))])
		cdnFlush(w)
		// The client gets an unexpected EOF; ErrAbortHandler is not logged.
		panic(http.ErrAbortHandler)
	case BodyStalled:
		_, _ = w.Write(data[:min(b.Sent, len(data))])
		cdnFlush(w)
		<-r.Context().Done()
		return
	}
	if b.Chunked {
		for len(data) > 0 {
			n := min(len(data), 1024)
			_, _ = w.Write(data[:n])
			cdnFlush(w)
			data = data[n:]
		}
		return
	}
	_, _ = w.Write(data)
}

func cdnFlush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

// cdnWait holds for d or until the client leaves; it reports whether d passed.
func cdnWait(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}
