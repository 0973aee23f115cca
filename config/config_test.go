package config

import (
	"errors"
	"flag"
	"io"
	"maps"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(map[string]string{
		"AVATAR_GREENAPI_ID_INSTANCE":        "1101000001",
		"AVATAR_GREENAPI_API_TOKEN_INSTANCE": "tok",
		"AVATAR_SIGNING_KEY":                 "0123456789abcdef0123",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":8080" || c.Upstream != "greenapi" || c.TTL != 24*time.Hour || c.NegativeTTL != 6*time.Hour ||
		c.MemoryMB != 256 || c.Storage != "disk" || c.DiskDir != "./data" || c.JPEGQuality != 85 ||
		c.FirstLoadTimeout != 3*time.Second || c.MaxStale != 7*24*time.Hour || c.UpstreamRPS != 5 || c.UpstreamConcurrency != 4 ||
		strings.Join(c.CDNAllow, ",") != "pps.whatsapp.net,*.whatsapp.net" || c.GreenAPIURL != "https://api.green-api.com" {
		t.Errorf("defaults: %+v", c)
	}
}

// TestUpstreamTimeout: unset, each gateway keeps its own deadline (GOWA's
// 20 s covers its 10 s on-WhatsApp check plus its 5 s picture lookup); an
// operator may set one as long as two calls and the default 10 s download
// fit a fill (TestFillBudget), never a negative one.
func TestUpstreamTimeout(t *testing.T) {
	base := map[string]string{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "http://127.0.0.1:3000", "AVATAR_ALLOW_UNSIGNED": "true"}
	for _, tc := range []struct {
		set  string
		want time.Duration
		ok   bool
	}{
		{"", 0, true},
		{"0", 0, true},
		{"25s", 25 * time.Second, true},
		{"-1s", 0, false},
		{"30s", 0, false}, // two calls and the 10 s download: 70 s, past a fill's 60 s
		{"31s", 0, false}, // a fill (60 s) may make two gateway calls
		{"5m", 0, false},
	} {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		if tc.set != "" {
			m["AVATAR_UPSTREAM_TIMEOUT"] = tc.set
		}
		c, err := Load(nil, env(m), io.Discard)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: %v", tc.set, err)
		case tc.ok && c.UpstreamTimeout != tc.want:
			t.Errorf("%q: UpstreamTimeout = %s, want %s", tc.set, c.UpstreamTimeout, tc.want)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "AVATAR_UPSTREAM_TIMEOUT")):
			t.Errorf("%q: err = %v, want one naming AVATAR_UPSTREAM_TIMEOUT", tc.set, err)
		}
	}
}

