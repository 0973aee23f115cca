package proxy

import (
	"bytes"
	"log/slog"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// viaSlog is the line slog's own handler writes for l, the shape the
// access log promises.
func viaSlog(t *testing.T, text bool, l accessLine) string {
	t.Helper()
	level := slog.LevelInfo
	switch {
	case l.status >= 500:
		level = slog.LevelError
	case l.status >= 400 && l.status != 404 && l.status != 429:
		level = slog.LevelWarn
	}
	return testkit.SlogLine(t, text, l.end, level, "request",
		slog.String("id", string(l.id)), slog.String("method", cut(l.method, maxLoggedMethod)),
		slog.String("path", loggedPath(l.path)),
		slog.Int("status", l.status), slog.Int("bytes", l.bytes),
		slog.Duration("duration", l.dur), slog.String("cache", l.cache), slog.String("avatar", l.avatar),
	)
}

// loggedPath is what an access line says of a path: masked, and cut at
// maxLoggedPath bytes with a mark.
func loggedPath(p []byte) string { return cut(appendMaskedPath(nil, p), maxLoggedPath) }

func cut(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + cutMark
	}
	return string(b)
}

// A path the client makes long cannot make a line that a pipe would take
// in pieces (PIPE_BUF is 4 KiB).
func TestLongPathLineFitsAPipeWrite(t *testing.T) {
	l := accessLine{end: time.Now(), status: 404, id: bytes.Repeat([]byte("i"), 128), method: bytes.Repeat([]byte("\x01"), 3000),
		path: append([]byte("/x"), bytes.Repeat([]byte("\x01"), 6000)...)}
	for _, text := range []bool{false, true} {
		if line := AccessFormat(text)(nil, l.appendRecord(nil)); len(line) >= 4096 {
			t.Errorf("text=%v: a %d-byte line", text, len(line))
		}
	}
}

// A record, formatted on the log's goroutine, must give the line slog
// would have written for the request, with the number masked.
func checkAccessLine(t *testing.T, l accessLine) {
	t.Helper()
	rec := l.appendRecord(nil)
	for _, text := range []bool{false, true} {
		got := string(AccessFormat(text)([]byte("prev\n"), rec))
		want := "prev\n" + viaSlog(t, text, l)
		if got != want {
			t.Fatalf("text=%v:\n got %q\nwant %q", text, got, want)
		}
	}
}

func TestAccessRecordMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 24, 9, 30, 1, 123456789, time.Local)
	for _, l := range []accessLine{
		{end: at, dur: 41 * time.Microsecond, status: 200, bytes: 2579, id: []byte("3f2a9c41d2e8b7a0"),
			method: []byte("GET"), path: []byte("/avatar/79001234567@c.us.jpg"), cache: "avatarproxy; hit", avatar: "ok"},
		{end: at.Truncate(time.Second), dur: 0, status: 404, method: []byte("HEAD"), path: []byte("/nope")},
		{end: at, dur: 3 * time.Second, status: 502, bytes: 1 << 20, id: []byte("x"), method: []byte("GET"),
			path: []byte("/avatar/12345678901234567890-1581234048@g.us.png"), cache: `a "b"`, avatar: "gateway_error"},
		{end: at, dur: -time.Millisecond, status: 400, method: []byte("PO\"ST"), path: []byte("/a\x00\xff\u2028b")},
		{end: at, status: 429, path: bytes.Repeat([]byte("/avatar/7"), 10000)},
	} {
		checkAccessLine(t, l)
	}
}

// The log's goroutine must survive any bytes handed to it as a record, and
// give no line for a record the server did not write.
func TestAccessFormatRefusesBadRecords(t *testing.T) {
	good := (&accessLine{end: time.Unix(1, 0), status: 200, method: []byte("GET"), path: []byte("/x")}).appendRecord(nil)
	format := AccessFormat(false)
	for i := range len(good) {
		if out := format(nil, good[:i]); len(out) != 0 {
			t.Errorf("record cut at %d of %d gave %q", i, len(good), out)
		}
	}
	if out := format(nil, append(good, 0)); len(out) != 0 {
		t.Errorf("record with a trailing byte gave %q", out)
	}
	if out := format(nil, good); len(out) == 0 {
		t.Error("the whole record gave no line")
	}
}

func FuzzAccessRecord(f *testing.F) {
	f.Add(int64(1_795_000_000_123_456_789), int64(41_000), 200, 2579, []byte("3f2a9c41d2e8b7a0"), []byte("GET"),
		[]byte("/avatar/79001234567@c.us.jpg"), "avatarproxy; hit", "ok", []byte{})
	f.Add(int64(-1), int64(-1), 99999, 0, []byte{}, []byte("\xff"), []byte("/avatar/\"1\n2"), "\u2028", "", []byte{0x80, 0x80})
	f.Fuzz(func(t *testing.T, end, dur int64, status, size int, id, method, path []byte, cache, avatar string, raw []byte) {
		// Anything as a record: no panic, and a line only if it reads whole.
		if out := AccessFormat(false)(nil, raw); len(out) > 0 && out[len(out)-1] != '\n' {
			t.Fatalf("line without its newline: %q", out)
		}
		if status < 0 || status > 999 || size < 0 || size > 1<<30 {
			return // a status and a body size the server can produce
		}
		checkAccessLine(t, accessLine{end: time.Unix(0, end), dur: time.Duration(dur), status: status, bytes: size,
			id: id, method: method, path: path, cache: cache, avatar: avatar})
	})
}

// BenchmarkAccessFormat is the work the log's goroutine does per line.
func BenchmarkAccessFormat(b *testing.B) {
	rec := (&accessLine{end: time.Now(), dur: 41 * time.Microsecond, status: 200, bytes: 2579, id: []byte("3f2a9c41d2e8b7a0"),
		method: []byte("GET"), path: []byte("/avatar/79001234567@c.us.jpg"), cache: "avatarproxy; hit", avatar: "ok"}).appendRecord(nil)
	format := AccessFormat(false)
	out := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		out = format(out[:0], rec)
	}
}
