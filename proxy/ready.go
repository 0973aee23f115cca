package proxy

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"
)

// handleReady is /readyz: 200 when every readiness check passes (the gateway
// breaker is closed, the durable tier answers), else 503 with a short JSON
// reason. /healthz stays a liveness check that only says the process serves.
func (s *Server) handleReady(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	if s.cfg.Ready == nil {
		return c.JSON(readyBody{Status: "ready"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if reason := s.cfg.Ready(ctx); reason != "" {
		c.Status(fiber.StatusServiceUnavailable)
		b, _ := json.Marshal(readyBody{Status: "not ready", Reason: reason})
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(b)
	}
	return c.JSON(readyBody{Status: "ready"})
}

type readyBody struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}