func TestFlagsBeatEnv(t *testing.T) {
	c, err := Load([]string{"--ttl=1h", "--upstream=none", "--allow-unsigned"}, env(map[string]string{
		"AVATAR_TTL": "2h", "AVATAR_MEMORY_MB": "64", "AVATAR_SIGNING_KEY": "a-key-of-16-bytes,another-key-16-bytes",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.TTL != time.Hour || c.MemoryMB != 64 || len(c.SigningKeys) != 2 {
		t.Errorf("got TTL %s, memory %d, keys %d", c.TTL, c.MemoryMB, len(c.SigningKeys))
	}
}

func TestEveryProblemAtOnceSecretsRedacted(t *testing.T) {
	const token = "super-secret-token-value"
	_, err := Load(nil, env(map[string]string{
		"AVATAR_TTL":                         "soon",
		"AVATAR_MEMORY_MB":                   "0",
		"AVATAR_UPSTREAM":                    "greenapi",
		"AVATAR_GREENAPI_API_TOKEN_INSTANCE": token,
		"AVATAR_GREENAPI_ID_INSTANCE":        "12ab",
		"AVATAR_STORAGE":                     "s3",
		"AVATAR_S3_SECRET_KEY":               token,
		"AVATAR_SIGNING_KEY":                 "tiny-key",
		"AVATAR_JPEG_QUALITY":                "101",
		"AVATAR_CDN_ALLOW":                   "http://x/y",
	}), io.Discard)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{"AVATAR_TTL", "AVATAR_MEMORY_MB", "AVATAR_GREENAPI_ID_INSTANCE", "AVATAR_S3_ENDPOINT",
		"AVATAR_S3_ACCESS_KEY", "AVATAR_SIGNING_KEY", "AVATAR_JPEG_QUALITY", "AVATAR_CDN_ALLOW"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not name %s:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, token) || strings.Contains(msg, "tiny-key") {
		t.Errorf("a secret leaked into the error:\n%s", msg)
	}
}

func TestUnsignedNeedsOptIn(t *testing.T) {
	_, err := Load([]string{"--upstream=none"}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "AVATAR_ALLOW_UNSIGNED") {
		t.Fatalf("err = %v, want a pointer to AVATAR_ALLOW_UNSIGNED", err)
	}
	if _, err := Load([]string{"--upstream=none", "--allow-unsigned"}, env(nil), io.Discard); err != nil {
		t.Fatal(err)
	}
}

func TestHelp(t *testing.T) {
	if _, err := Load([]string{"-h"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
}

func TestSettingsComplete(t *testing.T) {
	s := Settings()
	seen := map[string]bool{}
	for _, x := range s {
		if seen[x.Flag] || x.Env != EnvName(x.Flag) || x.Usage == "" {
			t.Errorf("bad setting %+v", x)
		}
		seen[x.Flag] = true
	}
	for _, secret := range []string{"greenapi-api-token-instance", "signing-key", "s3-secret-key", "admin-token", "gowa-password", "storage-name-key"} {
		found := false
		for _, x := range s {
			if x.Flag == secret {
				found = x.Secret
			}
		}
		if !found {
			t.Errorf("%s is not marked secret", secret)
		}
	}
	if s[0].Flag != "listen" {
		t.Errorf("settings not in declaration order: first is %s", s[0].Flag)
	}
}

// A bool flag given a separate value stops flag parsing; whatever follows,
// a key included, must not be echoed.
func TestUnexpectedArgumentsNotEchoed(t *testing.T) {
	const key = "SUPERSECRETKEY-0123456789"
	for _, args := range [][]string{
		{"--upstream=none", "--storage=none", "--allow-unsigned", "true", "--signing-key", key},
		{"--upstream=none", "--allow-unsigned", key},
	} {
		_, err := Load(args, env(nil), io.Discard)
		if err == nil {
			t.Fatalf("%d args: no error", len(args))
		}
		msg := err.Error()
		if strings.Contains(msg, key) || strings.Contains(msg, "true") {
			t.Errorf("the error quotes an argument: %s", msg)
		}
		if !strings.Contains(msg, "unexpected arguments") || !strings.Contains(msg, "--flag=false") {
			t.Errorf("the error does not say what went wrong: %s", msg)
		}
	}
}

// Values that parse but would silently defeat the cache or a limit are
// refused, naming the variable; the bounds themselves are accepted.
func TestLimits(t *testing.T) {
	for _, tc := range []struct {
		env, val string
		ok       bool
	}{
		{"AVATAR_CLIENT_RPS", "NaN", false},
		{"AVATAR_CLIENT_RPS", "+Inf", false},
		{"AVATAR_CLIENT_RPS", "-1", false},
		{"AVATAR_CLIENT_RPS", "1000000", true},
		{"AVATAR_UPSTREAM_RPS", "NaN", false},
		{"AVATAR_UPSTREAM_RPS", "Inf", false},
		{"AVATAR_UPSTREAM_RPS", "-Inf", false},
		{"AVATAR_UPSTREAM_RPS", "1000", true},
		{"AVATAR_TTL", "2500000h", false},
		{"AVATAR_TTL", "8761h", false},
		{"AVATAR_TTL", "8760h", true},
		{"AVATAR_NEGATIVE_TTL", "2500000h", false},
		{"AVATAR_NEGATIVE_TTL", "8760h", true},
		{"AVATAR_MAX_STALE", "2500000h", false},
		{"AVATAR_MAX_STALE", "-1s", false},
		{"AVATAR_MAX_STALE", "0", true},
		{"AVATAR_MAX_STALE", "8760h", true},
		{"AVATAR_FIRST_LOAD_TIMEOUT", "61s", false},
		{"AVATAR_FIRST_LOAD_TIMEOUT", "1m", true},
		{"AVATAR_CDN_TIMEOUT", "61s", false},
		{"AVATAR_CDN_TIMEOUT", "0", false},
		{"AVATAR_CDN_TIMEOUT", "1m", true},
		{"AVATAR_CDN_MAX_BYTES", "8388608", true},
		{"AVATAR_CDN_MAX_BYTES", "8388609", false},
		{"AVATAR_CDN_MAX_BYTES", "1023", false},
	} {
		t.Run(tc.env+"="+tc.val, func(t *testing.T) {
			_, err := Load([]string{"--upstream=none", "--storage=none", "--allow-unsigned"}, env(map[string]string{tc.env: tc.val}), io.Discard)
			switch {
			case tc.ok && err != nil:
				t.Errorf("refused: %v", err)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.env)):
				t.Errorf("err = %v, want one naming %s", err, tc.env)
			}
		})
	}
}

// TestS3Endpoint: AWS and most S3 services are named without a port (the
// scheme's default, which storage.S3 and minio-go fill in), as the
// Kubernetes recipe does; a scheme or a path is refused.
func TestS3Endpoint(t *testing.T) {
	for _, tc := range []struct {
		endpoint string
		ok       bool
	}{
		{"s3.eu-central-1.amazonaws.com", true},
		{"minio:9000", true},
		{"127.0.0.1:9000", true},
		{"[::1]:9000", true},
		{"", false},
		{"https://s3.amazonaws.com", false},
		{"s3.amazonaws.com/bucket", false},
		{"minio:", false},
		{"minio:port", false},
		{"minio:70000", false},
		{":9000", false},
		{"user:pw@minio:9000", false},
	} {
		_, err := Load(nil, env(map[string]string{
			"AVATAR_UPSTREAM": "none", "AVATAR_ALLOW_UNSIGNED": "true", "AVATAR_STORAGE": "s3",
			"AVATAR_S3_ENDPOINT": tc.endpoint, "AVATAR_S3_ACCESS_KEY": "ak", "AVATAR_S3_SECRET_KEY": "sk-secret",
		}), io.Discard)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%q: %v", tc.endpoint, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), "AVATAR_S3_ENDPOINT")):
			t.Errorf("%q: err = %v, want one naming AVATAR_S3_ENDPOINT", tc.endpoint, err)
		}
	}
}

// TestURLErrorsQuoteNoCredentials: a gateway URL or S3 endpoint typed with
// its credentials (user:password@, or Green API's whole getAvatar URL with
// the token in the path) and without a scheme fails the check; the error
// names the variable but must not print the value.
func TestURLErrorsQuoteNoCredentials(t *testing.T) {
	const secret = "hunter2-secret"
	for _, m := range []map[string]string{
		{"AVATAR_UPSTREAM": "greenapi", "AVATAR_GREENAPI_URL": "1103.api.green-api.com/waInstance1103000001/getAvatar/" + secret,
			"AVATAR_GREENAPI_ID_INSTANCE": "1103000001", "AVATAR_GREENAPI_API_TOKEN_INSTANCE": secret},
		{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "kemal:" + secret + "@gowa:3000"},
		{"AVATAR_UPSTREAM": "waha", "AVATAR_WAHA_URL": "ftp://waha/?key=" + secret},
		{"AVATAR_UPSTREAM": "evolution", "AVATAR_EVOLUTION_URL": "evo:8080/" + secret,
			"AVATAR_EVOLUTION_INSTANCE": "main", "AVATAR_EVOLUTION_API_KEY": secret},
		{"AVATAR_UPSTREAM": "none", "AVATAR_STORAGE": "s3", "AVATAR_S3_ENDPOINT": "ak:" + secret + "@minio:9000",
			"AVATAR_S3_ACCESS_KEY": "ak", "AVATAR_S3_SECRET_KEY": secret},
	} {
		m["AVATAR_ALLOW_UNSIGNED"] = "true"
		_, err := Load(nil, env(m), io.Discard)
		if err == nil {
			t.Errorf("%v: no error", m)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("the error quotes a credential: %v", err)
		}
	}
}

// TestStorageNameKey: unset keeps today's names; a key of 16 bytes or more is
// taken as given; a shorter one is refused without being quoted, in whole or
// in part.
func TestStorageNameKey(t *testing.T) {
	base := map[string]string{"AVATAR_UPSTREAM": "none", "AVATAR_ALLOW_UNSIGNED": "true"}
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{
		{"unset", "", true},
		{"16 bytes", "0123456789abcdef", true},
		{"long", "c2lnbmluZy1rZXktb2YtMzItYnl0ZXMtLS0tLS0tLS0=", true},
		{"15 bytes", "0123456789abcde", false},
		{"short", "k3y-s3cr3t", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, via := range []string{"env", "flag"} {
				m := maps.Clone(base)
				var args []string
				if tc.key != "" && via == "env" {
					m["AVATAR_STORAGE_NAME_KEY"] = tc.key
				} else if tc.key != "" {
					args = []string{"--storage-name-key=" + tc.key}
				}
				c, err := Load(args, env(m), io.Discard)
				switch {
				case tc.ok && err != nil:
					t.Errorf("%s: %v", via, err)
				case tc.ok && c.StorageNameKey != tc.key:
					t.Errorf("%s: StorageNameKey not the one given", via)
				case !tc.ok && (err == nil || !strings.Contains(err.Error(), "AVATAR_STORAGE_NAME_KEY") || !strings.Contains(err.Error(), "16 bytes")):
					t.Errorf("%s: err = %v, want one naming AVATAR_STORAGE_NAME_KEY and its minimum", via, err)
				case !tc.ok && strings.Contains(err.Error(), tc.key[:6]):
					t.Errorf("%s: the error quotes the key: %v", via, err)
				}
			}
		})
	}
	for _, s := range Settings() {
		if s.Flag == "storage-name-key" && (!s.Secret || s.Default != "") {
			t.Errorf("storage-name-key: secret %v, default %q; want a secret with no default", s.Secret, s.Default)
		}
	}
}

// TestFillBudget: a fill whose link is dead makes two gateway calls and a
// download under one 60 s deadline, so twice the gateway's deadline in force
// (its own when AVATAR_UPSTREAM_TIMEOUT is 0) plus AVATAR_CDN_TIMEOUT must
// fit. The error names the setting to lower and says the limit.
func TestFillBudget(t *testing.T) {
	gowa := map[string]string{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "http://127.0.0.1:3000"}
	greenapi := map[string]string{"AVATAR_GREENAPI_ID_INSTANCE": "1101000001", "AVATAR_GREENAPI_API_TOKEN_INSTANCE": "tok"}
	for _, tc := range []struct {
		name     string
		base     map[string]string
		upstream string // AVATAR_UPSTREAM_TIMEOUT, "" unset
		cdn      string // AVATAR_CDN_TIMEOUT, "" unset (10s)
		wantErr  string // the variable the error names, "" for none
		wantText string
	}{
		{"set 30s with the default download", greenapi, "30s", "", "AVATAR_UPSTREAM_TIMEOUT", "want at most 25s"},
		{"set 25s with the default download", greenapi, "25s", "", "", ""},
		{"set 20s with a 20s download", greenapi, "20s", "20s", "", ""},
		{"set 20s with a 21s download", greenapi, "20s", "21s", "AVATAR_UPSTREAM_TIMEOUT", "want at most 19.5s"},
		{"set 1s with a whole-fill download", greenapi, "1s", "1m", "AVATAR_CDN_TIMEOUT", "no room"},
		{"set 5m", gowa, "5m", "", "AVATAR_UPSTREAM_TIMEOUT", "want at most 25s"},
		{"gowa's own 20s with a 20s download", gowa, "", "20s", "", ""},
		{"gowa's own 20s with a 21s download", gowa, "", "21s", "AVATAR_CDN_TIMEOUT", "want at most 20s"},
		{"greenapi's own 10s with a 40s download", greenapi, "", "40s", "", ""},
		{"greenapi's own 10s with a 41s download", greenapi, "", "41s", "AVATAR_CDN_TIMEOUT", "greenapi calls"},
		{"set 10s beats gowa's own", gowa, "10s", "40s", "", ""},
		{"demo runs greenapi", map[string]string{"AVATAR_UPSTREAM": "none", "AVATAR_DEMO": "true"}, "", "41s", "AVATAR_CDN_TIMEOUT", "greenapi calls"},
		{"no gateway, no calls", map[string]string{"AVATAR_UPSTREAM": "none"}, "", "1m", "", ""},
		{"no gateway, the setting still checked", map[string]string{"AVATAR_UPSTREAM": "none"}, "26s", "", "AVATAR_UPSTREAM_TIMEOUT", "want at most 25s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"AVATAR_ALLOW_UNSIGNED": "true", "AVATAR_STORAGE": "none"}
			maps.Copy(m, tc.base)
			if tc.upstream != "" {
				m["AVATAR_UPSTREAM_TIMEOUT"] = tc.upstream
			}
			if tc.cdn != "" {
				m["AVATAR_CDN_TIMEOUT"] = tc.cdn
			}
			_, err := Load(nil, env(m), io.Discard)
			wantOneError(t, err, tc.wantErr, "fill", tc.wantText)
		})
	}
}

