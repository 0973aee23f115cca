package upstream

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

const (
	wahaKey    = "waha-Key-0123456789abcdef"
	wahaPicURL = "https://pps.whatsapp.net/v/t61.24694-24/1_2_3_n.jpg?ccb=11-4&oh=01_Q5AaIA&oe=66041D5F&_nc_sid=e6ed6c&_nc_cat=1"
)

type wahaEnv struct {
	fake *fake.WAHA
	srv  *httptest.Server
	gw   *WAHA
	logs *testkit.Buffer
}

func newWAHAEnv(t *testing.T, edit func(*WAHAConfig)) *wahaEnv {
	t.Helper()
	f := &fake.WAHA{
		APIKey:   wahaKey,
		Sessions: map[string]string{"default": "WORKING", "phone2": "WORKING", "booting": "STARTING", "off": "STOPPED"},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	logs := &testkit.Buffer{}
	cfg := WAHAConfig{BaseURL: srv.URL, APIKey: wahaKey, Timeout: 5 * time.Second, Logger: logs.Logger()}
	if edit != nil {
		edit(&cfg)
	}
	gw, err := NewWAHA(cfg)
	if err != nil {
		t.Fatalf("NewWAHA: %v", err)
	}
	return &wahaEnv{fake: f, srv: srv, gw: gw, logs: logs}
}

func TestWAHAAnswers(t *testing.T) {
	redirect := fake.Text(http.StatusMovedPermanently, "")
	redirect.Header = http.Header{"Location": {"https://elsewhere.example/"}}
	cases := []struct {
		name   string
		answer fake.Answer
		want   gwWant
	}{
		{"picture", fake.WAHAPicture(wahaPicURL), gwWant{state: StateOK}},
		{"null", fake.WAHANoPicture(), gwWant{state: StateNoAvatar}},
		{"key absent", fake.WAHAPictureAbsent(), gwWant{state: StateNoAvatar}},
		{"empty string", fake.JSON(200, map[string]string{"profilePictureURL": ""}), gwWant{state: StateNoAvatar}},
		{"null body", fake.JSON(200, nil), gwWant{state: StateNoAvatar}},
		{"unauthorized", fake.WAHAUnauthorized(), gwWant{failure: Config, status: 401}},
		{"forbidden", fake.Text(403, "Forbidden"), gwWant{failure: Config, status: 403}},
		{"session not found", fake.WAHASessionNotFound("default"), gwWant{failure: Account, status: 404}},
		{"session not working", fake.WAHASessionNotWorking("default", "SCAN_QR_CODE"), gwWant{failure: Account, status: 422}},
		{"route not found", fake.Text(404, "Cannot GET /api/contacts/profile-picture"), gwWant{failure: Config, status: 404}},
		{"rate limited", fake.WAHATooManyRequests(30 * time.Second), gwWant{failure: RateLimited, status: 429, retry: 30 * time.Second}},
		{"internal error", fake.WAHAInternalError(), gwWant{failure: Transient, status: 500}},
		{"bad gateway", fake.Text(502, "Bad Gateway"), gwWant{failure: Transient, status: 502}},
		{"bad request", fake.JSON(400, map[string]any{"statusCode": 400}), gwWant{failure: Transient, status: 400}},
		{"garbage", fake.Text(200, "<html>"), gwWant{failure: Transient, status: 200}},
		{"string url field", fake.JSON(200, map[string]int{"profilePictureURL": 5}), gwWant{failure: Transient, status: 200}},
		{"bad url", fake.WAHAPicture("file:///etc/passwd"), gwWant{failure: Transient, status: 200}},
		// A redirect means a base URL to correct, not a gateway to retry.
		{"redirect", redirect, gwWant{failure: Config, status: 301}},
		{"multiple choices", fake.Text(http.StatusMultipleChoices, ""), gwWant{failure: Config, status: 300}},
	}
	env := newWAHAEnv(t, nil)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			phone := fmt.Sprintf("7900%07d", 2000000+i)
			env.fake.Set(phone+"@c.us", tc.answer)
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, phone), Preview: true})
			gwCheck(t, wahaGateway, res, err, tc.want)
			if tc.want.state == StateOK && (res.URL != wahaPicURL || res.Preview || res.PictureID != "") {
				t.Errorf("result = %+v", res)
			}
			gwNoLeak(t, err, env.logs.String(), wahaKey, phone)
		})
	}
	if got := env.fake.Recorder.Calls(); got != len(cases) {
		t.Errorf("fake saw %d calls, want %d", got, len(cases))
	}
}

