package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

const (
	greenAPIGateway        = "greenapi"
	defaultGreenAPITimeout = 10 * time.Second
	// greenAPIBodyCap bounds an answer, which may carry the picture itself
	// in base64Avatar next to urlAvatar (upstreams.md section 1.3). Its size
	// is undocumented; a full 640 px JPEG is commonly 40-95 KiB as base64,
	// so the 64 KiB other gateways get would refuse answers whose urlAvatar
	// is fine.
	greenAPIBodyCap = 1 << 20
)

// GreenAPIConfig configures the Green API resolver.
type GreenAPIConfig struct {
	// BaseURL is the instance's apiUrl, e.g. https://1103.api.green-api.com.
	// A trailing slash is tolerated.
	BaseURL string
	// IDInstance is the instance number (digits).
	IDInstance string
	// Token is the apiTokenInstance. It is a secret that Green API puts in
	// the URL path, so neither the URL nor the token reaches a log or error.
	Token string
	// Timeout bounds each call. Zero means 10s.
	Timeout time.Duration
	// Client is shared, never mutated. Nil means a private client that does
	// not follow redirects (a redirected POST is a misconfiguration).
	Client *http.Client
	// Logger gets one Error line per call rejected for bad credentials and
	// a Warn line per account failure; nil means slog.Default().
	Logger *slog.Logger
}

// GreenAPI resolves avatars through Green API's getAvatar method. Safe for
// concurrent use.
type GreenAPI struct {
	h        gatewayHTTP
	endpoint string // carries the token: never log it, never put it in an error
}

var _ Resolver = (*GreenAPI)(nil)

// Validate reports every problem with cfg as *ConfigError values joined;
// none names the token. NewGreenAPI calls it.
func (cfg GreenAPIConfig) Validate() error {
	errs := configErrors{gateway: greenAPIGateway}
	if err := checkBaseURL(greenAPIGateway, cfg.BaseURL); err != nil {
		errs.errs = append(errs.errs, err)
	}
	if len(cfg.IDInstance) > 20 || !allDigits(cfg.IDInstance) {
		errs.add("IDInstance", "must be digits")
	}
	switch {
	case cfg.Token == "":
		errs.add("Token", "is empty")
	case !pathSafe(cfg.Token):
		errs.add("Token", "holds characters a URL path cannot carry as is")
	}
	if cfg.Timeout < 0 {
		errs.add("Timeout", "must not be negative")
	}
	return errs.err()
}

// NewGreenAPI validates cfg and returns the resolver.
func NewGreenAPI(cfg GreenAPIConfig) (*GreenAPI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := baseURL(cfg.BaseURL)
	return &GreenAPI{
		h: newGatewayHTTP(greenAPIGateway, cfg.Client, cfg.Timeout, defaultGreenAPITimeout, greenAPIBodyCap, cfg.Logger,
			cfg.Token, "waInstance"+cfg.IDInstance),
		endpoint: base + "/waInstance" + cfg.IDInstance + "/getAvatar/" + cfg.Token,
	}, nil
}

// pathSafe accepts the URL-unreserved bytes. Real tokens are hex; anything
// needing escaping would be sent differently from what the console shows.
func pathSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// Resolve asks getAvatar about req.Chat. Green API has no preview size:
// req.Preview is ignored and Result.Preview is false. A zero req.Chat is
// StateInvalid without a call.
func (g *GreenAPI) Resolve(ctx context.Context, req Request) (Result, error) {
	if req.Chat.IsZero() {
		return Result{State: StateInvalid}, nil
	}
	// Only chatId: the legacy phoneNumber field was dropped in 2020.
	body, err := json.Marshal(struct {
		ChatID string `json:"chatId"`
	}{req.Chat.String()})
	if err != nil {
		return Result{}, transportFailure(greenAPIGateway, err, nil)
	}
	hdr := http.Header{
		"Accept":       {"application/json"},
		"Content-Type": {"application/json"},
	}
	return g.h.resolve(ctx, req.Chat, http.MethodPost, g.endpoint, hdr, body, greenAPIAnswer)
}

// greenAPIBody is the union of every getAvatar answer generation (newest
// {urlAvatar, available}, mid {urlAvatar, reason}, legacy {existsWhatsapp,
// urlAvatar, reason}) and of the 200 {code:401} oddity. Unknown fields such
// as base64Avatar are ignored.
type greenAPIBody struct {
	URLAvatar      *string `json:"urlAvatar"`
	Available      *bool   `json:"available"`
	ExistsWhatsapp *bool   `json:"existsWhatsapp"`
	Reason         *string `json:"reason"`
	Code           *int    `json:"code"`
	Description    string  `json:"description"`
}

// greenAPIAnswer maps one HTTP answer of getAvatar to a Result or an *Error
// (an answerFunc). It is total: any status and body yield one or the other,
// and the *Error never quotes the body.
func greenAPIAnswer(status int, retryAfter string, body []byte, now time.Time) (Result, *Error) {
	switch {
	case status == http.StatusOK:
		return greenAPIOK(body)
	case status == http.StatusBadRequest:
		return greenAPI400(body)
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return greenAPIFail(Config, status, "credentials rejected")
	case status == http.StatusTooManyRequests:
		return Result{}, &Error{Gateway: greenAPIGateway, Failure: RateLimited, Status: status, Reason: "rate limited",
			RetryAfter: parseRetryAfter(retryAfter, now)}
	case status == 466:
		return greenAPIFail(Account, status, "quota exhausted")
	}
	return greenAPIFail(Transient, status, "unexpected status")
}

