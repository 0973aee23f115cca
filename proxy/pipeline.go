package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/avatarproxy/avatarproxy/placeholder"
	"github.com/avatarproxy/avatarproxy/resize"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// renderSlots is how many images are rendered at once: one per CPU the
// runtime may use. It takes the smaller of GOMAXPROCS and the CPU count
// because GOMAXPROCS may be set above the CPU count on purpose (README,
// "Sharing cores"), and renders past the CPUs only add latency and memory.
func renderSlots(gomaxprocs, cpus int) int { return max(1, min(gomaxprocs, cpus)) }

// statusUnavailable is X-Avatar-Status for gateway or CDN trouble; it is never
// a stored state.
const statusUnavailable = "unavailable"

// entry is a memory-cache value: either a rendered answer (body set) or a
// source record (rec set). Entries are immutable once cached, except for the
// shared freshness they point to.
type entry struct {
	body   []byte
	etag   string
	ctype  string
	code   int
	status string // X-Avatar-Status
	fresh  *freshness
	// negative answers (placeholders for known states) get max-age only:
	// they must never outlive the negative TTL in a browser or CDN.
	negative bool
	noStore  bool // unavailable: never cached downstream

	rec *record // source records only
}

// entrySize approximates the entry struct and its freshness, which
// cache.Memory's own per-entry overhead (measured with empty values) does
// not cover.
const entrySize = 96

// cost is the bytes e holds. status strings are constants, not counted.
func (e *entry) cost() int64 {
	n := int64(len(e.body) + len(e.etag) + entrySize)
	if e.rec != nil {
		n += int64(len(e.rec.Picture) + len(e.rec.PictureKey) + len(e.rec.PictureID))
	}
	return n
}

// cacheControl appends the Cache-Control value for e at now. linkExp, when
// not 0, is the expiry (unix seconds) of the signed link that asked: the
// answer may be kept until then at most, and never served stale past it.
func (e *entry) cacheControl(b []byte, now time.Time, maxStale time.Duration, linkExp int64) []byte {
	if e.noStore || e.fresh == nil {
		return append(b, "no-store"...)
	}
	n := now.UnixNano()
	fresh := time.Duration(e.fresh.freshUntil.Load() - n)
	if linkExp != 0 {
		// Sub saturates: an exp past 2262 (9999999999 is a common "never")
		// must not wrap the multiplication into the past.
		fresh = min(fresh, time.Unix(linkExp, 0).Sub(now))
	}
	b = append(b, "public, max-age="...)
	b = appendSeconds(b, fresh)
	if e.negative || maxStale <= 0 || linkExp != 0 {
		return b
	}
	stale := time.Duration(e.fresh.staleUntil.Load() - n)
	if fresh > 0 {
		stale -= fresh
	}
	stale = min(stale, maxStale)
	b = append(b, ", stale-while-revalidate="...)
	b = appendSeconds(b, stale)
	b = append(b, ", stale-if-error="...)
	return appendSeconds(b, stale)
}

// Keys. The memory tag of every key of a chat is chat.String(), so a purge
// drops all of them.
//
// A variant's key holds the request's name only where the name is drawn: a
// placeholder with initials. An avatar is stored under the key without it
// (lookupVariant looks there first), or every new name, which no signature
// covers, would cost a render and a cache entry of the same bytes.

// variantKey is the key a fill of r runs under and stores a placeholder at.
func variantKey(r *avatarRequest) string { return variantKeyFor(r, r.drawsName()) }

// variantKeyFor is r's key with or without its name.
func variantKeyFor(r *avatarRequest, withName bool) string {
	return string(appendVariantKey(make([]byte, 0, 96), r, withName))
}

func appendVariantKey(b []byte, r *avatarRequest, withName bool) []byte {
	b = append(b, 'v', 0)
	b = r.Chat.AppendTo(b)
	b = append(b, 0)
	b = strconv.AppendInt(b, int64(r.Size), 10)
	b = append(b, 0, byte(r.Format), byte(r.Fallback), 0)
	if withName {
		b = append(b, r.Name...)
	}
	return b
}

