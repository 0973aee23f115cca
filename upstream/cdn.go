package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

var (
	// ErrLinkExpired means the CDN refused the link as stale (403 "URL
	// signature expired", or 404/410): ask the gateway for a fresh link, once.
	ErrLinkExpired = errors.New("cdn link expired")
	// ErrForbiddenTarget means the fetcher refused the target: a host outside
	// the allow-list, a scheme other than https, or an address that is not
	// public (checked when dialling, after DNS and after every redirect).
	ErrForbiddenTarget = errors.New("forbidden fetch target")
	// ErrTooLarge means the picture is bigger than FetcherConfig.MaxBytes.
	ErrTooLarge = errors.New("picture too large")
)

// DefaultCDNAllow is the allow-list used when FetcherConfig.Allow is empty.
var DefaultCDNAllow = []string{"pps.whatsapp.net", "*.whatsapp.net"}

const (
	defaultFetchMaxBytes  = 4 << 20
	defaultFetchTimeout   = 10 * time.Second
	defaultFetchRedirects = 3
	cdnGateway            = "cdn"
	cdnUserAgent          = "avatarproxy"
	// cdnErrBodyCap bounds what is read of a 403 body to tell "expired"
	// from other refusals.
	cdnErrBodyCap = 1 << 10
	// cdnDrainCap bounds what is read of a failed answer's body before it
	// is closed, so that an HTTP/1.1 connection goes back to the pool
	// instead of being dropped (net/http drains redirects the same way).
	cdnDrainCap = 4 << 10
	// linkSkew is how far our clock and the CDN's may disagree about a
	// link's oe expiry.
	linkSkew = time.Minute
)

// FetcherConfig configures a Fetcher. The zero value is usable: the
// WhatsApp CDN only, https only, public addresses only.
type FetcherConfig struct {
	// Allow lists the hosts pictures may come from: "host", "host:port",
	// "host:*", "*.domain" (strict subdomains); see ParseAllowList. Empty
	// means DefaultCDNAllow.
	Allow []string
	// AllowPrivate permits loopback, private and other special addresses and
	// plain http. For tests and demo mode only.
	AllowPrivate bool
	// MaxBytes caps a picture; checked on Content-Length and while reading.
	// Zero means 4 MiB.
	MaxBytes int64
	// Timeout bounds a whole download, redirects and body included. Zero
	// means 10s.
	Timeout time.Duration
	// MaxRedirects caps the redirect hops followed. Zero means 3; negative
	// means none are followed.
	MaxRedirects int
	// Logger receives debug lines about refused targets; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock links' oe expiry is judged by; nil means time.Now.
	Now func() time.Time
}

// Fetcher downloads pictures from the WhatsApp CDN, refusing anything that
// could turn it into a proxy into the internal network. Safe for concurrent
// use; it holds one http.Client for its lifetime.
type Fetcher struct {
	allow        []hostPattern
	allowPrivate bool
	maxBytes     int64
	timeout      time.Duration
	maxRedirects int
	log          *slog.Logger
	now          func() time.Time
	client       *http.Client
	// dialOK decides each dialled address; tests swap it to let one
	// loopback server through while the guard stays on for the rest.
	dialOK func(netip.AddrPort) bool
}

