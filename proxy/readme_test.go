package proxy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/avatarproxy/avatarproxy/upstream"
)

// readmeRow returns the cells after the first of README.md's table row
// whose first cell starts with "`"+name, and the backticked words in them.
func readmeRow(t *testing.T, readme, name string) (cells string, words []string) {
	t.Helper()
	for _, line := range strings.Split(readme, "\n") {
		if rest, ok := strings.CutPrefix(line, "| `"+name); ok {
			_, cells, _ = strings.Cut(rest, " | ")
			for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells, -1) {
				words = append(words, m[1])
			}
			return cells, words
		}
	}
	t.Fatalf("README.md has no table row for %s", name)
	return "", nil
}

// TestREADMEMetricLabels: the label values the README's metrics table
// lists are the ones the server exports, so an alert written from the
// README matches a series.
func TestREADMEMetricLabels(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	exported := func(d any) []string {
		var out []string
		for _, c := range counters {
			if any(c.desc) == d {
				out = append(out, c.label)
			}
		}
		return out
	}
	for _, c := range []struct {
		row  string
		want []string
	}{
		{"avatarproxy_requests_total{outcome}", exported(requestsDesc)},
		{"avatarproxy_events_total{event}", exported(eventsDesc)},
		{"avatarproxy_stage_duration_seconds{stage}", []string{stageResolve, stageDownload, stageResize, stageStorage, stagePlaceholder}},
	} {
		if _, got := readmeRow(t, readme, c.row); !slices.Equal(got, c.want) {
			t.Errorf("README.md lists %s as\n  %q\nthe server exports\n  %q", c.row, got, c.want)
		}
	}

	// Placeholders are counted by X-Avatar-Status: every status but ok.
	_, statuses := readmeRow(t, readme, "X-Avatar-Status")
	if want := exported(placeholdersDesc); !slices.Equal(statuses, append([]string{"ok"}, want...)) {
		t.Errorf("README.md's X-Avatar-Status values %q; placeholders are counted as %q (and ok)", statuses, want)
	}

	// Gateway calls that failed are labelled by their failure class, or by
	// the guard's refusal.
	cells, _ := readmeRow(t, readme, "avatarproxy_gateway_calls_total{gateway,outcome}")
	_, failures, ok := strings.Cut(cells, "or failure")
	if !ok {
		t.Fatalf("README.md's row of avatarproxy_gateway_calls_total no longer says \"or failure\": %s", cells)
	}
	var got []string
	for _, m := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(failures, -1) {
		got = append(got, m[1])
	}
	var want []string
	for _, f := range []upstream.Failure{upstream.Transient, upstream.RateLimited, upstream.Account, upstream.Config} {
		want = append(want, f.String())
	}
	want = append(want,
		gatewayOutcome(upstream.Result{}, upstream.ErrBusy),
		gatewayOutcome(upstream.Result{}, upstream.ErrBreakerOpen))
	if !slices.Equal(got, want) {
		t.Errorf("README.md lists the gateway call failures as %q, the server labels them %q", got, want)
	}
}