func sourceKey(chat upstream.ChatID, preview bool) string {
	if preview {
		return "s\x00" + chat.String() + "\x00p"
	}
	return "s\x00" + chat.String() + "\x00f"
}

// durableKey names a record in the durable tier (which hashes it: object
// names never show phone numbers).
func durableKey(chat upstream.ChatID, preview bool) string {
	if preview {
		return "src/" + chat.String() + "/preview"
	}
	return "src/" + chat.String() + "/full"
}

func (s *Server) usePreview(size int) bool {
	return s.cfg.PreviewMaxSize > 0 && size > 0 && size <= s.cfg.PreviewMaxSize
}

// fillResult is what one variant fill hands to every request waiting on it.
type fillResult struct {
	e           *entry
	cacheStatus string
	sourceLed   bool    // this fill's own source load led (did not join another)
	timing      *timing // stages of this fill, for Server-Timing
}

// miss collapses concurrent misses of one variant into one fill, run under
// its own deadline so that the client that started it going away fails no
// one. A cold miss waits at most FirstLoadTimeout; the fill then goes on in
// the background and the next page view gets the avatar.
func (s *Server) miss(c *fiber.Ctx, hreq *avatarRequest, key string, now time.Time) error {
	// The fill may outlive this handler (FirstLoadTimeout), and fiber
	// reuses the request's memory once it returns.
	req := hreq.own()
	led := false
	ch := s.fills.DoChan(key, func() (v any, err error) {
		led = true
		// DoChan runs this on its own goroutine: a panic in a decoder would
		// take the whole process down, so it becomes this fill's error.
		defer recoverInto(&err, s.log)
		ctx, cancel := context.WithTimeout(s.bgCtx, s.cfg.FillTimeout)
		defer cancel()
		ctx, t := withTiming(ctx)
		fr, err := s.fill(ctx, req, key)
		if fr != nil {
			fr.timing = t
		}
		return fr, err
	})
	t := time.NewTimer(s.cfg.FirstLoadTimeout)
	defer t.Stop()
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case r := <-ch:
		if r.Err != nil {
			// fill reports trouble as an unavailable answer, not an error;
			// an error here is a bug (a recovered panic, already logged).
			// The <img> still gets a picture.
			s.log.Error("fill failed", "chat", req.Chat.Masked(), "err", r.Err)
			e, err := s.placeholderEntry(req, statusUnavailable, nil, s.fence.generation())
			if err != nil {
				return err
			}
			return s.send(c.Context(), req, e, s.cfg.Now(), csMiss)
		}
		fr := r.Val.(*fillResult)
		cs := fr.cacheStatus
		if cs == csMiss && (!led || !fr.sourceLed) {
			cs = csMissCollapse
			s.stats.Collapsed.Add(1)
		}
		s.countAnswer(fr.e, cs)
		if s.cfg.ServerTiming && fr.timing != nil {
			if v := fr.timing.header(); v != "" {
				c.Set("Server-Timing", v)
			}
		}
		return s.send(c.Context(), req, fr.e, s.cfg.Now(), cs)
	case <-t.C:
		s.stats.FirstLoadTimeouts.Add(1)
		e, err := s.placeholderEntry(req, statusUnavailable, nil, s.fence.generation())
		if err != nil {
			return err
		}
		s.countAnswer(e, csMiss)
		return s.send(c.Context(), req, e, now, csMiss)
	}
}

func (s *Server) countAnswer(e *entry, cacheStatus string) {
	switch cacheStatus {
	case csHitStorage:
		s.stats.StorageHits.Add(1)
	case csHitRender:
		s.stats.RenderHits.Add(1)
	case csMiss, csMissCollapse:
		s.stats.Misses.Add(1)
	}
	if e.status != string(upstream.StateOK) {
		s.stats.placeholder(e.status)
	}
}

