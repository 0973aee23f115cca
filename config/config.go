// Package config turns flags and AVATAR_* environment variables into one
// validated Config. It owns defaults, parsing and cross-field checks; it does
// not build anything. Only main imports it. Every problem is reported at once,
// and no secret value ever appears in an error.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7/pkg/s3utils"

	"github.com/avatarproxy/avatarproxy/resize"
	"github.com/avatarproxy/avatarproxy/upstream"
)

// Config is everything avatarproxy can be told. Field comments name the
// flag; the environment variable is AVATAR_ plus the flag in upper snake case.
type Config struct {
	Listen        string // listen
	MetricsListen string // metrics-listen: empty serves /metrics on the main port
	Demo          bool   // demo

	Upstream            string        // upstream: greenapi | gowa | waha | evolution | none
	UpstreamTimeout     time.Duration // upstream-timeout: 0 means each gateway's own default
	UpstreamRPS         float64       // upstream-rps
	UpstreamConcurrency int           // upstream-concurrency

	GreenAPIURL        string // greenapi-url
	GreenAPIIDInstance string // greenapi-id-instance
	GreenAPIToken      string // greenapi-api-token-instance (secret)

	GOWAURL      string // gowa-url
	GOWAUser     string // gowa-user
	GOWAPassword string // gowa-password (secret)
	GOWADeviceID string // gowa-device-id

	WAHAURL     string // waha-url
	WAHAAPIKey  string // waha-api-key (secret)
	WAHASession string // waha-session

	EvolutionURL      string // evolution-url
	EvolutionAPIKey   string // evolution-api-key (secret)
	EvolutionInstance string // evolution-instance

	CDNAllow        []string      // cdn-allow
	CDNAllowPrivate bool          // cdn-allow-private
	CDNMaxBytes     int64         // cdn-max-bytes
	CDNTimeout      time.Duration // cdn-timeout

	MemoryMB         int           // memory-mb
	TTL              time.Duration // ttl
	NegativeTTL      time.Duration // negative-ttl
	MaxStale         time.Duration // max-stale
	FirstLoadTimeout time.Duration // first-load-timeout
	JPEGQuality      int           // jpeg-quality

	SigningKeys    []string // signing-key (secret; comma-separated, first signs, all verify)
	AllowUnsigned  bool     // allow-unsigned
	AdminToken     string   // admin-token (secret)
	HideStatus     bool     // hide-status
	ClientRPS      float64  // client-rps
	ClientIPHeader string   // client-ip-header
	TrustedProxies []string // trusted-proxies
	ServerTiming   bool     // server-timing
	AccessLog      bool     // access-log

	Storage        string // storage: disk | s3 | none
	StorageNameKey string // storage-name-key (secret)
	DiskDir        string // disk-dir
	S3             S3
	LogFormat      string // log-format: json | text
	LogLevel       string // log-level: debug | info | warn | error

	ShutdownTimeout time.Duration // shutdown-timeout
}

// S3 is the S3/MinIO durable tier.
type S3 struct {
	Endpoint  string // s3-endpoint (host or host:port)
	Bucket    string // s3-bucket
	AccessKey string // s3-access-key (secret)
	SecretKey string // s3-secret-key (secret)
	Region    string // s3-region
	Secure    bool   // s3-secure
	Prefix    string // s3-prefix
}

// EnvPrefix is the prefix of every environment variable.
const EnvPrefix = "AVATAR_"

// Setting describes one flag/variable, for --help and the README table.
type Setting struct {
	Flag, Env, Default, Usage string
	Secret                    bool
}

// stringList is a comma-separated flag value.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error {
	*l = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// flagSet declares every setting on a new FlagSet bound to c, and reports
