package logging

import (
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Encoder appends one log line field by field, byte for byte as slog's JSON
// (or, with Text set, text) handler writes the same record, so a hot path
// can log like the rest of the process without slog's cost per line: no
// Attr values, no handler state from a pool, no allocation at all. It covers
// the kinds an access line needs (strings, bytes, ints, durations).
//
// A line is Begin, any number of fields, then End; each appends to b and
// returns the extended slice. Field names are Keys, encoded once.
type Encoder struct {
	Text bool
}

// Key is a field name encoded once, in both forms: escaping a line's
// names on every line was a quarter of its cost (BenchmarkEncoderLine,
// 270 -> 210 ns).
type Key struct{ json, text string }

// NewKey encodes name for Encoder's fields.
func NewKey(name string) Key {
	text := []byte{' '}
	if needsQuoting(name) {
		text = strconv.AppendQuote(text, name)
	} else {
		text = append(text, name...)
	}
	return Key{
		json: string(append(appendJSON([]byte{','}, name), ':')),
		text: string(append(text, '=')),
	}
}

// Begin starts a line with the time, level and message keys.
func (e Encoder) Begin(b []byte, t time.Time, level slog.Level, msg string) []byte {
	if e.Text {
		b = append(b, "time="...)
		b = appendRFC3339Millis(b, t)
		b = append(b, " level="...)
		b = append(b, level.String()...)
		b = append(b, " msg="...)
		return appendText(b, msg)
	}
	b = append(b, `{"time":"`...)
	b = appendRFC3339Nano(b, t)
	b = append(b, `","level":"`...)
	b = append(b, level.String()...)
	b = append(b, `","msg":`...)
	return appendJSON(b, msg)
}

// String appends key=val.
func (e Encoder) String(b []byte, key Key, val string) []byte {
	b = e.key(b, key)
	if e.Text {
		return appendText(b, val)
	}
	return appendJSON(b, val)
}

// Bytes appends key=val for a byte-slice value written as a string (a
// header value, say), without converting it to a string first.
func (e Encoder) Bytes(b []byte, key Key, val []byte) []byte {
	b = e.key(b, key)
	if e.Text {
		return appendText(b, val)
	}
	return appendJSON(b, val)
}

// Int appends key=val.
func (e Encoder) Int(b []byte, key Key, val int64) []byte {
	return strconv.AppendInt(e.key(b, key), val, 10)
}

// Duration appends key=val: nanoseconds in JSON, as slog (and
// encoding/json) write a time.Duration; d.String() in text.
func (e Encoder) Duration(b []byte, key Key, d time.Duration) []byte {
	b = e.key(b, key)
	if e.Text {
		return appendDuration(b, d)
	}
	return strconv.AppendInt(b, int64(d), 10)
}

// End closes the line, newline included.
func (e Encoder) End(b []byte) []byte {
	if e.Text {
		return append(b, '\n')
	}
	return append(b, '}', '\n')
}

func (e Encoder) key(b []byte, key Key) []byte {
	if e.Text {
		return append(b, key.text...)
	}
	return append(b, key.json...)
}

// appendRFC3339Nano is t.AppendFormat(b, time.RFC3339Nano), the JSON
// handler's time, with the part up to the seconds and the zone formatted
// once per second rather than once per line (a tenth of a line's cost).
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	sec := t.Unix()
	st := lastStamp.Load()
	if st == nil || st.sec != sec || st.loc != t.Location() {
		f := t.Truncate(time.Second).AppendFormat(nil, time.RFC3339Nano)
		// "2006-01-02T15:04:05" then the zone, for the years a clock shows;
		// other years take the slow path each time.
		if len(f) < 20 || f[19] != 'Z' && f[19] != '+' && f[19] != '-' {
			return t.AppendFormat(b, time.RFC3339Nano)
		}
		st = &stamp{sec: sec, loc: t.Location(), date: string(f[:19]), zone: string(f[19:])}
		lastStamp.Store(st)
	}
	b = append(b, st.date...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i > 0; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		b = append(b, frac[:n]...)
	}
	return append(b, st.zone...)
}

