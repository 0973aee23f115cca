package fake

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// GOWA imitates go-whatsapp-web-multidevice's GET {BasePath}/user/avatar
// (upstreams.md sections 2 and 7): Fiber's basic-auth middleware, GOWA's
// device selection, its query binding and phone normalisation, and the
// documented answers. The zero value serves one device named "default"
// without basic auth and answers "no profile picture" to every phone.
// Configure the exported fields before serving; Set may be called at any time.
type GOWA struct {
	// BasePath is GOWA's APP_BASE_PATH ("/gowa"); empty for none.
	BasePath string
	// Users are the --basic-auth pairs, user to password. Empty disables
	// basic auth, as GOWA does when none are configured.
	Users map[string]string
	// Devices are the registered device ids. Nil means the one device
	// "default"; an empty non-nil slice means none.
	Devices []string
	// Default answers phones without a scripted answer; nil means
	// GOWANoAvatar.
	Default func(GOWAQuery) Answer
	// Recorder sees every request, rejected ones included.
	Recorder Recorder

	script script // answers by JID; the phone of every request that reached the handler
}

// GOWAQuery is one avatar request as GOWA understood it.
type GOWAQuery struct {
	Phone     string // the phone parameter exactly as received
	JID       string // after GOWA's normalisation (section 2.3)
	Preview   bool
	Community bool
	Device    string // the device that serves it
}

// Set scripts the answer for a JID in GOWA's normalised form
// ("6289685028129@s.whatsapp.net", "120363043968066561@g.us", "123@lid"):
// it matches every phone value that normalises to it ("6289685028129",
// "+6289685028129"). A "...@c.us" phone normalises to itself, so a client
// that wrongly sends one misses the scripted answer, as it would in life.
func (g *GOWA) Set(jid string, a Answer) {
	g.script.set(jid, a)
}

// Phones lists the phone parameter of every request that reached the
// handler, exactly as received, in arrival order.
func (g *GOWA) Phones() []string {
	return g.script.list()
}

// gowaDefaultDevice is the device a zero-value fake has.
const gowaDefaultDevice = "default"

