// Command avatarproxy serves WhatsApp avatars as plain, cacheable images:
// /avatar/<chatId>.jpg?size=128&sig=... It only wires: configuration, the
// gateway and its guard, the CDN fetcher, the caches and the HTTP edge.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/filesystem"

	"github.com/avatarproxy/avatarproxy/cache"
	"github.com/avatarproxy/avatarproxy/config"
	"github.com/avatarproxy/avatarproxy/demo"
	"github.com/avatarproxy/avatarproxy/examples"
	"github.com/avatarproxy/avatarproxy/logging"
	"github.com/avatarproxy/avatarproxy/metrics"
	"github.com/avatarproxy/avatarproxy/proxy"
	"github.com/avatarproxy/avatarproxy/storage"
	"github.com/avatarproxy/avatarproxy/upstream"
	"golang.org/x/sync/singleflight"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "avatarproxy:", err)
		}
		os.Exit(2)
	}
}

// run is main without the process: tests drive it with their own args,
// environment and context, and learn the bound address through ready.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, ready func(addr string)) error {
	if len(args) > 0 {
		switch args[0] {
		case "sign":
			return runSign(args[1:], getenv, stdout, stderr)
		case "healthcheck":
			return runHealthcheck(ctx, args[1:], getenv, stdout)
		}
	}
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	// The service's own lines go through a buffer written by one goroutine,
	// like the access log's: slog writes synchronously, and a stalled stderr
	// (a stuck log shipper, a paused pipe) would otherwise hold whatever
	// logs, the gateway guard under its lock included, and /readyz with it.
	logLines := logging.NewLines(stderr, 1<<20, nil)
	defer closeLog(logLines)
	logger := logging.New(logLines, cfg.LogFormat, level)
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit(cfg.MemoryMB))
	}

	if cfg.Demo {
		d, err := demo.Start(logger)
		if err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		defer d.Close(context.Background())
		cfg = demoConfig(cfg, d, getenv)
	}
	if len(cfg.SigningKeys) == 0 {
		logger.Warn("serving UNSIGNED avatar URLs: anyone who can reach this server can look up any number's avatar through your gateway account; set AVATAR_SIGNING_KEY")
	}

	resolver, previewMax, err := newResolver(cfg, logger)
	if err != nil {
		return err
	}
	var fetcher proxy.Fetcher
	if resolver != nil {
		if fetcher, err = upstream.NewFetcher(upstream.FetcherConfig{
			Allow: cfg.CDNAllow, AllowPrivate: cfg.CDNAllowPrivate,
			MaxBytes: cfg.CDNMaxBytes, Timeout: cfg.CDNTimeout, Logger: logger,
		}); err != nil {
			return err
		}
	}
	durable, store, err := newDurable(ctx, cfg, logger)
	if err != nil {
		return err
	}
	// What a start that fails from here on must close, in reverse order;
	// once serving begins, the shutdown below closes it all instead. An
	// unclosed durable tier leaves its writer goroutines behind (and in
	// tests, or any caller of run that carries on, they pile up).
	var undo []func()
	defer func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}()
	if durable != nil {
		undo = append(undo, func() {
			// Nothing was served, so nothing is queued: this only stops
			// the writers.
			cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = durable.Close(cctx)
		})
	}

	reg := metrics.NewRegistry()
	if err := metrics.RegisterServiceLog(reg, logLines.Dropped); err != nil {
		return err
	}
	pcfg := proxy.Config{
		GatewayName:      cfg.Upstream,
		Fetcher:          fetcher,
		PreviewMaxSize:   previewMax,
		MemoryBytes:      int64(cfg.MemoryMB) << 20,
		TTL:              cfg.TTL,
		NegativeTTL:      cfg.NegativeTTL,
		MaxStale:         staleWindow(cfg.MaxStale),
		FirstLoadTimeout: cfg.FirstLoadTimeout,
		FillTimeout:      config.FillDeadline, // the limits config checks against
		JPEGQuality:      cfg.JPEGQuality,
		AdminToken:       cfg.AdminToken,
		HideStatus:       cfg.HideStatus,
		ClientRPS:        cfg.ClientRPS,
		ClientIPHeader:   cfg.ClientIPHeader,
		TrustedProxies:   cfg.TrustedProxies,
		ServerTiming:     cfg.ServerTiming,
		Logger:           logger,
		Metrics:          reg,
		Ready:            readiness(resolver, store),
	}
	if resolver != nil {
		pcfg.Resolver = resolver // a nil *Guard in the interface would not be nil
		if err := metrics.RegisterGuard(reg, cfg.Upstream, resolver); err != nil {
			return err
		}
	}
	if durable != nil {
		pcfg.Durable = durable
		if err := metrics.RegisterDurable(reg, durable); err != nil {
			return err
		}
	}
	if cfg.AccessLog {
		// Access records are buffered so a slow log sink never holds a
		// request, and formatted into lines by the log's own goroutine;
		// records beyond the buffer (about a third of a second of them at
		// full speed) are dropped and counted rather than waited for.
		lines := logging.NewLines(stderr, 2<<20, proxy.AccessFormat(cfg.LogFormat == "text"))
		defer closeLog(lines)
		if err := metrics.RegisterAccessLog(reg, lines.Dropped); err != nil {
			return err
		}
		pcfg.AccessLog = lines
	}
	for _, k := range cfg.SigningKeys {
		pcfg.SigningKeys = append(pcfg.SigningKeys, []byte(k))
	}
	srv, err := proxy.New(pcfg)
	if err != nil {
		return err
	}

	var metricsSrv *http.Server
	if cfg.MetricsListen == "" {
		srv.App().Get("/metrics", adaptor.HTTPHandler(metrics.Handler(reg)))
	} else {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return err
		}
		metricsSrv = &http.Server{Handler: metrics.Handler(reg), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = metricsSrv.Serve(mln) }()
		undo = append(undo, func() {
			_ = metricsSrv.Close()
			// Serve may not have taken the listener yet: close it here
			// too, so the port is free when run returns.
			_ = mln.Close()
		})
		logger.Info("metrics listening", "addr", mln.Addr().String())
	}
	demoPages := cfg.Demo && len(cfg.SigningKeys) == 0
	if demoPages {
		// The example pages, served next to the avatars they show; their
		// URLs are unsigned.
		srv.App().Use("/demo", filesystem.New(filesystem.Config{Root: http.FS(examples.FS), Index: "crm.html"}))
	}

	// Listen before serving, so a taken port is an error here, not a log line.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	logger.Info("avatarproxy listening", "addr", ln.Addr().String(), "upstream", cfg.Upstream, "storage", cfg.Storage,
		// Whether names are keyed, never the key: a replica started
		// without the fleet's key (it misses every object the others
		// wrote) shows here.
		"storage_names_keyed", cfg.Storage != "none" && cfg.StorageNameKey != "",
		"gomaxprocs", runtime.GOMAXPROCS(0), "cpus", runtime.NumCPU())
	if cfg.Demo {
		printDemo(stdout, ln.Addr().String(), srv, demoPages)
	}
	if ready != nil {
		ready(ln.Addr().String())
	}
	undo = nil // started: the shutdown below closes everything
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err = <-served:
	case <-ctx.Done():
		logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = errors.Join(err, srv.Shutdown(sctx))
	if durable != nil {
		// Flush what the durable tier still has queued, within the budget.
		err = errors.Join(err, durable.Close(sctx))
	}
	if metricsSrv != nil {
		err = errors.Join(err, metricsSrv.Shutdown(sctx))
	}
	if err == nil {
		logger.Info("stopped cleanly")
	}
	return err
}