// TestS3NameChecks: a bucket name or prefix the S3 tier would refuse at
// start is reported by Load with every other problem, as the README
// promises ("listing every problem at once").
func TestS3NameChecks(t *testing.T) {
	base := map[string]string{
		"AVATAR_UPSTREAM": "none", "AVATAR_ALLOW_UNSIGNED": "true", "AVATAR_STORAGE": "s3",
		"AVATAR_S3_ENDPOINT": "minio:9000", "AVATAR_S3_ACCESS_KEY": "ak", "AVATAR_S3_SECRET_KEY": "sk-secret",
	}
	if _, err := Load(nil, env(base), io.Discard); err != nil {
		t.Fatalf("base settings: %v", err)
	}
	for _, tc := range []struct{ name, val string }{
		{"AVATAR_S3_BUCKET", "Avatars_Bucket"},
		{"AVATAR_S3_BUCKET", "ab"},
		{"AVATAR_S3_PREFIX", "/avatars"},
	} {
		m := maps.Clone(base)
		m[tc.name] = tc.val
		m["AVATAR_JPEG_QUALITY"] = "0" // another problem, reported with it
		_, err := Load(nil, env(m), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), "AVATAR_JPEG_QUALITY") {
			t.Errorf("%s=%q: err = %v, want one naming %s and AVATAR_JPEG_QUALITY", tc.name, tc.val, err, tc.name)
		}
	}
	for _, ok := range []string{"avatars", "my-avatars.example"} {
		m := maps.Clone(base)
		m["AVATAR_S3_BUCKET"] = ok
		m["AVATAR_S3_PREFIX"] = "fleet/a"
		if _, err := Load(nil, env(m), io.Discard); err != nil {
			t.Errorf("bucket %q, prefix fleet/a: %v", ok, err)
		}
	}
}