// ServeHTTP answers one request the way GOWA's middleware chain and
// UserAvatar handler do, in their order: basic auth, routing, device,
// binding, validation, then the scripted lookup.
func (g *GOWA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer g.Recorder.Begin()()
	if len(g.Users) > 0 {
		if a, ok := g.checkBasicAuth(r); !ok {
			a.Write(w, r)
			return
		}
	}
	if r.URL.Path != g.BasePath+"/user/avatar" {
		Text(http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path).Write(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		Text(http.StatusMethodNotAllowed, "Method Not Allowed").Write(w, r)
		return
	}
	device, a, ok := g.device(r)
	if !ok {
		a.Write(w, r)
		return
	}
	q := r.URL.Query()
	preview, err1 := gowaBool(q, "is_preview")
	community, err2 := gowaBool(q, "is_community")
	if err := cmp.Or(err1, err2); err != nil {
		// GOWA panics on a bind error and Recovery answers with its text.
		GOWAError(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", err.Error()).Write(w, r)
		return
	}
	phone := q.Get("phone")
	g.script.see(phone)
	if strings.TrimSpace(phone) == "" {
		GOWAPhoneBlank().Write(w, r)
		return
	}
	jid := GOWANormalize(phone)
	if user, _, _ := strings.Cut(jid, "@"); strings.Count(user, ".") > 1 {
		GOWAInvalidJID(jid, "unexpected number of dots in JID").Write(w, r)
		return
	}
	a, scripted := g.script.answer(jid)
	switch {
	case scripted:
	case g.Default != nil:
		a = g.Default(GOWAQuery{Phone: phone, JID: jid, Preview: preview, Community: community, Device: device})
	default:
		a = GOWANoAvatar()
	}
	gowaTypeFollowsPreview(&a, preview).Write(w, r)
}

// gowaTypeFollowsPreview makes a success answer's results.type say what was
// asked, as GOWA's does (upstreams.md section 7, item 5), whatever size the
// test scripted: a client that forgot is_preview would otherwise pass.
// Other answers are returned as they are.
func gowaTypeFollowsPreview(a *Answer, preview bool) *Answer {
	if a.Status != 0 && a.Status != http.StatusOK {
		return a
	}
	var b struct {
		Code    string      `json:"code"`
		Message string      `json:"message"`
		Results *gowaAvatar `json:"results"`
	}
	if json.Unmarshal([]byte(a.Body), &b) != nil || b.Code != "SUCCESS" || b.Results == nil {
		return a
	}
	fixed := GOWAAvatar(b.Results.URL, b.Results.ID, preview)
	fixed.Status, fixed.ContentType, fixed.Header, fixed.Delay = a.Status, a.ContentType, a.Header, a.Delay
	return &fixed
}

// gowaBool binds an optional boolean query parameter, false when absent.
func gowaBool(q url.Values, name string) (bool, error) {
	v := q.Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, &bindError{field: name, value: v}
	}
	return b, nil
}

// bindError imitates the text of Fiber's query binder; the exact wording is
// not documented (upstreams.md section 2.2), the status and code are.
type bindError struct{ field, value string }

func (e *bindError) Error() string {
	return "failed to decode: schema: error converting value for \"" + e.field + "\""
}

// checkBasicAuth applies Fiber v3's basic-auth middleware: no or a
// non-Basic header, or wrong credentials, is 401; an undecodable one is 400.
func (g *GOWA) checkBasicAuth(r *http.Request) (Answer, bool) {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(h) > 8192 {
		return Text(http.StatusRequestHeaderFieldsTooLarge, "Request Header Fields Too Large"), false
	}
	scheme, cred, _ := strings.Cut(h, " ")
	if h == "" || !strings.EqualFold(scheme, "basic") {
		return GOWAUnauthorized(), false
	}
	cred = strings.TrimSpace(cred)
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		// RFC 7235 token68 lets the padding go; Fiber accepts that.
		raw, err = base64.RawStdEncoding.DecodeString(cred)
	}
	if err != nil {
		return GOWABadRequest(), false
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok {
		return GOWABadRequest(), false
	}
	if want, known := g.Users[user]; !known || want != pass {
		return GOWAUnauthorized(), false
	}
	return Answer{}, true
}

// device resolves the device the way GOWA's DeviceMiddleware does: the
// X-Device-Id header (trimmed, query-unescaped), else the device_id query
// parameter; with neither, the only registered device.
func (g *GOWA) device(r *http.Request) (string, Answer, bool) {
	id := strings.TrimSpace(r.Header.Get("X-Device-Id"))
	if u, err := url.QueryUnescape(id); err == nil {
		id = u
	}
	if id == "" {
		id = r.URL.Query().Get("device_id")
	}
	devices := g.Devices
	if devices == nil {
		devices = []string{gowaDefaultDevice}
	}
	switch {
	case id != "" && !slices.Contains(devices, id):
		return "", GOWADeviceNotFound(id), false
	case id != "":
		return id, Answer{}, true
	case len(devices) != 1:
		return "", GOWADeviceIDRequired(), false
	}
	return devices[0], Answer{}, true
}

// GOWANormalize applies GOWA's SanitizePhone then ParseJID's '+' strip
// (upstreams.md section 2.3): without '@', up to 15 characters is a user
// ("@s.whatsapp.net"), more is a group ("@g.us"); with '@' the value is kept,
// "@c.us" included.
func GOWANormalize(phone string) string {
	if !strings.Contains(phone, "@") {
		if len(phone) <= 15 {
			phone += "@s.whatsapp.net"
		} else {
			phone += "@g.us"
		}
	}
	return strings.TrimPrefix(phone, "+")
}

// gowaBody is GOWA's utils.ResponseData as it is serialised: code, message
// and, when set, results (Status is json:"-").
type gowaBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Results any    `json:"results,omitempty"`
}

type gowaAvatar struct {
	URL  string `json:"url"`
	ID   string `json:"id"`
	Type string `json:"type"`
}

// GOWAAvatar is the success answer; type is "preview" when preview is set,
// else "image". Served by GOWA, the type follows the request's is_preview
// instead, as the real one's does.
func GOWAAvatar(url, id string, preview bool) Answer {
	typ := "image"
	if preview {
		typ = "preview"
	}
	return JSON(http.StatusOK, gowaBody{Code: "SUCCESS", Message: "Success get avatar", Results: gowaAvatar{URL: url, ID: id, Type: typ}})
}

// GOWAError is an error answer as GOWA's Recovery middleware writes it:
// {"code", "message"} only.
func GOWAError(status int, code, message string) Answer {
	return JSON(status, gowaBody{Code: code, Message: message})
}