// closeLog writes out a log's last lines, giving a stuck stderr a second at
// most: it must not hold the process's exit.
func closeLog(l *logging.Lines) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = l.Close(ctx)
}

// memoryLimit is the Go heap's soft limit for a cache budget of mb MiB. The
// budget bounds the live heap (sources and variants: measured at about
// budget*1.1 plus a few MiB of decoding work); without a limit the collector
// lets the heap grow to twice the live heap (GOGC=100), so a 128 MiB budget
// peaked at 325 MiB RSS. budget + budget/8 + 32 MiB kept it under 192 MiB
// with about 5% of CPU in the collector; 160 MiB thrashed (16%, half the
// throughput). GOMEMLIMIT, when set, wins.
func memoryLimit(mb int) int64 {
	budget := int64(mb) << 20
	return budget + budget/8 + 32<<20
}

// newResolver builds the configured gateway behind its guard. It returns nil
// for AVATAR_UPSTREAM=none, and the largest size served from a preview.
func newResolver(cfg config.Config, logger *slog.Logger) (*upstream.Guard, int, error) {
	var (
		r          upstream.Resolver
		err        error
		previewMax int
	)
	switch cfg.Upstream {
	case "none":
		return nil, 0, nil
	case "greenapi":
		c := cfg.GreenAPI()
		c.Logger = logger
		r, err = upstream.NewGreenAPI(c)
	case "gowa":
		previewMax = 96 // WhatsApp previews are 96x96
		c := cfg.GOWA()
		c.Logger = logger
		r, err = upstream.NewGOWA(c)
	case "waha":
		c := cfg.WAHA()
		c.Logger = logger
		r, err = upstream.NewWAHA(c)
	case "evolution":
		c := cfg.Evolution()
		c.Logger = logger
		r, err = upstream.NewEvolution(c)
	default:
		return nil, 0, fmt.Errorf("unknown upstream %q", cfg.Upstream)
	}
	if err != nil {
		return nil, 0, err
	}
	g := upstream.NewGuard(cfg.Upstream, r, upstream.GuardConfig{
		RPS: cfg.UpstreamRPS, Concurrency: cfg.UpstreamConcurrency,
	}, logger)
	return g, previewMax, nil
}

