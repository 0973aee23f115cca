package proxy

import (
	"sync/atomic"
	"time"
)

// Stats counts what the server did. The fields are atomic so the hit path
// pays one uncontended add; a metrics collector reads them with Load.
type Stats struct {
	MemoryHits, StaleHits, StorageHits, RenderHits, Misses, Collapsed  atomic.Int64
	NotModified, BadRequests, Forbidden, FirstLoadTimeouts             atomic.Int64
	GatewayCalls, GatewayErrors, Downloads, LinkExpired, BadPictures   atomic.Int64
	Unchanged, Refreshes, RefreshErrors, RefreshesSkipped              atomic.Int64
	StaleIfError, DurableErrors, DurableDropped, Purges, ClientLimited atomic.Int64

	// Placeholders answered, by X-Avatar-Status.
	PlaceholderPrivacy, PlaceholderNoAvatar, PlaceholderNotOnWhatsApp atomic.Int64
	PlaceholderInvalid, PlaceholderUnavailable                        atomic.Int64

	// observer receives stage latencies; nil drops them.
	observer func(stage string, d time.Duration)
}

// Stage names passed to an observer.
const (
	stageResolve     = "resolve"
	stageDownload    = "download"
	stageResize      = "resize"
	stageStorage     = "storage"
	stagePlaceholder = "placeholder"
)

func (st *Stats) observe(stage string, d time.Duration) {
	if st.observer != nil {
		st.observer(stage, d)
	}
}

func (st *Stats) placeholder(status string) {
	switch status {
	case "privacy":
		st.PlaceholderPrivacy.Add(1)
	case "no-avatar":
		st.PlaceholderNoAvatar.Add(1)
	case "not-on-whatsapp":
		st.PlaceholderNotOnWhatsApp.Add(1)
	case "invalid":
		st.PlaceholderInvalid.Add(1)
	case statusUnavailable:
		st.PlaceholderUnavailable.Add(1)
	}
}

// Stats returns the live counters (read them with Load).
func (s *Server) Stats() *Stats { return &s.stats }
