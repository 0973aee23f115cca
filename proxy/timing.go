package proxy

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"
)

// timing accumulates the stages of one fill for Server-Timing. It rides the
// fill's context, so every request that waited on the fill reports it.
type timing struct {
	resolve, download, resize, storage atomic.Int64 // nanoseconds
}

type timingKey struct{}

func withTiming(ctx context.Context) (context.Context, *timing) {
	t := &timing{}
	return context.WithValue(ctx, timingKey{}, t), t
}

// observe records a stage for metrics and, when the fill is timed, for
// Server-Timing.
func (s *Server) observe(ctx context.Context, stage string, d time.Duration) {
	s.stats.observe(stage, d)
	t, _ := ctx.Value(timingKey{}).(*timing)
	if t == nil {
		return
	}
	switch stage {
	case stageResolve:
		t.resolve.Add(int64(d))
	case stageDownload:
		t.download.Add(int64(d))
	case stageResize:
		t.resize.Add(int64(d))
	case stageStorage:
		t.storage.Add(int64(d))
	}
}

// header renders the Server-Timing value (RFC: dur in milliseconds).
func (t *timing) header() string {
	b := make([]byte, 0, 96)
	add := func(name string, v *atomic.Int64) {
		if v.Load() == 0 {
			return
		}
		if len(b) > 0 {
			b = append(b, ", "...)
		}
		b = append(b, name...)
		b = append(b, ";dur="...)
		b = strconv.AppendFloat(b, float64(v.Load())/1e6, 'f', 2, 64)
	}
	add("resolve", &t.resolve)
	add("download", &t.download)
	add("resize", &t.resize)
	add("storage", &t.storage)
	return string(b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
