package proxy

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/avatarproxy/avatarproxy/resize"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// sourceResult is what one source load hands to every fill waiting on it.
type sourceResult struct {
	e           *entry
	cacheStatus string
	gen         uint64 // the purge generation the load started at
}

// source returns the chat's source record: from memory, else from one
// collapsed load (durable tier, then gateway). led is false when this call
// waited for another's load. gen is the purge generation of what was
// found: what is rendered from it may be stored only if the chat has not
// been purged since (a load that started before a purge hands its result
// to fills that joined it after).
func (s *Server) source(ctx context.Context, chat upstream.ChatID, preview bool) (e *entry, cacheStatus string, gen uint64, led bool, err error) {
	skey := sourceKey(chat, preview)
	if e, ok := s.mem.Get(skey); ok && s.servable(e, chat, preview, false) {
		return e, csHitRender, math.MaxUint64, true, nil
	}
	v, err, _ := s.sources.Do(skey, func() (v any, err error) {
		led = true
		// singleflight re-raises a panic in every caller that joined, and a
		// background refresh may be one: it has no recover of its own
		// around the join, so a decoder panic here would end the process.
		defer recoverInto(&err, s.log)
		return s.loadSource(ctx, chat, preview, false)
	})
	if err != nil {
		return nil, "", 0, led, err
	}
	r := v.(*sourceResult)
	return r.e, r.cacheStatus, r.gen, led, nil
}

// servable reports whether a cached source may be used now: fresh, or stale
// when this is not itself the refresh, in which case one is started.
func (s *Server) servable(e *entry, chat upstream.ChatID, preview, refresh bool) bool {
	switch e.fresh.age(s.cfg.Now()) {
	case ageFresh:
		return true
	case ageStale:
		if !refresh {
			s.refreshAsync(chat, preview, e.fresh)
			return true
		}
	}
	return false
}

// keepSource caches a source record that a load starting at purge
// generation gen found, and queues rec, when given, for the durable tier;
// a purge of the chat since gen leaves both tiers alone. It waits until the
// entry is visible: ristretto applies Sets asynchronously, and a request for
// another size of the same chat arriving in that gap would otherwise cost a
// second gateway call.
func (s *Server) keepSource(gen uint64, chat upstream.ChatID, preview bool, e *entry, rec *record) {
	s.fence.store(chat, gen, func() {
		s.mem.Set(sourceKey(chat, preview), chat.String(), e, 0)
		s.mem.Wait()
		if rec == nil || s.cfg.Durable == nil || s.cfg.Resolver == nil {
			return
		}
		if b, err := encodeRecord(rec); err == nil {
			if !s.cfg.Durable.PutAsync(durableKey(chat, preview), b) {
				s.stats.DurableDropped.Add(1)
			}
		}
	})
}

// loadSource finds a servable record for chat. With refresh it skips stale
// copies and asks the gateway (a background revalidation); otherwise a stale
// copy is served and revalidated behind the response.
func (s *Server) loadSource(ctx context.Context, chat upstream.ChatID, preview, refresh bool) (*sourceResult, error) {
	skey := sourceKey(chat, preview)
	gen := s.fence.generation()
	now := s.cfg.Now()
	var old *entry
	// Checked again inside the flight: a load that finished just before this
	// one started has already done the work.
	if e, ok := s.mem.Get(skey); ok {
		if s.servable(e, chat, preview, refresh) {
			return &sourceResult{e, csHitRender, gen}, nil
		}
		old = e
	}
	if old == nil {
		if e := s.loadDurable(ctx, chat, preview); e != nil {
			switch e.fresh.age(now) {
			case ageFresh:
				s.keepSource(gen, chat, preview, e, nil)
				return &sourceResult{e, csHitStorage, gen}, nil
			case ageStale:
				if !refresh {
					s.keepSource(gen, chat, preview, e, nil)
					s.refreshAsync(chat, preview, e.fresh)
					return &sourceResult{e, csHitStorage, gen}, nil
				}
			}
			old = e // expired or being refreshed: still good for change detection
		}
	}
	rec, err := s.resolveRecord(ctx, chat, preview, refresh, old)
	if err == nil && rec.Uncertain && old != nil && old.rec.State == upstream.StateOK && old.fresh.age(s.cfg.Now()) == ageStale {
		// The gateway gives this answer for its own failures too (a
		// throttled lookup, a dropped connection): it does not replace an
		// avatar we may still serve stale. Past that window it stands.
		err = errUncertainAnswer
	}
	if err != nil {
		if old != nil && old.fresh.age(s.cfg.Now()) == ageStale {
			// stale-if-error: the last good answer beats a placeholder.
			s.stats.StaleIfError.Add(1)
			return &sourceResult{old, csHitStale, gen}, nil
		}
		return nil, err
	}
	e := s.newSourceEntry(rec, old)
	s.keepSource(gen, chat, preview, e, rec)
	return &sourceResult{e, csMiss, gen}, nil
}

