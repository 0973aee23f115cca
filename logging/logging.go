// Package logging builds the process's slog loggers (JSON by default, text
// for a terminal) and the parts of an access log that must cost a request
// almost nothing: an Encoder that writes slog's formats without slog, and
// Lines, a buffer whose writes never block (one goroutine formats and
// writes it out; lines are dropped and counted when the sink cannot keep
// up). It knows nothing of HTTP or avatars.
package logging

import (
	"io"
	"log/slog"
)

// New returns a logger writing format ("json" or "text") at level to w.
func New(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
