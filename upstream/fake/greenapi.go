package fake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GreenAPI imitates Green API's getAvatar for one instance: POST
// /waInstance{IDInstance}/getAvatar/{Token} (GetAvatar accepted too), a JSON
// body {"chatId": ...}, and the documented answers and errors (upstreams.md
// section 1). Unscripted chats get Default's answer. Configure the exported
// fields before serving; Set may be called at any time.
type GreenAPI struct {
	IDInstance string
	Token      string
	// Default answers chats without a scripted answer; nil means
	// NoAvatarAnswer.
	Default func(chatID string) Answer
	// RateLimit, when positive, is the most calls per second accepted
	// before answering 429, as the real service does at 10 per instance.
	RateLimit int
	// Now is the rate limiter's clock; nil means time.Now.
	Now func() time.Time
	// Recorder sees every request, rejected ones included.
	Recorder Recorder

	script script      // answers by chatId; the chatId of every well-formed request
	mu     sync.Mutex  // guards starts
	starts []time.Time // call times inside the last second, for RateLimit
}

// NewGreenAPI returns a fake instance with these credentials.
func NewGreenAPI(idInstance, token string) *GreenAPI {
	return &GreenAPI{IDInstance: idInstance, Token: token}
}

// Set scripts the answer for chatID (as sent, e.g. "79001234567@c.us").
func (g *GreenAPI) Set(chatID string, a Answer) {
	g.script.set(chatID, a)
}

// Chats lists the chatId of every well-formed request, in arrival order.
func (g *GreenAPI) Chats() []string {
	return g.script.list()
}

var greenAPIPath = regexp.MustCompile(`^/waInstance([^/]*)/([^/]+)/([^/]*)$`)

// greenAPIChatID is the grammar the real service accepts, loosely:
// anything else is "bad request data".
var greenAPIChatID = regexp.MustCompile(`^[1-9][0-9]{5,19}(-[0-9]{6,12})?@(c\.us|g\.us|lid)$`)

// ServeHTTP answers one request the way Green API does.
func (g *GreenAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer g.Recorder.Begin()()
	m := greenAPIPath.FindStringSubmatch(r.URL.Path)
	if m == nil || (m[2] != "getAvatar" && m[2] != "GetAvatar") {
		Text(http.StatusNotFound, "Not Found").Write(w, r)
		return
	}
	if r.Method != http.MethodPost {
		// Not 405: upstreams.md section 1.6 lists 404 Not Found, "Invalid
		// request method used".
		Text(http.StatusNotFound, "Not Found").Write(w, r)
		return
	}
	if m[1] != g.IDInstance {
		Text(http.StatusForbidden, "Forbidden").Write(w, r)
		return
	}
	if m[3] != g.Token {
		Text(http.StatusUnauthorized, "Unauthorized").Write(w, r)
		return
	}
	if g.overLimit() {
		TooManyRequests(0).Write(w, r)
		return
	}
	// Without a JSON content type the body is not parsed, so chatId is
	// missing as far as the validator can tell.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		nestValidation400(r.URL.Path, "Validation failed. Details: 'chatId' is required").Write(w, r)
		return
	}
	var body map[string]json.RawMessage
	raw := new(bytes.Buffer)
	if _, err := raw.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<16)); err != nil {
		Text(http.StatusBadRequest, "bad request data").Write(w, r)
		return
	}
	if err := json.Unmarshal(raw.Bytes(), &body); err != nil {
		Text(http.StatusBadRequest, "Unexpected token _ in JSON at position 0").Write(w, r)
		return
	}
	if _, legacy := body["phoneNumber"]; legacy {
		nestValidation400(r.URL.Path, "Validation failed. Details: 'phoneNumber' is not allowed").Write(w, r)
		return
	}
	var chatID string
	if rawID, ok := body["chatId"]; !ok || json.Unmarshal(rawID, &chatID) != nil || chatID == "" {
		nestValidation400(r.URL.Path, "Validation failed. Details: 'chatId' is required").Write(w, r)
		return
	}
	g.script.see(chatID)
	a, scripted := g.script.answer(chatID)
	switch {
	case scripted:
	case !greenAPIChatID.MatchString(chatID):
		a = ReasonAnswer("bad request data")
	case g.Default != nil:
		a = g.Default(chatID)
	default:
		a = NoAvatarAnswer()
	}
	a.Write(w, r)
}

