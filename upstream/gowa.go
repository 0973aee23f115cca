package upstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	gowaGateway = "gowa"
	// GOWA gives the WhatsApp lookup 5 s and the on-WhatsApp check 10 s of
	// its own, so 20 s leaves room for both before we give up.
	defaultGOWATimeout = 20 * time.Second
)

// GOWAConfig configures the go-whatsapp-web-multidevice resolver.
type GOWAConfig struct {
	// BaseURL is where GOWA listens, with its APP_BASE_PATH if one is set:
	// "http://127.0.0.1:3000" or "https://wa.example.com/gowa". Required; it
	// must not carry credentials (use User and Password).
	BaseURL string
	// User and Password are one of GOWA's --basic-auth pairs. An empty User
	// sends no Authorization header. Password is a secret: it never reaches
	// a log line or an error.
	User, Password string
	// DeviceID picks the device (X-Device-Id). Empty lets GOWA use its only
	// device, which it does only when exactly one is registered.
	DeviceID string
	// Timeout bounds each call. Zero means 20 s.
	Timeout time.Duration
	// Client is shared and never mutated. Nil means a private client that
	// does not follow redirects.
	Client *http.Client
	// Logger gets an Error line per call rejected for configuration and a
	// Warn line per account failure. Nil means slog.Default().
	Logger *slog.Logger
}

// String prints the config with the password redacted, so a config printed
// by mistake does not leak it.
func (c GOWAConfig) String() string {
	return fmt.Sprintf("{BaseURL:%s User:%s Password:%s DeviceID:%s Timeout:%s}",
		c.BaseURL, c.User, redacted(c.Password), c.DeviceID, c.Timeout)
}

// LogValue keeps the password out of slog lines that log the config.
func (c GOWAConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("baseURL", c.BaseURL),
		slog.String("user", c.User),
		slog.String("password", redacted(c.Password)),
		slog.String("deviceID", c.DeviceID),
		slog.Duration("timeout", c.Timeout),
	)
}

// GOWA resolves avatars through go-whatsapp-web-multidevice's
// GET /user/avatar (upstreams.md section 2). Safe for concurrent use.
type GOWA struct {
	h        gatewayHTTP
	endpoint string
	auth     string // the Authorization value, or "" without basic auth
	device   string // already query-escaped: GOWA unescapes the header
}

var _ Resolver = (*GOWA)(nil)

// Validate reports every problem with cfg as *ConfigError values joined;
// none names the password. NewGOWA calls it.
func (cfg GOWAConfig) Validate() error {
	errs := configErrors{gateway: gowaGateway}
	if err := checkBaseURL(gowaGateway, cfg.BaseURL); err != nil {
		errs.errs = append(errs.errs, err)
	}
	switch {
	case cfg.User == "" && cfg.Password != "":
		errs.add("User", "is empty but Password is set")
	case strings.Contains(cfg.User, ":"):
		errs.add("User", "must not contain ':'")
	}
	if cfg.Timeout < 0 {
		errs.add("Timeout", "must not be negative")
	}
	return errs.err()
}

// NewGOWA validates cfg and returns the resolver.
func NewGOWA(cfg GOWAConfig) (*GOWA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := baseURL(cfg.BaseURL)
	var auth string
	if cfg.User != "" {
		auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(cfg.User+":"+cfg.Password))
	}
	g := &GOWA{
		h: newGatewayHTTP(gowaGateway, cfg.Client, cfg.Timeout, defaultGOWATimeout, gatewayBodyCap, cfg.Logger,
			cfg.Password, strings.TrimPrefix(auth, "Basic ")),
		endpoint: base + "/user/avatar",
		auth:     auth,
		device:   url.QueryEscape(cfg.DeviceID),
	}
	return g, nil
}

// String names the resolver without its endpoint or credentials.
func (g *GOWA) String() string { return gowaGateway }

// Resolve asks GOWA for req.Chat's avatar. Persons are sent as
// "<digits>@s.whatsapp.net", never "@c.us": GOWA would pass a c.us JID to
// WhatsApp unchecked, and bare digits longer than 15 would be taken for a
// group. A zero Chat is StateInvalid without a call.
func (g *GOWA) Resolve(ctx context.Context, req Request) (Result, error) {
	if req.Chat.IsZero() {
		return Result{State: StateInvalid}, nil
	}
	q := url.Values{}
	q.Set("phone", req.Chat.JID())
	q.Set("is_preview", fmt.Sprint(req.Preview))
	hdr := http.Header{"Accept": {"application/json"}}
	if g.device != "" {
		hdr.Set("X-Device-Id", g.device)
	}
	if g.auth != "" {
		hdr.Set("Authorization", g.auth)
	}
	return g.h.resolve(ctx, req.Chat, http.MethodGet, g.endpoint+"?"+q.Encode(), hdr, nil,
		func(status int, retryAfter string, body []byte, now time.Time) (Result, *Error) {
			return gowaAnswer(status, retryAfter, body, req.Preview, now)
		})
}

