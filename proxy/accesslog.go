package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/avatarproxy/avatarproxy/logging"
)

const headerRequestID = "X-Request-ID"

// LineWriter takes access records: the fields of a request's line in a
// compact binary form, which AccessFormat turns into the line itself. hint
// is the same for every record of one connection, so a writer can keep
// them in order and spread concurrent connections over separate buffers.
// It must copy rec and must not block. logging.Lines with AccessFormat as
// its Format is one: the request then only copies the fields, and the line
// is formatted later, off the request's path.
type LineWriter interface {
	WriteLine(hint uint64, rec []byte)
}

// accessRecords holds the scratch of one access record.
var accessRecords = sync.Pool{New: func() any {
	return &accessRecord{rec: make([]byte, 0, 256)}
}}

// accessRecord is what the handler tells the access log (send fills in the
// statuses it answered with; reading them back from the response headers
// cost a fifth of the line) and the memory the record is built in.
type accessRecord struct {
	start         time.Time
	id            []byte // the request id: the request's own, or gen
	gen           [16]byte
	cache, avatar string // Cache-Status and avatar status, "" when not sent
	unparsed      bool   // no request line: log no method or path
	rec           []byte
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
	rec.cache, rec.avatar, rec.unparsed = "", "", false
	// The id may alias the request's memory: it is logged before the
	// handler returns, and SetCanonical copies it into the response.
	rec.id = ctx.Request.Header.Peek(headerRequestID)
	if !validRequestID(rec.id) {
		rec.id = appendRequestID(rec.gen[:0])
	}
	ctx.Response.Header.SetCanonical(hdrXRequestID, rec.id)
	return rec
}

// finishAccess hands the record of a request answered to the access log,
// and releases rec.
func (s *Server) finishAccess(ctx *fasthttp.RequestCtx, rec *accessRecord) {
	end := time.Now()
	l := accessLine{
		end: end, dur: end.Sub(rec.start),
		status: ctx.Response.StatusCode(), bytes: len(ctx.Response.Body()),
		id: rec.id, method: ctx.Method(), path: ctx.URI().PathOriginal(),
		cache: rec.cache, avatar: rec.avatar,
	}
	if rec.unparsed {
		l.method, l.path = nil, nil
	}
	rec.rec = l.appendRecord(rec.rec[:0])
	s.cfg.AccessLog.WriteLine(ctx.ConnID(), rec.rec)
	rec.release()
}

// accessLine is one access line's fields. path is the request's path when
// a request fills it in (appendRecord masks it) and the masked path when
// parseRecord does.
type accessLine struct {
	end              time.Time
	dur              time.Duration
	status, bytes    int
	id, method, path []byte
	cache, avatar    string
}

// appendRecord appends l's record: the end time's Unix nanoseconds and the
// duration, 8 bytes each, then the status and the body size as uvarints,
// then id, method, path, cache status and avatar status, each a uvarint
// length and its bytes. The path goes in with its phone numbers already
// masked: an unmasked number never leaves the request's own memory.
func (l *accessLine) appendRecord(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(l.end.UnixNano()))
	b = binary.LittleEndian.AppendUint64(b, uint64(l.dur))
	b = binary.AppendUvarint(b, uint64(l.status))
	b = binary.AppendUvarint(b, uint64(l.bytes))
	b = appendField(b, l.id)
	if len(l.method) > maxLoggedMethod {
		b = binary.AppendUvarint(b, uint64(maxLoggedMethod+len(cutMark)))
		b = append(append(b, l.method[:maxLoggedMethod]...), cutMark...)
	} else {
		b = appendField(b, l.method)
	}
	n := len(l.path)
	if n > maxLoggedPath {
		n = maxLoggedPath + len(cutMark)
	}
	b = binary.AppendUvarint(b, uint64(n))
	start := len(b)
	b = appendMaskedPath(b, l.path)
	if len(b)-start > maxLoggedPath {
		b = append(b[:start+maxLoggedPath], cutMark...)
	}
	b = appendField(b, l.cache)
	return appendField(b, l.avatar)
}

// maxLoggedPath bounds the path in an access line (a client chooses it),
// so every line fits in one atomic write to a pipe (PIPE_BUF, 4 KiB) and
// never interleaves with other lines on stderr, even when JSON escapes
// every byte of it (\u0001: six bytes each). A longer path is cut, after
// masking, and ends in cutMark.
const maxLoggedPath = 512

// maxLoggedMethod does the same for the method, which fasthttp takes as
// sent: real ones are at most a dozen bytes.
const maxLoggedMethod = 32

const cutMark = "…"

func appendField[T string | []byte](b []byte, v T) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// parseRecord reads a record of appendRecord back; the slices alias rec.
// It reports false when rec is not one whole record (cut short, or with
// bytes left over).
func parseRecord(rec []byte) (l accessLine, ok bool) {
	if len(rec) < 16 {
		return l, false
	}
	l.end = time.Unix(0, int64(binary.LittleEndian.Uint64(rec)))
	l.dur = time.Duration(binary.LittleEndian.Uint64(rec[8:]))
	r := recordReader{b: rec[16:], ok: true}
	l.status, l.bytes = r.int(), r.int()
	l.id, l.method, l.path = r.field(), r.field(), r.field()
	l.cache, l.avatar = view(r.field()), view(r.field())
	return l, r.ok && len(r.b) == 0
}