// TestBounds: each range's ends are accepted and the values just past them
// refused with exactly one error, naming the variable: an off-by-one in a
// bound, or a required setting left unchecked, goes unnoticed otherwise
// (the defaults sit well inside every range).
func TestBounds(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     map[string]string
		wantErr string // the variable the only error names, "" for none
	}{
		{"upstream rps 0", map[string]string{"AVATAR_UPSTREAM_RPS": "0"}, "AVATAR_UPSTREAM_RPS"},
		{"upstream rps tiny", map[string]string{"AVATAR_UPSTREAM_RPS": "0.001"}, ""},
		{"concurrency 0", map[string]string{"AVATAR_UPSTREAM_CONCURRENCY": "0"}, "AVATAR_UPSTREAM_CONCURRENCY"},
		{"concurrency 1", map[string]string{"AVATAR_UPSTREAM_CONCURRENCY": "1"}, ""},
		{"concurrency 256", map[string]string{"AVATAR_UPSTREAM_CONCURRENCY": "256"}, ""},
		{"concurrency 257", map[string]string{"AVATAR_UPSTREAM_CONCURRENCY": "257"}, "AVATAR_UPSTREAM_CONCURRENCY"},
		{"cdn max bytes 1024", map[string]string{"AVATAR_CDN_MAX_BYTES": "1024"}, ""},
		{"memory 0", map[string]string{"AVATAR_MEMORY_MB": "0"}, "AVATAR_MEMORY_MB"},
		{"memory 1", map[string]string{"AVATAR_MEMORY_MB": "1"}, ""},
		{"memory 1048576", map[string]string{"AVATAR_MEMORY_MB": "1048576"}, ""},
		{"memory 1048577", map[string]string{"AVATAR_MEMORY_MB": "1048577"}, "AVATAR_MEMORY_MB"},
		{"jpeg quality 0", map[string]string{"AVATAR_JPEG_QUALITY": "0"}, "AVATAR_JPEG_QUALITY"},
		{"jpeg quality 1", map[string]string{"AVATAR_JPEG_QUALITY": "1"}, ""},
		{"jpeg quality 100", map[string]string{"AVATAR_JPEG_QUALITY": "100"}, ""},
		{"ttl 0", map[string]string{"AVATAR_TTL": "0"}, "AVATAR_TTL"},
		{"ttl 1ns", map[string]string{"AVATAR_TTL": "1ns"}, ""},
		{"first load timeout 0", map[string]string{"AVATAR_FIRST_LOAD_TIMEOUT": "0"}, "AVATAR_FIRST_LOAD_TIMEOUT"},
		// Shutdown has no upper bound: an operator may wait as long as
		// in-flight work needs.
		{"shutdown timeout 0", map[string]string{"AVATAR_SHUTDOWN_TIMEOUT": "0"}, "AVATAR_SHUTDOWN_TIMEOUT"},
		{"shutdown timeout 9000h", map[string]string{"AVATAR_SHUTDOWN_TIMEOUT": "9000h"}, ""},
		{"signing key 15 bytes", map[string]string{"AVATAR_SIGNING_KEY": "0123456789abcde"}, "AVATAR_SIGNING_KEY"},
		{"signing key 16 bytes", map[string]string{"AVATAR_SIGNING_KEY": "0123456789abcdef"}, ""},
		{"admin token 15 bytes", map[string]string{"AVATAR_ADMIN_TOKEN": "0123456789abcde"}, "AVATAR_ADMIN_TOKEN"},
		{"admin token 16 bytes", map[string]string{"AVATAR_ADMIN_TOKEN": "0123456789abcdef"}, ""},
		{"log format text", map[string]string{"AVATAR_LOG_FORMAT": "text"}, ""},
		{"log format xml", map[string]string{"AVATAR_LOG_FORMAT": "xml"}, "AVATAR_LOG_FORMAT"},
		{"metrics listen without port", map[string]string{"AVATAR_METRICS_LISTEN": "127.0.0.1"}, "AVATAR_METRICS_LISTEN"},
		{"metrics listen", map[string]string{"AVATAR_METRICS_LISTEN": "127.0.0.1:9090"}, ""},
		{"client ip header alone", map[string]string{"AVATAR_CLIENT_IP_HEADER": "X-Forwarded-For"}, "AVATAR_TRUSTED_PROXIES"},
		{"client ip header trusted", map[string]string{"AVATAR_CLIENT_IP_HEADER": "X-Forwarded-For", "AVATAR_TRUSTED_PROXIES": "127.0.0.1,10.0.0.0/8"}, ""},
		{"trusted proxy not an address", map[string]string{"AVATAR_TRUSTED_PROXIES": "10.0.0.0/8,proxy.local"}, "AVATAR_TRUSTED_PROXIES"},
		{"gateway url that does not parse", map[string]string{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "http://127.0.0.1:3000/%zz"}, "AVATAR_GOWA_URL"},
		{"gateway url without host", map[string]string{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "http:///path"}, "AVATAR_GOWA_URL"},
		{"waha", map[string]string{"AVATAR_UPSTREAM": "waha", "AVATAR_WAHA_URL": "http://127.0.0.1:3000"}, ""},
		{"evolution", map[string]string{"AVATAR_UPSTREAM": "evolution", "AVATAR_EVOLUTION_URL": "http://127.0.0.1:8080",
			"AVATAR_EVOLUTION_INSTANCE": "main", "AVATAR_EVOLUTION_API_KEY": "k"}, ""},
		{"evolution without instance", map[string]string{"AVATAR_UPSTREAM": "evolution", "AVATAR_EVOLUTION_URL": "http://127.0.0.1:8080",
			"AVATAR_EVOLUTION_API_KEY": "k"}, "AVATAR_EVOLUTION_INSTANCE"},
		{"evolution without key", map[string]string{"AVATAR_UPSTREAM": "evolution", "AVATAR_EVOLUTION_URL": "http://127.0.0.1:8080",
			"AVATAR_EVOLUTION_INSTANCE": "main"}, "AVATAR_EVOLUTION_API_KEY"},
		{"s3 port 1", map[string]string{"AVATAR_STORAGE": "s3", "AVATAR_S3_ENDPOINT": "minio:1", "AVATAR_S3_ACCESS_KEY": "ak", "AVATAR_S3_SECRET_KEY": "sk"}, ""},
		{"s3 port 65535", map[string]string{"AVATAR_STORAGE": "s3", "AVATAR_S3_ENDPOINT": "minio:65535", "AVATAR_S3_ACCESS_KEY": "ak", "AVATAR_S3_SECRET_KEY": "sk"}, ""},
		{"s3 port 0", map[string]string{"AVATAR_STORAGE": "s3", "AVATAR_S3_ENDPOINT": "minio:0", "AVATAR_S3_ACCESS_KEY": "ak", "AVATAR_S3_SECRET_KEY": "sk"}, "AVATAR_S3_ENDPOINT"},
		// A gateway timeout already refused is not judged against the
		// download's budget too: one mistake, one error.
		{"negative upstream timeout and a long download", map[string]string{"AVATAR_UPSTREAM": "greenapi",
			"AVATAR_GREENAPI_ID_INSTANCE": "1101000001", "AVATAR_GREENAPI_API_TOKEN_INSTANCE": "tok",
			"AVATAR_UPSTREAM_TIMEOUT": "-1s", "AVATAR_CDN_TIMEOUT": "41s"}, "AVATAR_UPSTREAM_TIMEOUT"},
		{"unparsed download timeout and a long gateway one", map[string]string{"AVATAR_UPSTREAM_TIMEOUT": "30s", "AVATAR_CDN_TIMEOUT": "soon"}, "AVATAR_CDN_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"AVATAR_UPSTREAM": "none", "AVATAR_STORAGE": "none", "AVATAR_ALLOW_UNSIGNED": "true"}
			maps.Copy(m, tc.set)
			_, err := Load(nil, env(m), io.Discard)
			wantOneError(t, err, tc.wantErr)
		})
	}
}