func TestWAHAFakeChecks(t *testing.T) {
	cases := []struct {
		name string
		edit func(*WAHAConfig)
		want gwWant
	}{
		{"wrong key", func(c *WAHAConfig) { c.APIKey = "nope" }, gwWant{failure: Config, status: 401}},
		{"no key", func(c *WAHAConfig) { c.APIKey = "" }, gwWant{failure: Config, status: 401}},
		{"unknown session", func(c *WAHAConfig) { c.Session = "ghost" }, gwWant{failure: Account, status: 404}},
		{"stopped session", func(c *WAHAConfig) { c.Session = "off" }, gwWant{failure: Account, status: 404}},
		{"starting session", func(c *WAHAConfig) { c.Session = "booting" }, gwWant{failure: Account, status: 422}},
		{"other working session", func(c *WAHAConfig) { c.Session = "phone2" }, gwWant{state: StateNoAvatar}},
		{"wrong base path", func(c *WAHAConfig) { c.BaseURL += "/waha" }, gwWant{failure: Config, status: 404}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newWAHAEnv(t, tc.edit)
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234567")})
			gwCheck(t, wahaGateway, res, err, tc.want)
			gwNoLeak(t, err, env.logs.String(), wahaKey, "79001234567")
			if tc.want.failure == Config && !strings.Contains(env.logs.String(), "level=ERROR") {
				t.Errorf("config failure not logged at Error:\n%s", env.logs)
			}
		})
	}
}

func TestWAHAContactIDForms(t *testing.T) {
	env := newWAHAEnv(t, nil)
	cases := []struct{ in, sent string }{
		{"79001234567", "79001234567@c.us"},
		{"79001234567@s.whatsapp.net", "79001234567@c.us"},
		{"79001234567-1581234048@g.us", "79001234567-1581234048@g.us"},
		{"120363043968066561@g.us", "120363043968066561@g.us"},
		{"120650379300963@lid", "120650379300963@lid"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			env.fake.Set(tc.sent, fake.WAHAPicture(wahaPicURL))
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, tc.in)})
			if err != nil || res.State != StateOK {
				t.Fatalf("Resolve = %+v, %v", res, err)
			}
			ids := env.fake.ContactIDs()
			if last := ids[len(ids)-1]; last != tc.sent {
				t.Errorf("sent %q, want %q", last, tc.sent)
			}
		})
	}
}

