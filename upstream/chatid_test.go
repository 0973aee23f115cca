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
