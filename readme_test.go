package main

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/avatarproxy/avatarproxy/cache"
)

func readREADME(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeMetricNames is every metric the README's metrics table names. A
// cell may shorten the names after its first: "`avatarproxy_durable_down`,
// `_errors_total`" is avatarproxy_durable_errors_total.
func readmeMetricNames(t *testing.T, readme string) []string {
	t.Helper()
	i := strings.Index(readme, "\n### Metrics\n")
	if i < 0 {
		t.Fatal("README.md has no Metrics section")
	}
	var names []string
	name := regexp.MustCompile("^`([a-z_]+)")
	lines := strings.Split(readme[i:], "\n")
	for len(lines) > 0 && !strings.HasPrefix(lines[0], "|---") {
		lines = lines[1:] // the heading, and the table's header row
	}
	for _, line := range lines[min(1, len(lines)):] {
		if !strings.HasPrefix(line, "| ") {
			break
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(line, "| "), " | ")
		prefix := ""
		for _, part := range strings.Split(first, ", ") {
			m := name.FindStringSubmatch(part)
			if m == nil {
				t.Fatalf("README.md metrics table: cannot read %q", part)
			}
			n := m[1]
			if strings.HasPrefix(n, "_") {
				n = prefix + n
			} else {
				// avatarproxy_gateway_breaker_open shortens to avatarproxy_gateway.
				segs := strings.SplitN(n, "_", 3)
				prefix = segs[0] + "_" + segs[1]
			}
			names = append(names, n)
		}
	}
	if len(names) < 20 {
		t.Fatalf("README.md metrics table: read only %d names: %q", len(names), names)
	}
	return names
}

// TestREADMEMetricNames: the metrics table names every avatarproxy_*
// metric the binary exports (with a disk tier, so the durable tier's are
// there too), and nothing it does not.
func TestREADMEMetricNames(t *testing.T) {
	base, _, _ := startRun(t, []string{"--demo", "--listen=127.0.0.1:0", "--storage=disk", "--disk-dir=" + t.TempDir(), "--first-load-timeout=10s"}, nil)
	if resp, _ := get(t, base+"/avatar/79001234561@c.us.jpg?size=64"); resp.StatusCode != http.StatusOK {
		t.Fatalf("avatar: %d", resp.StatusCode)
	}
	resp, body := get(t, base+"/metrics")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	var exported []string
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(string(body), -1) {
		if strings.HasPrefix(m[1], "avatarproxy_") || m[1] == "go_sched_latencies_seconds" {
			exported = append(exported, m[1])
		}
	}
	documented := readmeMetricNames(t, readREADME(t))
	for _, n := range exported {
		if !slices.Contains(documented, n) {
			t.Errorf("/metrics exports %s, which README.md's metrics table does not name", n)
		}
	}
	for _, n := range documented {
		if !slices.Contains(exported, n) {
			t.Errorf("README.md's metrics table names %s, which /metrics does not export", n)
		}
	}
}

// TestREADMEFigures pins figures the README quotes from this package and
// the durable tier's defaults.
func TestREADMEFigures(t *testing.T) {
	prose := strings.Join(strings.Fields(readREADME(t)), " ")
	for _, phrase := range []string{
		fmt.Sprintf("(%d MiB with the default 256)", memoryLimit(256)>>20),
		fmt.Sprintf("(%s writes; %d writers for disk, %d for S3", thousands(cache.DefaultQueueSize), cache.DefaultWorkers, s3Writers),
	} {
		if !strings.Contains(prose, phrase) {
			t.Errorf("README.md does not say %q", phrase)
		}
	}
}

// thousands writes n as the README does: 1,024.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
