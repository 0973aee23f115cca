package proxy

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/avatarproxy/avatarproxy/upstream"
)

// registerMetrics exposes the server's counters and latencies on reg. The
// counters stay plain atomics on the hot path; the collector reads them at
// scrape time.
func (s *Server) registerMetrics(reg prometheus.Registerer) error {
	stages := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "avatarproxy_stage_duration_seconds",
		Help:    "Latency of the stages of a miss: gateway resolve, CDN download, resize, durable storage, placeholder drawing.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"stage"})
	s.gatewayCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "avatarproxy_gateway_calls_total",
		Help: "Gateway calls by gateway and outcome (a state, or the failure class).",
	}, []string{"gateway", "outcome"})
	s.stats.observer = func(stage string, d time.Duration) { stages.WithLabelValues(stage).Observe(d.Seconds()) }
	return errors.Join(reg.Register(stages), reg.Register(s.gatewayCalls), reg.Register(statsCollector{s}))
}

// gatewayOutcome labels a gateway call.
func gatewayOutcome(res upstream.Result, err error) string {
	if err == nil {
		return string(res.State)
	}
	var ue *upstream.Error
	switch {
	case errors.Is(err, upstream.ErrBreakerOpen):
		return "breaker_open"
	case errors.Is(err, upstream.ErrBusy):
		return "busy"
	case errors.As(err, &ue):
		return ue.Failure.String()
	}
	return "error"
}

type statsCollector struct{ s *Server }

type counterDesc struct {
	desc  *prometheus.Desc
	label string
	v     func(*Stats) *atomic.Int64
}

var (
	requestsDesc = prometheus.NewDesc("avatarproxy_requests_total",
		"Avatar requests by outcome: memory_hit, stale_hit, storage_hit, render (another size from a source in memory), miss, collapsed (waited on another's fill), not_modified, bad_request, forbidden, client_limited, first_load_timeout.", []string{"outcome"}, nil)
	placeholdersDesc = prometheus.NewDesc("avatarproxy_placeholders_total",
		"Placeholder answers by reason (the X-Avatar-Status).", []string{"reason"}, nil)
	eventsDesc = prometheus.NewDesc("avatarproxy_events_total",
		"Pipeline events: downloads, expired CDN links, rejected pictures, unchanged pictures (download skipped), refreshes, refresh errors, refreshes skipped, stale-if-error answers, durable errors and dropped writes, purges.", []string{"event"}, nil)
	memItemsDesc  = prometheus.NewDesc("avatarproxy_memory_items", "Entries in the memory cache.", nil, nil)
	memBytesDesc  = prometheus.NewDesc("avatarproxy_memory_bytes", "Bytes charged to the memory cache budget.", nil, nil)
	refreshesDesc = prometheus.NewDesc("avatarproxy_refreshes_in_flight", "Background refreshes under way (the refresh queue).", nil, nil)
	waitingDesc   = prometheus.NewDesc("avatarproxy_fill_waiters", "Requests waiting on a fill.", nil, nil)
)

var counters = []counterDesc{
	{requestsDesc, "memory_hit", func(s *Stats) *atomic.Int64 { return &s.MemoryHits }},
	{requestsDesc, "stale_hit", func(s *Stats) *atomic.Int64 { return &s.StaleHits }},
	{requestsDesc, "storage_hit", func(s *Stats) *atomic.Int64 { return &s.StorageHits }},
	{requestsDesc, "render", func(s *Stats) *atomic.Int64 { return &s.RenderHits }},
	{requestsDesc, "miss", func(s *Stats) *atomic.Int64 { return &s.Misses }},
	{requestsDesc, "collapsed", func(s *Stats) *atomic.Int64 { return &s.Collapsed }},
	{requestsDesc, "not_modified", func(s *Stats) *atomic.Int64 { return &s.NotModified }},
	{requestsDesc, "bad_request", func(s *Stats) *atomic.Int64 { return &s.BadRequests }},
	{requestsDesc, "forbidden", func(s *Stats) *atomic.Int64 { return &s.Forbidden }},
	{requestsDesc, "client_limited", func(s *Stats) *atomic.Int64 { return &s.ClientLimited }},
	{requestsDesc, "first_load_timeout", func(s *Stats) *atomic.Int64 { return &s.FirstLoadTimeouts }},
	{placeholdersDesc, "privacy", func(s *Stats) *atomic.Int64 { return &s.PlaceholderPrivacy }},
	{placeholdersDesc, "no-avatar", func(s *Stats) *atomic.Int64 { return &s.PlaceholderNoAvatar }},
	{placeholdersDesc, "not-on-whatsapp", func(s *Stats) *atomic.Int64 { return &s.PlaceholderNotOnWhatsApp }},
	{placeholdersDesc, "invalid", func(s *Stats) *atomic.Int64 { return &s.PlaceholderInvalid }},
	{placeholdersDesc, "unavailable", func(s *Stats) *atomic.Int64 { return &s.PlaceholderUnavailable }},
	{eventsDesc, "download", func(s *Stats) *atomic.Int64 { return &s.Downloads }},
	{eventsDesc, "link_expired", func(s *Stats) *atomic.Int64 { return &s.LinkExpired }},
	{eventsDesc, "bad_picture", func(s *Stats) *atomic.Int64 { return &s.BadPictures }},
	{eventsDesc, "unchanged", func(s *Stats) *atomic.Int64 { return &s.Unchanged }},
	{eventsDesc, "refresh", func(s *Stats) *atomic.Int64 { return &s.Refreshes }},
	{eventsDesc, "refresh_error", func(s *Stats) *atomic.Int64 { return &s.RefreshErrors }},
	{eventsDesc, "refresh_skipped", func(s *Stats) *atomic.Int64 { return &s.RefreshesSkipped }},
	{eventsDesc, "stale_if_error", func(s *Stats) *atomic.Int64 { return &s.StaleIfError }},
	{eventsDesc, "durable_error", func(s *Stats) *atomic.Int64 { return &s.DurableErrors }},
	{eventsDesc, "durable_dropped", func(s *Stats) *atomic.Int64 { return &s.DurableDropped }},
	{eventsDesc, "purge", func(s *Stats) *atomic.Int64 { return &s.Purges }},
}

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{requestsDesc, placeholdersDesc, eventsDesc, memItemsDesc, memBytesDesc, refreshesDesc, waitingDesc} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, k := range counters {
		ch <- prometheus.MustNewConstMetric(k.desc, prometheus.CounterValue, float64(k.v(&c.s.stats).Load()), k.label)
	}
	ms := c.s.mem.Stats()
	ch <- prometheus.MustNewConstMetric(memItemsDesc, prometheus.GaugeValue, float64(ms.Items))
	ch <- prometheus.MustNewConstMetric(memBytesDesc, prometheus.GaugeValue, float64(ms.Bytes))
	ch <- prometheus.MustNewConstMetric(refreshesDesc, prometheus.GaugeValue, float64(c.s.refreshes.Load()))
	ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(c.s.waiting.Load()))
}