// which flags hold secrets and the order they were declared in (flag sorts
// by name; the README groups by area).
func flagSet(c *Config) (fs *flag.FlagSet, secret map[string]bool, order []string) {
	fs = flag.NewFlagSet("avatarproxy", flag.ContinueOnError)
	secret = map[string]bool{}
	note := func(name string) { order = append(order, name) }
	str := func(p *string, name, def, usage string) { note(name); fs.StringVar(p, name, def, usage) }
	sec := func(p *string, name, usage string) { note(name); fs.StringVar(p, name, "", usage); secret[name] = true }
	dur := func(p *time.Duration, name string, def time.Duration, usage string) {
		note(name)
		fs.DurationVar(p, name, def, usage)
	}

	str(&c.Listen, "listen", ":8080", "address to serve avatars on")
	str(&c.MetricsListen, "metrics-listen", "", "separate address for /metrics, e.g. 127.0.0.1:9090 (empty: /metrics on the main port)")
	note("demo")
	fs.BoolVar(&c.Demo, "demo", false, "start an in-process demo gateway and CDN on loopback (no account needed)")

	str(&c.Upstream, "upstream", "greenapi", "gateway: greenapi, gowa, waha, evolution or none (placeholders only)")
	// 0 leaves each gateway its own deadline: GOWA needs up to 15 s for a
	// correct answer (its on-WhatsApp check, then the picture lookup), Green
	// API's calls are shorter; one figure for all would cut GOWA short or
	// let a stalled Green API hold a fill.
	dur(&c.UpstreamTimeout, "upstream-timeout", 0, "deadline of one gateway call: twice it plus cdn-timeout at most 1m, a fill's deadline (25s with the default cdn-timeout); 0: the gateway's own (greenapi 10s, gowa 20s, waha and evolution 15s)")
	note("upstream-rps")
	fs.Float64Var(&c.UpstreamRPS, "upstream-rps", 5, "gateway calls per second (token bucket, per gateway account)")
	note("upstream-concurrency")
	fs.IntVar(&c.UpstreamConcurrency, "upstream-concurrency", 4, "gateway calls in flight at once")

	str(&c.GreenAPIURL, "greenapi-url", "https://api.green-api.com", "Green API apiUrl of the instance")
	str(&c.GreenAPIIDInstance, "greenapi-id-instance", "", "Green API idInstance")
	sec(&c.GreenAPIToken, "greenapi-api-token-instance", "Green API apiTokenInstance")

	str(&c.GOWAURL, "gowa-url", "", "go-whatsapp-web-multidevice base URL (with its base path)")
	str(&c.GOWAUser, "gowa-user", "", "GOWA basic-auth user")
	sec(&c.GOWAPassword, "gowa-password", "GOWA basic-auth password")
	str(&c.GOWADeviceID, "gowa-device-id", "", "GOWA X-Device-Id (needed when it has several devices)")

	str(&c.WAHAURL, "waha-url", "", "WAHA base URL")
	sec(&c.WAHAAPIKey, "waha-api-key", "WAHA X-Api-Key")
	str(&c.WAHASession, "waha-session", "default", "WAHA session name")

	str(&c.EvolutionURL, "evolution-url", "", "Evolution API base URL")
	sec(&c.EvolutionAPIKey, "evolution-api-key", "Evolution API apikey")
	str(&c.EvolutionInstance, "evolution-instance", "", "Evolution API instance name")

	c.CDNAllow = stringList{"pps.whatsapp.net", "*.whatsapp.net"}
	note("cdn-allow")
	fs.Var((*stringList)(&c.CDNAllow), "cdn-allow", "CDN hosts pictures may come from (host or host:port, *. wildcards)")
	note("cdn-allow-private")
	fs.BoolVar(&c.CDNAllowPrivate, "cdn-allow-private", false, "allow CDN downloads from loopback/private addresses and plain http (tests only)")
	note("cdn-max-bytes")
	fs.Int64Var(&c.CDNMaxBytes, "cdn-max-bytes", 4<<20, "largest picture downloaded from the CDN, in bytes (at most 8388608: what the decoder takes)")
	dur(&c.CDNTimeout, "cdn-timeout", 10*time.Second, "deadline of one CDN download; it plus two gateway calls (upstream-timeout) at most 1m, a fill's deadline")

	note("memory-mb")
	fs.IntVar(&c.MemoryMB, "memory-mb", 256, "memory cache budget in MiB")
	dur(&c.TTL, "ttl", 24*time.Hour, "how long an avatar is fresh (at most 8760h, 365 days)")
	dur(&c.NegativeTTL, "negative-ttl", 6*time.Hour, "how long a known no-avatar state is fresh (at most 8760h)")
	dur(&c.MaxStale, "max-stale", 7*24*time.Hour, "how long past freshness an avatar is still served while the gateway fails (0: never; at most 8760h)")
	dur(&c.FirstLoadTimeout, "first-load-timeout", 3*time.Second, "how long a cold miss waits before answering with a placeholder (at most 1m)")
	note("jpeg-quality")
	fs.IntVar(&c.JPEGQuality, "jpeg-quality", 85, "JPEG quality 1..100")

	note("signing-key")
	fs.Var((*stringList)(&c.SigningKeys), "signing-key", "URL signing keys, comma-separated, each 16 bytes or more: the first signs, all verify")
	secret["signing-key"] = true
	note("allow-unsigned")
	fs.BoolVar(&c.AllowUnsigned, "allow-unsigned", false, "serve unsigned URLs when no signing-key is set (anyone who reaches the server can look up any number); with a key, signatures are always required")
	sec(&c.AdminToken, "admin-token", "bearer token for DELETE /avatar/{chatId}, 16 bytes or more (unset: no purge endpoint)")
	note("hide-status")
	fs.BoolVar(&c.HideStatus, "hide-status", false, "omit X-Avatar-Status so privacy, no-avatar and not-on-whatsapp answers are identical")
	note("client-rps")
	fs.Float64Var(&c.ClientRPS, "client-rps", 0, "avatar requests per second per client, answered 429 with a placeholder (d=404: text) and Retry-After past it (0: no limit; meant for unsigned mode)")
	str(&c.ClientIPHeader, "client-ip-header", "", "header with the client address behind a proxy, e.g. X-Forwarded-For (believed only from trusted-proxies; its rightmost untrusted address is the client)")
	note("trusted-proxies")
	fs.Var((*stringList)(&c.TrustedProxies), "trusted-proxies", "proxies (IPs or CIDRs, comma-separated) whose client-ip-header is believed")
	note("server-timing")
	fs.BoolVar(&c.ServerTiming, "server-timing", false, "add a Server-Timing header (resolve, download, resize, storage)")
	note("access-log")
	fs.BoolVar(&c.AccessLog, "access-log", true, "one log line per request (phone numbers masked, no query strings)")

	str(&c.Storage, "storage", "disk", "durable tier: disk, s3 or none")
	sec(&c.StorageNameKey, "storage-name-key", "key of the durable tier's object names (HMAC-SHA256), 16 bytes or more, set once and the same on every replica (a new key orphans the tier); unset: names anyone who can list the tier can trace back to phone numbers")
	str(&c.DiskDir, "disk-dir", "./data", "folder of the disk tier")
	str(&c.S3.Endpoint, "s3-endpoint", "", "S3 endpoint: host or host:port, no scheme (see s3-secure)")
	str(&c.S3.Bucket, "s3-bucket", "avatars", "S3 bucket (created at start if missing)")
	sec(&c.S3.AccessKey, "s3-access-key", "S3 access key")
	sec(&c.S3.SecretKey, "s3-secret-key", "S3 secret key")
	str(&c.S3.Region, "s3-region", "", "S3 region")
	note("s3-secure")
	fs.BoolVar(&c.S3.Secure, "s3-secure", true, "use TLS to reach S3")
	str(&c.S3.Prefix, "s3-prefix", "", "prefix of every object name")

	str(&c.LogFormat, "log-format", "json", "log format: json or text")
	str(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	dur(&c.ShutdownTimeout, "shutdown-timeout", 15*time.Second, "how long shutdown waits for in-flight work")
	return fs, secret, order
}

// Limits of the duration settings.
const (
	// maxTTL bounds the freshness settings: freshness is kept as Unix
	// nanoseconds, which overflow in 2262 (a TTL of ~2.5 million hours made
	// every request a miss), and a max-age past 2^31 s means nothing to
	// caches anyway.
	maxTTL = 365 * 24 * time.Hour
	// FillDeadline is the deadline of one fill (resolve, download, resize),
	// which main gives the proxy: a longer first-load wait or CDN timeout
	// could never be reached, and a fill may make two gateway calls (a dead
	// link's replacement) before its download (checkFillBudget).
	FillDeadline = 60 * time.Second
	// MinStorageNameKey is the shortest storage name key accepted, in
	// bytes: the key is all that stands between a bucket listing and the
	// phone numbers behind it, so it must not be guessable.
	MinStorageNameKey = 16
)

// EnvName is the environment variable of a flag.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Settings lists every setting in declaration order.
func Settings() []Setting {
	var c Config
	fs, secret, order := flagSet(&c)
	out := make([]Setting, 0, len(order))
	for _, name := range order {
		f := fs.Lookup(name)
		out = append(out, Setting{Flag: name, Env: EnvName(name), Default: f.DefValue, Usage: f.Usage, Secret: secret[name]})
	}
	return out
}

// Load parses args (without the program name) and then, for every flag not
// given on the command line, the environment through getenv. It validates the
// result and returns every problem joined; error texts name the variable,
// never a secret's value. flag.ErrHelp is returned as is for -h.
func Load(args []string, getenv func(string) string, usageOut io.Writer) (Config, error) {
	var c Config
	fs, secret, _ := flagSet(&c)
	fs.SetOutput(usageOut)
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })

	var errs []error
	failed := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := EnvName(f.Name)
		v := getenv(env)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			failed[f.Name] = true
			if secret[f.Name] {
				errs = append(errs, fmt.Errorf("%s: invalid value", env))
			} else {
				errs = append(errs, fmt.Errorf("%s: invalid value %q", env, v))
			}
		}
	})
	if fs.NArg() > 0 {
		errs = append(errs, unexpectedArgs(fs.NArg()))
	}
	errs = append(errs, c.validate(failed)...)
	return c, errors.Join(errs...)
}

