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
	evolutionGateway        = "evolution"
	defaultEvolutionTimeout = 15 * time.Second
)

// EvolutionConfig configures the Evolution API resolver.
type EvolutionConfig struct {
	// BaseURL is where Evolution API listens, e.g. "http://127.0.0.1:8080".
	// Required; it must not carry credentials.
	BaseURL string
	// APIKey is sent as the apikey header: the global key or the instance's
	// token. Required (Evolution rejects calls without one). A secret: it
	// never reaches a log line or an error.
	APIKey string
	// Instance is the instance name. Required.
	Instance string
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
func (c EvolutionConfig) String() string {
	return fmt.Sprintf("{BaseURL:%s APIKey:%s Instance:%s Timeout:%s}", c.BaseURL, redacted(c.APIKey), c.Instance, c.Timeout)
}

// LogValue keeps the API key out of slog lines that log the config.
func (c EvolutionConfig) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("baseURL", c.BaseURL),
		slog.String("apiKey", redacted(c.APIKey)),
		slog.String("instance", c.Instance),
		slog.Duration("timeout", c.Timeout),
	)
}

// Evolution resolves avatars through Evolution API's
// POST /chat/fetchProfilePictureUrl/{instance} (upstreams.md section 4).
// Evolution swallows every lookup error (no picture, hidden, timeout, and
// probably a disconnected instance too) into profilePictureUrl: null, so
// this resolver can only report StateOK or StateNoAvatar for a chat, the
// latter always Uncertain. It has no preview size. Safe for concurrent use.
type Evolution struct {
	h        gatewayHTTP
	endpoint string
	apiKey   string
}

var _ Resolver = (*Evolution)(nil)

// Validate reports every problem with cfg as *ConfigError values joined;
// none names the key. NewEvolution calls it.
func (cfg EvolutionConfig) Validate() error {
	errs := configErrors{gateway: evolutionGateway}
	if err := checkBaseURL(evolutionGateway, cfg.BaseURL); err != nil {
		errs.errs = append(errs.errs, err)
	}
	switch {
	case cfg.APIKey == "":
		errs.add("APIKey", "is empty")
	case !validHeaderValue(cfg.APIKey):
		errs.add("APIKey", "holds control characters")
	}
	switch {
	case cfg.Instance == "":
		errs.add("Instance", "is empty")
	case strings.TrimSpace(cfg.Instance) != cfg.Instance:
		errs.add("Instance", "has leading or trailing spaces")
	}
	if cfg.Timeout < 0 {
		errs.add("Timeout", "must not be negative")
	}
	return errs.err()
}

// NewEvolution validates cfg and returns the resolver.
func NewEvolution(cfg EvolutionConfig) (*Evolution, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := baseURL(cfg.BaseURL)
	e := &Evolution{
		h:        newGatewayHTTP(evolutionGateway, cfg.Client, cfg.Timeout, defaultEvolutionTimeout, gatewayBodyCap, cfg.Logger, cfg.APIKey),
		endpoint: base + "/chat/fetchProfilePictureUrl/" + url.PathEscape(cfg.Instance),
		apiKey:   cfg.APIKey,
	}
	return e, nil
}

// String names the resolver without its endpoint or key.
func (e *Evolution) String() string { return evolutionGateway }

// evolutionNumber is the "number" Evolution expects: persons as bare digits
// (so Evolution applies its own Brazil/Mexico/Argentina fix-ups), groups and
// lids as full JIDs, which it keeps as they are.
func evolutionNumber(c ChatID) string {
	if c.Kind() == Person {
		return c.User()
	}
	return c.String()
}

// Resolve asks Evolution API for req.Chat's avatar. req.Preview is ignored:
// Evolution serves the full picture only. A zero Chat is StateInvalid
// without a call.
func (e *Evolution) Resolve(ctx context.Context, req Request) (Result, error) {
	if req.Chat.IsZero() {
		return Result{State: StateInvalid}, nil
	}
	body, err := json.Marshal(struct {
		Number string `json:"number"`
	}{evolutionNumber(req.Chat)})
	if err != nil {
		return Result{}, transportFailure(evolutionGateway, err, nil)
	}
	hdr := http.Header{
		"Accept":       {"application/json"},
		"Content-Type": {"application/json"},
		"Apikey":       {e.apiKey},
	}
	return e.h.resolve(ctx, req.Chat, http.MethodPost, e.endpoint, hdr, body, evolutionAnswer)
}

// evolutionAnswer maps one Evolution API answer to a Result or an *Error. It
// is total; the *Error never quotes the body.
func evolutionAnswer(status int, retryAfter string, body []byte, now time.Time) (Result, *Error) {
	fail := func(f Failure, reason string) (Result, *Error) {
		return Result{}, &Error{Gateway: evolutionGateway, Failure: f, Status: status, Reason: reason}
	}
	switch {
	case status >= 200 && status < 300:
		// wuid is always there in evolution-api's answer; requiring one of
		// the two keys keeps an unrelated JSON page from reading as "no
		// picture".
		var b struct {
			WUID *string         `json:"wuid"`
			URL  json.RawMessage `json:"profilePictureUrl"`
		}
		if err := json.Unmarshal(body, &b); err != nil || (b.WUID == nil && b.URL == nil) {
			return fail(Transient, "malformed success answer")
		}
		var u *string
		if b.URL != nil {
			if err := json.Unmarshal(b.URL, &u); err != nil {
				return fail(Transient, "malformed success answer")
			}
		}
		if u == nil || *u == "" {
			// Also what a timeout or a disconnected instance looks like.
			return Result{State: StateNoAvatar, Uncertain: true}, nil
		}
		if !isHTTPURL(*u) {
			return fail(Transient, "success answer without a usable url")
		}
		return Result{State: StateOK, URL: *u}, nil

	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return fail(Config, "api key rejected; check the key")

	case status == http.StatusNotFound:
		return fail(Config, "instance or endpoint not found; check the instance name and base URL")

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
