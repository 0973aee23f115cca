package proxy

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/utils"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/avatarproxy/avatarproxy/cache"
	"github.com/avatarproxy/avatarproxy/internal/sockio"
	"github.com/avatarproxy/avatarproxy/resize"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// Resolver asks a gateway where a chat's avatar is (upstream.Resolver,
// usually behind an upstream.Guard).
type Resolver interface {
	Resolve(ctx context.Context, req upstream.Request) (upstream.Result, error)
}

// Fetcher downloads a picture from the CDN (upstream.Fetcher). Errors match
// upstream.ErrUnavailable; upstream.ErrLinkExpired asks for a new link.
type Fetcher interface {
	Fetch(ctx context.Context, rawURL string) ([]byte, error)
}

// Durable is the durable tier behind the memory cache (cache.Durable). Its
// failures never fail a request.
type Durable interface {
	Get(ctx context.Context, key string) (data []byte, ok bool, err error)
	PutAsync(key string, data []byte) bool
	Delete(ctx context.Context, key string) error
}

// Config configures a Server. Zero durations and sizes take the documented
// defaults; New validates the rest.
type Config struct {
	Resolver    Resolver // nil: no gateway, every chat gets a placeholder (AVATAR_UPSTREAM=none)
	GatewayName string   // for metrics labels
	Fetcher     Fetcher  // required when Resolver is set
	Durable     Durable  // nil: memory only

	// PreviewMaxSize > 0 asks the gateway for its small preview picture for
	// sizes up to it (GOWA: 96), saving a 640 px download for thumbnails.
	PreviewMaxSize int

	MemoryBytes      int64         // memory cache budget, default 256 MiB
	TTL              time.Duration // avatar freshness, default 24h
	NegativeTTL      time.Duration // known no-avatar states, default 6h
	MaxStale         time.Duration // served past freshness while refreshes fail, default 7 days; negative: never
	FirstLoadTimeout time.Duration // a cold miss waits this long before a placeholder, default 3s
	FillTimeout      time.Duration // deadline of one fill (resolve+download+resize), default 60s
	JPEGQuality      int           // default 85
	Limits           resize.Limits // guards decoding of downloaded pictures

	SigningKeys [][]byte // nil: unsigned mode (the caller must have opted in)
	AdminToken  string   // enables DELETE /avatar/{chatId} with this bearer token

	// HideStatus drops X-Avatar-Status, so privacy, no-avatar and
	// not-on-whatsapp answers are byte-identical to a URL holder.
	HideStatus bool
	// ClientRPS > 0 limits each client address to this many avatar
	// requests per second (meant for unsigned mode).
	ClientRPS float64
	// ClientIPHeader names the header (X-Forwarded-For, X-Real-IP) that
	// carries the client address when requests come through a proxy; it is
	// believed only from TrustedProxies (IPs or CIDRs), and the client is
	// its rightmost address that is not one of them. Without it every
	// client behind a load balancer would share one rate bucket.
	ClientIPHeader string
	TrustedProxies []string
	// ServerTiming adds a Server-Timing header with the stages of a fill.
	ServerTiming bool
	// AccessLog, when set, gets one record per request, which
	// AccessFormat makes into the line slog's JSON (or text) handler would
	// write.
	AccessLog LineWriter
	// Ready reports why the server should not take traffic ("" when it
	// should), for /readyz.
	Ready func(ctx context.Context) string
	// Metrics, when set, receives the server's Prometheus collectors.
	Metrics prometheus.Registerer

	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.TTL, 24*time.Hour)
	def(&c.NegativeTTL, 6*time.Hour)
	def(&c.MaxStale, 7*24*time.Hour)
	c.MaxStale = max(c.MaxStale, 0)
	def(&c.FirstLoadTimeout, 3*time.Second)
	// Room for two gateway calls (a dead link's replacement; GOWA's own
	// deadline is 20 s) and a download.
	def(&c.FillTimeout, 60*time.Second)
	if c.MemoryBytes == 0 {
		c.MemoryBytes = 256 << 20
	}
	if c.JPEGQuality == 0 {
		c.JPEGQuality = 85
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Server answers /avatar requests. Create it with New; it is safe for
// concurrent use.
type Server struct {
	cfg    Config
	app    *fiber.App
	mem    *cache.Memory[*entry]
	signer *Signer
	log    *slog.Logger

	fills   singleflight.Group // one render per variant key
	sources singleflight.Group // one gateway call + download per chat
	cpu     *semaphore.Weighted

	refreshing sync.Map // source keys with a background refresh under way
	fence      *purgeFence
	refreshes  atomic.Int64
	bgCtx      context.Context
	bgStop     context.CancelFunc
	bgMu       sync.Mutex // orders addBackground against Shutdown's stop
	bg         sync.WaitGroup

	stats   Stats
	waiting atomic.Int64 // requests waiting on a fill
	limiter *clientLimiter
	// wallClock: cfg.Now is time.Now, so a request's time may be the one
	// fasthttp reads for it (see requestTime).
	wallClock bool

	gatewayCalls *prometheus.CounterVec // nil without metrics
}

// maxRefreshes bounds background refreshes in flight: past it a stale hit
// simply does not start one (the next hit will), so an outage cannot pile up
// goroutines.
const maxRefreshes = 256

// New builds a Server.
func New(cfg Config) (*Server, error) {
	wallClock := cfg.Now == nil
	cfg.setDefaults()
	if cfg.Resolver != nil && cfg.Fetcher == nil {
		return nil, errors.New("proxy: a Fetcher is required with a Resolver")
	}
	if cfg.MemoryBytes < 1<<20 {
		return nil, errors.New("proxy: memory budget below 1 MiB")
	}
	if cfg.JPEGQuality < 1 || cfg.JPEGQuality > 100 {
		return nil, errors.New("proxy: JPEG quality must be 1..100")
	}
	mem, err := cache.NewMemory(cache.MemoryConfig{MaxBytes: cfg.MemoryBytes}, (*entry).cost)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:    cfg,
		mem:    mem,
		signer: NewSigner(cfg.SigningKeys),
		log:    cfg.Logger,
		cpu:    semaphore.NewWeighted(int64(renderSlots(runtime.GOMAXPROCS(0), runtime.NumCPU()))),
		fence:  newPurgeFence(cfg.FillTimeout+time.Minute, cfg.Now),

		wallClock: wallClock,
	}
	if cfg.ClientRPS > 0 {
		if s.limiter, err = newClientLimiter(cfg.ClientRPS, cfg.ClientIPHeader, cfg.TrustedProxies); err != nil {
			return nil, err
		}
	}
	s.bgCtx, s.bgStop = context.WithCancel(context.Background())
	if cfg.Metrics != nil {
		if err := s.registerMetrics(cfg.Metrics); err != nil {
			return nil, err
		}
	}
	s.app = s.newApp()
	srv := s.app.Server()
	srv.Handler = s.handler(srv.Handler)
	srv.ErrorHandler = s.serverError
	// The request time is read on first use (requestTime) rather than
	// before every handler call: a hit then reads the clock once for its
	// cache decision, its headers and its access line.
	srv.LazyRequestTime = true
	return s, nil
}

