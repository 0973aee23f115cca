package logging

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// viaSlog is what slog's own handler writes for the same line.
func viaSlog(tb testing.TB, text bool, t time.Time, level slog.Level, key, val string, raw []byte, n int64, d time.Duration) string {
	tb.Helper()
	return testkit.SlogLine(tb, text, t, level, "request",
		slog.String(key, val), slog.String("raw", string(raw)), slog.Int64("n", n), slog.Duration("took", d))
}

func viaEncoder(text bool, t time.Time, level slog.Level, key, val string, raw []byte, n int64, d time.Duration) string {
	e := Encoder{Text: text}
	b := e.Begin(nil, t, level, "request")
	b = e.String(b, NewKey(key), val)
	b = e.Bytes(b, NewKey("raw"), raw)
	b = e.Int(b, NewKey("n"), n)
	b = e.Duration(b, NewKey("took"), d)
	return string(e.End(b))
}

func TestEncoderMatchesSlog(t *testing.T) {
	at := time.Date(2026, 11, 23, 23, 0, 20, 120_000_000, time.FixedZone("X", 3*3600))
	for _, tc := range []struct {
		name, key, val string
	}{
		{"plain", "path", "/avatar/*******4567@c.us.jpg"},
		{"empty", "id", ""},
		{"spaces and equals", "cache", "avatarproxy; hit; detail=stale"},
		{"quotes and backslash", "path", `/a"b\c`},
		{"controls", "path", "a\nb\rc\td\x00e\x1f\x7f"},
		{"html stays", "path", "<script>&amp;"},
		{"unicode", "name", "Андрей 😀"},
		{"invalid utf8", "path", "a\xffb\xc3"},
		{"lone continuation byte", "path", "a\x80b"}, // the first byte past ASCII
		{"replacement character as such", "path", "a\ufffdb"},
		{"line separators", "path", "a\u2028b\u2029c"},
		{"unprintable rune", "path", "a\u00adb\u200bc"},
		{"odd key", "a key=", "v"},
	} {
		for _, text := range []bool{false, true} {
			for _, level := range []slog.Level{slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
				raw := []byte(tc.val + " raw")
				want := viaSlog(t, text, at, level, tc.key, tc.val, raw, -42, 1234567*time.Nanosecond)
				got := viaEncoder(text, at, level, tc.key, tc.val, raw, -42, 1234567*time.Nanosecond)
				if got != want {
					t.Errorf("%s (text=%v, %v):\n got %q\nwant %q", tc.name, text, level, got, want)
				}
			}
		}
	}
}

// Times whose millisecond or nanosecond digits end in zeros are where a
// hand-made formatter usually differs.
func TestEncoderTimes(t *testing.T) {
	for _, ns := range []int{0, 1, 1_000_000, 100_000_000, 999_999_999, 120_000_000, 5_000} {
		at := time.Date(2026, 1, 2, 3, 4, 5, ns, time.UTC)
		if ns == 5_000 {
			at = time.Date(999, 1, 2, 3, 4, 5, ns, time.FixedZone("", -90*60))
		}
		for _, text := range []bool{false, true} {
			if got, want := viaEncoder(text, at, slog.LevelInfo, "k", "v", nil, 0, 0), viaSlog(t, text, at, slog.LevelInfo, "k", "v", nil, 0, 0); got != want {
				t.Errorf("ns=%d text=%v:\n got %q\nwant %q", ns, text, got, want)
			}
		}
	}
}