type recordReader struct {
	b  []byte
	ok bool
}

func (r *recordReader) int() int {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > math.MaxInt32 {
		r.ok = false
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *recordReader) field() []byte {
	n := r.int()
	if !r.ok || n > len(r.b) {
		r.ok = false
		return nil
	}
	f := r.b[:n]
	r.b = r.b[n:]
	return f
}

// AccessFormat is the logging.Format of the access records a Server
// writes: it appends each as slog's JSON handler (or, with text, its text
// handler) would write the line, with a level that follows the status. A
// record it cannot read (none: the Server writes them all) gives no line.
func AccessFormat(text bool) logging.Format {
	enc := logging.Encoder{Text: text}
	return func(dst, rec []byte) []byte {
		l, ok := parseRecord(rec)
		if !ok {
			return dst
		}
		return l.appendLine(enc, dst)
	}
}

// appendLine appends l as enc's line.
func (l *accessLine) appendLine(enc logging.Encoder, b []byte) []byte {
	level := slog.LevelInfo
	switch {
	case l.status >= 500 && l.status != fiber.StatusNotImplemented:
		// 501 is a method nobody here serves: the client's doing, and
		// a scanner must not fill the log with errors.
		level = slog.LevelError
	case l.status >= 400 && l.status != fiber.StatusNotFound && l.status != fiber.StatusTooManyRequests:
		level = slog.LevelWarn
	}
	b = enc.Begin(b, l.end, level, "request")
	b = enc.Bytes(b, keyID, l.id)
	b = enc.Bytes(b, keyMethod, l.method)
	b = enc.Bytes(b, keyPath, l.path)
	b = enc.Int(b, keyStatus, int64(l.status))
	b = enc.Int(b, keyBytes, int64(l.bytes))
	b = enc.Duration(b, keyDuration, l.dur)
	b = enc.String(b, keyCache, l.cache)
	b = enc.String(b, keyAvatar, l.avatar)
	return enc.End(b)
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

// appendMaskedPath appends p with its phone numbers hidden. A number is a
// run of digits, which the separators people write numbers with do not end
// (- . ( ) + and %20 %2B %28 %29 %2D %2E); each number of five or more digits
// keeps only its last four. A digit written as a percent-escape (%30..%39)
// and every non-ASCII byte, raw or escaped (digits of other scripts, names),
// are always hidden: no valid chat id has one, and a client that sends
// "+7 (900) 123-45-67" or Arabic-Indic digits gets a 400 whose line must not
// show them. It masks the whole path, whatever its prefix or case: fiber
// routes /AVATAR/ too, a 404 can carry a number (/avatars/79001234567.jpg,
// //avatar/...), and an opaque /avatar/t/ token loses nothing that matters by
// having digits starred. It runs for every request, so it is one pass over
// the copy, in place: the masked path is as long as p (appendRecord writes
// the length first).
func appendMaskedPath[T string | []byte](dst []byte, p T) []byte {
	n := len(dst)
	b := append(dst, p...)
	// last holds where the number's latest four digits start (a ring): the
	// fifth digit of a number hides the first, and so on.
	var last [4]int
	run := 0
	for i := n; i < len(b); {
		w := 1
		switch maskClass[b[i]] {
		case mOther:
			run = 0
			i++
			continue
		case mSep:
			i++
			continue
		case mHigh:
			b[i] = '*'
			i++
			continue
		case mPercent:
			if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
				run = 0
				i++
				continue
			}
			w = 3
			switch maskClass[unhex(b[i+1])<<4|unhex(b[i+2])] {
			case mDigit:
				b[i], b[i+1], b[i+2] = '*', '*', '*'
			case mHigh:
				b[i], b[i+1], b[i+2] = '*', '*', '*'
				i += 3
				continue
			case mSep:
				i += 3
				continue
			default:
				// Another escape (%40 is the usual one) ends the number;
				// its hex digits are not part of one.
				run = 0
				i += 3
				continue
			}
		}
		if run >= 4 {
			b[last[run&3]] = '*' // an escape there is starred already
		}
		last[run&3] = i
		run++
		i += w
	}
	return b
}

// What appendMaskedPath makes of a byte, raw or escaped.
const (
	mOther   = iota // ends a number
	mDigit          // part of a number
	mSep            // may sit inside a number
	mHigh           // not ASCII: always hidden
	mPercent        // starts an escape (raw only)
)

var maskClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = mDigit
	}
	for _, c := range " -.()+" {
		t[c] = mSep
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = mHigh
	}
	t['%'] = mPercent
	return t
}()

func isHex(c byte) bool { return c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'f' }

// unhex is the value of the hex digit c (isHex).
func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c | 0x20 - 'a' + 10
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