// GOWANoAvatar is whatsmeow's ErrProfilePictureNotSet surfacing as a 500.
func GOWANoAvatar() Answer {
	return GOWAError(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "that user or group does not have a profile picture")
}

// GOWAPrivacy is whatsmeow's ErrProfilePictureUnauthorized surfacing as a 500.
func GOWAPrivacy() Answer {
	return GOWAError(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "the user has hidden their profile picture from you")
}

// GOWANotOnWhatsApp is the on-WhatsApp check failing for jid.
func GOWANotOnWhatsApp(jid string) Answer {
	return GOWAError(http.StatusBadRequest, "INVALID_JID", "Phone "+jid+" is not on whatsapp")
}

// GOWAPhoneBlank is the validation error for a missing or empty phone.
func GOWAPhoneBlank() Answer {
	return GOWAError(http.StatusBadRequest, "VALIDATION_ERROR", "phone: cannot be blank.")
}

// GOWANotLoggedIn is MustLogin's ErrNotLoggedIn: connected but logged out.
func GOWANotLoggedIn() Answer {
	return GOWAError(http.StatusUnauthorized, "AUTHENTICATION_ERROR", "you are not logged in")
}

// GOWANotConnected is MustLogin's ErrNotConnected.
func GOWANotConnected() Answer {
	return GOWAError(http.StatusUnauthorized, "AUTHENTICATION_ERROR", "you are not connect to services server, please reconnect")
}

// GOWAInvalidCLI is a device that exists but was never paired.
func GOWAInvalidCLI() Answer {
	return GOWAError(http.StatusInternalServerError, "INVALID_WA_CLI", "your WhatsApp CLI is invalid or empty")
}

// GOWAClientNotInitialized is MustLogin finding no client.
func GOWAClientNotInitialized() Answer {
	return GOWAError(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "Whatsapp client is not initialized")
}

// GOWAInvalidJID is ParseJID rejecting arg.
func GOWAInvalidJID(arg, why string) Answer {
	return GOWAError(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR", "invalid JID "+arg+": "+why)
}

// GOWAIQError is any other WhatsApp info-query error, e.g. (429,
// "rate-overlimit") or (400, "bad-request").
func GOWAIQError(code int, text string) Answer {
	return GOWAError(http.StatusInternalServerError, "INTERNAL_SERVER_ERROR",
		"info query returned status "+strconv.Itoa(code)+": "+text)
}

// GOWALookupTimeout is GOWA giving up on WhatsApp after its 5 s budget. The
// answer comes at once; set Delay to imitate the wait.
func GOWALookupTimeout() Answer {
	return GOWAError(http.StatusRequestTimeout, "CONTEXT_ERROR", "Error timeout get avatar!")
}

// GOWAGatewayTimeout is GOWA's 45 s request deadline.
func GOWAGatewayTimeout() Answer {
	return GOWAError(http.StatusGatewayTimeout, "GATEWAY_TIMEOUT", "Request timed out waiting for WhatsApp server response")
}

// GOWAUnauthorized is Fiber's basic-auth rejection, headers included.
func GOWAUnauthorized() Answer {
	a := Text(http.StatusUnauthorized, "Unauthorized")
	a.Header = http.Header{
		"Www-Authenticate": {`Basic realm="Restricted", charset="UTF-8"`},
		"Cache-Control":    {"no-store"},
		"Vary":             {"Authorization"},
	}
	return a
}

// GOWABadRequest is Fiber's answer to a malformed Authorization header.
func GOWABadRequest() Answer { return Text(http.StatusBadRequest, "Bad Request") }

// GOWADeviceNotFound is an X-Device-Id that names no registered device; the
// only error whose body carries results.
func GOWADeviceNotFound(id string) Answer {
	return JSON(http.StatusNotFound, gowaBody{
		Code:    "DEVICE_NOT_FOUND",
		Message: "device not found; create a device first from /api/devices or provide a valid X-Device-Id",
		Results: map[string]string{"device_id": id},
	})
}

// GOWADeviceIDRequired is no device id while zero or several are registered.
func GOWADeviceIDRequired() Answer {
	return GOWAError(http.StatusBadRequest, "DEVICE_ID_REQUIRED", "device_id is required via X-Device-Id header or device_id query")
}

// GOWADeviceManagerUnavailable is GOWA starting without its device manager.
func GOWADeviceManagerUnavailable() Answer {
	return GOWAError(http.StatusServiceUnavailable, "DEVICE_MANAGER_UNAVAILABLE", "Device manager is not initialized")
}