// fill renders one variant: the source record (memory, durable tier or
// gateway), then the image or placeholder, cached under key.
func (s *Server) fill(ctx context.Context, req *avatarRequest, key string) (*fillResult, error) {
	gen := s.fence.generation()
	now := s.cfg.Now()
	if e, a := s.lookupVariant(req, now); a != ageExpired {
		return &fillResult{e: e, cacheStatus: csHit, sourceLed: true}, nil
	}
	preview := s.usePreview(req.Size)
	src, cs, sgen, led, err := s.source(ctx, req.Chat, preview)
	if err != nil {
		switch {
		case s.bgCtx.Err() != nil:
			// Cancelled by Shutdown: not the gateway's fault, and not worth
			// a line after "stopped cleanly".
		case !errors.Is(err, upstream.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded):
			s.log.Warn("fill failed", "chat", req.Chat.Masked(), "err", err)
		default:
			s.log.Info("upstream unavailable", "chat", req.Chat.Masked(), "err", err)
		}
		e, perr := s.placeholderEntry(req, statusUnavailable, nil, gen)
		return &fillResult{e: e, cacheStatus: csMiss, sourceLed: led}, perr
	}
	var e *entry
	if src.rec.State == upstream.StateOK {
		e, err = s.renderAvatar(ctx, req, src)
		if err != nil {
			if ctx.Err() == nil {
				// A source that no longer renders (a corrupt stored object)
				// is dropped from both tiers, so the next request fetches it
				// again instead of reading the same bytes back. A render
				// that only ran out of time waiting for a CPU says nothing
				// of the source, which stays.
				s.log.Warn("render failed; dropping the source", "chat", req.Chat.Masked(), "err", err)
				src.fresh.retired.Store(true)
				s.mem.Del(sourceKey(req.Chat, preview))
				if s.cfg.Durable != nil {
					if derr := s.cfg.Durable.Delete(ctx, durableKey(req.Chat, preview)); derr != nil {
						s.log.Warn("durable delete failed", "chat", req.Chat.Masked(), "err", derr)
					}
				}
			}
			e, err = s.placeholderEntry(req, statusUnavailable, nil, min(gen, sgen))
			return &fillResult{e: e, cacheStatus: csMiss, sourceLed: led}, err
		}
	} else {
		e, err = s.placeholderEntry(req, string(src.rec.State), src.fresh, min(gen, sgen))
		if err != nil {
			return nil, err
		}
	}
	if e.status == string(upstream.StateOK) && req.drawsName() {
		key = variantKeyFor(req, false)
	}
	s.fence.store(req.Chat, min(gen, sgen), func() { s.mem.Set(key, req.Chat.String(), e, 0) })
	return &fillResult{e: e, cacheStatus: cs, sourceLed: led}, nil
}

func (s *Server) renderAvatar(ctx context.Context, req *avatarRequest, src *entry) (*entry, error) {
	// Image work is CPU-bound: past renderSlots in parallel it only adds
	// latency and memory. Taken here, after every cache short-cut.
	if err := s.cpu.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	t0 := time.Now()
	body, err := resize.Render(src.rec.Picture, resize.Spec{Size: req.Size, Format: req.Format, Quality: s.cfg.JPEGQuality}, s.cfg.Limits)
	s.cpu.Release(1)
	s.observe(ctx, stageResize, time.Since(t0))
	if err != nil {
		return nil, err
	}
	return &entry{
		body:   body,
		etag:   strongETag(body),
		ctype:  req.Format.ContentType(),
		code:   fiber.StatusOK,
		status: string(upstream.StateOK),
		fresh:  src.fresh,
	}, nil
}

