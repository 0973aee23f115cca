package proxy

import (
	"errors"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/avatarproxy/avatarproxy/resize"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// Fallback is what to show when there is no avatar (the `d` parameter).
type Fallback uint8

const (
	FallbackAuto       Fallback = iota // initials when a name is given, else a person or group glyph
	FallbackInitials                   // d=initials
	FallbackSilhouette                 // d=silhouette or d=mp
	FallbackBlank                      // d=blank
	Fallback404                        // d=404: answer 404 instead of an image
)

// Limits of the URL grammar.
const (
	MaxSize      = 1024
	maxNameRunes = 64
	// defaultPlaceholderSize is the edge of a placeholder when no size is
	// asked: WhatsApp's own full pictures are 640 px, so a page sized for
	// the real avatar does not reflow when it turns out to be a placeholder.
	defaultPlaceholderSize = 640
)

// badRequest is a client error whose text is safe to send as is.
type badRequest string

func (e badRequest) Error() string { return string(e) }

var (
	errBadPath     = badRequest("bad avatar path: want /avatar/<chatId>.jpg or .png")
	errBadExt      = badRequest("unknown image format: want jpg, jpeg or png")
	errBadChat     = badRequest("invalid chat id")
	errBadSize     = badRequest("bad size: want a whole number of pixels from 1 to 1024")
	errBadFallback = badRequest("bad d: want initials, silhouette, mp, blank or 404")
)

// avatarRequest is one parsed /avatar URL. Its strings (Chat's included) may
// alias the request's buffers, which fiber reuses as soon as the handler
// returns: anything that keeps a request past that (a fill, a background
// refresh) takes own's copy. The hit path copies nothing.
type avatarRequest struct {
	RawChat  string // the path segment before the extension, percent-decoded: what sig signs
	Chat     upstream.ChatID
	Format   resize.Format
	Size     int // 0: the source picture's own size
	Fallback Fallback
	Name     string // at most maxNameRunes runes
	Sig      string
	// Expires is the signed link's expiry (unix seconds), 0 for a link
	// without one: no cache may keep the answer past it.
	Expires int64
}

// drawsName reports whether r's placeholder would draw r.Name.
func (r *avatarRequest) drawsName() bool {
	return r.Name != "" && (r.Fallback == FallbackAuto || r.Fallback == FallbackInitials)
}

// parseFile splits "<chatId>.<ext>" (still percent-encoded as it came on the
// wire) into the decoded chat segment and the format. The extension is cut at
// the last dot, so "<n>@s.whatsapp.net.png" works.
func parseFile(file string) (rawChat string, f resize.Format, err error) {
	if strings.IndexByte(file, '%') >= 0 {
		d, uerr := url.PathUnescape(file)
		if uerr != nil {
			return "", 0, errBadPath
		}
		file = d
	}
	dot := strings.LastIndexByte(file, '.')
	if dot <= 0 {
		return "", 0, errBadPath
	}
	switch file[dot+1:] {
	case "jpg", "jpeg":
		f = resize.JPEG
	case "png":
		f = resize.PNG
	default:
		return "", 0, errBadExt
	}
	return file[:dot], f, nil
}

// parseSize accepts 1..MaxSize written plainly: no sign, no leading zero, no
// spaces. Empty means 0 (the source size).
func parseSize(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	if len(s) > 4 || s[0] == '0' {
		return 0, errBadSize
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, errBadSize
		}
		n = n*10 + int(c-'0')
	}
	if n < 1 || n > MaxSize {
		return 0, errBadSize
	}
	return n, nil
}

func parseFallback(s string) (Fallback, error) {
	switch s {
	case "":
		return FallbackAuto, nil
	case "initials":
		return FallbackInitials, nil
	case "silhouette", "mp":
		return FallbackSilhouette, nil
	case "blank":
		return FallbackBlank, nil
	case "404":
		return Fallback404, nil
	}
	return 0, errBadFallback
}

// parseName keeps at most maxNameRunes runes of a display name: a CRM's long
// "name, title, company" should still give initials rather than a broken image.
// Bytes that are not UTF-8 (a legacy CRM's Latin-1) become U+FFFD, which
// initials skip: the name is cosmetic, and refusing it broke the <img> of
// chats that have a real picture.
func parseName(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.TrimSpace(s)
	n := 0
	for i := range s {
		if n == maxNameRunes {
			return s[:i]
		}
		n++
	}
	return s
}

// query is the part of a request's query string that parseAvatar reads.
type query struct{ Size, D, Name, Sig string }

// parseAvatar validates everything about an /avatar request except its
// signature. Returned errors are badRequest values.
func parseAvatar(file string, q query) (avatarRequest, error) {
	raw, f, err := parseFile(file)
	if err != nil {
		return avatarRequest{}, err
	}
	return parseAvatarChat(raw, f, q)
}

// parseAvatarChat is parseAvatar once the chat segment and format are known
// (from the path, or from an opaque token).
func parseAvatarChat(raw string, f resize.Format, q query) (avatarRequest, error) {
	var r avatarRequest
	chat, err := upstream.ParseChatID(raw)
	if err != nil {
		return r, errBadChat
	}
	size, err := parseSize(q.Size)
	if err != nil {
		return r, err
	}
	fb, err := parseFallback(q.D)
	if err != nil {
		return r, err
	}
	return avatarRequest{
		RawChat:  raw,
		Chat:     chat,
		Format:   f,
		Size:     size,
		Fallback: fb,
		Name:     parseName(q.Name),
		Sig:      q.Sig,
	}, nil
}

// own returns a copy of r that shares no memory with the request it came
// from.
func (r *avatarRequest) own() *avatarRequest {
	o := *r
	o.RawChat = strings.Clone(r.RawChat)
	o.Chat = ownChat(r.Chat)
	o.Name = strings.Clone(r.Name)
	o.Sig = strings.Clone(r.Sig)
	return &o
}

// ownChat copies a chat id parsed from request memory.
func ownChat(c upstream.ChatID) upstream.ChatID {
	// The canonical form parses back to c, now over its own bytes.
	own, err := upstream.ParseChatID(c.String())
	if err != nil {
		panic("proxy: a parsed chat id does not parse again: " + err.Error())
	}
	return own
}

// isBadRequest reports whether err is a client error with a public text.
func isBadRequest(err error) (badRequest, bool) {
	var b badRequest
	ok := errors.As(err, &b)
	return b, ok
}