// unexpectedArgs reports n arguments left after the flags. They are never
// quoted: what follows a slip such as "--allow-unsigned true" is often
// "--signing-key <key>", where the flag package stopped.
func unexpectedArgs(n int) error {
	return fmt.Errorf("unexpected arguments after the flags: %d, not shown as they may hold secrets (bool flags take --flag=false, not --flag false)", n)
}

// ListenAddress is the listen address that args (the server's flags, or
// none) and the environment give, for `avatarproxy healthcheck`. It parses
// like Load but validates nothing else: a health check given only some of
// the server's flags must not fail on a setting it does not use.
func ListenAddress(args []string, getenv func(string) string) (string, error) {
	var c Config
	fs, _, _ := flagSet(&c)
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", unexpectedArgs(fs.NArg())
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "listen" })
	if v := getenv(EnvName("listen")); !given && v != "" {
		c.Listen = v
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return "", fmt.Errorf("%s: want host:port, got %q", EnvName("listen"), c.Listen)
	}
	return c.Listen, nil
}

// validate checks values and combinations; flags that already failed to
// parse are not reported twice.
func (c *Config) validate(failed map[string]bool) []error {
	var errs []error
	bad := func(flagName, format string, a ...any) {
		if failed[flagName] {
			return
		}
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{EnvName(flagName)}, a...)...))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics-listen", "want host:port, got %q", c.MetricsListen)
		}
	}
	if c.ClientIPHeader != "" && len(c.TrustedProxies) == 0 {
		bad("trusted-proxies", "required with %s: a header anyone can send must not pick the rate bucket", EnvName("client-ip-header"))
	}
	for _, p := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad("trusted-proxies", "want IPs or CIDRs, got %q", p)
			}
		}
	}
	// Written so NaN fails too (every comparison with NaN is false): a NaN
	// client rate silently turned the limit off.
	if !(c.ClientRPS >= 0 && c.ClientRPS <= 1e6) {
		bad("client-rps", "want 0..1000000, got %g", c.ClientRPS)
	}
	// A URL that fails these checks is not quoted: it may be one typed with
	// its credentials (user:password@host, or Green API's whole getAvatar
	// URL with the token in its path).
	checkURL := func(flagName, v string) {
		u, err := url.Parse(v)
		switch {
		case err != nil:
			bad(flagName, "want an http(s) URL; the value does not parse (not shown: it may hold credentials)")
		case u.Scheme != "http" && u.Scheme != "https":
			bad(flagName, "want an http(s) URL starting with http:// or https:// (the value is not shown: it may hold credentials)")
		case u.Host == "":
			bad(flagName, "want an http(s) URL with a host (the value is not shown: it may hold credentials)")
		}
	}
	gatewayChecked := len(errs)
	switch c.Upstream {
	case "none":
	case "greenapi":
		if !c.Demo {
			checkURL("greenapi-url", c.GreenAPIURL)
			if c.GreenAPIIDInstance == "" || strings.Trim(c.GreenAPIIDInstance, "0123456789") != "" {
				bad("greenapi-id-instance", "want the digits of idInstance")
			}
			if c.GreenAPIToken == "" {
				bad("greenapi-api-token-instance", "required for upstream greenapi")
			}
		}
	case "gowa":
		checkURL("gowa-url", c.GOWAURL)
		if (c.GOWAUser == "") != (c.GOWAPassword == "") {
			bad("gowa-user", "set both user and password, or neither")
		}
	case "waha":
		checkURL("waha-url", c.WAHAURL)
		if c.WAHASession == "" {
			bad("waha-session", "required")
		}
	case "evolution":
		checkURL("evolution-url", c.EvolutionURL)
		if c.EvolutionInstance == "" {
			bad("evolution-instance", "required for upstream evolution")
		}
		if c.EvolutionAPIKey == "" {
			bad("evolution-api-key", "required for upstream evolution")
		}
	default:
		bad("upstream", "want greenapi, gowa, waha, evolution or none, got %q", c.Upstream)
	}
	if len(errs) == gatewayChecked && !c.Demo {
		// The gateway's own checks, which its constructor makes again at
		// start, so that they are reported with every other problem; only
		// when the checks above found nothing wrong with its settings,
		// which would be reported twice. The demo brings its own gateway.
		c.checkGateway(bad)
	}
	if c.UpstreamTimeout < 0 {
		bad("upstream-timeout", "must not be negative (0: the gateway's own), got %s", c.UpstreamTimeout)
	}
	if !(c.UpstreamRPS > 0 && c.UpstreamRPS <= 1000) {
		bad("upstream-rps", "want >0 and <=1000, got %g", c.UpstreamRPS)
	}
	if c.UpstreamConcurrency < 1 || c.UpstreamConcurrency > 256 {
		bad("upstream-concurrency", "want 1..256, got %d", c.UpstreamConcurrency)
	}
	if _, err := upstream.ParseAllowList(strings.Join(c.CDNAllow, ",")); err != nil || len(c.CDNAllow) == 0 {
		bad("cdn-allow", "want host or host:port patterns, got %q", strings.Join(c.CDNAllow, ","))
	}
	// The decoder refuses input over resize.DefaultMaxBytes: a larger cap
	// would download pictures only to answer "picture rejected" for them.
	if c.CDNMaxBytes < 1024 || c.CDNMaxBytes > resize.DefaultMaxBytes {
		bad("cdn-max-bytes", "want 1024..%d (what the decoder takes), got %d", resize.DefaultMaxBytes, c.CDNMaxBytes)
	}
	if c.CDNTimeout <= 0 || c.CDNTimeout > FillDeadline {
		bad("cdn-timeout", "want 1ns..%s (a fill is cut at %s), got %s", FillDeadline, FillDeadline, c.CDNTimeout)
	} else if c.UpstreamTimeout >= 0 && !failed["upstream-timeout"] && !failed["cdn-timeout"] {
		c.checkFillBudget(bad)
	}
	if c.MemoryMB < 1 || c.MemoryMB > 1<<20 {
		bad("memory-mb", "want 1..1048576, got %d", c.MemoryMB)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		max  time.Duration
		why  string
	}{
		{"ttl", c.TTL, maxTTL, "365 days"},
		{"negative-ttl", c.NegativeTTL, maxTTL, "365 days"},
		{"first-load-timeout", c.FirstLoadTimeout, FillDeadline, "a fill is cut at " + FillDeadline.String()},
		{"shutdown-timeout", c.ShutdownTimeout, 0, ""},
	} {
		switch {
		case d.v <= 0:
			bad(d.name, "must be positive, got %s", d.v)
		case d.max > 0 && d.v > d.max:
			bad(d.name, "want at most %s (%s), got %s", d.max, d.why, d.v)
		}
	}
	if c.MaxStale < 0 || c.MaxStale > maxTTL {
		bad("max-stale", "want 0..%s (365 days), got %s", maxTTL, c.MaxStale)
	}
	if c.JPEGQuality < 1 || c.JPEGQuality > 100 {
		bad("jpeg-quality", "want 1..100, got %d", c.JPEGQuality)
	}
	for i, k := range c.SigningKeys {
		if len(k) < 16 {
			bad("signing-key", "key %d is shorter than 16 bytes", i+1)
		}
	}
	if len(c.SigningKeys) == 0 && !c.AllowUnsigned && !c.Demo {
		bad("signing-key", "required (or set %s=true to serve unsigned URLs)", EnvName("allow-unsigned"))
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		bad("admin-token", "shorter than 16 bytes")
	}
	// Not quoted: it is a secret, and a short one is half of it.
	if c.StorageNameKey != "" && len(c.StorageNameKey) < MinStorageNameKey {
		bad("storage-name-key", "shorter than %d bytes (the value is not shown)", MinStorageNameKey)
	}
	switch c.Storage {
	case "none":
	case "disk":
		if c.DiskDir == "" {
			bad("disk-dir", "required for storage disk")
		}
	case "s3":
		if !validEndpoint(c.S3.Endpoint) {
			bad("s3-endpoint", "want host or host:port, without scheme, path or credentials (the value is not shown: it may hold some)")
		}
		// Checked here as the S3 tier checks them at start, so they are
		// reported with every other problem.
		if c.S3.Bucket == "" {
			bad("s3-bucket", "required for storage s3")
		} else if err := s3utils.CheckValidBucketNameStrict(c.S3.Bucket); err != nil {
			bad("s3-bucket", "want an S3 bucket name (3-63 of a-z 0-9 . -), got %q", c.S3.Bucket)
		}
		if strings.HasPrefix(c.S3.Prefix, "/") {
			bad("s3-prefix", "must not start with /, got %q", c.S3.Prefix)
		}
		if c.S3.AccessKey == "" || c.S3.SecretKey == "" {
			bad("s3-access-key", "access and secret key are required for storage s3")
		}
	default:
		bad("storage", "want disk, s3 or none, got %q", c.Storage)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		bad("log-format", "want json or text, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	return errs
}

// checkFillBudget refuses gateway and CDN timeouts that do not leave a fill
// room for what a dead link costs: a gateway call, a second one for the
// replacement link, and its download, all under FillDeadline. Past it the
// replacement is cut off and the chat answers unavailable when it need not.
// (The dead link's own download is not counted: the CDN refuses it at once.)
// The gateway's deadline is the one in force: its own when the setting is 0.
// Both timeouts are already known to be in range.
func (c *Config) checkFillBudget(bad func(flagName, format string, a ...any)) {
	if c.UpstreamTimeout > 0 {
		// Checked whatever the gateway, none included: a deadline past
		// what any fill can hold is a mistake wherever it is set.
		most := (FillDeadline - c.CDNTimeout) / 2
		if most <= 0 {
			bad("cdn-timeout", "%s leaves a fill (cut at %s) no room for the gateway calls before the download", c.CDNTimeout, FillDeadline)
		} else if c.UpstreamTimeout > most {
			bad("upstream-timeout", "want at most %s: a fill, cut at %s, may make two gateway calls (a dead link's replacement needs a second) and a download of %s (%s), got %s",
				most, FillDeadline, c.CDNTimeout, EnvName("cdn-timeout"), c.UpstreamTimeout)
		}
		return
	}
	gateway := c.Upstream
	if c.Demo {
		gateway = "greenapi" // main points a demo at its Green API stand-in
	}
	call := upstream.DefaultTimeout(gateway)
	if call == 0 { // no gateway, or an unknown one (reported elsewhere)
		return
	}
	if most := FillDeadline - 2*call; c.CDNTimeout > most {
		bad("cdn-timeout", "want at most %s, or a shorter %s: a fill, cut at %s, may make two %s calls at that gateway's own deadline of %s (a dead link's replacement needs a second) before the download, got %s",
			most, EnvName("upstream-timeout"), FillDeadline, gateway, call, c.CDNTimeout)
	}
}

// validEndpoint reports whether s is a host or host:port, as minio-go takes
// an endpoint. AWS endpoints are named without a port (the scheme's default),
// so one is not required.
func validEndpoint(s string) bool {
	u, err := url.Parse("//" + s)
	if err != nil || u.Host != s || u.User != nil || u.Hostname() == "" {
		return false
	}
	if _, port, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(port)
		return err == nil && n >= 1 && n <= 65535
	}
	return !strings.Contains(s, ":")
}