// gowaBody is GOWA's utils.ResponseData: every answer, success or error,
// carries code and message; results only on success (and DEVICE_NOT_FOUND).
type gowaBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Results *struct {
		URL  string `json:"url"`
		ID   string `json:"id"`
		Type string `json:"type"`
	} `json:"results"`
}

// The whatsmeow texts GOWA passes through on a 500; they are the only way to
// tell "no picture" from "hidden" (upstreams.md section 2.5).
const (
	gowaNoPicture  = "does not have a profile picture"
	gowaHidden     = "has hidden their profile picture"
	gowaNotOnWA    = "is not on whatsapp"
	gowaRateLimit  = "rate-overlimit"
	gowaIQ429      = "returned status 429"
	gowaBadJID     = "invalid jid "
	gowaNoClient   = "client is not initialized"
	gowaInvalidCLI = "INVALID_WA_CLI"
)

// gowaAnswer maps one GOWA answer to a Result or an *Error. It is total: any
// status and body yield exactly one of the two. wantPreview is what was asked,
// used only when an answer omits results.type. The *Error never quotes the
// body: GOWA echoes the phone number in its messages.
func gowaAnswer(status int, retryAfter string, body []byte, wantPreview bool, now time.Time) (Result, *Error) {
	var b gowaBody
	jsonErr := json.Unmarshal(body, &b)
	msg := strings.ToLower(b.Message)
	fail := func(f Failure, reason string) (Result, *Error) {
		return Result{}, &Error{Gateway: gowaGateway, Failure: f, Status: status, Reason: reason}
	}
	switch {
	case status == http.StatusOK:
		if jsonErr != nil || b.Results == nil {
			return fail(Transient, "malformed success answer")
		}
		if !isHTTPURL(b.Results.URL) {
			return fail(Transient, "success answer without a usable url")
		}
		preview := wantPreview
		switch b.Results.Type {
		case "preview":
			preview = true
		case "image":
			preview = false
		}
		return Result{State: StateOK, URL: b.Results.URL, PictureID: b.Results.ID, Preview: preview}, nil

	case status == http.StatusUnauthorized:
		if b.Code == "AUTHENTICATION_ERROR" {
			return fail(Account, "device not logged in or not connected")
		}
		// Fiber's basic-auth middleware answers a bare text "Unauthorized".
		return fail(Config, "basic auth rejected; check user and password")

	case status == http.StatusForbidden:
		return fail(Config, "forbidden")

	case status == http.StatusNotFound:
		if b.Code == "DEVICE_NOT_FOUND" {
			return fail(Config, "device not found; check the device id")
		}
		return fail(Config, "endpoint not found; check the base URL")

	case status == http.StatusBadRequest:
		switch {
		case b.Code == "DEVICE_ID_REQUIRED":
			return fail(Config, "device id required: several devices are registered")
		case b.Code == "INVALID_JID" && strings.Contains(msg, gowaNotOnWA):
			// GOWA answers exactly this when its IsOnWhatsApp lookup
			// failed (timeout, WhatsApp throttling usync), not only for
			// an unregistered number (upstreams.md section 2.3).
			return Result{State: StateNotOnWhatsApp, Uncertain: true}, nil
		case b.Code == "INVALID_JID", b.Code == "VALIDATION_ERROR":
			return Result{State: StateInvalid}, nil
		case jsonErr != nil:
			// Fiber's basic-auth middleware: a malformed Authorization header.
			return fail(Config, "request rejected before routing; check user and password")
		}
		return fail(Transient, "unexpected client error")

	case status == http.StatusRequestTimeout:
		return fail(Transient, "whatsapp lookup timed out")

	case status == http.StatusTooManyRequests:
		_, e := fail(RateLimited, "rate limited")
		e.RetryAfter = parseRetryAfter(retryAfter, now)
		return Result{}, e

	case status == http.StatusInternalServerError && jsonErr == nil:
		switch {
		case strings.Contains(msg, gowaNoPicture):
			return Result{State: StateNoAvatar}, nil
		case strings.Contains(msg, gowaHidden):
			return Result{State: StatePrivacy}, nil
		case strings.Contains(msg, gowaRateLimit), strings.Contains(msg, gowaIQ429):
			_, e := fail(RateLimited, "whatsapp rate-overlimit")
			e.RetryAfter = parseRetryAfter(retryAfter, now)
			return Result{}, e
		case strings.HasPrefix(msg, gowaBadJID):
			return Result{State: StateInvalid}, nil
		case b.Code == gowaInvalidCLI, strings.Contains(msg, gowaNoClient):
			return fail(Account, "device has no whatsapp client; pair it")
		}
		return fail(Transient, "gateway error")

	case status >= 300 && status < 400:
		return fail(Config, "unexpected redirect; check the base URL")
	}
	return fail(Transient, "unexpected answer")
}