func (s *Server) newApp() *fiber.App {
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// Avatar URLs carry a signature and a display name; 8 KiB of headers
		// is plenty and bounds what a client can make us buffer.
		ReadBufferSize: 8 << 10,
		// An answer that fits the write buffer goes out in one write(2).
		// fasthttp sends a bigger one with writev, but only on a bare
		// *net.TCPConn, which sockio's connections are not: 16 KiB holds a
		// 256 px JPEG avatar and its headers. A connection keeps its
		// buffers while open, idle included (8 + 16 KiB).
		WriteBufferSize: 16 << 10,
		BodyLimit:       4 << 10, // no endpoint takes a body
		ReadTimeout:     readTimeout,
		WriteTimeout:    writeTimeout,
		IdleTimeout:     idleTimeout,
		// No ProxyHeader: the client address is the limiter's (client).
	})
	app.Use(recover.New()) // a handler panic is a 500, not a dead process
	if s.cfg.AccessLog != nil {
		app.Use(s.accessLog)
	}
	app.Get("/healthz", func(c *fiber.Ctx) error {
		// A cache in front must not answer for a dead server.
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.SendString("ok\n")
	})
	app.Get("/readyz", s.handleReady)
	if s.signer != nil {
		app.Get("/avatar/t/:file", s.handleOpaque)
	}
	app.Get("/avatar/:file", s.handleAvatar) // fiber registers HEAD with GET
	if s.cfg.AdminToken != "" {
		app.Delete("/avatar/:file", s.handlePurge)
	}
	return app
}

