package testkit

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"
)

// SlogLine is the line slog's own JSON handler (or, with text, its text
// handler) writes for a record of msg at t and level with attrs: the oracle
// for code that writes slog's shape without slog.
func SlogLine(tb testing.TB, text bool, t time.Time, level slog.Level, msg string, attrs ...slog.Attr) string {
	tb.Helper()
	var out bytes.Buffer
	var h slog.Handler = slog.NewJSONHandler(&out, nil)
	if text {
		h = slog.NewTextHandler(&out, nil)
	}
	r := slog.NewRecord(t, level, msg, 0)
	r.AddAttrs(attrs...)
	if err := h.Handle(context.Background(), r); err != nil {
		tb.Fatal(err)
	}
	return out.String()
}
