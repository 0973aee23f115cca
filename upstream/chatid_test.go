package upstream

import (
	"errors"
	"testing"
)

func TestChatIDForms(t *testing.T) {
	for _, tt := range []struct{ in, str, jid string }{
		{"79001234567", "79001234567@c.us", "79001234567@s.whatsapp.net"},
		{"79001234567@s.whatsapp.net", "79001234567@c.us", "79001234567@s.whatsapp.net"},
		{"79001234567-1581234048@g.us", "79001234567-1581234048@g.us", "79001234567-1581234048@g.us"},
		{"120363043968066561@g.us", "120363043968066561@g.us", "120363043968066561@g.us"},
		{"123456789012345@lid", "123456789012345@lid", "123456789012345@lid"},
	} {
		c, err := ParseChatID(tt.in)
		if err != nil {
			t.Fatalf("ParseChatID(%q): %v", tt.in, err)
		}
		if got := c.String(); got != tt.str {
			t.Errorf("%q: String() = %q, want %q", tt.in, got, tt.str)
		}
		if got := string(c.AppendTo([]byte("key/"))); got != "key/"+tt.str {
			t.Errorf("%q: AppendTo = %q, want %q", tt.in, got, "key/"+tt.str)
		}
		if got := c.JID(); got != tt.jid {
			t.Errorf("%q: JID() = %q, want %q", tt.in, got, tt.jid)
		}
	}
	var zero ChatID
	if zero.String() != "" || string(zero.AppendTo([]byte("k"))) != "k" {
		t.Errorf("zero ChatID: String() = %q, AppendTo = %q", zero.String(), zero.AppendTo([]byte("k")))
	}
}

// Whatever ParseChatID accepts comes back unchanged from its canonical
// form, and AppendTo writes exactly that form.
func FuzzParseChatID(f *testing.F) {
	for _, s := range []string{"79001234567", "79001234567@c.us", "79001234567@s.whatsapp.net",
		"79001234567-1581234048@g.us", "120363043968066561@g.us", "123456789012345@lid",
		"", "@c.us", "+79001234567", "079001234567", "7900@c.us@c.us", "79001234567:12@s.whatsapp.net"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseChatID(s)
		if err != nil {
			if !errors.Is(err, ErrBadChatID) || !c.IsZero() {
				t.Fatalf("ParseChatID(%q) = %v, %v", s, c, err)
			}
			return
		}
		again, err := ParseChatID(c.String())
		if err != nil || again != c {
			t.Fatalf("ParseChatID(%q).String() = %q does not parse back: %v, %v", s, c.String(), again, err)
		}
		if got := string(c.AppendTo([]byte{0})); got != "\x00"+c.String() {
			t.Fatalf("AppendTo = %q, String = %q", got, c.String())
		}
	})
}

// TestChatIDLengths pins each form's length limits at both ends: the fuzz
// target only checks that what is accepted round-trips, so a limit moved by
// one would pass it.
func TestChatIDLengths(t *testing.T) {
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = '1' + byte(i%9)
		}
		return string(b)
	}
	for _, tt := range []struct {
		in   string
		kind Kind // 0: refused
	}{
		{digits(7), 0},
		{digits(8), Person},
		{digits(16), Person},
		{digits(17), 0},
		{digits(8) + "@c.us", Person},
		{digits(17) + "@c.us", 0},
		{digits(16) + "@s.whatsapp.net", Person},
		{digits(7) + "@s.whatsapp.net", 0},
		{"0" + digits(10), 0},
		{digits(14) + "@g.us", 0},
		{digits(15) + "@g.us", Group},
		{digits(20) + "@g.us", Group},
		{digits(21) + "@g.us", 0},
		{digits(10) + "-" + digits(9) + "@g.us", Group},
		{digits(16) + "-" + digits(11) + "@g.us", Group},
		{digits(9) + "-" + digits(10) + "@g.us", 0},
		{digits(17) + "-" + digits(10) + "@g.us", 0},
		// A good creator does not carry a bad timestamp, nor the reverse.
		{digits(11) + "-" + digits(8) + "@g.us", 0},
		{digits(11) + "-" + digits(12) + "@g.us", 0},
		{digits(11) + "-@g.us", 0},
		{"-" + digits(10) + "@g.us", 0},
		{digits(11) + "-0" + digits(9) + "@g.us", 0},
		{digits(5) + "@lid", 0},
		{digits(6) + "@lid", LID},
		{digits(20) + "@lid", LID},
		{digits(21) + "@lid", 0},
		{digits(11) + "@C.US", 0},
		{digits(5) + "a" + digits(5), 0},
		{digits(11) + "@", 0},
	} {
		c, err := ParseChatID(tt.in)
		if c.Kind() != tt.kind || (err == nil) != (tt.kind != 0) {
			t.Errorf("ParseChatID(%q) = kind %v, err %v; want kind %v", tt.in, c.Kind(), err, tt.kind)
		}
	}
}

// TestMasked: log lines carry chat ids only through Masked, so it is what
// keeps phone numbers out of them.
func TestMasked(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"79001234567", "*******4567@c.us"},
		{"79001234567@s.whatsapp.net", "*******4567@c.us"},
		{"79001234567-1581234048@g.us", "******************4048@g.us"},
		{"120363043968066561@g.us", "**************6561@g.us"},
		{"123456@lid", "**3456@lid"},
	} {
		c, err := ParseChatID(tt.in)
		if err != nil {
			t.Fatalf("ParseChatID(%q): %v", tt.in, err)
		}
		if got := c.Masked(); got != tt.want {
			t.Errorf("%q: Masked() = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := (ChatID{}).Masked(); got != "" {
		t.Errorf("zero ChatID: Masked() = %q, want empty", got)
	}
}