// TestWAHARefresh: WAHA keeps a link 24 h (upstreams.md section 3), so
// asking again after a dead link returns that same link unless the request
// says refresh=true; Request.Refresh says it, and nothing else does.
func TestWAHARefresh(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	var mu sync.Mutex
	link := "https://pps.whatsapp.net/v/t61.24694-24/1_1_1_n.jpg?oe=66041D5F"
	f := &fake.WAHA{Now: clock.Now, Default: func(string) fake.Answer {
		mu.Lock()
		defer mu.Unlock()
		return fake.WAHAPicture(link)
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	gw, err := NewWAHA(WAHAConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	setLink := func(s string) {
		mu.Lock()
		link = s
		mu.Unlock()
	}
	chat := gwChat(t, "79001234567")
	step := func(name string, req Request, wantURL string, wantRefreshes int) {
		t.Helper()
		res, err := gw.Resolve(t.Context(), req)
		if err != nil || res.State != StateOK || res.URL != wantURL {
			t.Errorf("%s: %+v, %v; want %s", name, res, err, wantURL)
		}
		if n := f.Refreshes(); n != wantRefreshes {
			t.Errorf("%s: WAHA saw %d refresh=true, want %d", name, n, wantRefreshes)
		}
	}
	a, b, c := link, "https://pps.whatsapp.net/v/t61.24694-24/2_2_2_n.jpg?oe=66041D5F", "https://pps.whatsapp.net/v/t61.24694-24/3_3_3_n.jpg?oe=66041D5F"
	step("first", Request{Chat: chat}, a, 0)
	setLink(b)
	step("again, cached", Request{Chat: chat, Background: true}, a, 0)
	step("refresh", Request{Chat: chat, Refresh: true}, b, 1)
	step("after refresh", Request{Chat: chat}, b, 1)
	setLink(c)
	clock.Advance(24 * time.Hour)
	step("a day later", Request{Chat: chat}, c, 1)
}

func TestWAHADefaultFakeNeedsNoConfig(t *testing.T) {
	srv := httptest.NewServer(&fake.WAHA{})
	defer srv.Close()
	gw, err := NewWAHA(WAHAConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	res, err := gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234567")})
	gwCheck(t, wahaGateway, res, err, gwWant{state: StateNoAvatar})
}

func TestWAHATransportFailures(t *testing.T) {
	env := newWAHAEnv(t, func(c *WAHAConfig) { c.Timeout = 20 * time.Millisecond })
	env.fake.Set("79001234567@c.us", fake.Answer{Delay: time.Minute})
	_, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234567")})
	gwCheck(t, wahaGateway, Result{}, err, gwWant{failure: Transient})
	env.srv.Close()
	_, err = env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234568")})
	gwCheck(t, wahaGateway, Result{}, err, gwWant{failure: Transient})
	gwNoLeak(t, err, env.logs.String(), wahaKey, "79001234568", "contactId=")
}

func TestNewWAHAValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  WAHAConfig
		ok   bool
	}{
		{"minimal", WAHAConfig{BaseURL: "http://127.0.0.1:3000"}, true},
		{"full", WAHAConfig{BaseURL: "http://127.0.0.1:3000/", APIKey: wahaKey, Session: "s"}, true},
		{"no url", WAHAConfig{APIKey: wahaKey}, false},
		{"key in url", WAHAConfig{BaseURL: "http://x:" + wahaKey + "@host"}, false},
		{"newline in key", WAHAConfig{BaseURL: "http://host", APIKey: wahaKey + "\r\nX: y"}, false},
		{"spaced session", WAHAConfig{BaseURL: "http://host", Session: " s"}, false},
		{"negative timeout", WAHAConfig{BaseURL: "http://host", Timeout: -time.Second}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewWAHA(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewWAHA: %v, want ok=%v", err, tc.ok)
			}
			gwNoLeak(t, err, "", wahaKey)
		})
	}
	var logs testkit.Buffer
	cfg := WAHAConfig{BaseURL: "http://host", APIKey: wahaKey}
	logs.Logger().Info("config", "waha", cfg)
	gwNoLeak(t, nil, logs.String()+fmt.Sprint(cfg)+fmt.Sprintf("%+v", cfg), wahaKey)
}

func FuzzWAHAAnswer(f *testing.F) {
	f.Add(200, `{"profilePictureURL":"https://pps.whatsapp.net/v/x.jpg"}`, "")
	f.Add(200, `{"profilePictureURL":null}`, "")
	f.Add(200, `null`, "")
	f.Add(404, `{"message":"We didn't find a session with name 'default'.","error":"Not Found","statusCode":404}`, "")
	f.Add(429, ``, "5")
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		res, e := wahaAnswer(status, retryAfter, []byte(body), time.Unix(1700000000, 0))
		gwFuzzCheck(t, wahaGateway, status, res, e)
		if e == nil && res.State != StateOK && res.State != StateNoAvatar {
			t.Fatalf("WAHA cannot know state %q", res.State)
		}
	})
}

// The fake's own 401 body must be the documented one, byte for byte.
func TestFakeWAHAUnauthorizedBody(t *testing.T) {
	srv := httptest.NewServer(&fake.WAHA{APIKey: wahaKey})
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/contacts/profile-picture?contactId=1@c.us")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := readCapped(resp.Body, 1<<10)
	if resp.StatusCode != 401 || string(b) != `{"message":"Unauthorized","statusCode":401}` {
		t.Errorf("got %d %s", resp.StatusCode, b)
	}
}