// placeholderEntry answers for state (a known state, or statusUnavailable
// with fresh nil) with the fallback the request asked for. The image itself
// is cached by its look, so a thousand chats without avatars at one size
// cost one drawing per colour and name. gen is the purge generation the
// answer was found at (see source): a drawing on the chat's colour is kept
// only if the chat was not purged since.
func (s *Server) placeholderEntry(req *avatarRequest, status string, fresh *freshness, gen uint64) (*entry, error) {
	e := &entry{status: status, fresh: fresh, negative: fresh != nil, noStore: fresh == nil}
	if req.Fallback == Fallback404 {
		e.code = fiber.StatusNotFound
		e.ctype = fiber.MIMETextPlainCharsetUTF8
		e.body = notFoundBody
		if status == statusUnavailable { // trouble is not "no avatar": retry, do not conclude
			e.code, e.body = fiber.StatusServiceUnavailable, unavailableBody
		}
		return e, nil
	}
	group := req.Chat.Kind() == upstream.Group
	// Group needs no key of its own: it only changes initials, which are
	// keyed by the chat.
	p := placeholder.Params{Kind: placeholder.Person, Seed: req.Chat.String(), Size: req.Size, Group: group}
	if group {
		p.Kind = placeholder.Group
	}
	switch req.Fallback {
	case FallbackAuto, FallbackInitials:
		if req.Name != "" {
			p.Kind, p.Name = placeholder.Initials, req.Name
		}
	case FallbackBlank:
		p.Kind = placeholder.Blank
	}
	if p.Size == 0 {
		p.Size = defaultPlaceholderSize
	}
	img, err := s.placeholderImage(p, req.Format, req.Chat, gen)
	if err != nil {
		return nil, err
	}
	e.code, e.ctype, e.body, e.etag = fiber.StatusOK, req.Format.ContentType(), img.body, img.etag
	return e, nil
}

var notFoundBody = []byte("no avatar\n")

func (s *Server) placeholderImage(p placeholder.Params, f resize.Format, chat upstream.ChatID, gen uint64) (*entry, error) {
	key, tag := placeholderKey(p, f)
	if e, ok := s.mem.Get(key); ok {
		return e, nil
	}
	// Drawing is image work like a render (a 1024 px PNG of initials takes
	// milliseconds), and new initials are anyone's to ask for through the
	// unsigned name: it takes a render slot, so a flood of them cannot
	// take more CPUs than renders may.
	_ = s.cpu.Acquire(context.Background(), 1) // cannot fail: no deadline
	t0 := time.Now()
	body, err := resize.Encode(placeholder.Draw(p), f, s.cfg.JPEGQuality)
	s.stats.observe(stagePlaceholder, time.Since(t0))
	s.cpu.Release(1)
	if err != nil {
		return nil, err
	}
	e := &entry{body: body, etag: strongETag(body)}
	if tag == placeholderTag {
		s.mem.Set(key, tag, e, 0)
		return e, nil
	}
	// Tagged by the chat so a purge also forgets its coloured placeholders,
	// and fenced so a fill under way at the purge does not bring one back.
	s.fence.store(chat, gen, func() { s.mem.Set(key, tag, e, 0) })
	return e, nil
}

// placeholderKey is the memory key and tag of a placeholder drawing.
func placeholderKey(p placeholder.Params, f resize.Format) (key, tag string) {
	b := make([]byte, 0, 64)
	b = append(b, 'p', 0, byte(p.Kind), byte(f), 0)
	b = strconv.AppendInt(b, int64(p.Size), 10)
	b = append(b, 0)
	// Only initials are drawn on the chat's colour: a silhouette or a blank
	// looks the same for every chat, and keyed by the chat each chat
	// without an avatar would cost a drawing and a cache entry of the
	// same bytes.
	tag = placeholderTag
	if p.Kind == placeholder.Initials {
		tag = p.Seed
		b = append(b, p.Seed...)
	}
	b = append(b, 0)
	// Keyed by the initials, which are all Draw takes of the name: names
	// that share them share one drawing.
	b = append(b, placeholder.InitialsOf(p.Name)...)
	return string(b), tag
}

// placeholderTag is the memory tag of the placeholders no chat owns; no
// chat id can equal it, so no purge drops them.
const placeholderTag = "\x00placeholder"

// recoverInto turns a panic into *err, logged with its stack.
func recoverInto(err *error, log *slog.Logger) {
	if r := recover(); r != nil {
		log.Error("panic in a fill", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		*err = fmt.Errorf("proxy: panic: %v", r)
	}
}