// MarkdownTable renders Settings as the README's configuration table.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| Variable | Flag | Default | What it does |\n|---|---|---|---|\n")
	for _, s := range Settings() {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | `%s` | %s", s.Env, s.Flag, def, s.Usage)
		if s.Secret {
			b.WriteString(" (secret: never logged)")
		}
		b.WriteString(" |\n")
	}
	return b.String()
}

// GreenAPI is the Green API gateway's config from c, without its logger.
func (c *Config) GreenAPI() upstream.GreenAPIConfig {
	return upstream.GreenAPIConfig{BaseURL: c.GreenAPIURL, IDInstance: c.GreenAPIIDInstance, Token: c.GreenAPIToken, Timeout: c.UpstreamTimeout}
}

// GOWA is the go-whatsapp-web-multidevice gateway's config from c, without
// its logger.
func (c *Config) GOWA() upstream.GOWAConfig {
	return upstream.GOWAConfig{BaseURL: c.GOWAURL, User: c.GOWAUser, Password: c.GOWAPassword, DeviceID: c.GOWADeviceID, Timeout: c.UpstreamTimeout}
}

// WAHA is the WAHA gateway's config from c, without its logger.
func (c *Config) WAHA() upstream.WAHAConfig {
	return upstream.WAHAConfig{BaseURL: c.WAHAURL, APIKey: c.WAHAAPIKey, Session: c.WAHASession, Timeout: c.UpstreamTimeout}
}

