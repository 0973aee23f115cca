package upstream

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file holds what the HTTP clients of this package share: the gateway
// clients (Green API, GOWA, WAHA, Evolution API) make one call with a
// deadline and a capped body and get transport errors stripped of URLs and
// secrets; they and the CDN fetcher parse Retry-After the same way.

// gatewayBodyCap bounds a gateway answer. Real avatar answers are a URL of a
// few hundred bytes; anything near the cap is a misrouted page or garbage.
const gatewayBodyCap = 64 << 10

// retryAfterCap bounds a Retry-After so a broken or hostile header cannot
// park a breaker for days.
const retryAfterCap = time.Hour

var errBodyTooLarge = errors.New("response body too large")

// readCapped reads r to the end but at most limit bytes; a longer body is
// errBodyTooLarge. The returned slice belongs to the caller.
func readCapped(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errBodyTooLarge
	}
	return b, nil
}

// parseRetryAfter reads a Retry-After value, delta-seconds or HTTP-date (RFC
// 9110 section 10.2.3). It returns 0 when v is empty, malformed or in the
// past, and at most retryAfterCap.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs >= uint64(retryAfterCap/time.Second) {
			return retryAfterCap
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, retryAfterCap))
}

// transportFailure is the *Error for a call that got no usable HTTP answer.
// net/http wraps transport errors in *url.Error, whose text is the full
// request URL (phone numbers in GOWA and WAHA queries, a Green API token in
// the path), so only a fixed reason and a scrubbed cause survive. The cause
// still matches context.DeadlineExceeded and context.Canceled.
func transportFailure(gateway string, err error, secrets []string) *Error {
	reason := "network error"
	switch {
	case errors.Is(err, errBodyTooLarge):
		reason = "response too large"
	case errors.Is(err, errMalformedRedirect):
		reason = "malformed redirect"
	case errors.Is(err, context.DeadlineExceeded):
		reason = "timed out"
	case errors.Is(err, context.Canceled):
		reason = "canceled"
	default:
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			reason = "timed out"
		}
	}
	return &Error{Gateway: gateway, Failure: Transient, Reason: reason, Err: scrubCause(err, secrets)}
}

// scrubCause drops every *url.Error layer of err (stripURLError) and redacts
// any secret its text still shows. The result's Unwrap exposes only the
// context sentinels, never the original chain, so no errors.As can dig the
// URL back out.
func scrubCause(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := stripURLError(err).Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	sc := &scrubbedError{msg: msg}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		sc.kind = context.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		sc.kind = context.Canceled
	case errors.Is(err, errBodyTooLarge):
		sc.kind = errBodyTooLarge
	}
	return sc
}

type scrubbedError struct {
	msg  string
	kind error // a sentinel worth matching, or nil
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.kind }

// ConfigError is a problem with one field of a gateway's config. Problem
// never quotes the value: it may be a secret.
type ConfigError struct {
	Gateway string // "greenapi", "gowa", "waha" or "evolution"
	Field   string // the config struct's field: "BaseURL", "Token", ...
	Problem string
}

func (e *ConfigError) Error() string { return e.Gateway + ": " + e.Field + " " + e.Problem }

// configErrors gathers a gateway's ConfigErrors; nil when there are none.
type configErrors struct {
	gateway string
	errs    []error
}

func (c *configErrors) add(field, problem string) {
	c.errs = append(c.errs, &ConfigError{Gateway: c.gateway, Field: field, Problem: problem})
}

func (c *configErrors) err() error { return errors.Join(c.errs...) }

// baseURL is a gateway's base URL as requests are built on it: trimmed, and
// without a trailing slash.
func baseURL(raw string) string { return strings.TrimRight(strings.TrimSpace(raw), "/") }

// checkBaseURL validates a gateway's base URL. Its errors never quote the
// URL: an operator may have put credentials in it, which is exactly what it
// rejects.
func checkBaseURL(gateway, raw string) error {
	base := baseURL(raw)
	u, err := url.Parse(base)
	problem := ""
	switch {
	case base == "":
		problem = "is empty"
	case err != nil:
		problem = "does not parse"
	case u.Scheme != "http" && u.Scheme != "https":
		problem = "must be http or https"
	case u.Host == "":
		problem = "has no host"
	case u.User != nil:
		problem = "must not carry credentials; use the config fields"
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		problem = "must not carry a query or a fragment"
	default:
		return nil
	}
	return &ConfigError{Gateway: gateway, Field: "BaseURL", Problem: problem}
}