// NewFetcher validates cfg, fills in defaults and builds the client.
func NewFetcher(cfg FetcherConfig) (*Fetcher, error) {
	var errs []error
	allow := cfg.Allow
	if len(allow) == 0 {
		allow = DefaultCDNAllow
	}
	f := &Fetcher{
		allowPrivate: cfg.AllowPrivate,
		maxBytes:     cfg.MaxBytes,
		timeout:      cfg.Timeout,
		maxRedirects: cfg.MaxRedirects,
		log:          cfg.Logger,
		now:          cfg.Now,
	}
	for _, s := range allow {
		p, err := parseHostPattern(strings.TrimSpace(s))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.allow = append(f.allow, p)
	}
	if f.maxBytes < 0 {
		errs = append(errs, errors.New("cdn: MaxBytes must not be negative"))
	}
	if f.timeout < 0 {
		errs = append(errs, errors.New("cdn: Timeout must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if f.maxBytes == 0 {
		f.maxBytes = defaultFetchMaxBytes
	}
	if f.timeout == 0 {
		f.timeout = defaultFetchTimeout
	}
	switch {
	case f.maxRedirects == 0:
		f.maxRedirects = defaultFetchRedirects
	case f.maxRedirects < 0:
		f.maxRedirects = 0
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.dialOK = publicAddrPort
	if f.allowPrivate {
		f.dialOK = func(netip.AddrPort) bool { return true }
	}

	dialer := &net.Dialer{
		Timeout:   f.timeout,
		KeepAlive: 30 * time.Second,
		// Looked up through f at dial time so tests can swap dialOK.
		Control: dialControl(func(ap netip.AddrPort) bool { return f.dialOK(ap) }),
	}
	transport := &http.Transport{
		// Never from the environment: a proxy would do the dialling, and
		// the address check would see the proxy instead of the target.
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    min(f.timeout, 5*time.Second),
		ResponseHeaderTimeout:  f.timeout,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConnsPerHost:    16,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
		// Pictures are compressed already; asking for gzip would only hide
		// Content-Length from the size check.
		DisableCompression: true,
	}
	f.client = &http.Client{Transport: locationCheck{transport}, CheckRedirect: f.checkRedirect}
	return f, nil
}

// checkRedirect holds every hop to the rules of the first request. The
// address of the hop is checked again when it is dialled.
func (f *Fetcher) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > f.maxRedirects {
		return errTooManyRedirects
	}
	return f.checkTarget(req.URL)
}

var errTooManyRedirects = errors.New("too many redirects")

// checkTarget applies the scheme and allow-list rules to u.
func (f *Fetcher) checkTarget(u *url.URL) error {
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.allowPrivate:
	default:
		return fmt.Errorf("%w: scheme %q", ErrForbiddenTarget, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: credentials in URL", ErrForbiddenTarget)
	}
	if !allowedHost(f.allow, u.Scheme, u.Host) {
		return fmt.Errorf("%w: host %q not allowed", ErrForbiddenTarget, u.Hostname())
	}
	return nil
}

// Fetch downloads rawURL, used exactly as given (its query is the CDN's
// signature), and returns the body of a 200 answer; the caller owns the
// slice. It does not look at the bytes: that is the decoder's job.
//
// A link whose oe expiry (LinkExpiry) passed more than a minute ago is
// ErrLinkExpired without a request: the CDN would only refuse it.
//
// Every error satisfies errors.Is(err, ErrUnavailable) and is an *Error
// (Gateway "cdn"); ErrLinkExpired, ErrForbiddenTarget and ErrTooLarge are
// also matched when they apply. Error texts hold no URL: a signed CDN link is
// a bearer capability for someone's photo.
func (f *Fetcher) Fetch(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, cdnError(0, "malformed url", nil, ErrForbiddenTarget)
	}
	if err := f.checkTarget(u); err != nil {
		f.log.DebugContext(ctx, "cdn: refused target", "host", u.Hostname(), "err", err)
		return nil, cdnError(0, "", err, nil)
	}
	expiry, hasExpiry := LinkExpiry(rawURL)
	if hasExpiry && f.now().Sub(expiry) > linkSkew {
		return nil, cdnError(0, "", ErrLinkExpired, nil)
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, cdnError(0, "malformed url", nil, ErrForbiddenTarget)
	}
	req.Header.Set("User-Agent", cdnUserAgent)
	req.Header.Set("Accept", "image/*")

	resp, err := f.client.Do(req)
	if err != nil {
		err = stripURLError(err)
		switch {
		case errors.Is(err, ErrForbiddenTarget):
			f.log.DebugContext(ctx, "cdn: refused target", "host", u.Hostname(), "err", err)
			return nil, cdnError(0, "", err, nil)
		case errors.Is(err, errTooManyRedirects):
			return nil, cdnError(0, "too many redirects", nil, nil)
		case errors.Is(err, errMalformedRedirect):
			return nil, cdnError(0, "malformed redirect", nil, nil)
		}
		return nil, cdnError(0, "request failed", nil, err)
	}
	defer func() {
		// Error bodies are a few bytes ("Not Found"); reading them lets
		// the next fetch skip a TCP and TLS handshake. A body that may be
		// longer is not worth the wait.
		if resp.StatusCode != http.StatusOK && resp.ContentLength <= cdnDrainCap {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, cdnDrainCap))
		}
		resp.Body.Close()
	}()

	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusForbidden:
		// Meta CDNs answer a stale signature with 403 "URL signature
		// expired", but also with "Bad URL timestamp" or "Bad URL date
		// param"; so a 403 at or past oe (give or take the skew) is
		// staleness too. Other 403s ("Bad URL hash") are not.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, cdnErrBodyCap))
		if bytes.Contains(bytes.ToLower(b), []byte("expired")) ||
			hasExpiry && !f.now().Before(expiry.Add(-linkSkew)) {
			return nil, cdnError(resp.StatusCode, "", ErrLinkExpired, nil)
		}
		return nil, cdnError(resp.StatusCode, "refused by cdn", nil, nil)
	case http.StatusNotFound, http.StatusGone:
		return nil, cdnError(resp.StatusCode, "", ErrLinkExpired, nil)
	case http.StatusTooManyRequests:
		e := cdnError(resp.StatusCode, "rate limited", nil, nil)
		e.Failure = RateLimited
		e.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), f.now())
		return nil, e
	default:
		return nil, cdnError(resp.StatusCode, "unexpected status", nil, nil)
	}

	if resp.ContentLength > f.maxBytes {
		return nil, cdnError(resp.StatusCode, "", ErrTooLarge, nil)
	}
	var data []byte
	if resp.ContentLength >= 0 {
		// One exact allocation; the transport stops the body at
		// Content-Length and reports a short one as an unexpected EOF.
		data = make([]byte, resp.ContentLength)
		_, err = io.ReadFull(resp.Body, data)
	} else {
		data, err = io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	}
	if err != nil {
		return nil, cdnError(resp.StatusCode, "reading body", nil, stripURLError(err))
	}
	if int64(len(data)) > f.maxBytes {
		return nil, cdnError(resp.StatusCode, "", ErrTooLarge, nil)
	}
	if len(data) == 0 {
		return nil, cdnError(resp.StatusCode, "empty body", nil, nil)
	}
	return data, nil
}

// cdnError builds the *Error every Fetch failure is. kind, when set, is the
// sentinel callers match on and already says what happened, so reason may be
// empty; cause is the underlying error, URL-free.
func cdnError(status int, reason string, kind, cause error) *Error {
	var err error
	switch {
	case kind != nil && cause != nil:
		err = fmt.Errorf("%w: %w", kind, cause)
	case kind != nil:
		err = kind
	default:
		err = cause
	}
	return &Error{Gateway: cdnGateway, Failure: Transient, Status: status, Reason: reason, Err: err}
}
