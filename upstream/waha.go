package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	wahaGateway        = "waha"
	defaultWAHASession = "default"
	defaultWAHATimeout = 15 * time.Second
)

// WAHAConfig configures the WAHA (devlikeapro/waha) resolver.
type WAHAConfig struct {
	// BaseURL is where WAHA listens, e.g. "http://127.0.0.1:3000". Required;
	// it must not carry credentials.
	BaseURL string
	// APIKey is sent as X-Api-Key when set (WAHA_API_KEY). A secret: it
	// never reaches a log line or an error.
	APIKey string
	// Session is the WAHA session to ask through. Empty means "default".
	Session string
	// Timeout bounds each call. Zero means 15 s.
	Timeout time.Duration
	// Client is shared and never mutated. Nil means a private client that
	// does not follow redirects.
	Client *http.Client
	// Logger gets an Error line per call rejected for configuration and a
	// Warn line per account failure. Nil means slog.Default().
	Logger *slog.Logger
}

// String prints the config with the API key redacted.
func (c WAHAConfig) String() string {
	return fmt.Sprintf("{BaseURL:%s APIKey:%s Session:%s Timeout:%s}", c.BaseURL, redacted(c.APIKey), c.Session, c.Timeout)
}

// LogValue keeps the API key out of slog lines that log the config.
func (c WAHAConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("baseURL", c.BaseURL),
		slog.String("apiKey", redacted(c.APIKey)),
		slog.String("session", c.Session),
		slog.Duration("timeout", c.Timeout),
	)
}

// WAHA resolves avatars through WAHA's GET /api/contacts/profile-picture
// (upstreams.md section 3). WAHA answers null both for "no picture" and for
// "hidden by privacy", so this resolver reports StateNoAvatar for both and
// never StatePrivacy. It has no preview size. Safe for concurrent use.
type WAHA struct {
	h        gatewayHTTP
	endpoint string
	apiKey   string
	session  string
}

var _ Resolver = (*WAHA)(nil)

// Validate reports every problem with cfg as *ConfigError values joined;
// none names the key. NewWAHA calls it.
func (cfg WAHAConfig) Validate() error {
	errs := configErrors{gateway: wahaGateway}
	if err := checkBaseURL(wahaGateway, cfg.BaseURL); err != nil {
		errs.errs = append(errs.errs, err)
	}
	if !validHeaderValue(cfg.APIKey) {
		errs.add("APIKey", "holds control characters")
	}
	if strings.TrimSpace(cfg.session()) != cfg.session() {
		errs.add("Session", "has leading or trailing spaces")
	}
	if cfg.Timeout < 0 {
		errs.add("Timeout", "must not be negative")
	}
	return errs.err()
}

// session is Session or its default.
func (cfg WAHAConfig) session() string {
	if cfg.Session == "" {
		return defaultWAHASession
	}
	return cfg.Session
}

// NewWAHA validates cfg and returns the resolver.
func NewWAHA(cfg WAHAConfig) (*WAHA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := baseURL(cfg.BaseURL)
	session := cfg.session()
	w := &WAHA{
		h:        newGatewayHTTP(wahaGateway, cfg.Client, cfg.Timeout, defaultWAHATimeout, gatewayBodyCap, cfg.Logger, cfg.APIKey),
		endpoint: base + "/api/contacts/profile-picture",
		apiKey:   cfg.APIKey,
		session:  session,
	}
	return w, nil
}

// String names the resolver without its endpoint or key.
func (w *WAHA) String() string { return wahaGateway }

// Resolve asks WAHA for req.Chat's avatar, sending the id in its canonical
// "@c.us" / "@g.us" / "@lid" form. req.Preview is ignored: WAHA serves one
// size. req.Refresh sends refresh=true: WAHA otherwise answers from its
// 24 h cache, so the link that just proved dead would come back. A zero
// Chat is StateInvalid without a call.
func (w *WAHA) Resolve(ctx context.Context, req Request) (Result, error) {
	if req.Chat.IsZero() {
		return Result{State: StateInvalid}, nil
	}
	q := url.Values{}
	q.Set("contactId", req.Chat.String())
	q.Set("session", w.session)
	if req.Refresh {
		q.Set("refresh", "true")
	}
	hdr := http.Header{"Accept": {"application/json"}}
	if w.apiKey != "" {
		hdr.Set("X-Api-Key", w.apiKey)
	}
	return w.h.resolve(ctx, req.Chat, http.MethodGet, w.endpoint+"?"+q.Encode(), hdr, nil, wahaAnswer)
}

// wahaAnswer maps one WAHA answer to a Result or an *Error. It is total; the
// *Error never quotes the body.
func wahaAnswer(status int, retryAfter string, body []byte, now time.Time) (Result, *Error) {
	fail := func(f Failure, reason string) (Result, *Error) {
		return Result{}, &Error{Gateway: wahaGateway, Failure: f, Status: status, Reason: reason}
	}
	switch {
	case status == http.StatusOK:
		// A JSON null body or a missing key both mean "no picture we may
		// see": WEBJS returns undefined, which JSON drops.
		var b *struct {
			URL *string `json:"profilePictureURL"`
		}
		if err := json.Unmarshal(body, &b); err != nil {
			return fail(Transient, "malformed success answer")
		}
		if b == nil || b.URL == nil || *b.URL == "" {
			return Result{State: StateNoAvatar}, nil
		}
		if !isHTTPURL(*b.URL) {
			return fail(Transient, "success answer without a usable url")
		}
		return Result{State: StateOK, URL: *b.URL}, nil

	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return fail(Config, "api key rejected; check the key")

	case status == http.StatusNotFound:
		// WAHA's own 404 names the session; any other 404 is a wrong URL.
		if text := strings.ToLower(string(body)); strings.Contains(text, "session") {
			return fail(Account, "session not found; start it")
		}
		return fail(Config, "endpoint not found; check the base URL")

	case status == http.StatusUnprocessableEntity:
		return fail(Account, "session not working")

	case status == http.StatusTooManyRequests:
		_, e := fail(RateLimited, "rate limited")
		e.RetryAfter = parseRetryAfter(retryAfter, now)
		return Result{}, e

	case status >= 300 && status < 400:
		return fail(Config, "unexpected redirect; check the base URL")

	case status >= 500:
		return fail(Transient, "gateway error")
	}
	return fail(Transient, "unexpected answer")
}
