package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	greenAPIGateway = "greenapi"
	// greenAPIBodyCap bounds a getAvatar answer: the largest real one is a
	// URL of a few hundred bytes (base64Avatar, where sent, is a thumbnail).
	greenAPIBodyCap        = 64 << 10
	defaultGreenAPITimeout = 10 * time.Second
)

// GreenAPIConfig configures the Green API resolver.
type GreenAPIConfig struct {
	// BaseURL is the instance's apiUrl, e.g. https://1103.api.green-api.com.
	// One trailing slash is tolerated.
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
	endpoint string // carries the token: never log it, never put it in an error
	secrets  []string
	timeout  time.Duration
	client   *http.Client
	log      *slog.Logger
}

var _ Resolver = (*GreenAPI)(nil)

// NewGreenAPI validates cfg and returns the resolver. Its errors name the
// field at fault, never the token.
func NewGreenAPI(cfg GreenAPIConfig) (*GreenAPI, error) {
	var errs []error
	base := strings.TrimSuffix(strings.TrimSpace(cfg.BaseURL), "/")
	u, err := url.Parse(base)
	switch {
	case err != nil || base == "":
		errs = append(errs, errors.New("greenapi: BaseURL does not parse"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, errors.New("greenapi: BaseURL must be http or https"))
	case u.Host == "":
		errs = append(errs, errors.New("greenapi: BaseURL has no host"))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		errs = append(errs, errors.New("greenapi: BaseURL must not carry credentials, a query or a fragment"))
	}
	if !allDigits(cfg.IDInstance) {
		errs = append(errs, errors.New("greenapi: IDInstance must be digits"))
	}
	switch {
	case cfg.Token == "":
		errs = append(errs, errors.New("greenapi: Token is empty"))
	case !pathSafe(cfg.Token):
		errs = append(errs, errors.New("greenapi: Token holds characters a URL path cannot carry as is"))
	}
	if cfg.Timeout < 0 {
		errs = append(errs, errors.New("greenapi: Timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	g := &GreenAPI{
		endpoint: base + "/waInstance" + cfg.IDInstance + "/getAvatar/" + cfg.Token,
		secrets:  []string{cfg.Token, "waInstance" + cfg.IDInstance},
		timeout:  cfg.Timeout,
		client:   cfg.Client,
		log:      cfg.Logger,
	}
	if g.timeout == 0 {
		g.timeout = defaultGreenAPITimeout
	}
	if g.client == nil {
		g.client = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	return g, nil
}

func allDigits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
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
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	// Only chatId: the legacy phoneNumber field was dropped in 2020.
	body, err := json.Marshal(struct {
		ChatID string `json:"chatId"`
	}{req.Chat.String()})
	if err != nil {
		return Result{}, g.fail(ctx, req, &Error{Reason: "encoding request", Err: err})
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, g.endpoint, bytes.NewReader(body))
	if err != nil {
		// NewGreenAPI validated every part; keep the URL out of it anyway.
		return Result{}, g.fail(ctx, req, &Error{Reason: "building request", Err: g.scrub(err)})
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")

	resp, err := g.client.Do(hreq)
	if err != nil {
		return Result{}, g.fail(ctx, req, &Error{Reason: "request failed", Err: g.scrub(err)})
	}
	defer resp.Body.Close()
	if resp.ContentLength > greenAPIBodyCap {
		return Result{}, g.fail(ctx, req, &Error{Status: resp.StatusCode, Reason: "response too large"})
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, greenAPIBodyCap+1))
	if err != nil {
		return Result{}, g.fail(ctx, req, &Error{Status: resp.StatusCode, Reason: "reading response", Err: g.scrub(err)})
	}
	if len(data) > greenAPIBodyCap {
		return Result{}, g.fail(ctx, req, &Error{Status: resp.StatusCode, Reason: "response too large"})
	}
	res, err := greenAPIAnswer(resp.StatusCode, resp.Header.Get("Retry-After"), data, time.Now())
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return Result{}, g.fail(ctx, req, e)
		}
		return Result{}, err
	}
	return res, nil
}

// fail completes e and logs what needs an operator.
func (g *GreenAPI) fail(ctx context.Context, req Request, e *Error) *Error {
	e.Gateway = greenAPIGateway
	switch e.Failure {
	case Config:
		g.log.ErrorContext(ctx, "greenapi: credentials rejected; check the instance id and token",
			"status", e.Status, "chat", req.Chat.Masked())
	case Account:
		g.log.WarnContext(ctx, "greenapi: instance cannot serve requests",
			"status", e.Status, "reason", e.Reason, "chat", req.Chat.Masked())
	}
	return e
}

// scrub strips the URL that net/http wraps around transport errors and, as a
// backstop, replaces any cause whose text still shows a secret.
func (g *GreenAPI) scrub(err error) error {
	err = stripURLError(err)
	msg := err.Error()
	for _, s := range g.secrets {
		if strings.Contains(msg, s) {
			if errors.Is(err, context.DeadlineExceeded) {
				return context.DeadlineExceeded
			}
			if errors.Is(err, context.Canceled) {
				return context.Canceled
			}
			return errors.New("transport error")
		}
	}
	return err
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
// (Gateway not yet set). It is total: any status and body yield one or the
// other. retryAfter is the Retry-After header, now the clock for its
// HTTP-date form.
func greenAPIAnswer(status int, retryAfter string, body []byte, now time.Time) (Result, error) {
	switch {
	case status == http.StatusOK:
		return greenAPIOK(body)
	case status == http.StatusBadRequest:
		return greenAPI400(body)
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return Result{}, &Error{Failure: Config, Status: status, Reason: "credentials rejected"}
	case status == http.StatusTooManyRequests:
		return Result{}, &Error{Failure: RateLimited, Status: status, Reason: "rate limited",
			RetryAfter: retryAfterDelay(retryAfter, now)}
	case status == 466:
		return Result{}, &Error{Failure: Account, Status: status, Reason: "quota exhausted"}
	}
	return Result{}, &Error{Failure: Transient, Status: status, Reason: "unexpected status"}
}

func greenAPIOK(body []byte) (Result, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Result{}, &Error{Failure: Transient, Status: http.StatusOK, Reason: "malformed response"}
	}
	var b greenAPIBody
	if err := json.Unmarshal(trimmed, &b); err != nil {
		return Result{}, &Error{Failure: Transient, Status: http.StatusOK, Reason: "malformed response"}
	}
	// Seen in the wild and special-cased by the official Go SDK: a 200
	// carrying {"code":401,"description":"Unauthorized"}.
	if b.URLAvatar == nil && b.Code != nil && *b.Code == http.StatusUnauthorized {
		return Result{}, &Error{Failure: Config, Status: http.StatusOK, Reason: "credentials rejected"}
	}
	if b.URLAvatar == nil && b.Available == nil && b.ExistsWhatsapp == nil && b.Reason == nil {
		// Not a getAvatar answer (a captive portal, another API): caching a
		// "no avatar" on its word would hide a real picture.
		return Result{}, &Error{Failure: Transient, Status: http.StatusOK, Reason: "unexpected response"}
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
		if !absoluteHTTPURL(link) {
			return Result{}, &Error{Failure: Transient, Status: http.StatusOK, Reason: "malformed urlAvatar"}
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
			return Result{}, &Error{Failure: Transient, Status: http.StatusOK, Reason: "avatar check timed out"}
		default:
			// reason means the check did not happen: not an answer to cache.
			return Result{}, &Error{Failure: Transient, Status: http.StatusOK, Reason: "avatar check failed"}
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
func greenAPI400(body []byte) (Result, error) {
	msg := strings.ToLower(greenAPIMessage(body))
	e := func(f Failure, reason string) (Result, error) {
		return Result{}, &Error{Failure: f, Status: http.StatusBadRequest, Reason: reason}
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

// absoluteHTTPURL reports whether s parses as an http(s) URL with a host, so
// a Result in StateOK always names something fetchable.
func absoluteHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// maxRetryAfter bounds a Retry-After so a hostile or broken header cannot
// park a breaker for days.
const maxRetryAfter = time.Hour

// retryAfterDelay parses a Retry-After value, delta-seconds or HTTP-date
// (RFC 9110 10.2.3). It returns 0 when h is absent, malformed or in the past.
func retryAfterDelay(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(h, 10, 64); err == nil {
		if secs > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(h); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}

// String names the resolver without its endpoint: a GreenAPI printed by
// mistake must not show the token.
func (g *GreenAPI) String() string { return greenAPIGateway }

// String prints the config with the token masked, for the same reason.
func (c GreenAPIConfig) String() string {
	return fmt.Sprintf("{BaseURL:%s IDInstance:%s Token:%s Timeout:%s}", c.BaseURL, c.IDInstance, maskedSecret(c.Token), c.Timeout)
}

// LogValue keeps the token out of slog lines that log the config.
func (c GreenAPIConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("baseURL", c.BaseURL),
		slog.String("token", maskedSecret(c.Token)),
		slog.Duration("timeout", c.Timeout),
	)
}

func maskedSecret(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}
