package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/avatarproxy/avatarproxy/cache"
	"github.com/avatarproxy/avatarproxy/upstream"
)

type guardFunc func() upstream.GuardState

func (f guardFunc) State() upstream.GuardState { return f() }

type durableFunc func() cache.DurableStats

func (f durableFunc) Stats() cache.DurableStats { return f() }

func TestExposition(t *testing.T) {
	reg := NewRegistry()
	state := upstream.GuardState{Open: true, Tokens: 2.5, InFlight: 3, Waiting: 7}
	if err := RegisterGuard(reg, "greenapi", guardFunc(func() upstream.GuardState { return state })); err != nil {
		t.Fatal(err)
	}
	if err := RegisterDurable(reg, durableFunc(func() cache.DurableStats {
		return cache.DurableStats{QueueLen: 4, Written: 10, Dropped: 2, Errors: 1, Skipped: 5, Abandoned: 3, Down: true}
	})); err != nil {
		t.Fatal(err)
	}
	if err := RegisterAccessLog(reg, func() int64 { return 6 }); err != nil {
		t.Fatal(err)
	}
	if err := RegisterServiceLog(reg, func() int64 { return 8 }); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	Handler(reg).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	for _, want := range []string{
		`avatarproxy_gateway_breaker_open{gateway="greenapi"} 1`,
		`avatarproxy_gateway_tokens{gateway="greenapi"} 2.5`,
		`avatarproxy_gateway_in_flight{gateway="greenapi"} 3`,
		`avatarproxy_gateway_waiting{gateway="greenapi"} 7`,
		`avatarproxy_durable_queue_length 4`,
		`avatarproxy_durable_down 1`,
		`avatarproxy_durable_abandoned_calls 3`,
		`avatarproxy_durable_written_total 10`,
		`avatarproxy_durable_dropped_total 2`,
		`avatarproxy_durable_errors_total 1`,
		`avatarproxy_durable_skipped_total 5`,
		`avatarproxy_access_log_dropped_total 6`,
		`avatarproxy_service_log_dropped_total 8`,
		`go_goroutines`,
		`go_gc_duration_seconds`, // the defaults stay
		`go_sched_latencies_seconds_bucket{le=`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("exposition lacks %q", want)
		}
	}
	// A second registration of the same gateway is an error, not a panic.
	if err := RegisterGuard(reg, "greenapi", guardFunc(func() upstream.GuardState { return state })); err == nil {
		t.Error("duplicate registration accepted")
	}
}
