package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/avatarproxy/avatarproxy/logging"
)

const headerRequestID = "X-Request-ID"

// LineWriter takes finished access-log lines. hint is the same for every
// line of one connection, so a writer can keep them in order and spread
// concurrent connections over separate buffers. It must copy line and must
// not block.
type LineWriter interface {
	WriteLine(hint uint64, line []byte)
}

// accessRecords holds the scratch of one access line.
var accessRecords = sync.Pool{New: func() any {
	return &accessRecord{line: make([]byte, 0, 512), path: make([]byte, 0, 128)}
}}

// accessRecord is what the handler tells the access log (send fills in the
// statuses it answered with; reading them back from the response headers
// cost a fifth of the line) and the memory the line is built in.
type accessRecord struct {
	start         time.Time
	id            []byte // the request id: the request's own, or gen
	gen           [16]byte
	cache, avatar string // Cache-Status and avatar status, "" when not sent
	line, path    []byte
}

// accessKey is the request user-value key of the *accessRecord.
type accessKey struct{}

// noteAccess records what send answered, for the access log.
func noteAccess(ctx *fasthttp.RequestCtx, cacheStatus, avatarStatus string) {
	if r, ok := ctx.UserValue(accessKey{}).(*accessRecord); ok {
		r.cache, r.avatar = cacheStatus, avatarStatus
	}
}

// accessLog writes one line per request, with a request id taken from a
// valid X-Request-ID or made here, echoed back. The path is logged with the
// phone number masked and without its query (names, signatures); the level
// follows the status. It runs on every memory hit, so it formats with
// logging.Encoder into pooled memory instead of going through slog: slog's
// attrs and handler cost about three times the rest of a hit.
func (s *Server) accessLog(c *fiber.Ctx) error {
	ctx := c.Context()
	rec := s.startAccess(ctx)
	// send finds the record here; the fast path hands it over directly.
	ctx.SetUserValue(accessKey{}, rec)
	defer ctx.RemoveUserValue(accessKey{})
	if err := c.Next(); err != nil {
		// Map it now so the line below logs the status the client gets.
		if herr := s.handleError(c, err); herr != nil {
			rec.release()
			return herr
		}
	}
	s.finishAccess(ctx, rec)
	return nil
}

// startAccess sets the request id and returns the request's accessRecord,
// for what answers the request to fill in; finishAccess (or release) must
// follow.
func (s *Server) startAccess(ctx *fasthttp.RequestCtx) *accessRecord {
	rec := accessRecords.Get().(*accessRecord)
	// The time the request is answered at (requestTime): the clock is read
	// once per request.
	rec.start = ctx.Time()
	if rec.start.IsZero() {
		rec.start = time.Now()
	}
	rec.cache, rec.avatar = "", ""
	// The id may alias the request's memory: it is logged before the
	// handler returns, and SetCanonical copies it into the response.
	rec.id = ctx.Request.Header.Peek(headerRequestID)
	if !validRequestID(rec.id) {
		rec.id = appendRequestID(rec.gen[:0])
	}
	ctx.Response.Header.SetCanonical(hdrXRequestID, rec.id)
	return rec
}

// finishAccess writes the line of a request answered, and releases rec.
func (s *Server) finishAccess(ctx *fasthttp.RequestCtx, rec *accessRecord) {
	status := ctx.Response.StatusCode()
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case status >= 400 && status != fiber.StatusNotFound && status != fiber.StatusTooManyRequests:
		level = slog.LevelWarn
	}
	end := time.Now()
	enc := logging.Encoder{Text: s.cfg.AccessLogText}
	rec.path = appendMaskedPath(rec.path[:0], ctx.URI().PathOriginal())
	b := enc.Begin(rec.line[:0], end, level, "request")
	b = enc.Bytes(b, keyID, rec.id)
	b = enc.Bytes(b, keyMethod, ctx.Method())
	b = enc.Bytes(b, keyPath, rec.path)
	b = enc.Int(b, keyStatus, int64(status))
	b = enc.Int(b, keyBytes, int64(len(ctx.Response.Body())))
	b = enc.Duration(b, keyDuration, end.Sub(rec.start))
	b = enc.String(b, keyCache, rec.cache)
	b = enc.String(b, keyAvatar, rec.avatar)
	b = enc.End(b)
	s.cfg.AccessLog.WriteLine(ctx.ConnID(), b)
	rec.line = b
	rec.release()
}

// The access line's field names, encoded once.
var (
	keyID, keyMethod, keyPath, keyStatus = logging.NewKey("id"), logging.NewKey("method"), logging.NewKey("path"), logging.NewKey("status")
	keyBytes, keyDuration, keyCache      = logging.NewKey("bytes"), logging.NewKey("duration"), logging.NewKey("cache")
	keyAvatar                            = logging.NewKey("avatar")
)

// release pools rec; nothing may use it afterwards.
func (rec *accessRecord) release() {
	rec.id = nil
	accessRecords.Put(rec)
}

// appendMaskedPath appends p with the phone numbers of an /avatar path
// hidden: every run of digits keeps only its last four. It does not parse
// the path again (it runs for every request); an opaque /avatar/t/ path has
// no number to hide.
func appendMaskedPath[T string | []byte](dst []byte, p T) []byte {
	rest, ok := cutPrefix(p, "/avatar/")
	if !ok || len(rest) >= 2 && rest[0] == 't' && rest[1] == '/' {
		return append(dst, p...)
	}
	n := len(dst)
	b := append(dst, p...)
	for i := n + len(p) - len(rest); i < len(b); {
		if b[i] < '0' || b[i] > '9' {
			i++
			continue
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		for k := i; k < j-4; k++ {
			b[k] = '*'
		}
		i = j
	}
	return b
}

func cutPrefix[T string | []byte](s T, prefix string) (T, bool) {
	if len(s) < len(prefix) || string(s[:len(prefix)]) != prefix {
		return s, false
	}
	return s[len(prefix):], true
}

// validRequestID accepts what proxies and load balancers send (UUIDs, hex,
// base64url) and nothing that could forge a log line or a header.
func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// appendRequestID appends 16 random hex digits.
func appendRequestID(dst []byte) []byte {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.AppendEncode(dst, b[:])
}

var hdrXRequestID = []byte(headerRequestID)