// Evolution is the Evolution API gateway's config from c, without its
// logger.
func (c *Config) Evolution() upstream.EvolutionConfig {
	return upstream.EvolutionConfig{BaseURL: c.EvolutionURL, APIKey: c.EvolutionAPIKey, Instance: c.EvolutionInstance, Timeout: c.UpstreamTimeout}
}

// checkGateway reports the selected gateway's own problems with its
// settings (upstream's Validate), each under the setting it comes from.
func (c *Config) checkGateway(bad func(flagName, format string, a ...any)) {
	var err error
	switch c.Upstream {
	case "greenapi":
		err = c.GreenAPI().Validate()
	case "gowa":
		err = c.GOWA().Validate()
	case "waha":
		err = c.WAHA().Validate()
	case "evolution":
		err = c.Evolution().Validate()
	}
	if err == nil {
		return
	}
	for _, e := range joined(err) {
		var ce *upstream.ConfigError
		switch {
		case !errors.As(e, &ce):
			bad("upstream", "%v", e)
		case ce.Field == "Timeout": // validate checks upstream-timeout itself
		default:
			name, ok := gatewayFields[ce.Gateway+"."+ce.Field]
			if !ok {
				name = "upstream"
			}
			bad(name, "%s", ce.Problem)
		}
	}
}

// gatewayFields names the setting behind each gateway config field.
var gatewayFields = map[string]string{
	"greenapi.BaseURL": "greenapi-url", "greenapi.IDInstance": "greenapi-id-instance", "greenapi.Token": "greenapi-api-token-instance",
	"gowa.BaseURL": "gowa-url", "gowa.User": "gowa-user", "gowa.Password": "gowa-password", "gowa.DeviceID": "gowa-device-id",
	"waha.BaseURL": "waha-url", "waha.APIKey": "waha-api-key", "waha.Session": "waha-session",
	"evolution.BaseURL": "evolution-url", "evolution.APIKey": "evolution-api-key", "evolution.Instance": "evolution-instance",
}

// joined is the errors errors.Join put together in err, or err alone.
func joined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
