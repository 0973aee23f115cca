package proxy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/avatarproxy/avatarproxy/resize"
	"github.com/avatarproxy/avatarproxy/upstream"
)

func TestParseAvatar(t *testing.T) {
	cases := []struct {
		file  string
		q     query
		chat  string
		raw   string
		f     resize.Format
		size  int
		fb    Fallback
		name  string
		error string
	}{
		{file: "79001234567@c.us.jpg", chat: "79001234567@c.us", raw: "79001234567@c.us", f: resize.JPEG},
		{file: "79001234567.png", q: query{Size: "96"}, chat: "79001234567@c.us", raw: "79001234567", f: resize.PNG, size: 96},
		{file: "79001234567%40s.whatsapp.net.jpeg", chat: "79001234567@c.us", raw: "79001234567@s.whatsapp.net", f: resize.JPEG},
		{file: "79001234567-1581234048@g.us.jpg", q: query{D: "mp"}, chat: "79001234567-1581234048@g.us", raw: "79001234567-1581234048@g.us", f: resize.JPEG, fb: FallbackSilhouette},
		{file: "120650379300963@lid.jpg", q: query{D: "404", Name: "  Bob  "}, chat: "120650379300963@lid", raw: "120650379300963@lid", f: resize.JPEG, fb: Fallback404, name: "Bob"},
		{file: "79001234567@c.us.jpg", q: query{Name: strings.Repeat("я", 100)}, chat: "79001234567@c.us", raw: "79001234567@c.us", f: resize.JPEG, name: strings.Repeat("я", 64)},
		{file: "79001234567@c.us.jpg", q: query{Name: "Ren\xe9 \xff\xfeDupont "}, chat: "79001234567@c.us", raw: "79001234567@c.us", f: resize.JPEG, name: "Ren\uFFFD \uFFFDDupont"},
		{file: "79001234567@c.us.jpg", q: query{Size: "1024", D: "blank"}, chat: "79001234567@c.us", raw: "79001234567@c.us", f: resize.JPEG, size: 1024, fb: FallbackBlank},
		// Each size has one spelling (one cache entry): the range's ends
		// are taken as written, a leading zero or one past the end is not.
		{file: "79001234567.png", q: query{Size: "1", D: "initials"}, chat: "79001234567@c.us", raw: "79001234567", f: resize.PNG, size: 1, fb: FallbackInitials},
		{file: "79001234567.png", q: query{D: "silhouette"}, chat: "79001234567@c.us", raw: "79001234567", f: resize.PNG, fb: FallbackSilhouette},
		{file: "79001234567.png", q: query{Size: "01"}, error: "bad size"},
		{file: "79001234567.png", q: query{Size: "0"}, error: "bad size"},
		{file: "79001234567.png", q: query{Size: "1025"}, error: "bad size"},
		{file: "79001234567.png", q: query{Size: "9999"}, error: "bad size"},
		{file: "79001234567.png", q: query{Size: "10000"}, error: "bad size"},
		// 96 + 2^64: without the length cap it wraps around to 96.
		{file: "79001234567.png", q: query{Size: "18446744073709551712"}, error: "bad size"},
		{file: "%zz.jpg", error: "bad avatar path"},
		{file: ".jpg", error: "bad avatar path"},
		{file: "79001234567", error: "bad avatar path"},
		{file: "79001234567.JPG", error: "unknown image format"},
		{file: "79001234567.webp", error: "unknown image format"},
		{file: "79001234567@c.us.jpg.png", error: "invalid chat id"},
		{file: "79001234567@c.us.jpg", q: query{Size: "1e3"}, error: "bad size"},
		{file: "79001234567@c.us.jpg", q: query{Size: " 5"}, error: "bad size"},
		{file: "79001234567@c.us.jpg", q: query{D: "identicon"}, error: "bad d"},
	}
	for _, c := range cases {
		t.Run(c.file+"?"+c.q.Size+c.q.D, func(t *testing.T) {
			r, err := parseAvatar(c.file, c.q)
			if c.error != "" {
				if _, ok := isBadRequest(err); !ok || !strings.Contains(err.Error(), c.error) {
					t.Fatalf("err = %v, want a bad request saying %q", err, c.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Chat.String() != c.chat || r.RawChat != c.raw || r.Format != c.f || r.Size != c.size || r.Fallback != c.fb || r.Name != c.name {
				t.Errorf("got %+v", r)
			}
		})
	}
}

func TestEtagMatches(t *testing.T) {
	const tag = `"abc"`
	for h, want := range map[string]bool{
		`"abc"`: true, `W/"abc"`: true, `*`: true, `"x", "abc"`: true, `"x","abc"`: true, ` "x" ,  W/"abc" `: true,
		`"abcd"`: false, `abc`: false, `"ab`: false, ``: false, `"x"`: false, `W/`: false,
	} {
		if got := etagMatches([]byte(h), tag); got != want {
			t.Errorf("etagMatches(%q) = %v, want %v", h, got, want)
		}
	}
}

// FuzzParseAvatar: the request parser never panics, and whatever it accepts
// is canonical and within the documented limits.
func FuzzParseAvatar(f *testing.F) {
	for _, s := range []string{
		"79001234567@c.us.jpg", "79001234567%40c.us.png", "120363043968066561@g.us.jpeg",
		"79001234567-1581234048@g.us.jpg", "120650379300963@lid.png", "%zz.jpg", "..%2F.jpg", "",
	} {
		f.Add(s, "128", "initials", "Анна Петрова", "sig")
	}
	f.Add("79001234567.jpg", "0", "404", "\xff", "")
	f.Fuzz(func(t *testing.T, file, size, d, name, sig string) {
		r, err := parseAvatar(file, query{Size: size, D: d, Name: name, Sig: sig})
		if err != nil {
			if _, ok := isBadRequest(err); !ok {
				t.Fatalf("error %v is not a public bad request", err)
			}
			return
		}
		again, err := upstream.ParseChatID(r.Chat.String())
		if err != nil || again != r.Chat {
			t.Fatalf("canonical chat %q does not parse back: %v", r.Chat.String(), err)
		}
		if r.Size < 0 || r.Size > MaxSize || (r.Format != resize.JPEG && r.Format != resize.PNG) {
			t.Fatalf("out of range: %+v", r)
		}
		if !utf8.ValidString(r.Name) || utf8.RuneCountInString(r.Name) > maxNameRunes {
			t.Fatalf("bad name %q", r.Name)
		}
	})
}

func TestMaskPath(t *testing.T) {
	for in, want := range map[string]string{
		"/avatar/79001234567@c.us.jpg": "/avatar/*******4567@c.us.jpg",
		// A legacy group id is one number to the rule (a hyphen can sit
		// inside a phone number): the creator's number is hidden whole.
		"/avatar/79001234567-1581234048@g.us.png":  "/avatar/***********-******4048@g.us.png",
		"/avatar/79001234567%40s.whatsapp.net.jpg": "/avatar/*******4567%40s.whatsapp.net.jpg",
		// An opaque token's digit runs are starred like any other: the
		// rule cannot trust a prefix (/avatar/t/../<number> below).
		"/avatar/t/6EeXXhRO66_I-7Ud83JS0eekufla12345.jpg": "/avatar/t/6EeXXhRO66_I-7Ud83JS0eekufla*2345.jpg",
		"/avatar/t/6EeXXhRO66_I-7Ud83JS0eekufla1234.jpg":  "/avatar/t/6EeXXhRO66_I-7Ud83JS0eekufla1234.jpg",
		"/healthz": "/healthz",
		"/avatar/": "/avatar/",
		"":         "",
		// The reviewer's paths: percent-encoded digits, another case,
		// an escaped last digit, and prefixes that are not /avatar/.
		"/avatar/%37%39%30%30%31%32%33%34%35%36%31%40c.us.jpg": "/avatar/*********************************%40c.us.jpg",
		"/AVATAR/79001234561@c.us.jpg":                         "/AVATAR/*******4561@c.us.jpg",
		"/avatar/7900123456%31@c.us.jpg":                       "/avatar/*******456***@c.us.jpg",
		"//avatar/79001234561@c.us.jpg":                        "//avatar/*******4561@c.us.jpg",
		"/avatar/t/../79001234561@c.us.jpg":                    "/avatar/t/../*******4561@c.us.jpg",
		"/avatars/79001234561.jpg":                             "/avatars/*******4561.jpg",
		// Escapes in either case; a lone short escape is hidden too, and
		// the hex digits of another escape are not part of a number.
		"/avatar/%3712345%3a": "/avatar/****2345%3a",
		"/x/%39":              "/x/***",
		"/avatar/%401234":     "/avatar/%401234",
		"/avatar/12%4034567":  "/avatar/12%40*4567",
		"/avatar/1234%":       "/avatar/1234%",
		"/avatar/123456%3":    "/avatar/**3456%3",
		// Numbers as people write them, which reach the log as 400s: the
		// separators a phone number is written with do not end it.
		"/avatar/%2B7%20(900)%20123-45-67.jpg": "/avatar/%2B*%20(***)%20***-45-67.jpg",
		"/avatar/+7-900-123-45-67@c.us.jpg":    "/avatar/+*-***-***-45-67@c.us.jpg",
		"/avatar/%2b7%2d900.123.45.67.jpg":     "/avatar/%2b*%2d***.***.45.67.jpg",
		"/avatar/%28900%29%201234567":          "/avatar/%28***%29%20***4567",
		// Digits of other scripts (Arabic-Indic, fullwidth) and any other
		// non-ASCII byte, escaped or raw, are hidden: no valid id has one.
		"/avatar/%D9%A7%D9%A9%d9%a0.jpg": "/avatar/******************.jpg",
		"/avatar/%EF%BC%97%EF%BC%99":     "/avatar/******************",
		"/avatar/\u0667\u0669.jpg":       "/avatar/****.jpg",
		"/avatar/1234\u0667":             "/avatar/1234**",
		"/avatar/%C3%A9t%C3%A9-1234567":  "/avatar/******t******-***4567",
	} {
		if got := string(appendMaskedPath([]byte("x"), in)[1:]); got != want {
			t.Errorf("appendMaskedPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzMaskPath checks what the log promises of any path: the same length,
// only stars added, no non-ASCII byte or escaped digit left, and never five
// visible digits in one number, separators included (the check ends a
// number at a star too, so it may pass a number the mask left whole, but
// never fails one it hid).
func FuzzMaskPath(f *testing.F) {
	for _, s := range []string{"/avatar/79001234567@c.us.jpg", "/avatar/%2B7%20(900)%20123-45-67.jpg",
		"/avatar/%D9%A7%D9%A9", "/avatar/%3712345%3a", "/x/%%37%2", "/avatar/t/6EeXXhRO66_I-7Ud83JS0eekufla12345.jpg"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		out := appendMaskedPath(nil, p)
		if len(out) != len(p) {
			t.Fatalf("%q -> %q: length changed", p, out)
		}
		visible := 0
		for i := 0; i < len(out); i++ {
			c := out[i]
			if c != p[i] && c != '*' {
				t.Fatalf("%q -> %q: byte %d changed to %q", p, out, i, c)
			}
			if c >= 0x80 {
				t.Fatalf("%q -> %q: non-ASCII byte left at %d", p, out, i)
			}
			switch {
			case c >= '0' && c <= '9':
				if visible++; visible > 4 {
					t.Fatalf("%q -> %q: five digits of one number shown", p, out)
				}
			case strings.IndexByte("-.()+ ", c) >= 0:
			case c == '%' && i+2 < len(out) && isHex(out[i+1]) && isHex(out[i+2]):
				e := unhex(out[i+1])<<4 | unhex(out[i+2])
				switch {
				case e >= '0' && e <= '9' || e >= 0x80:
					t.Fatalf("%q -> %q: escape %s left", p, out, out[i:i+3])
				case strings.IndexByte("-.()+ ", e) < 0:
					visible = 0
				}
				i += 2
			default:
				visible = 0
			}
		}
	})
}

// TestOpaqueOneSpelling: a token is valid only with the nonce derived from
// its chat. The same chat sealed under the right key with any other nonce
// would be a second URL (a second cache and deny-list entry) for one chat.
func TestOpaqueOneSpelling(t *testing.T) {
	s := NewSigner([][]byte{[]byte("0123456789abcdef-opaque")})
	k := s.opaque[0]
	plain := []byte("79001234567@c.us")
	n := make([]byte, opaqueNonce)
	copy(n, "not-derived!")
	other := b64.EncodeToString(k.aead.Seal(append([]byte(nil), n...), n, plain, nil))
	if chat, err := s.Open(other); err == nil {
		t.Errorf("a token with a foreign nonce opened to %q", chat)
	}
	if chat, err := s.Open(s.Seal(string(plain))); err != nil || chat != string(plain) {
		t.Errorf("Open(Seal) = %q, %v", chat, err)
	}
}

// TestDrawsName: only the placeholders that draw letters make a name part
// of what is drawn (and so of the cache key).
func TestDrawsName(t *testing.T) {
	for _, tt := range []struct {
		name string
		fb   Fallback
		want bool
	}{
		{"Bob", FallbackAuto, true},
		{"Bob", FallbackInitials, true},
		{"Bob", FallbackSilhouette, false},
		{"Bob", FallbackBlank, false},
		{"Bob", Fallback404, false},
		{"", FallbackAuto, false},
		{"", FallbackInitials, false},
	} {
		r := avatarRequest{Name: tt.name, Fallback: tt.fb}
		if got := r.drawsName(); got != tt.want {
			t.Errorf("name %q, fallback %v: drawsName = %v, want %v", tt.name, tt.fb, got, tt.want)
		}
	}
}