// The JSON time keeps the formatted second between lines: it must not
// outlive a change of zone within that second, nor hold a year that is not
// four digits (those are written as time formats them; slog flags them).
func TestEncoderTimeStamp(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for _, tm := range []time.Time{
		at,
		at.In(time.FixedZone("", 3600)), // the same second
		at,
		time.Date(10000, 1, 2, 3, 4, 5, 6, time.UTC),
		time.Date(10000, 1, 2, 3, 4, 5, 7, time.UTC),
		time.Date(-1, 1, 2, 3, 4, 5, 0, time.FixedZone("", -3600)),
		time.Date(0, 1, 2, 3, 4, 5, 0, time.UTC),
	} {
		if got, want := string(appendRFC3339Nano(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Errorf("%v: %q, want %q", tm, got, want)
		}
	}
}

// A JSON line allocates nothing, time included, once its second is
// formatted.
func TestEncoderAllocs(t *testing.T) {
	e := Encoder{}
	buf := make([]byte, 0, 512)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	k := NewKey("path")
	if n := testing.AllocsPerRun(100, func() {
		buf = e.End(e.String(e.Begin(buf[:0], at, slog.LevelInfo, "request"), k, "/a\"b"))
	}); n != 0 {
		t.Errorf("%v allocations per line", n)
	}
}

func FuzzEncoderMatchesSlog(f *testing.F) {
	f.Add("path", "/avatar/*******4567@c.us.jpg", []byte("avatarproxy; hit"), int64(200), int64(1500))
	f.Add("", "a\xffb\u2028", []byte("\x00\""), int64(-1), int64(-5))
	f.Fuzz(func(t *testing.T, key, val string, raw []byte, n, d int64) {
		zones := []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("", -7*3600)}
		at := time.Unix(1_790_000_000+n%400_000_000_000, d).In(zones[uint64(n)%3])
		for _, text := range []bool{false, true} {
			want := viaSlog(t, text, at, slog.LevelWarn, key, val, raw, n, time.Duration(d))
			got := viaEncoder(text, at, slog.LevelWarn, key, val, raw, n, time.Duration(d))
			if got != want {
				t.Fatalf("text=%v:\n got %q\nwant %q", text, got, want)
			}
		}
	})
}

func BenchmarkEncoderLine(b *testing.B) {
	e := Encoder{}
	buf := make([]byte, 0, 512)
	at := time.Now()
	cache := []byte("avatarproxy; hit")
	kID, kMethod, kPath, kStatus := NewKey("id"), NewKey("method"), NewKey("path"), NewKey("status")
	kBytes, kDuration, kCache, kAvatar := NewKey("bytes"), NewKey("duration"), NewKey("cache"), NewKey("avatar")
	b.ReportAllocs()
	for b.Loop() {
		buf = e.Begin(buf[:0], at, slog.LevelInfo, "request")
		buf = e.String(buf, kID, "3f2a9c41d2e8b7a0")
		buf = e.String(buf, kMethod, "GET")
		buf = e.String(buf, kPath, "/avatar/*******4567@c.us.jpg")
		buf = e.Int(buf, kStatus, 200)
		buf = e.Int(buf, kBytes, 2579)
		buf = e.Duration(buf, kDuration, 41*time.Microsecond)
		buf = e.Bytes(buf, kCache, cache)
		buf = e.Bytes(buf, kAvatar, []byte("ok"))
		buf = e.End(buf)
	}
}

// plainWord must say "plain" exactly when all eight bytes are in safeSet: a
// miss would let a quote or a control character into a line unescaped.
func TestPlainWord(t *testing.T) {
	word := func(b [8]byte) uint64 { return binary.LittleEndian.Uint64(b[:]) }
	safe := func(b [8]byte) bool {
		for _, c := range b {
			if c >= utf8.RuneSelf || !safeSet[c] {
				return false
			}
		}
		return true
	}
	// Every byte value at every position, among plain ones and next to the
	// bytes around the thresholds (borrows cross byte boundaries).
	for _, fill := range []byte{'a', ' ', '!', '#', '[', ']', '~', 0x7f} {
		for c := 0; c < 256; c++ {
			for p := range 8 {
				var b [8]byte
				for i := range b {
					b[i] = fill
				}
				b[p] = byte(c)
				if got, want := plainWord(word(b)), safe(b); got != want {
					t.Fatalf("plainWord(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], r.Uint64())
		// Mostly printable ASCII, so that plain words come up too.
		for i := range b {
			if r.IntN(8) != 0 {
				b[i] = 0x20 + b[i]%0x60
			}
		}
		if got, want := plainWord(word(b)), safe(b); got != want {
			t.Fatalf("plainWord(%q) = %v, want %v", b, got, want)
		}
	}
}
