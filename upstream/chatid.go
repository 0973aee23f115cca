package upstream

import (
	"errors"
	"strings"
)

// Kind tells what a chat id names.
type Kind uint8

const (
	// Person is a user's chat, addressed by phone number.
	Person Kind = iota + 1
	// Group is a group chat, old (<creator>-<ts>) or new (120363...) form.
	Group
	// LID is a hidden user id ("linked id") that WhatsApp uses instead of a phone number.
	LID
)

func (k Kind) String() string {
	switch k {
	case Person:
		return "person"
	case Group:
		return "group"
	case LID:
		return "lid"
	}
	return "unknown"
}

// ErrBadChatID is returned by ParseChatID for anything that is not a chat id
// this proxy serves. Its text is safe to show to a client.
var ErrBadChatID = errors.New("invalid chat id")

// ChatID is a validated chat id in canonical form. The zero value is invalid.
// Persons are canonical as "<digits>@c.us" whichever form they arrived in, so
// "79001234567", "79001234567@c.us" and "79001234567@s.whatsapp.net" share one
// cache entry and one gateway call.
type ChatID struct {
	kind Kind
	user string // the part before '@': digits, or digits-digits for old groups
}

// Length limits, from upstreams.md section 6. Persons allow 8..16 digits to
// cover short national plans; Green API itself accepts 11..16.
const (
	personMin, personMax     = 8, 16
	groupNewMin, groupNewMax = 15, 20
	groupOldCreatorMin       = 10
	groupOldCreatorMax       = 16
	groupOldTSMin            = 9
	groupOldTSMax            = 11
	lidMin, lidMax           = 6, 20
	maxChatIDLen             = 64
)

// ParseChatID validates s (already percent-decoded) and returns it in
// canonical form. Accepted: "<digits>@c.us", "<digits>" and
// "<digits>@s.whatsapp.net" (persons), "<digits>-<digits>@g.us" and
// "120363...@g.us" (groups), "<digits>@lid". No '+', spaces, device suffixes,
// dots or separators anywhere else; no leading zero in a number.
func ParseChatID(s string) (ChatID, error) {
	if len(s) == 0 || len(s) > maxChatIDLen {
		return ChatID{}, ErrBadChatID
	}
	user, server, hasAt := strings.Cut(s, "@")
	if !hasAt {
		if digitsOK(user, personMin, personMax) {
			return ChatID{kind: Person, user: user}, nil
		}
		return ChatID{}, ErrBadChatID
	}
	switch server {
	case "c.us", "s.whatsapp.net":
		if digitsOK(user, personMin, personMax) {
			return ChatID{kind: Person, user: user}, nil
		}
	case "g.us":
		if creator, ts, old := strings.Cut(user, "-"); old {
			if digitsOK(creator, groupOldCreatorMin, groupOldCreatorMax) && digitsOK(ts, groupOldTSMin, groupOldTSMax) {
				return ChatID{kind: Group, user: user}, nil
			}
		} else if digitsOK(user, groupNewMin, groupNewMax) {
			return ChatID{kind: Group, user: user}, nil
		}
	case "lid":
		if digitsOK(user, lidMin, lidMax) {
			return ChatID{kind: LID, user: user}, nil
		}
	}
	return ChatID{}, ErrBadChatID
}

// digitsOK reports whether s is min..max ASCII digits without a leading zero.
func digitsOK(s string, min, max int) bool {
	if len(s) < min || len(s) > max || s[0] == '0' {
		return false
	}
	return allDigits(s)
}

// allDigits reports whether s is one or more ASCII digits.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Kind reports what the id names.
func (c ChatID) Kind() Kind { return c.kind }

// User is the part before '@' ("79001234567", "79001234567-1581234048").
func (c ChatID) User() string { return c.user }

// IsZero reports whether c is the invalid zero value.
func (c ChatID) IsZero() bool { return c.kind == 0 }

// String is the canonical Green API form: "<user>@c.us", "<user>@g.us" or "<user>@lid".
func (c ChatID) String() string {
	server := c.server()
	if server == "" {
		return "" // the zero ChatID
	}
	return c.user + server
}

// AppendTo appends c.String() to b. A memory hit builds its cache key with
// it: the string would cost a concatenation on every hit.
func (c ChatID) AppendTo(b []byte) []byte {
	server := c.server()
	if server == "" {
		return b
	}
	return append(append(b, c.user...), server...)
}

// server is the part from '@' in the canonical form.
func (c ChatID) server() string {
	switch c.kind {
	case Person:
		return "@c.us"
	case Group:
		return "@g.us"
	case LID:
		return "@lid"
	}
	return ""
}

// JID is the whatsmeow/Baileys form: persons as "<user>@s.whatsapp.net".
func (c ChatID) JID() string {
	if c.kind == Person {
		return c.user + "@s.whatsapp.net"
	}
	return c.String()
}

// Masked is the id with all but the last 4 digits of its number hidden, for
// log lines: phone numbers are personal data.
func (c ChatID) Masked() string {
	s := c.String()
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return s
	}
	keep := 4
	if at <= keep {
		return s
	}
	return strings.Repeat("*", at-keep) + s[at-keep:]
}