// App exposes the fiber app, for mounting more routes (metrics) and tests.
// Its own Handler is the fiber app alone, without the fast path.
func (s *Server) App() *fiber.App { return s.app }

// Handler is the whole request handler the server runs (the fast path for
// memory hits, then the fiber app), for serving without a listener.
func (s *Server) Handler() fasthttp.RequestHandler {
	s.app.Handler() // builds fiber's route tree, as Serve does
	return s.app.Server().Handler
}

// The HTTP server's socket timeouts: reading a request (slow clients),
// writing an answer (clients that stop reading) and waiting for the next
// request on a kept-alive connection.
const (
	readTimeout  = 10 * time.Second
	writeTimeout = 10 * time.Second
	idleTimeout  = 75 * time.Second
	// deadlineGranularity lets a connection keep its armed deadline while a
	// new one is less than this later (sockio): timeouts fire up to a second
	// early, and a hit no longer moves three runtime timers.
	deadlineGranularity = time.Second
)

// Serve answers on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.app.Listener(sockio.Listen(ln, deadlineGranularity))
}

// Shutdown stops accepting, waits for in-flight requests and background
// refreshes until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.app.ShutdownWithContext(ctx)
	s.bgMu.Lock()
	s.bgStop()
	s.bgMu.Unlock()
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	// The memory cache is not closed: fills that outlived the deadline may
	// still touch it, and the process is about to exit anyway.
	return err
}

// addBackground counts a background task in s.bg, unless Shutdown has
// begun: a WaitGroup must not go up from zero while Shutdown waits on it.
// The caller calls s.bg.Done when the task ends.
func (s *Server) addBackground() bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgCtx.Err() != nil {
		return false
	}
	s.bg.Add(1)
	return true
}

// Sign is the signature of a chat id segment under the first key ("" in
// unsigned mode).
func (s *Server) Sign(rawChat string) string {
	if s.signer == nil {
		return ""
	}
	return s.signer.Sign(rawChat)
}

func (s *Server) handleAvatar(c *fiber.Ctx) error {
	req, err := parseAvatar(c.Params("file"), s.query(c))
	if err != nil {
		return err
	}
	if s.signer != nil && !s.verify(&req, c.Query("exp"), s.requestTime(c.Context())) {
		s.stats.Forbidden.Add(1)
		return errForbidden
	}
	return s.serveAvatar(c, &req)
}

// handleOpaque serves /avatar/t/{token}.{ext}: the token names the chat and
// authenticates the request, so no sig is needed.
func (s *Server) handleOpaque(c *fiber.Ctx) error {
	token, f, err := parseFile(c.Params("file"))
	if err != nil {
		return err
	}
	raw, err := s.signer.Open(token)
	if err != nil {
		s.stats.Forbidden.Add(1)
		return errForbidden
	}
	q := s.query(c)
	q.Sig = ""
	req, err := parseAvatarChat(raw, f, q)
	if err != nil {
		return err
	}
	return s.serveAvatar(c, &req)
}

func (s *Server) query(c *fiber.Ctx) query {
	return query{Size: c.Query("size"), D: c.Query("d"), Name: c.Query("name"), Sig: c.Query("sig")}
}

// verify checks sig, and exp when the link carries one: then the signed
// message is chat + ":" + exp, the link dies at exp (unix seconds), and
// req.Expires says so to the answer.
func (s *Server) verify(req *avatarRequest, exp string, now time.Time) bool {
	if exp == "" {
		return s.signer.Verify(req.RawChat, req.Sig)
	}
	at, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || at <= 0 || len(exp) > 12 {
		return false
	}
	if !s.signer.Verify(req.RawChat+":"+exp, req.Sig) || now.Unix() > at {
		return false
	}
	req.Expires = at
	return true
}

