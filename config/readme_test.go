package config

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
)

const (
	tableBegin = "<!-- settings:begin (generated from config.Settings; AVATAR_UPDATE_README=1 go test ./config rewrites it) -->\n"
	tableEnd   = "<!-- settings:end -->"
)

// TestREADMETable keeps the README's configuration table in step with the
// code: it fails when they differ, and rewrites the table when asked to.
func TestREADMETable(t *testing.T) {
	readme, i, j := readmeTable(t)
	got := readme[i+len(tableBegin) : j]
	want := MarkdownTable()
	if got == want {
		return
	}
	if os.Getenv("AVATAR_UPDATE_README") == "1" {
		if err := os.WriteFile(readmePath, []byte(readme[:i+len(tableBegin)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md settings table is out of date; run AVATAR_UPDATE_README=1 go test ./config")
}

const readmePath = "../README.md"

// readmeTable returns README.md and where its settings table markers start.
func readmeTable(t *testing.T) (readme string, begin, end int) {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	readme = string(b)
	begin, end = strings.Index(readme, tableBegin), strings.Index(readme, tableEnd)
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no settings table markers")
	}
	return readme, begin, end
}

// readmeProse is README.md outside the generated table, with every run of
// white space made one space, so a phrase matches across line breaks.
func readmeProse(t *testing.T) string {
	t.Helper()
	readme, i, j := readmeTable(t)
	return strings.Join(strings.Fields(readme[:i]+readme[j:]), " ")
}

// TestREADMEProseNamesSettings: every AVATAR_* variable the README's prose
// names is a setting, so a renamed or removed one cannot linger there.
func TestREADMEProseNamesSettings(t *testing.T) {
	known := map[string]bool{"AVATAR_UPDATE_README": true} // this test's own switch
	for _, s := range Settings() {
		known[s.Env] = true
	}
	seen := map[string]bool{}
	for _, name := range regexp.MustCompile(`AVATAR_[A-Z0-9_]*[A-Z0-9]`).FindAllString(readmeProse(t), -1) {
		if !known[name] && !seen[name] {
			seen[name] = true
			t.Errorf("README.md names %s, which is not a setting", name)
		}
	}
}

// TestREADMEProseDefaults pins the defaults and limits the README's prose
// quotes outside the generated table: each phrase must be in the README and
// say what the code does. A changed default fails here until the prose
// follows; a reworded phrase fails until this list follows.
func TestREADMEProseDefaults(t *testing.T) {
	prose := readmeProse(t)
	def := map[string]string{}
	for _, s := range Settings() {
		def[s.Flag] = s.Default
	}
	for _, c := range []struct {
		phrase, flag, want string
	}{
		{"`AVATAR_FIRST_LOAD_TIMEOUT` (3 s)", "first-load-timeout", "3s"},
		{"`AVATAR_UPSTREAM_RPS` (default 5;", "upstream-rps", "5"},
		{"`AVATAR_UPSTREAM_CONCURRENCY` (default 4)", "upstream-concurrency", "4"},
		{"`AVATAR_TTL` (24 h)", "ttl", "24h0m0s"},
		{"`AVATAR_NEGATIVE_TTL` (6 h)", "negative-ttl", "6h0m0s"},
		{"`AVATAR_MAX_STALE` (7 days", "max-stale", "168h0m0s"},
		{"`AVATAR_SHUTDOWN_TIMEOUT` (15 s)", "shutdown-timeout", "15s"},
		{"with the default 10 s download", "cdn-timeout", "10s"},
		{"(320 MiB with the default 256)", "memory-mb", "256"},
	} {
		if !strings.Contains(prose, c.phrase) {
			t.Errorf("README.md no longer says %q: update this test with the prose", c.phrase)
		}
		if def[c.flag] != c.want {
			t.Errorf("--%s defaults to %s, but README.md says %q", c.flag, def[c.flag], c.phrase)
		}
	}

	// The gateways' own deadlines, quoted where AVATAR_UPSTREAM_TIMEOUT's
	// default (0) is explained.
	secs := func(d time.Duration) string { return fmt.Sprintf("%d s", int(d/time.Second)) }
	ga, gowa, waha, evo := upstream.DefaultTimeout("greenapi"), upstream.DefaultTimeout("gowa"),
		upstream.DefaultTimeout("waha"), upstream.DefaultTimeout("evolution")
	if waha != evo {
		t.Fatalf("WAHA's deadline %s and Evolution's %s differ: the README quotes them as one", waha, evo)
	}
	gateways := fmt.Sprintf("Green API %s, GOWA %s, WAHA and Evolution %s", secs(ga), secs(gowa), secs(waha))
	if n := strings.Count(prose, gateways); n != 2 {
		t.Errorf("README.md says %q %d times, want 2 (the alerts and the fill budget)", gateways, n)
	}
	if all := regexp.MustCompile(`Green API \d+ s, GOWA \d+ s, WAHA and Evolution \d+ s`).FindAllString(prose, -1); len(all) != 2 {
		t.Errorf("README.md quotes the gateways' deadlines %d times, want 2: %q", len(all), all)
	}

	// The fill's budget: FillDeadline, and the longest gateway deadline it
	// leaves with the default CDN timeout.
	cdn, err := time.ParseDuration(def["cdn-timeout"])
	if err != nil {
		t.Fatal(err)
	}
	for _, phrase := range []string{
		"a fill has " + secs(FillDeadline) + " in all",
		"`AVATAR_UPSTREAM_TIMEOUT` is at most " + secs((FillDeadline-cdn)/2),
	} {
		if !strings.Contains(prose, phrase) {
			t.Errorf("README.md does not say %q", phrase)
		}
	}
}