// validHeaderValue reports whether s can be sent as an HTTP header value as
// is: no control characters (a CR or LF would split the header).
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// isHTTPURL reports whether s is an absolute http(s) URL with a host, so a
// Result in StateOK always names something the CDN fetcher can try.
func isHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// redacted stands in for a secret in String and LogValue output.
func redacted(s string) string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// noRedirectClient is the client a gateway gets when its config names none.
// Redirects are not followed: a gateway that redirects is misconfigured, and
// net/http would forward custom auth headers (X-Api-Key, apikey) to the new
// host.
func noRedirectClient() *http.Client {
	return &http.Client{
		Transport: locationCheck{http.DefaultTransport.(*http.Transport).Clone()},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// locationCheck refuses a redirect whose Location does not parse before
// net/http sees it: the client quotes such a Location in its error (even when
// it follows no redirect), and a Location may carry a signed CDN link or echo
// the phone number of the request.
type locationCheck struct{ next http.RoundTripper }

func (l locationCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		if loc := resp.Header.Get("Location"); loc != "" {
			if _, perr := req.URL.Parse(loc); perr != nil {
				resp.Body.Close()
				return nil, errMalformedRedirect
			}
		}
	}
	return resp, nil
}

// errMalformedRedirect is locationCheck's refusal, with no Location in it.
var errMalformedRedirect = errors.New("a redirect's Location does not parse")

// gatewayHTTP is the part of a gateway client that makes calls.
type gatewayHTTP struct {
	name    string
	client  *http.Client
	timeout time.Duration
	bodyCap int64
	log     *slog.Logger
	secrets []string // redacted from any error text
}

// newGatewayHTTP fills in the defaults every gateway config documents: a nil
// client is noRedirectClient(), a zero timeout is def, a nil logger is
// slog.Default(). bodyCap bounds an answer's body. secrets are the strings
// no error text may show.
func newGatewayHTTP(name string, client *http.Client, timeout, def time.Duration, bodyCap int64, log *slog.Logger, secrets ...string) gatewayHTTP {
	if client == nil {
		client = noRedirectClient()
	}
	if timeout == 0 {
		timeout = def
	}
	if log == nil {
		log = slog.Default()
	}
	return gatewayHTTP{name: name, client: client, timeout: timeout, bodyCap: bodyCap, log: log, secrets: secrets}
}

// DefaultTimeout is the deadline each call to the named gateway ("greenapi",
// "gowa", "waha" or "evolution") gets when its config's Timeout is zero; zero
// for any other name. It lets a caller check a budget against the deadline
// actually in force without copying the figures.
func DefaultTimeout(gateway string) time.Duration {
	switch gateway {
	case greenAPIGateway:
		return defaultGreenAPITimeout
	case gowaGateway:
		return defaultGOWATimeout
	case wahaGateway:
		return defaultWAHATimeout
	case evolutionGateway:
		return defaultEvolutionTimeout
	}
	return 0
}

// answerFunc maps one HTTP answer of a gateway to a Result or an *Error. It is
// total, and pure so that it can be fuzzed without a server; retryAfter is
// the Retry-After header, now the clock for its HTTP-date form.
type answerFunc func(status int, retryAfter string, body []byte, now time.Time) (Result, *Error)

// resolve makes one call and maps its answer with answer. An *Error that
// needs an operator is logged (logFailure); transport failures are left to
// the guard.
func (g *gatewayHTTP) resolve(ctx context.Context, chat ChatID, method, target string, header http.Header, body []byte, answer answerFunc) (Result, error) {
	rep, e := g.call(ctx, method, target, header, body)
	if e != nil {
		return Result{}, e
	}
	res, e := answer(rep.status, rep.header.Get("Retry-After"), rep.body, time.Now())
	if e != nil {
		g.logFailure(ctx, chat, e)
		return Result{}, e
	}
	return res, nil
}

// reply is one HTTP answer, its body read in full (at most the gateway's bodyCap).
type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request under the gateway's timeout. A nil body sends none.
// Failing to get an answer, or getting one over bodyCap (checked on
// Content-Length and again while reading), is a Transient *Error with a
// scrubbed cause.
func (g *gatewayHTTP) call(ctx context.Context, method, target string, header http.Header, body []byte) (reply, *Error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return reply{}, transportFailure(g.name, err, g.secrets)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return reply{}, transportFailure(g.name, err, g.secrets)
	}
	defer resp.Body.Close()
	var b []byte
	if resp.ContentLength > g.bodyCap {
		err = errBodyTooLarge
	} else {
		b, err = readCapped(resp.Body, g.bodyCap)
	}
	if err != nil {
		e := transportFailure(g.name, err, g.secrets)
		e.Status = resp.StatusCode
		return reply{}, e
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// logFailure reports what needs an operator: Config at Error (nothing heals
// until someone fixes a credential), Account at Warn. Other failures are the
// guard's to report. chat is masked; no secret is ever an attribute.
func (g *gatewayHTTP) logFailure(ctx context.Context, chat ChatID, e *Error) {
	switch e.Failure {
	case Config:
		g.log.ErrorContext(ctx, g.name+": gateway rejected our configuration; calls fail until an operator fixes it",
			"gateway", g.name, "status", e.Status, "reason", e.Reason, "chat", chat.Masked())
	case Account:
		g.log.WarnContext(ctx, g.name+": gateway account cannot serve requests",
			"gateway", g.name, "status", e.Status, "reason", e.Reason, "chat", chat.Masked())
	}
}

// stripURLError unwraps the *url.Error layers net/http puts around transport
// errors: their text embeds the full request URL (a Green API token, a signed
// CDN link, a phone number in a query). What is left names at most a host and
// port.
func stripURLError(err error) error {
	for {
		var ue *url.Error
		if !errors.As(err, &ue) || ue.Err == nil {
			return err
		}
		// errors.As may have found a url.Error below a wrapper; everything
		// above it is dropped with it, which is fine: net/http adds none.
		err = ue.Err
	}
}
