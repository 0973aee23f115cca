package proxy

import (
	"bytes"
	"errors"
	"net"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// The fast path answers memory hits of /avatar/{chatId}.{ext} URLs on
// fasthttp itself, in front of the fiber app. A hit is most of the traffic
// of an avatar edge, and under load fiber's per-request work (context
// from a pool, path copies and lowercasing, route matching, the middleware
// chain) cost more than the hit itself. Everything that is not a plain hit
// is left to the fiber app untouched, which then does all of it again: the
// fast path has no error handling of its own, and answers with the same
// send as the fiber route, so the two cannot differ
// (TestFastPathMatchesFiber compares them byte for byte).

var avatarPrefix = []byte("/avatar/")

// handler serves a request: the fast path, then the fiber app.
func (s *Server) handler(fiberHandler fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		switch {
		case s.serveFast(ctx):
		case !knownMethod(ctx.Method()):
			s.serveUnknownMethod(ctx)
		default:
			fiberHandler(ctx)
		}
	}
}

// knownMethod reports whether fiber routes method (its default methods;
// methods are case-sensitive).
func knownMethod(method []byte) bool {
	for _, m := range fiber.DefaultMethods {
		if string(method) == m {
			return true
		}
	}
	return false
}

// serveUnknownMethod answers a method fiber does not know with 501 (RFC
// 9110 9.1). Fiber would answer it itself, before its middleware and error
// handler, with a bare 400: no no-store, no nosniff, no request id, no line.
func (s *Server) serveUnknownMethod(ctx *fasthttp.RequestCtx) {
	s.answerError(ctx, fiber.ErrNotImplemented, lineWithRequest)
}

// serverError is fasthttp's error handler: it answers a request fasthttp
// refused before any handler ran. fiber's own would map the error to a
// status without an access line, and a client that reset its connection
// mid-request to a 502 logged as an internal error.
func (s *Server) serverError(ctx *fasthttp.RequestCtx, err error) {
	var ne net.Error
	switch {
	case errors.As(err, new(*fasthttp.ErrSmallBuffer)):
		s.answerError(ctx, fiber.ErrRequestHeaderFieldsTooLarge, lineWithoutRequest)
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		// The one refusal that comes after the request line parsed.
		s.answerError(ctx, fiber.ErrRequestEntityTooLarge, lineWithRequest)
	case errors.As(err, &ne) && ne.Timeout():
		// No line: fasthttp sends a 408 down every connection that never
		// carried a request too (a browser's preconnect), and a line for
		// each would be noise.
		s.answerError(ctx, fiber.ErrRequestTimeout, noLine)
	case errors.As(err, &ne):
		// The client went away mid-request (a reset): nothing here
		// failed, and no answer will reach anyone.
		ctx.SetStatusCode(fiber.StatusBadRequest)
	default:
		// A request that does not parse; the error text may quote it, so
		// it goes nowhere.
		s.answerError(ctx, fiber.ErrBadRequest, lineWithoutRequest)
	}
}

// What answerError writes to the access log.
type errorLine int

const (
	lineWithRequest    errorLine = iota // the request line parsed: its method and path
	lineWithoutRequest                  // they are fasthttp's defaults (GET /), not the client's: left out
	noLine
)

// answerError answers ctx with err through handleError, as any route's error
// is answered, with the access line line says.
func (s *Server) answerError(ctx *fasthttp.RequestCtx, err *fiber.Error, line errorLine) {
	c := s.app.AcquireCtx(ctx)
	defer s.app.ReleaseCtx(c)
	var rec *accessRecord
	if s.cfg.AccessLog != nil && line != noLine {
		rec = s.startAccess(ctx)
		rec.unparsed = line == lineWithoutRequest
	}
	_ = s.handleError(c, err) // writes the answer; never fails
	if rec != nil {
		s.finishAccess(ctx, rec)
	}
}

// serveFast answers ctx and reports true when it is a GET or HEAD of
// /avatar/{file} with a valid query and signature that the memory cache can
// answer. It reports false, having written nothing, for anything else: a
// miss, bad input, a bad signature, an opaque token, another route, and
// every request of a server with a per-client rate limit (its client
// address rules live in fiber).
func (s *Server) serveFast(ctx *fasthttp.RequestCtx) (served bool) {
	if s.limiter != nil || !(ctx.IsGet() || ctx.IsHead()) {
		return false
	}
	file, ok := bytes.CutPrefix(ctx.URI().PathOriginal(), avatarPrefix)
	if !ok || len(file) == 0 || bytes.IndexByte(file, '/') >= 0 {
		return false
	}
	// A panic here would otherwise take the process down: fasthttp does not
	// recover, and fiber's recover middleware is not on this path.
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("internal error", "path", string(appendMaskedPath(nil, ctx.URI().PathOriginal())), "panic", r)
			ctx.Response.Reset()
			ctx.Error("internal error\n", fasthttp.StatusInternalServerError)
			served = true
		}
	}()
	// The strings alias the request's memory, as fiber's do: nothing
	// parsed here outlives the request (refreshAsync copies the chat).
	args := ctx.QueryArgs()
	q := query{Size: view(args.Peek("size")), D: view(args.Peek("d")), Name: view(args.Peek("name")), Sig: view(args.Peek("sig"))}
	req, err := parseAvatar(view(file), q)
	if err != nil {
		return false
	}
	now := s.requestTime(ctx)
	if s.signer != nil && !s.verify(&req, view(args.Peek("exp")), now) {
		return false
	}
	e, cacheStatus := s.memoryHit(&req, now)
	if e == nil {
		return false
	}
	// The access record goes from here to the line directly; fiber's routes
	// reach theirs through the request's user values (noteAccess).
	var rec *accessRecord
	if s.cfg.AccessLog != nil {
		rec = s.startAccess(ctx)
	}
	s.write(ctx, &req, e, now, cacheStatus)
	s.revalidate(&req, e, cacheStatus)
	if rec != nil {
		rec.cache, rec.avatar = cacheStatus, e.status
		s.finishAccess(ctx, rec)
	}
	return true
}

// view is b as a string without a copy; b must outlive every use of it.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