// pinger is what readiness asks of a durable store.
type pinger interface {
	Ping(ctx context.Context) error
}

// s3Writers is how many PUTs the write-behind queue keeps in flight to S3.
// A PUT waits on the network and the object store, not on this machine, so
// the default two writers drop writes as soon as cold misses outpace two
// PUT latencies: 35-90 of 2,000 in a warm-up at 270 misses/s against a
// local MinIO (scripts/loadtest.sh s3), each a gateway call again later.
const s3Writers = 16

// newDurable opens the durable tier behind its write-behind queue; nil for
// AVATAR_STORAGE=none. The store itself is returned too, for readiness.
func newDurable(ctx context.Context, cfg config.Config, logger *slog.Logger) (*cache.Durable, pinger, error) {
	var store interface {
		cache.Store
		pinger
	}
	switch cfg.Storage {
	case "none":
		return nil, nil, nil
	case "disk":
		d, err := storage.NewDisk(cfg.DiskDir)
		if err != nil {
			return nil, nil, err
		}
		d.NameKey = []byte(cfg.StorageNameKey) // empty: plain hashes, as before the setting
		store = d
	case "s3":
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		s, err := storage.NewS3(sctx, storage.S3Config{
			Endpoint: cfg.S3.Endpoint, Bucket: cfg.S3.Bucket, AccessKey: cfg.S3.AccessKey,
			SecretKey: cfg.S3.SecretKey, Region: cfg.S3.Region, Secure: cfg.S3.Secure, Prefix: cfg.S3.Prefix,
		})
		if err != nil {
			return nil, nil, err
		}
		s.NameKey = []byte(cfg.StorageNameKey) // empty: plain hashes, as before the setting
		store = s
	default:
		return nil, nil, fmt.Errorf("unknown storage %q", cfg.Storage)
	}
	dcfg := cache.DurableConfig{}
	if cfg.Storage == "s3" {
		dcfg.Workers = s3Writers
	}
	return cache.NewDurable(store, dcfg, logger), store, nil
}