// greenAPIFail is the failed answer of getAvatar with this status.
func greenAPIFail(f Failure, status int, reason string) (Result, *Error) {
	return Result{}, &Error{Gateway: greenAPIGateway, Failure: f, Status: status, Reason: reason}
}

func greenAPIOK(body []byte) (Result, *Error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return greenAPIFail(Transient, http.StatusOK, "malformed response")
	}
	var b greenAPIBody
	if err := json.Unmarshal(trimmed, &b); err != nil {
		return greenAPIFail(Transient, http.StatusOK, "malformed response")
	}
	// Seen in the wild and special-cased by the official Go SDK: a 200
	// carrying {"code":401,"description":"Unauthorized"}.
	if b.URLAvatar == nil && b.Code != nil && *b.Code == http.StatusUnauthorized {
		return greenAPIFail(Config, http.StatusOK, "credentials rejected")
	}
	if b.URLAvatar == nil && b.Available == nil && b.ExistsWhatsapp == nil && b.Reason == nil {
		// Not a getAvatar answer (a captive portal, another API): caching a
		// "no avatar" on its word would hide a real picture.
		return greenAPIFail(Transient, http.StatusOK, "unexpected response")
	}
	link := ""
	if b.URLAvatar != nil {
		link = strings.TrimSpace(*b.URLAvatar)
	}
	// The official web chat treats these literals as empty too.
	if link == "undefined" || link == "null" {
		link = ""
	}
	if link != "" {
		if !isHTTPURL(link) {
			return greenAPIFail(Transient, http.StatusOK, "malformed urlAvatar")
		}
		return Result{State: StateOK, URL: link}, nil
	}
	if b.Reason != nil {
		switch reason := strings.ToLower(strings.TrimSpace(*b.Reason)); {
		case reason == "":
			// The 2020 shape sent an empty reason with every answer.
		case strings.Contains(reason, "bad request data"):
			return Result{State: StateInvalid}, nil
		case strings.Contains(reason, "timeout"):
			return greenAPIFail(Transient, http.StatusOK, "avatar check timed out")
		default:
			// reason means the check did not happen: not an answer to cache.
			return greenAPIFail(Transient, http.StatusOK, "avatar check failed")
		}
	}
	if b.Available != nil && !*b.Available {
		return Result{State: StatePrivacy}, nil
	}
	// existsWhatsapp:false is deliberately not StateNotOnWhatsApp: Green API
	// sent it for existing accounts that merely have no photo (green-api
	// issue #200), so an empty urlAvatar is all it reliably tells.
	return Result{State: StateNoAvatar}, nil
}

// greenAPI400 reads a 400: plain text or JSON with "message" (NestJS
// validation errors carry a string or a list of strings). Only the text
// tells bad input from an instance that is down (green-api issue #571).
func greenAPI400(body []byte) (Result, *Error) {
	msg := strings.ToLower(greenAPIMessage(body))
	e := func(f Failure, reason string) (Result, *Error) {
		return greenAPIFail(f, http.StatusBadRequest, reason)
	}
	switch {
	case strings.Contains(msg, "bad request data"), strings.Contains(msg, "validation failed"):
		return Result{State: StateInvalid}, nil
	case strings.Contains(msg, "in starting process"):
		return e(Transient, "instance starting")
	case strings.Contains(msg, "not authorized"):
		return e(Account, "instance account not authorized")
	case strings.Contains(msg, "expired"):
		return e(Account, "instance account expired")
	case strings.Contains(msg, "deleted"):
		return e(Account, "instance deleted")
	case strings.Contains(msg, "chat limit"), strings.Contains(msg, "quota"):
		return e(Account, "quota exhausted")
	}
	return e(Transient, "bad request")
}

// greenAPIMessage is the error text of a 400 body: the JSON "message" when
// there is one, else the body itself.
func greenAPIMessage(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var m struct {
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(trimmed, &m) == nil && len(m.Message) > 0 {
			var s string
			if json.Unmarshal(m.Message, &s) == nil {
				return s
			}
			var list []string
			if json.Unmarshal(m.Message, &list) == nil {
				return strings.Join(list, "; ")
			}
		}
	}
	return string(trimmed)
}

// String names the resolver without its endpoint: a GreenAPI printed by
// mistake must not show the token.
func (g *GreenAPI) String() string { return greenAPIGateway }

// String prints the config with the token masked, for the same reason.
func (c GreenAPIConfig) String() string {
	return fmt.Sprintf("{BaseURL:%s IDInstance:%s Token:%s Timeout:%s}", c.BaseURL, c.IDInstance, redacted(c.Token), c.Timeout)
}

// LogValue keeps the token out of slog lines that log the config.
func (c GreenAPIConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("baseURL", c.BaseURL),
		slog.String("token", redacted(c.Token)),
		slog.Duration("timeout", c.Timeout),
	)
}