// requestTime is the time a request is answered at: fasthttp's time for it
// (read once, shared by the access log), or the configured clock when one is
// injected or there is no server (benchmarks).
func (s *Server) requestTime(ctx *fasthttp.RequestCtx) time.Time {
	if s.wallClock {
		if t := ctx.Time(); !t.IsZero() {
			return t
		}
	}
	return s.cfg.Now()
}

func (s *Server) serveAvatar(c *fiber.Ctx, req *avatarRequest) error {
	if s.limiter != nil {
		if wait, ok := s.limiter.allow(s.limiter.client(c.Context()), s.cfg.Now()); !ok {
			return s.sendLimited(c, req, wait)
		}
	}
	now := s.requestTime(c.Context())
	if e, cs := s.memoryHit(req, now); e != nil {
		err := s.send(c.Context(), req, e, now, cs)
		s.revalidate(req, e, cs)
		return err
	}
	return s.miss(c, req, variantKey(req), now)
}

// memoryHit is the memory cache's answer for req: the entry and its
// Cache-Status when it is fresh, or stale within its window (the caller then
// calls revalidate once the answer is written), or nil. It is the whole of a
// hit but the writing, shared by the fiber route and the fast path.
func (s *Server) memoryHit(req *avatarRequest, now time.Time) (*entry, string) {
	e, a := s.lookupVariant(req, now)
	switch a {
	case ageFresh:
		s.stats.MemoryHits.Add(1)
		return e, csHit
	case ageStale:
		s.stats.StaleHits.Add(1)
		return e, csHitStale
	}
	return nil, ""
}

// lookupVariant finds req's variant in memory, with its age (ageExpired
// when there is none): under the key without the name, where avatars and
// every answer that draws no name are, then, for a request whose
// placeholder would draw the name, under the key with it.
func (s *Server) lookupVariant(req *avatarRequest, now time.Time) (*entry, age) {
	// The key is built in pooled memory and looked up without becoming a
	// string: a hit, the common case, allocates nothing. The memory cache
	// only hashes a key it is asked for and keeps nothing of it.
	kb := keyBufs.Get().(*[]byte)
	*kb = appendVariantKey((*kb)[:0], req, false)
	e, a := s.lookup(*kb, now)
	if req.drawsName() && (a == ageExpired || e.status != string(upstream.StateOK)) {
		*kb = appendVariantKey((*kb)[:0], req, true)
		e, a = s.lookup(*kb, now)
	}
	keyBufs.Put(kb)
	return e, a
}

func (s *Server) lookup(key []byte, now time.Time) (*entry, age) {
	e, ok := s.mem.Get(unsafe.String(unsafe.SliceData(key), len(key)))
	if !ok {
		return nil, ageExpired
	}
	return e, e.fresh.age(now)
}

// revalidate starts the background refresh of a stale hit. It runs after
// send: a refresh that finished first would renew e's freshness under the
// response, which would then say "stale" with a fresh Cache-Control.
func (s *Server) revalidate(req *avatarRequest, e *entry, cacheStatus string) {
	// The back-off is checked before ownChat allocates: a chat whose
	// refresh keeps failing is a stale hit on every view for days.
	if cacheStatus == csHitStale && e.fresh.mayRefresh(s.cfg.Now()) {
		s.refreshAsync(ownChat(req.Chat), s.usePreview(req.Size), e.fresh)
	}
}

// keyBufs holds the scratch a memory-cache key is built in.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 96); return &b }}

var (
	errForbidden    = errors.New("forbidden")
	errUnauthorized = errors.New("unauthorized")
	errPurgeFailed  = errors.New("purge failed")
)