func (s *Server) loadDurable(ctx context.Context, chat upstream.ChatID, preview bool) *entry {
	if s.cfg.Durable == nil {
		return nil
	}
	t0 := time.Now()
	b, ok, err := s.cfg.Durable.Get(ctx, durableKey(chat, preview))
	s.observe(ctx, stageStorage, time.Since(t0))
	if err != nil {
		// Not a request failure: carry on as a miss. The durable wrapper
		// counts and rate-limits its own trouble.
		s.stats.DurableErrors.Add(1)
		s.log.Debug("durable get failed", "chat", chat.Masked(), "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	rec, err := decodeRecord(b)
	if err != nil {
		s.stats.DurableErrors.Add(1)
		s.log.Warn("durable record unreadable, ignoring it", "chat", chat.Masked(), "err", err)
		return nil
	}
	return s.newSourceEntry(rec, nil)
}

// newSourceEntry wraps rec with its freshness. When old holds the same
// picture in the same state, old's freshness is renewed and shared, so every
// variant rendered from old becomes fresh again without re-rendering;
// otherwise old is retired and its variants are rendered anew.
func (s *Server) newSourceEntry(rec *record, old *entry) *entry {
	freshFor := s.cfg.TTL
	if rec.State != upstream.StateOK {
		freshFor = s.cfg.NegativeTTL
		// With HideStatus every negative answer keeps one freshness: a
		// shorter one would tell the uncertain states apart (max-age,
		// and Cache-Status once it goes stale).
		if rec.Uncertain && !s.cfg.HideStatus {
			freshFor = min(freshFor, uncertainTTL)
		}
	}
	fresh := rec.ResolvedAt.Add(freshFor)
	stale := fresh.Add(s.cfg.MaxStale)
	if rec.State != upstream.StateOK {
		// A known "no avatar" may be shown while it is revalidated, but never
		// kept through an outage longer than it is fresh.
		stale = fresh.Add(min(s.cfg.MaxStale, freshFor))
	}
	id := identity(rec)
	if old != nil && old.fresh.identity == id {
		old.fresh.set(fresh, stale)
		return &entry{rec: rec, fresh: old.fresh}
	}
	if old != nil {
		old.fresh.retired.Store(true)
	}
	f := &freshness{identity: id}
	f.set(fresh, stale)
	return &entry{rec: rec, fresh: f}
}

var errUncertainAnswer = errors.New("proxy: the gateway's answer may be a failure; keeping the avatar")

// uncertainTTL bounds the freshness of a negative answer that the gateway
// also gives for its own failures (upstream.Result.Uncertain: GOWA's "not
// on whatsapp" after a failed lookup, Evolution's null for any error). Held
// for the negative TTL, a burst of failed lookups would show real contacts
// as having no avatar for hours; asked again after minutes, it costs a chat
// that truly has none a few calls an hour.
const uncertainTTL = 10 * time.Minute

// identity names what a record shows: its state and, for avatars, the bytes.
func identity(rec *record) string {
	if rec.State != upstream.StateOK {
		return string(rec.State)
	}
	return "ok:" + strongETag(rec.Picture)
}

// resolveRecord asks the gateway and, for a new picture, downloads it.
func (s *Server) resolveRecord(ctx context.Context, chat upstream.ChatID, preview, background bool, old *entry) (*record, error) {
	now := s.cfg.Now()
	if s.cfg.Resolver == nil {
		return &record{State: upstream.StateNoAvatar, ResolvedAt: now}, nil
	}
	res, err := s.resolve(ctx, chat, preview, background, false)
	if err != nil {
		return nil, err
	}
	rec := &record{State: res.State, ResolvedAt: now}
	if res.State != upstream.StateOK {
		rec.Uncertain = res.Uncertain
		return rec, nil
	}
	rec.PictureKey = upstream.PictureKey(res.URL)
	rec.PictureID = res.PictureID
	if t, ok := upstream.LinkExpiry(res.URL); ok {
		rec.LinkExpiry = t
	}
	if old != nil && old.rec.samePicture(res) {
		// Change detection: the gateway names the picture we hold. Renew
		// the record, skip the download.
		s.stats.Unchanged.Add(1)
		rec.Picture, rec.FetchedAt = old.rec.Picture, old.rec.FetchedAt
		return rec, nil
	}
	pic, err := s.download(ctx, chat, preview, background, res)
	if err != nil {
		return nil, err
	}
	rec.Picture, rec.FetchedAt = pic, s.cfg.Now()
	return rec, nil
}

// resolve asks the gateway for chat; refresh says the link of its last
// answer was dead (upstream.Request.Refresh).
func (s *Server) resolve(ctx context.Context, chat upstream.ChatID, preview, background, refresh bool) (upstream.Result, error) {
	t0 := time.Now()
	res, err := s.cfg.Resolver.Resolve(ctx, upstream.Request{Chat: chat, Preview: preview, Background: background, Refresh: refresh})
	s.observe(ctx, stageResolve, time.Since(t0))
	s.stats.GatewayCalls.Add(1)
	if s.gatewayCalls != nil {
		s.gatewayCalls.WithLabelValues(s.cfg.GatewayName, gatewayOutcome(res, err)).Inc()
	}
	if err != nil {
		s.stats.GatewayErrors.Add(1)
		return res, err
	}
	switch res.State {
	case upstream.StateOK:
		if res.URL == "" {
			return res, &upstream.Error{Gateway: "resolver", Reason: "ok without a URL"}
		}
	case upstream.StatePrivacy, upstream.StateNoAvatar, upstream.StateNotOnWhatsApp, upstream.StateInvalid:
	default:
		return res, &upstream.Error{Gateway: "resolver", Reason: "unknown state"}
	}
	return res, nil
}

// download fetches and checks the picture. An expired or dead link gets
// one fresh link from the gateway, asked not to answer from a cache of its
// own: WhatsApp CDN links die after a day or two.
func (s *Server) download(ctx context.Context, chat upstream.ChatID, preview, background bool, res upstream.Result) ([]byte, error) {
	pic, err := s.fetch(ctx, res.URL)
	if errors.Is(err, upstream.ErrLinkExpired) {
		s.stats.LinkExpired.Add(1)
		again, rerr := s.resolve(ctx, chat, preview, background, true)
		if rerr != nil {
			return nil, rerr
		}
		switch {
		case again.State != upstream.StateOK:
			return nil, &upstream.Error{Gateway: "cdn", Reason: "link expired and the gateway no longer names a picture"}
		case again.URL == res.URL:
			// Fetching it again would only be refused again.
			return nil, &upstream.Error{Gateway: "cdn", Reason: "link expired and the gateway names it again"}
		}
		pic, err = s.fetch(ctx, again.URL)
	}
	if err != nil {
		return nil, err
	}
	// Refuse what will not decode now, not at every render: sniffed bytes,
	// a pixel budget checked before decoding, a full decode for truncation.
	if err := s.cpu.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	_, err = resize.Decode(pic, s.cfg.Limits)
	s.cpu.Release(1)
	if err != nil {
		s.stats.BadPictures.Add(1)
		return nil, &upstream.Error{Gateway: "cdn", Reason: "picture rejected", Err: err}
	}
	return pic, nil
}

func (s *Server) fetch(ctx context.Context, url string) ([]byte, error) {
	t0 := time.Now()
	b, err := s.cfg.Fetcher.Fetch(ctx, url)
	s.observe(ctx, stageDownload, time.Since(t0))
	s.stats.Downloads.Add(1)
	return b, err
}

// refreshAsync revalidates a stale source behind the response, once per chat
// at a time, unless served, the freshness of the stale source or variant
// that was served, is backing off after a failed refresh. served is renewed
// or retired to match the refreshed source.
func (s *Server) refreshAsync(chat upstream.ChatID, preview bool, served *freshness) {
	if !served.mayRefresh(s.cfg.Now()) {
		return
	}
	skey := sourceKey(chat, preview)
	if _, busy := s.refreshing.LoadOrStore(skey, struct{}{}); busy {
		return
	}
	if s.refreshes.Add(1) > maxRefreshes || !s.addBackground() {
		s.refreshes.Add(-1)
		s.refreshing.Delete(skey)
		s.stats.RefreshesSkipped.Add(1)
		return
	}
	go func() {
		defer s.bg.Done()
		defer s.refreshes.Add(-1)
		defer s.refreshing.Delete(skey)
		ctx, cancel := context.WithTimeout(s.bgCtx, s.cfg.FillTimeout)
		defer cancel()
		load := func() (any, error, bool) {
			return s.sources.Do(skey, func() (v any, err error) {
				defer recoverInto(&err, s.log)
				return s.loadSource(ctx, chat, preview, true)
			})
		}
		v, err, shared := load()
		if shared && err == nil && v.(*sourceResult).e.fresh.age(s.cfg.Now()) != ageFresh {
			// Joined a foreground load that served a stale copy (the one
			// that started this refresh, as a rule): nothing was asked yet.
			v, err, _ = load()
		}
		s.stats.Refreshes.Add(1)
		var r *sourceResult
		if err == nil {
			r = v.(*sourceResult)
		}
		if r == nil || r.cacheStatus == csHitStale {
			// Failed, or answered by stale-if-error: the stale copy stays,
			// and so does the need to refresh it, after a back-off.
			s.stats.RefreshErrors.Add(1)
			wait := served.deferRefresh(s.cfg.Now(), s.cfg.TTL)
			if r != nil && r.e.fresh != served {
				r.e.fresh.deferRefresh(s.cfg.Now(), s.cfg.TTL)
			}
			s.log.Info("background refresh failed; serving stale", "chat", chat.Masked(), "retry_in", wait, "err", err)
			return
		}
		cur := r.e
		cur.fresh.refreshed()
		if served != cur.fresh {
			// What was served came from a record no longer in memory.
			if served.identity == cur.fresh.identity {
				served.freshUntil.Store(cur.fresh.freshUntil.Load())
				served.staleUntil.Store(cur.fresh.staleUntil.Load())
				served.refreshed()
			} else {
				served.retired.Store(true)
			}
		}
	}()
}

// RefreshesInFlight is the number of background refreshes under way.
func (s *Server) RefreshesInFlight() int64 { return s.refreshes.Load() }