// readiness is /readyz: not ready while the gateway breaker is open or the
// durable tier does not answer a ping by ctx's deadline.
//
// Disk's Ping cannot be interrupted once its file I/O has started, so on a
// hung volume it never returns: the probe stops waiting at its deadline, and
// later probes wait on that same Ping rather than each starting (and
// stranding) another.
func readiness(g *upstream.Guard, store pinger) func(ctx context.Context) string {
	var pings singleflight.Group
	return func(ctx context.Context) string {
		if g != nil && g.State().Open {
			return "gateway breaker open"
		}
		if store == nil {
			return ""
		}
		ch := pings.DoChan("ping", func() (any, error) { return nil, store.Ping(ctx) })
		select {
		case r := <-ch:
			if r.Err != nil {
				return "durable tier not answering"
			}
			return ""
		case <-ctx.Done():
			return "durable tier not answering"
		}
	}
}

// demoConfig points cfg at the in-process demo gateway and CDN. Listen,
// storage and the gateway budget keep what the user set through the
// environment, or any value but the default given as a flag
// (--listen=:8080 itself still becomes loopback: a flag set to its default
// cannot be told from no flag, and loopback is the safe side).
func demoConfig(cfg config.Config, d *demo.Demo, getenv func(string) string) config.Config {
	cfg.Upstream = "greenapi"
	cfg.GreenAPIURL, cfg.GreenAPIIDInstance, cfg.GreenAPIToken = d.GreenAPIURL, demo.IDInstance, demo.Token
	cfg.CDNAllow = []string{d.CDNHost}
	cfg.CDNAllowPrivate = true
	if getenv(config.EnvName("listen")) == "" && cfg.Listen == ":8080" {
		cfg.Listen = "127.0.0.1:8080" // a demo is for this machine only
	}
	if getenv(config.EnvName("storage")) == "" && cfg.Storage == "disk" && cfg.DiskDir == "./data" {
		cfg.Storage = "none" // demo pictures are not worth keeping
	}
	if len(cfg.SigningKeys) == 0 {
		cfg.AllowUnsigned = true
	}
	// The demo gateway is not a bannable account: let a page full of demo
	// avatars load at once instead of five per second. Each setting is
	// raised only when left at its default, so one given keeps its value.
	if getenv(config.EnvName("upstream-rps")) == "" && cfg.UpstreamRPS == 5 {
		cfg.UpstreamRPS = 200
	}
	if getenv(config.EnvName("upstream-concurrency")) == "" && cfg.UpstreamConcurrency == 4 {
		cfg.UpstreamConcurrency = 16
	}
	return cfg
}

// printDemo tells the user what to open; pages says whether the example
// pages are served.
func printDemo(w io.Writer, addr string, srv *proxy.Server, pages bool) {
	fmt.Fprintf(w, "\navatarproxy demo: a stand-in gateway and CDN are running on loopback. Open:\n\n")
	for _, c := range demo.SampleChats {
		u := fmt.Sprintf("http://%s/avatar/%s.jpg?size=128", addr, c.Chat)
		if c.Name != "" {
			u += "&name=" + url.QueryEscape(c.Name)
		}
		if sig := srv.Sign(c.Chat); sig != "" {
			u += "&sig=" + sig
		}
		fmt.Fprintf(w, "  %-52s %s\n", c.What, u)
	}
	if pages {
		fmt.Fprintf(w, "\n  example pages: http://%s/demo/crm.html and http://%s/demo/email.html\n", addr, addr)
	} else {
		// The pages' URLs are unsigned: they would show only broken images.
		fmt.Fprintf(w, "\n  example pages: not served while AVATAR_SIGNING_KEY is set (their URLs are unsigned)\n")
	}
	fmt.Fprintf(w, "\nThe last digit of a number picks the answer: 0-4 avatar, 5 privacy, 6 none, 7 legacy API answer, 8 rejected id, 9 slow gateway.\n\n")
}

// staleWindow maps AVATAR_MAX_STALE, where 0 means never serving stale, onto
// proxy.Config, where 0 means the package's default and a negative value
// means never.
func staleWindow(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
