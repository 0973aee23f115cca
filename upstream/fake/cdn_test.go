package fake_test

import (
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

func TestCDNLinks(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := fake.NewCDN()
	c.Now = func() time.Time { return now }
	srv := httptest.NewServer(c)
	defer srv.Close()

	data := []byte("\xff\xd8\xff picture")
	path := c.Add(data)
	if c.Add(append([]byte(nil), data...)) != path || c.Add([]byte("other")) == path {
		t.Errorf("paths are not derived from the bytes")
	}
	if !regexp.MustCompile(`^/v/t61\.24694-24/\d+_\d+_\d+_n\.jpg$`).MatchString(path) {
		t.Errorf("path %q does not look like a CDN path", path)
	}
	link := c.URL(srv.URL, path, now.Add(time.Hour))
	shape := regexp.MustCompile(`\?ccb=11-4&oh=01_[A-Za-z0-9_-]{43}&oe=[0-9A-F]{8}&_nc_sid=[0-9a-f]{6}&_nc_cat=\d{1,3}$`)
	if !strings.HasPrefix(link, srv.URL+path) || !shape.MatchString(link) {
		t.Errorf("link %q does not look like a CDN link", link)
	}

	get := func(u string) (int, string) {
		t.Helper()
		resp, err := srv.Client().Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		name   string
		url    string
		status int
		body   string
	}{
		{"valid", link, 200, string(data)},
		{"expired", c.URL(srv.URL, path, now), 403, "URL signature expired"},
		{"tampered expiry", strings.Replace(link, "&oe=", "&oe=F", 1), 403, "Bad URL hash"},
		{"no query", srv.URL + path, 403, "Bad URL timestamp"},
		{"unknown path", c.URL(srv.URL, "/v/t61.24694-24/1_2_3_n.jpg", now.Add(time.Hour)), 404, "Not Found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, body := get(tt.url); status != tt.status || body != tt.body {
				t.Errorf("GET = %d %q, want %d %q", status, body, tt.status, tt.body)
			}
		})
	}
	reqs := c.Requests()
	if len(reqs) != len(tests) || reqs[0].Path != path || "?"+reqs[0].RawQuery != link[len(srv.URL+path):] {
		t.Errorf("Requests() = %+v", reqs)
	}
	if c.Recorder.Calls() != len(tests) {
		t.Errorf("Recorder saw %d calls", c.Recorder.Calls())
	}
}
