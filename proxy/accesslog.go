package proxy

import (
	"context"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/gofiber/fiber/v2"
)

const headerRequestID = "X-Request-ID"

// accessLog writes one structured line per request, with a request id taken
// from a valid X-Request-ID or made here, echoed back. The path is logged
// with the phone number masked and without its query (names, signatures);
// the level follows the status.
func (s *Server) accessLog(c *fiber.Ctx) error {
	start := time.Now()
	// id may alias the request's memory: it is logged before the handler
	// returns, and Set copies it into the response.
	id := c.Get(headerRequestID)
	if !validRequestID(id) {
		id = newRequestID()
	}
	c.Set(headerRequestID, id)
	if err := c.Next(); err != nil {
		// Map it now so the line below logs the status the client gets.
		if herr := s.handleError(c, err); herr != nil {
			return herr
		}
	}
	status := c.Response().StatusCode()
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelError
	case status >= 400 && status != fiber.StatusNotFound && status != fiber.StatusTooManyRequests:
		level = slog.LevelWarn
	}
	s.cfg.AccessLog.LogAttrs(context.Background(), level, "request",
		slog.String("id", id),
		slog.String("method", c.Method()),
		slog.String("path", maskPath(c.Path())),
		slog.Int("status", status),
		slog.Int("bytes", len(c.Response().Body())),
		slog.Duration("duration", time.Since(start)),
		slog.String("cache", string(c.Response().Header.Peek("Cache-Status"))),
		slog.String("avatar", string(c.Response().Header.Peek("X-Avatar-Status"))),
	)
	return nil
}

// validRequestID accepts what proxies and load balancers send (UUIDs, hex,
// base64url) and nothing that could forge a log line or a header.
func validRequestID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}