// overLimit applies RateLimit over a sliding second.
func (g *GreenAPI) overLimit() bool {
	if g.RateLimit <= 0 {
		return false
	}
	now := time.Now()
	if g.Now != nil {
		now = g.Now()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	cut := 0
	for cut < len(g.starts) && now.Sub(g.starts[cut]) >= time.Second {
		cut++
	}
	g.starts = g.starts[cut:]
	if len(g.starts) >= g.RateLimit {
		return true
	}
	g.starts = append(g.starts, now)
	return false
}

// AvatarAnswer is the newest success shape: {"urlAvatar": url, "available": true}.
func AvatarAnswer(url string) Answer {
	return JSON(http.StatusOK, map[string]any{"urlAvatar": url, "available": true})
}

// LegacyAvatarAnswer is the 2021-era success shape: {"existsWhatsapp": true, "urlAvatar": url}.
func LegacyAvatarAnswer(url string) Answer {
	return JSON(http.StatusOK, map[string]any{"existsWhatsapp": true, "urlAvatar": url})
}

// MidAvatarAnswer is the intermediate shape: {"urlAvatar": url} alone.
func MidAvatarAnswer(url string) Answer {
	return JSON(http.StatusOK, map[string]any{"urlAvatar": url})
}

// ExtrasAvatarAnswer is the superset the official web chat types: every
// field, an empty reason and a base64Avatar thumbnail.
func ExtrasAvatarAnswer(url string) Answer {
	return JSON(http.StatusOK, map[string]any{
		"existsWhatsapp": true, "available": true, "urlAvatar": url,
		"base64Avatar": "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgH", "reason": "",
	})
}

// Base64AvatarAnswer is the official web chat's superset with the whole
// picture in base64Avatar next to url. The web chat prefers base64Avatar
// when present; how big Green API makes it is undocumented, so tests send
// a full-size one (a 640 px JPEG is 40-95 KiB as base64).
func Base64AvatarAnswer(url string, picture []byte) Answer {
	return JSON(http.StatusOK, map[string]any{
		"existsWhatsapp": true, "available": true, "urlAvatar": url,
		"base64Avatar": base64.StdEncoding.EncodeToString(picture), "reason": "",
	})
}

// PrivacyAnswer is a picture hidden by the owner: {"urlAvatar": "", "available": false}.
func PrivacyAnswer() Answer {
	return JSON(http.StatusOK, map[string]any{"urlAvatar": "", "available": false})
}

// NoAvatarAnswer is a chat without a picture: {"urlAvatar": "", "available": true}.
func NoAvatarAnswer() Answer {
	return JSON(http.StatusOK, map[string]any{"urlAvatar": "", "available": true})
}

// LegacyNoAvatarAnswer is the 2023 bug (green-api issue #200): an existing
// account without a picture reported as {"existsWhatsapp": false, "urlAvatar": ""}.
func LegacyNoAvatarAnswer() Answer {
	return JSON(http.StatusOK, map[string]any{"existsWhatsapp": false, "urlAvatar": ""})
}

// ReasonAnswer is a 200 soft failure: {"existsWhatsapp": false, "urlAvatar":
// "", "reason": reason}, reason being "bad request data" or "get avatar
// timeout limit exceeded".
func ReasonAnswer(reason string) Answer {
	return JSON(http.StatusOK, map[string]any{"existsWhatsapp": false, "urlAvatar": "", "reason": reason})
}

// Text400 is a 400 with a plain-text body, as the common errors come:
// "instance in starting process try later", "instance account not
// authorized", "Instance is deleted", "bad request data", ...
func Text400(msg string) Answer { return Text(http.StatusBadRequest, msg) }

// JSON400 is a 400 with the text in a JSON "message", the other body form
// real clients meet.
func JSON400(msg string) Answer {
	return JSON(http.StatusBadRequest, map[string]any{"message": msg})
}

// NestValidation400 is the NestJS validation error Green API's newer stack
// answers for a malformed chatId; path is the request path it echoes.
func NestValidation400(path string) Answer {
	return nestValidation400(path, "Validation failed. Details: 'chatId' must be one of the next formats: 'user@c.us', 'group@g.us'")
}

func nestValidation400(path, msg string) Answer {
	return JSON(http.StatusBadRequest, map[string]any{
		"statusCode": http.StatusBadRequest,
		"timestamp":  "2025-08-21T13:02:16.247Z",
		"path":       path,
		"message":    msg,
	})
}

// Unauthorized401 is the wrong-token answer.
func Unauthorized401() Answer { return Text(http.StatusUnauthorized, "Unauthorized") }

// Forbidden403 is the wrong-idInstance answer.
func Forbidden403() Answer { return Text(http.StatusForbidden, "Forbidden") }

// Unauthorized200 is the oddity the official Go SDK special-cases: HTTP 200
// with {"code":401,"description":"Unauthorized"}.
func Unauthorized200() Answer {
	return Answer{Status: http.StatusOK, ContentType: "application/json", Body: `{"code":401,"description":"Unauthorized"}`}
}

// TooManyRequests is a 429. The real body and headers are undocumented;
// retryAfter, when positive, is sent as Retry-After in whole seconds.
func TooManyRequests(retryAfter time.Duration) Answer {
	a := Text(http.StatusTooManyRequests, "Too Many Requests")
	if retryAfter > 0 {
		a.Header = http.Header{"Retry-After": {strconv.Itoa(int((retryAfter + time.Second - 1) / time.Second))}}
	}
	return a
}

// Quota466 is the documented monthly-quota error.
func Quota466() Answer {
	return JSON(466, map[string]any{"invokeStatus": map[string]any{
		"method": "getavatar", "used": 100, "total": 100, "status": "QUOTE_EXCEEDED",
		"description": "Monthly quota has been exceeded. Please go to your personal account and change the tariff to business https://console.green-api.com",
	}})
}

// StatusAnswer is a bare status with its usual text: 499 Client Closed
// Request, 500, 502 Bad Gateway, ...
func StatusAnswer(status int) Answer {
	text := http.StatusText(status)
	if status == 499 {
		text = "Client Closed Request"
	}
	if text == "" {
		text = fmt.Sprintf("status %d", status)
	}
	return Text(status, text)
}

// HTMLAnswer is an HTML page with the given status, as a load balancer or
// captive portal sends in front of an API.
func HTMLAnswer(status int) Answer {
	return Answer{Status: status, ContentType: "text/html; charset=utf-8",
		Body: "<html><head><title>" + strings.TrimSpace(http.StatusText(status)) + "</title></head><body>nginx</body></html>"}
}