func (s *Server) handlePurge(c *fiber.Ctx) error {
	// The auth scheme is case-insensitive (RFC 9110 11.1): "bearer" too.
	scheme, tok, _ := strings.Cut(c.Get(fiber.HeaderAuthorization), " ")
	// Digests, not the tokens: ConstantTimeCompare returns at once on
	// unequal lengths, which would time out the token's length.
	got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.cfg.AdminToken))
	if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return errUnauthorized
	}
	// DELETE /avatar/{chatId} names the chat; a variant's URL names it too.
	chat, err := parsePurgeTarget(c.Params("file"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Purge(ctx, chat); err != nil {
		s.log.Error("purge failed", "chat", chat.Masked(), "err", err)
		return errPurgeFailed
	}
	// Not SendStatus: it sets "No Content" as the body, which is never
	// sent but was logged as 10 bytes.
	c.Status(fiber.StatusNoContent)
	return nil
}

func parsePurgeTarget(file string) (upstream.ChatID, error) {
	if raw, _, err := parseFile(file); err == nil {
		if chat, err := upstream.ParseChatID(raw); err == nil {
			return chat, nil
		}
	}
	// parseFile only fails on a bad escape or extension; retry the whole
	// segment as a chat id ("79001234567@c.us" has a dot but no extension).
	raw, err := url.PathUnescape(file)
	if err != nil {
		return upstream.ChatID{}, errBadChat
	}
	chat, err := upstream.ParseChatID(raw)
	if err != nil {
		return upstream.ChatID{}, errBadChat
	}
	return chat, nil
}

// Purge forgets everything about chat: every memory variant and both durable
// records, so an erasure request is one call. Fills and refreshes of the
// chat already under way do not store what they find (purgeFence).
func (s *Server) Purge(ctx context.Context, chat upstream.ChatID) error {
	s.fence.purge(chat)
	for _, preview := range []bool{false, true} {
		if e, ok := s.mem.Get(sourceKey(chat, preview)); ok {
			e.fresh.retired.Store(true) // variants still pointing at it die with it
		}
	}
	s.mem.DeleteTag(chat.String())
	var errs []error
	if s.cfg.Durable != nil {
		for _, preview := range []bool{false, true} {
			if err := s.cfg.Durable.Delete(ctx, durableKey(chat, preview)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.stats.Purges.Add(1)
	return errors.Join(errs...)
}

// handleError is the one place errors become responses. Bodies are fixed
// public texts; anything unexpected is logged and answered "internal error".
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	c.Set(fiber.HeaderContentType, fiber.MIMETextPlainCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if b, ok := isBadRequest(err); ok {
		s.stats.BadRequests.Add(1)
		return c.Status(fiber.StatusBadRequest).SendString(string(b) + "\n")
	}
	switch {
	case errors.Is(err, errForbidden):
		return c.Status(fiber.StatusForbidden).SendString("forbidden: missing or bad signature\n")
	case errors.Is(err, errUnauthorized):
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="avatarproxy"`)
		return c.Status(fiber.StatusUnauthorized).SendString("unauthorized\n")
	case errors.Is(err, errPurgeFailed): // logged with its cause by the purge
		c.Set(fiber.HeaderRetryAfter, "1")
		return c.Status(fiber.StatusServiceUnavailable).SendString("purge failed, retry\n")
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusMethodNotAllowed:
			return c.Status(fe.Code).SendString("method not allowed\n")
		case fiber.StatusNotFound:
			return c.Status(fe.Code).SendString("not found\n")
		case fiber.StatusNotImplemented:
			return c.Status(fe.Code).SendString("method not implemented\n")
		}
		if fe.Code < 500 {
			// The status's own text: fe.Message may quote the request
			// (fasthttp's parse errors do).
			return c.Status(fe.Code).SendString(strings.ToLower(utils.StatusMessage(fe.Code)) + "\n")
		}
	}
	s.log.Error("internal error", "path", string(appendMaskedPath(nil, c.Path())), "err", err)
	return c.Status(fiber.StatusInternalServerError).SendString("internal error\n")
}

// Cache-Status values (RFC 9211) with the cache name avatarproxy.
const (
	csHit          = "avatarproxy; hit"
	csHitStale     = "avatarproxy; hit; detail=stale"
	csHitStorage   = "avatarproxy; hit; detail=storage"
	csHitRender    = "avatarproxy; hit; detail=render" // source in memory, this size rendered now
	csMiss         = "avatarproxy; fwd=uri-miss"
	csMissCollapse = "avatarproxy; fwd=uri-miss; collapsed"
)

// send writes e as the answer to req and tells the access log what it
// answered.
func (s *Server) send(ctx *fasthttp.RequestCtx, req *avatarRequest, e *entry, now time.Time, cacheStatus string) error {
	if s.cfg.AccessLog != nil {
		noteAccess(ctx, cacheStatus, e.status)
	}
	s.write(ctx, req, e, now, cacheStatus)
	return nil
}

// write writes e. The body is shared, immutable memory: SetBodyRaw avoids a
// copy.
func (s *Server) write(ctx *fasthttp.RequestCtx, req *avatarRequest, e *entry, now time.Time, cacheStatus string) {
	// SetCanonical with canonical keys skips fasthttp's per-call key
	// normalisation and its copy into a scratch buffer (a fifth of the hit
	// path's CPU in BenchmarkHit); SetCanonical copies the values.
	h := &ctx.Response.Header
	var buf [128]byte
	h.SetCanonical(hdrXContentTypeOptions, valNosniff)
	h.SetCanonical(hdrAccessControlAllowOrigin, valStar)
	h.SetCanonical(hdrCacheStatus, append(buf[:0], cacheStatus...))
	if !s.cfg.HideStatus {
		h.SetCanonical(hdrXAvatarStatus, append(buf[:0], e.status...))
	}
	h.SetCanonical(hdrCacheControl, e.cacheControl(buf[:0], now, s.cfg.MaxStale, req.Expires))
	if e.code == fiber.StatusServiceUnavailable {
		h.SetCanonical(hdrRetryAfter, valRetryUnavailable)
	}
	if e.etag != "" {
		h.SetCanonical(hdrETag, append(buf[:0], e.etag...))
		// Preconditions apply only to what would otherwise be a 2xx (RFC
		// 9110 13.2.1): a client over its rate gets its 429, not a 304.
		if inm := ctx.Request.Header.Peek(fiber.HeaderIfNoneMatch); len(inm) > 0 && e.code < 300 && etagMatches(inm, e.etag) {
			s.stats.NotModified.Add(1)
			ctx.SetStatusCode(fiber.StatusNotModified)
			return
		}
	}
	ctx.SetStatusCode(e.code)
	h.SetContentType(e.ctype)
	ctx.Response.SetBodyRaw(e.body)
}

// Response header keys in fasthttp's canonical form (it writes "Etag"), and
// constant values.
var (
	hdrXContentTypeOptions      = []byte("X-Content-Type-Options")
	hdrAccessControlAllowOrigin = []byte("Access-Control-Allow-Origin")
	hdrCacheStatus              = []byte("Cache-Status")
	hdrXAvatarStatus            = []byte("X-Avatar-Status")
	hdrCacheControl             = []byte("Cache-Control")
	hdrETag                     = []byte("Etag")
	hdrRetryAfter               = []byte("Retry-After")
	valNosniff                  = []byte("nosniff")
	valStar                     = []byte("*")
	// valRetryUnavailable: a cold fill goes on for up to FillTimeout after
	// its first-load wait, and gateway trouble is not stored, so a retry
	// soon after asks again (within the gateway's own rate limit).
	valRetryUnavailable = []byte("5")
	unavailableBody     = []byte("avatar unavailable, retry later\n")
)

// etagMatches implements If-None-Match: "*", or a list in which any tag
// equals ours under weak comparison (RFC 9110 13.1.2).
func etagMatches(header []byte, etag string) bool {
	for len(header) > 0 {
		// Skip separators.
		for len(header) > 0 && (header[0] == ' ' || header[0] == '\t' || header[0] == ',') {
			header = header[1:]
		}
		if len(header) == 0 {
			return false
		}
		if header[0] == '*' {
			return true
		}
		if len(header) > 2 && header[0] == 'W' && header[1] == '/' {
			header = header[2:]
		}
		if header[0] != '"' {
			return false // malformed: ignore the rest rather than guess
		}
		end := 1
		for end < len(header) && header[end] != '"' {
			end++
		}
		if end == len(header) {
			return false
		}
		if string(header[:end+1]) == etag {
			return true
		}
		header = header[end+1:]
	}
	return false
}

// appendSeconds appends the whole seconds of d, floored at zero.
func appendSeconds(b []byte, d time.Duration) []byte {
	if d < 0 {
		d = 0
	}
	return strconv.AppendInt(b, int64(d/time.Second), 10)
}
