package upstream

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// State is what a gateway knows about a chat's avatar. Trouble reaching the
// gateway is not a State: it is an error that satisfies errors.Is(err, ErrUnavailable).
type State string

const (
	StateOK            State = "ok"              // URL names the picture
	StatePrivacy       State = "privacy"         // the owner hides it from us
	StateNoAvatar      State = "no-avatar"       // none set (or the gateway cannot tell it from hidden)
	StateNotOnWhatsApp State = "not-on-whatsapp" // the number has no WhatsApp account
	StateInvalid       State = "invalid"         // the gateway rejected the id
)

// Request is one avatar lookup.
type Request struct {
	Chat ChatID
	// Preview asks for the small (about 96 px) picture where the gateway has
	// one; gateways without previews ignore it and say so in Result.Preview.
	Preview bool
	// Background marks a refresh of an avatar we can still serve stale. A
	// guard lets background calls wait for budget; foreground calls (cold
	// misses with a browser waiting) never queue behind it.
	Background bool
	// Refresh says the link of the previous answer was dead: ask the
	// gateway to look again rather than answer from its own cache. Only
	// WAHA has such a cache and switch (refresh=true; it keeps links 24 h);
	// the Green API, GOWA and Evolution contracts offer none, and they
	// ignore it. Set it only on that retry: WAHA warns that refreshing
	// costs rate limit.
	Refresh bool
}

// Result is a gateway's answer.
type Result struct {
	State State
	// URL is the CDN link, used exactly as given (all query parameters). Set
	// only when State is StateOK.
	URL string
	// PictureID identifies the picture when the gateway names it (GOWA's
	// results.id); empty otherwise. Callers fall back to PictureKey(URL).
	PictureID string
	// Preview reports that URL is the small preview picture.
	Preview bool
	// Uncertain says the gateway gives this answer for failures too:
	// GOWA's INVALID_JID "not on whatsapp" also covers a failed on-WhatsApp
	// lookup, Evolution's null covers any error (a dropped connection
	// included). Cache it briefly, not for a negative TTL of hours. Never
	// set with StateOK.
	Uncertain bool
}

// Resolver is one gateway.
type Resolver interface {
	Resolve(ctx context.Context, req Request) (Result, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, req Request) (Result, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, req Request) (Result, error) { return f(ctx, req) }

// ErrUnavailable is matched (errors.Is) by every failure to get an answer from
// a gateway or the CDN: network trouble, timeouts, 5xx, quota, rate limits,
// bad credentials, garbage bodies. Callers show a placeholder and store nothing.
var ErrUnavailable = errors.New("upstream unavailable")

// Failure classifies an unavailable gateway for the guard in front of it.
type Failure uint8

const (
	// Transient failures (5xx, timeouts, garbage) open a breaker only in runs.
	Transient Failure = iota
	// RateLimited means the gateway or WhatsApp asked us to slow down (429,
	// rate-overlimit); RetryAfter says for how long when known.
	RateLimited
	// Account failures (not authorized, instance starting/expired/deleted,
	// quota exhausted) will not heal by retrying soon: open the breaker now.
	Account
	// Config failures (401/403: wrong token or instance id) need an operator;
	// they are logged loudly and open the breaker too.
	Config
)

func (f Failure) String() string {
	switch f {
	case Transient:
		return "transient"
	case RateLimited:
		return "rate-limited"
	case Account:
		return "account"
	case Config:
		return "config"
	}
	return "unknown"
}

// Error is a gateway failure. Its text never contains a token, a full URL or
// an upstream body: only the gateway name, the status and a short reason
// chosen by this package, so it is safe for logs (not for clients).
type Error struct {
	Gateway    string
	Failure    Failure
	Status     int           // HTTP status, 0 for network errors
	RetryAfter time.Duration // from a 429's Retry-After, 0 when absent
	Reason     string        // short, fixed text, e.g. "instance account not authorized"
	Err        error         // cause, already scrubbed of secrets; may be nil
}

func (e *Error) Error() string {
	s := e.Gateway + ": " + e.Failure.String()
	if e.Status != 0 {
		s += fmt.Sprintf(" (HTTP %d)", e.Status)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap exposes the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes every *Error match ErrUnavailable.
func (e *Error) Is(target error) bool { return target == ErrUnavailable }