// TestWAHASessionRequired: the session has a default, so only an explicit
// empty one (a flag; an empty variable means unset) can be missing.
func TestWAHASessionRequired(t *testing.T) {
	_, err := Load([]string{"--waha-session="}, env(map[string]string{
		"AVATAR_UPSTREAM": "waha", "AVATAR_WAHA_URL": "http://127.0.0.1:3000", "AVATAR_STORAGE": "none", "AVATAR_ALLOW_UNSIGNED": "true",
	}), io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "AVATAR_WAHA_SESSION: ") {
		t.Errorf("err = %v; want one naming AVATAR_WAHA_SESSION", err)
	}
}

// TestSigningKeyNumbered: the error points at the short key by its place in
// the list, counted from 1, since the key itself is never shown.
func TestSigningKeyNumbered(t *testing.T) {
	_, err := Load(nil, env(map[string]string{
		"AVATAR_UPSTREAM": "none", "AVATAR_STORAGE": "none", "AVATAR_SIGNING_KEY": "0123456789abcdef,short",
	}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "key 2 is shorter") {
		t.Errorf("err = %v; want one naming key 2", err)
	}
}

// wantOneError checks Load's err: nil when name is empty, else exactly one
// problem, for the setting name, whose text holds each of texts.
func wantOneError(t *testing.T, err error, name string, texts ...string) {
	t.Helper()
	switch {
	case name == "" && err != nil:
		t.Errorf("refused: %v", err)
	case name == "":
	case err == nil:
		t.Errorf("accepted; want an error naming %s", name)
	case !strings.HasPrefix(err.Error(), name+": ") || strings.Contains(err.Error(), "\n"):
		t.Errorf("err = %v; want only one, naming %s first", err, name)
	default:
		for _, text := range texts {
			if !strings.Contains(err.Error(), text) {
				t.Errorf("err = %v; want it to say %q", err, text)
			}
		}
	}
}

// TestGatewayChecks: the gateway's own checks of its settings (which its
// constructor makes at start) are reported by Load with every other
// problem, under the setting at fault, never quoting a secret, and not
// twice when config's own check of that setting already failed.
func TestGatewayChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  map[string]string
		want string // the setting named, once
	}{
		{"greenapi token not path-safe", map[string]string{"AVATAR_UPSTREAM": "greenapi", "AVATAR_GREENAPI_ID_INSTANCE": "1101000001",
			"AVATAR_GREENAPI_API_TOKEN_INSTANCE": "sec/ret"}, "AVATAR_GREENAPI_API_TOKEN_INSTANCE"},
		{"greenapi id too long", map[string]string{"AVATAR_UPSTREAM": "greenapi", "AVATAR_GREENAPI_ID_INSTANCE": strings.Repeat("1", 21),
			"AVATAR_GREENAPI_API_TOKEN_INSTANCE": "secret"}, "AVATAR_GREENAPI_ID_INSTANCE"},
		{"gowa user with a colon", map[string]string{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "http://gowa:3000",
			"AVATAR_GOWA_USER": "a:b", "AVATAR_GOWA_PASSWORD": "secret"}, "AVATAR_GOWA_USER"},
		{"gowa password alone, config's own check", map[string]string{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "http://gowa:3000",
			"AVATAR_GOWA_PASSWORD": "secret"}, "AVATAR_GOWA_USER"},
		{"gowa url with a query", map[string]string{"AVATAR_UPSTREAM": "gowa", "AVATAR_GOWA_URL": "http://gowa:3000/?k=secret"}, "AVATAR_GOWA_URL"},
		{"waha key with a newline", map[string]string{"AVATAR_UPSTREAM": "waha", "AVATAR_WAHA_URL": "http://waha:3000",
			"AVATAR_WAHA_API_KEY": "secret\nX-Evil: 1"}, "AVATAR_WAHA_API_KEY"},
		{"waha session spaced", map[string]string{"AVATAR_UPSTREAM": "waha", "AVATAR_WAHA_URL": "http://waha:3000",
			"AVATAR_WAHA_SESSION": " default"}, "AVATAR_WAHA_SESSION"},
		{"evolution instance spaced", map[string]string{"AVATAR_UPSTREAM": "evolution", "AVATAR_EVOLUTION_URL": "http://evo:8080",
			"AVATAR_EVOLUTION_API_KEY": "secret", "AVATAR_EVOLUTION_INSTANCE": "shop "}, "AVATAR_EVOLUTION_INSTANCE"},
		{"evolution key with a control character", map[string]string{"AVATAR_UPSTREAM": "evolution", "AVATAR_EVOLUTION_URL": "http://evo:8080",
			"AVATAR_EVOLUTION_API_KEY": "sec\x7fret", "AVATAR_EVOLUTION_INSTANCE": "shop"}, "AVATAR_EVOLUTION_API_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]string{"AVATAR_STORAGE": "none", "AVATAR_ALLOW_UNSIGNED": "true",
				"AVATAR_JPEG_QUALITY": "0"} // another problem, reported with it
			maps.Copy(m, tc.set)
			_, err := Load(nil, env(m), io.Discard)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if strings.Count(msg, tc.want+":") != 1 || !strings.Contains(msg, "AVATAR_JPEG_QUALITY:") || strings.Count(msg, "\n") != 1 {
				t.Errorf("err = %v; want %s once and AVATAR_JPEG_QUALITY, nothing else", err, tc.want)
			}
			if strings.Contains(msg, "secret") || strings.Contains(msg, "sec/ret") {
				t.Errorf("err = %v shows a secret", err)
			}
		})
	}
	// The demo brings its own gateway: Green API's settings are not its.
	if _, err := Load(nil, env(map[string]string{"AVATAR_DEMO": "true", "AVATAR_GREENAPI_API_TOKEN_INSTANCE": "sec/ret",
		"AVATAR_STORAGE": "none"}), io.Discard); err != nil {
		t.Errorf("demo: %v", err)
	}
}

// Every setting a gateway field maps to exists.
func TestGatewayFieldsAreSettings(t *testing.T) {
	names := map[string]bool{}
	for _, s := range Settings() {
		names[s.Flag] = true
	}
	for field, name := range gatewayFields {
		if !names[name] {
			t.Errorf("%s maps to %q, which is no setting", field, name)
		}
	}
}