// stamp is the formatted second of appendRFC3339Nano's last line.
type stamp struct {
	sec        int64
	loc        *time.Location
	date, zone string
}

var lastStamp atomic.Pointer[stamp]

// appendRFC3339Millis is slog's text-handler time: RFC 3339 with exactly
// three fractional digits.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	// RFC3339Nano trims trailing zeros; adding 1/10 ms keeps four digits,
	// the fourth of which is then dropped.
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...)
}

// appendDuration is slog's text form of a duration. It allocates (the
// Duration.String result); the JSON form, the default, does not.
func appendDuration(b []byte, d time.Duration) []byte {
	return append(b, d.String()...)
}

// decodeRune is utf8.DecodeRune for either kind of text.
func decodeRune[T string | []byte](s T) (rune, int) {
	var r rune
	var n int
	switch v := any(s).(type) {
	case string:
		r, n = utf8.DecodeRuneInString(v)
	case []byte:
		r, n = utf8.DecodeRune(v)
	}
	return r, n
}

// appendJSON writes s as a JSON string exactly as slog's JSON handler does:
// control characters escaped, invalid UTF-8 as \ufffd, U+2028 and U+2029
// escaped, HTML characters left alone.
func appendJSON[T string | []byte](b []byte, s T) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time while none needs a look: most of a line's
		// values (ids, paths, statuses) are plain ASCII throughout
		// (BenchmarkEncoderLine: 230 -> 195 ns).
		for i+8 <= len(s) {
			w := s[i : i+8]
			if !plainWord(uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
				uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56) {
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			if safeSet[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			b = append(b, '\\')
			switch c {
			case '\\', '"':
				b = append(b, c)
			case '\n':
				b = append(b, 'n')
			case '\r':
				b = append(b, 'r')
			case '\t':
				b = append(b, 't')
			default:
				b = append(b, 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, `\u202`...)
			b = append(b, hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// plainWord reports whether all eight bytes of x are ones a JSON string
// holds as they are (safeSet): printable ASCII other than '"' and '\\'.
// It is exact (TestPlainWord), though the loop above would only need it
// never to call a word with such a byte plain.
func plainWord(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// (v-ones)&^v&highs is nonzero when a byte of v is zero, and
	// (x-0x20*ones)&^x&highs when a byte of x is below 0x20, given no byte
	// at 0x80 or above, which the first term catches (Bit Twiddling Hacks,
	// "haszero" and "hasless").
	q, bs := x^('"'*ones), x^('\\'*ones)
	special := x&highs |
		(x-0x20*ones)&^x&highs | // a control character
		(q-ones)&^q&highs | // '"'
		(bs-ones)&^bs&highs // '\\'
	return special == 0
}

// appendText writes s as slog's text handler does: bare when it can be,
// Go-quoted when it holds spaces, '=', quotes, control or unprintable
// characters, or nothing at all.
func appendText[T string | []byte](b []byte, s T) []byte {
	if !needsQuoting(s) {
		return append(b, s...)
	}
	switch v := any(s).(type) {
	case string:
		return strconv.AppendQuote(b, v)
	case []byte:
		return strconv.AppendQuote(b, string(v))
	}
	return b
}

// needsQuoting is slog's rule for text values and keys.
func needsQuoting[T string | []byte](s T) bool {
	if len(s) == 0 {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != '\\' && (c == ' ' || c == '=' || !safeSet[c]) {
				return true
			}
			i++
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// safeSet marks the ASCII bytes a JSON string holds unescaped: every
// printable character but '"' and '\\' (encoding/json's and slog's table).
var safeSet = func() (s [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		s[c] = c != '"' && c != '\\'
	}
	return s
}()
