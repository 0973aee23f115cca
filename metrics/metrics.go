// Package metrics builds the Prometheus registry of a process and the gauges
// of the parts that are not the HTTP edge: the gateway guard and the durable
// tier. Everything is registered on a registry passed in, never on globals,
// so tests and several servers in one process do not collide.
package metrics

import (
	"errors"
	"net/http"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/avatarproxy/avatarproxy/cache"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// NewRegistry returns a registry with the Go runtime and process collectors.
//
// Beyond the Go collector's defaults it exports go_sched_latencies_seconds:
// how long goroutines wait, runnable, for a thread. When the proxy shares its
// cores with busy processes, a hit's tail latency is mostly this wait (under
// wrk on the same 2 cores its p99 was 5.2 ms with GOMAXPROCS=2 and 0.9 ms
// with 4), so it is what tells an operator to raise GOMAXPROCS (README,
// "Sharing cores").
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/sched/latencies:seconds$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the Prometheus text format.
func Handler(reg *prometheus.Registry) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// On the main port a cache in front sees /metrics too: a stored
		// copy would show a scraper figures that no longer move.
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// GuardStater is the part of upstream.Guard read here.
type GuardStater interface{ State() upstream.GuardState }

// RegisterGuard exposes a gateway guard's state: breaker, token bucket,
// calls in flight and refreshes waiting for budget.
func RegisterGuard(reg prometheus.Registerer, gateway string, g GuardStater) error {
	labels := prometheus.Labels{"gateway": gateway}
	gauge := func(name, help string, f func(upstream.GuardState) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return f(g.State()) })
	}
	return errors.Join(
		reg.Register(gauge("avatarproxy_gateway_breaker_open", "1 while the gateway breaker is open (no calls but one probe).",
			func(s upstream.GuardState) float64 { return b2f(s.Open) })),
		reg.Register(gauge("avatarproxy_gateway_tokens", "Tokens left in the gateway's rate bucket.",
			func(s upstream.GuardState) float64 { return s.Tokens })),
		reg.Register(gauge("avatarproxy_gateway_in_flight", "Gateway calls under way.",
			func(s upstream.GuardState) float64 { return float64(s.InFlight) })),
		reg.Register(gauge("avatarproxy_gateway_waiting", "Background refreshes waiting for gateway budget.",
			func(s upstream.GuardState) float64 { return float64(s.Waiting) })),
	)
}

// DurableStater is the part of cache.Durable read here.
type DurableStater interface{ Stats() cache.DurableStats }

// RegisterDurable exposes the durable tier's write queue and health.
func RegisterDurable(reg prometheus.Registerer, d DurableStater) error {
	counter := func(name, help string, f func(cache.DurableStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(d.Stats())) })
	}
	return errors.Join(
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "avatarproxy_durable_queue_length", Help: "Durable writes waiting to be written."},
			func() float64 { return float64(d.Stats().QueueLen) })),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "avatarproxy_durable_down", Help: "1 while the durable tier is skipped after a failure."},
			func() float64 { return b2f(d.Stats().Down) })),
		reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "avatarproxy_durable_abandoned_calls", Help: "Durable-tier calls given up at their deadline and still running (a wedged volume)."},
			func() float64 { return float64(d.Stats().Abandoned) })),
		reg.Register(counter("avatarproxy_durable_written_total", "Durable writes done.", func(s cache.DurableStats) uint64 { return s.Written })),
		reg.Register(counter("avatarproxy_durable_dropped_total", "Durable writes dropped (queue full, tier down, shutdown).", func(s cache.DurableStats) uint64 { return s.Dropped })),
		reg.Register(counter("avatarproxy_durable_errors_total", "Durable tier errors.", func(s cache.DurableStats) uint64 { return s.Errors })),
		reg.Register(counter("avatarproxy_durable_skipped_total", "Durable reads skipped while the tier was down.", func(s cache.DurableStats) uint64 { return s.Skipped })),
	)
}

// RegisterAccessLog exposes the access-log lines dropped because the log
// sink could not keep up (dropped reports the running total).
func RegisterAccessLog(reg prometheus.Registerer, dropped func() int64) error {
	return reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "avatarproxy_access_log_dropped_total",
		Help: "Access-log lines dropped because the log sink could not keep up.",
	}, func() float64 { return float64(dropped()) }))
}

// RegisterServiceLog exposes the service's own log lines (slog's) dropped
// because the log sink could not keep up.
func RegisterServiceLog(reg prometheus.Registerer, dropped func() int64) error {
	return reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "avatarproxy_service_log_dropped_total",
		Help: "Service log lines dropped because the log sink could not keep up.",
	}, func() float64 { return float64(dropped()) }))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
