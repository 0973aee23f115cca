package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// Helpers shared by the GOWA, WAHA and Evolution tests (prefix gw).

func gwChat(t testing.TB, s string) ChatID {
	t.Helper()
	c, err := ParseChatID(s)
	if err != nil {
		t.Fatalf("ParseChatID(%q): %v", s, err)
	}
	return c
}

// gwNoLeak fails if err's text or the logs show any of the secrets.
func gwNoLeak(t *testing.T, err error, logs string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q shows %q", err, s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("logs show %q:\n%s", s, logs)
		}
	}
}

// gwWant is the expected outcome of one call: a State, or a Failure.
type gwWant struct {
	state     State
	uncertain bool // with state: the answer may be a failure in disguise
	failure   Failure
	status    int
	retry     time.Duration
	reason    string // with failure, when set: a word the reason must hold
}

func gwCheck(t *testing.T, gateway string, res Result, err error, want gwWant) {
	t.Helper()
	if want.state != "" {
		if err != nil {
			t.Fatalf("err = %v, want state %q", err, want.state)
		}
		if res.State != want.state {
			t.Fatalf("state = %q, want %q", res.State, want.state)
		}
		if res.Uncertain != want.uncertain {
			t.Errorf("Uncertain = %v, want %v", res.Uncertain, want.uncertain)
		}
		if want.state != StateOK && (res.URL != "" || res.PictureID != "") {
			t.Errorf("state %q carries URL %q / id %q", res.State, res.URL, res.PictureID)
		}
		return
	}
	if err == nil {
		t.Fatalf("got %+v, want a %v failure", res, want.failure)
	}
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("errors.Is(%v, ErrUnavailable) = false", err)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err %T %v is not *Error", err, err)
	}
	if e.Gateway != gateway || e.Failure != want.failure || e.Status != want.status || e.RetryAfter != want.retry {
		t.Errorf("err = {%s %v %d %v %q}, want {%s %v %d %v}", e.Gateway, e.Failure, e.Status, e.RetryAfter, e.Reason,
			gateway, want.failure, want.status, want.retry)
	}
	if want.reason != "" && !strings.Contains(e.Reason, want.reason) {
		t.Errorf("reason %q, want one mentioning %q", e.Reason, want.reason)
	}
	if e.Reason == "" {
		t.Errorf("err %v has no reason", err)
	}
}

const (
	gowaUser   = "proxy"
	gowaPass   = "s3cret-Pa55word"
	gowaDevice = "dev one/1" // needs escaping in a header, as GOWA unescapes it
	gowaPicURL = "https://pps.whatsapp.net/v/t61.24694-24/181358562_385581386633509_6230178822944778044_n.jpg?ccb=11-4&oh=df36c5b990497b8a5758a0f1ad8118a8&oe=620AA726"
)

type gowaEnv struct {
	fake *fake.GOWA
	srv  *httptest.Server
	gw   *GOWA
	logs *testkit.Buffer
}

func newGOWAEnv(t *testing.T, edit func(*GOWAConfig)) *gowaEnv {
	t.Helper()
	f := &fake.GOWA{
		BasePath: "/gowa",
		Users:    map[string]string{gowaUser: gowaPass, "other": "x"},
		Devices:  []string{gowaDevice, "dev-2"},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	logs := &testkit.Buffer{}
	cfg := GOWAConfig{
		BaseURL:  srv.URL + "/gowa/",
		User:     gowaUser,
		Password: gowaPass,
		DeviceID: gowaDevice,
		Timeout:  5 * time.Second,
		Logger:   logs.Logger(),
	}
	if edit != nil {
		edit(&cfg)
	}
	gw, err := NewGOWA(cfg)
	if err != nil {
		t.Fatalf("NewGOWA: %v", err)
	}
	return &gowaEnv{fake: f, srv: srv, gw: gw, logs: logs}
}

// gowaSecrets are what must never show: the password, the encoded
// credentials, and the whole phone number (personal data).
func gowaSecrets(phone string) []string {
	return []string{gowaPass, "cHJveHk6czNjcmV0LVBhNTV3b3Jk", phone}
}

func TestGOWAAnswers(t *testing.T) {
	retry := fake.GOWAError(http.StatusTooManyRequests, "TOO_MANY", "slow down")
	retry.Header = http.Header{"Retry-After": {"7"}}
	redirect := fake.Text(http.StatusMovedPermanently, "")
	redirect.Header = http.Header{"Location": {"https://elsewhere.example/"}}
	cases := []struct {
		name   string
		answer fake.Answer
		want   gwWant
	}{
		{"avatar", fake.GOWAAvatar(gowaPicURL, "1635239861", false), gwWant{state: StateOK}},
		{"no avatar", fake.GOWANoAvatar(), gwWant{state: StateNoAvatar}},
		{"privacy", fake.GOWAPrivacy(), gwWant{state: StatePrivacy}},
		// Also GOWA's answer when its on-WhatsApp lookup failed.
		{"not on whatsapp", fake.GOWANotOnWhatsApp("79001234567@s.whatsapp.net"), gwWant{state: StateNotOnWhatsApp, uncertain: true}},
		{"phone blank", fake.GOWAPhoneBlank(), gwWant{state: StateInvalid}},
		{"invalid jid", fake.GOWAInvalidJID("1.2.3@s.whatsapp.net", "unexpected number of dots in JID"), gwWant{state: StateInvalid}},
		{"invalid jid code", fake.GOWAError(http.StatusBadRequest, "INVALID_JID", "invalid jid"), gwWant{state: StateInvalid}},
		{"not logged in", fake.GOWANotLoggedIn(), gwWant{failure: Account, status: 401}},
		{"not connected", fake.GOWANotConnected(), gwWant{failure: Account, status: 401}},
		{"never paired", fake.GOWAInvalidCLI(), gwWant{failure: Account, status: 500}},
		{"client not initialised", fake.GOWAClientNotInitialized(), gwWant{failure: Account, status: 500}},
		{"rate-overlimit", fake.GOWAIQError(429, "rate-overlimit"), gwWant{failure: RateLimited, status: 500}},
		{"other iq error", fake.GOWAIQError(400, "bad-request"), gwWant{failure: Transient, status: 500}},
		{"no avatar found", fake.GOWAError(500, "INTERNAL_SERVER_ERROR", "no avatar found"), gwWant{failure: Transient, status: 500}},
		{"lookup timeout", fake.GOWALookupTimeout(), gwWant{failure: Transient, status: 408}},
		{"gateway timeout", fake.GOWAGatewayTimeout(), gwWant{failure: Transient, status: 504}},
		{"device manager down", fake.GOWADeviceManagerUnavailable(), gwWant{failure: Transient, status: 503}},
		{"basic auth rejected", fake.GOWAUnauthorized(), gwWant{failure: Config, status: 401}},
		{"malformed auth header", fake.GOWABadRequest(), gwWant{failure: Config, status: 400}},
		// Both 404s are Config failures; only the reason tells the
		// operator which setting to fix.
		{"device not found", fake.GOWADeviceNotFound("x"), gwWant{failure: Config, status: 404, reason: "device id"}},
		{"route not found", fake.Text(404, "Cannot GET /app/avatar"), gwWant{failure: Config, status: 404, reason: "base URL"}},
		{"device id required", fake.GOWADeviceIDRequired(), gwWant{failure: Config, status: 400}},
		{"unknown 400 code", fake.GOWAError(400, "SOMETHING_NEW", "?"), gwWant{failure: Transient, status: 400}},
		{"429 with retry-after", retry, gwWant{failure: RateLimited, status: 429, retry: 7 * time.Second}},
		{"403", fake.Text(403, "Forbidden"), gwWant{failure: Config, status: 403}},
		{"redirect", redirect, gwWant{failure: Config, status: 301}},
		{"garbage 200", fake.Text(200, "<html>hello</html>"), gwWant{failure: Transient, status: 200}},
		{"200 without results", fake.JSON(200, map[string]string{"code": "SUCCESS"}), gwWant{failure: Transient, status: 200}},
		{"200 with bad url", fake.GOWAAvatar("javascript:alert(1)", "1", false), gwWant{failure: Transient, status: 200}},
		{"html 502", fake.Answer{Status: 502, ContentType: "text/html", Body: "<h1>Bad Gateway</h1>"}, gwWant{failure: Transient, status: 502}},
		{"garbage 500", fake.Text(500, "oops"), gwWant{failure: Transient, status: 500}},
		{"multiple choices", fake.Text(http.StatusMultipleChoices, ""), gwWant{failure: Config, status: 300}},
		// whatsmeow's texts are believed only on GOWA's own 500: a 502
		// saying "no picture" must not be cached as one.
		{"502 with a no-picture text", fake.GOWAError(http.StatusBadGateway, "BAD_GATEWAY", "the user does not have a profile picture"), gwWant{failure: Transient, status: 502}},
	}
	env := newGOWAEnv(t, nil)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			phone := fmt.Sprintf("7900%07d", 1000000+i)
			env.fake.Set(phone+"@s.whatsapp.net", tc.answer)
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, phone+"@c.us")})
			gwCheck(t, gowaGateway, res, err, tc.want)
			if tc.want.state == StateOK {
				if res.URL != gowaPicURL || res.PictureID != "1635239861" || res.Preview {
					t.Errorf("result = %+v", res)
				}
			}
			gwNoLeak(t, err, env.logs.String(), gowaSecrets(phone)...)
		})
	}
	if got := env.fake.Recorder.Calls(); got != len(cases) {
		t.Errorf("fake saw %d calls, want %d", got, len(cases))
	}
}

// TestGOWAFakeChecks drives the fake's own auth, device and routing checks
// end to end: each is a misconfiguration of ours.
func TestGOWAFakeChecks(t *testing.T) {
	cases := []struct {
		name string
		edit func(*GOWAConfig)
		want gwWant
	}{
		{"wrong password", func(c *GOWAConfig) { c.Password = "wrong-" + gowaPass }, gwWant{failure: Config, status: 401}},
		{"no credentials", func(c *GOWAConfig) { c.User, c.Password = "", "" }, gwWant{failure: Config, status: 401}},
		{"unknown device", func(c *GOWAConfig) { c.DeviceID = "dev-9" }, gwWant{failure: Config, status: 404}},
		{"no device among two", func(c *GOWAConfig) { c.DeviceID = "" }, gwWant{failure: Config, status: 400}},
		{"wrong base path", func(c *GOWAConfig) { c.BaseURL = strings.TrimSuffix(c.BaseURL, "/gowa/") }, gwWant{failure: Config, status: 404}},
		{"second device", func(c *GOWAConfig) { c.DeviceID = "dev-2" }, gwWant{state: StateNoAvatar}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newGOWAEnv(t, tc.edit)
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234567")})
			gwCheck(t, gowaGateway, res, err, tc.want)
			gwNoLeak(t, err, env.logs.String(), gowaSecrets("79001234567")...)
			if tc.want.failure == Config && !strings.Contains(env.logs.String(), "level=ERROR") {
				t.Errorf("config failure not logged at Error:\n%s", env.logs)
			}
		})
	}
}

func TestGOWAOnlyDeviceNeedsNoID(t *testing.T) {
	f := &fake.GOWA{} // one device "default", no basic auth
	f.Set("79001234567@s.whatsapp.net", fake.GOWAPrivacy())
	srv := httptest.NewServer(f)
	defer srv.Close()
	gw, err := NewGOWA(GOWAConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	res, err := gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234567")})
	gwCheck(t, gowaGateway, res, err, gwWant{state: StatePrivacy})
}

// TestGOWAPhoneForms proves no @c.us ever reaches GOWA and every kind lands
// on the JID GOWA should look up.
func TestGOWAPhoneForms(t *testing.T) {
	env := newGOWAEnv(t, nil)
	cases := []struct{ in, jid string }{
		{"79001234567@c.us", "79001234567@s.whatsapp.net"},
		{"79001234567", "79001234567@s.whatsapp.net"},
		{"79001234567@s.whatsapp.net", "79001234567@s.whatsapp.net"},
		// 16 digits as bare digits would read as a group in GOWA.
		{"1234567890123456@c.us", "1234567890123456@s.whatsapp.net"},
		{"12345678@c.us", "12345678@s.whatsapp.net"},
		{"79001234567-1581234048@g.us", "79001234567-1581234048@g.us"},
		{"120363043968066561@g.us", "120363043968066561@g.us"},
		{"120650379300963@lid", "120650379300963@lid"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			env.fake.Set(tc.jid, fake.GOWAAvatar(gowaPicURL, "42", false))
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, tc.in)})
			if err != nil || res.State != StateOK {
				t.Fatalf("Resolve = %+v, %v; the fake did not see %s", res, err, tc.jid)
			}
			phones := env.fake.Phones()
			last := phones[len(phones)-1]
			if got := fake.GOWANormalize(last); got != tc.jid {
				t.Errorf("sent %q, GOWA reads %q, want %q", last, got, tc.jid)
			}
		})
	}
	for _, p := range env.fake.Phones() {
		if strings.HasSuffix(p, "@c.us") {
			t.Errorf("GOWA received %q", p)
		}
	}
}

func TestGOWAPreview(t *testing.T) {
	env := newGOWAEnv(t, nil)
	var seen []bool
	var mu sync.Mutex
	env.fake.Default = func(q fake.GOWAQuery) fake.Answer {
		mu.Lock()
		seen = append(seen, q.Preview)
		mu.Unlock()
		return fake.GOWAAvatar(gowaPicURL, "7", q.Preview)
	}
	for _, preview := range []bool{true, false} {
		res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234567"), Preview: preview})
		if err != nil || res.State != StateOK || res.Preview != preview || res.PictureID != "7" {
			t.Errorf("Preview %v: %+v, %v", preview, res, err)
		}
	}
	if len(seen) != 2 || !seen[0] || seen[1] {
		t.Errorf("fake saw is_preview %v, want [true false]", seen)
	}
}

// TestGOWAScriptedTypeFollowsPreview: a scripted success answers with the
// size asked for, whatever size it was scripted with, as GOWA does; so a
// resolver that dropped is_preview would be caught.
func TestGOWAScriptedTypeFollowsPreview(t *testing.T) {
	env := newGOWAEnv(t, nil)
	env.fake.Set("79001234567@s.whatsapp.net", fake.GOWAAvatar(gowaPicURL, "7", false))
	env.fake.Set("79001234568@s.whatsapp.net", fake.GOWAAvatar(gowaPicURL, "8", true))
	for _, phone := range []string{"79001234567", "79001234568"} {
		for _, preview := range []bool{true, false} {
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, phone), Preview: preview})
			if err != nil || res.State != StateOK || res.Preview != preview {
				t.Errorf("%s, Preview %v: %+v, %v", phone, preview, res, err)
			}
		}
	}
}

func TestGOWAZeroChatMakesNoCall(t *testing.T) {
	env := newGOWAEnv(t, nil)
	res, err := env.gw.Resolve(t.Context(), Request{})
	if err != nil || res.State != StateInvalid {
		t.Errorf("Resolve(zero) = %+v, %v", res, err)
	}
	if n := env.fake.Recorder.Calls(); n != 0 {
		t.Errorf("%d calls", n)
	}
}

func TestGOWATransportFailures(t *testing.T) {
	chat := "79001234567"
	t.Run("deadline", func(t *testing.T) {
		env := newGOWAEnv(t, func(c *GOWAConfig) { c.Timeout = 20 * time.Millisecond })
		env.fake.Set(chat+"@s.whatsapp.net", fake.Answer{Delay: time.Minute})
		_, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, chat)})
		gwCheck(t, gowaGateway, Result{}, err, gwWant{failure: Transient})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%v does not match DeadlineExceeded", err)
		}
		gwNoLeak(t, err, env.logs.String(), append(gowaSecrets(chat), "phone=", env.srv.URL+"/gowa")...)
	})
	t.Run("canceled", func(t *testing.T) {
		env := newGOWAEnv(t, nil)
		ctx, cancel := context.WithCancel(t.Context())
		env.fake.Default = func(fake.GOWAQuery) fake.Answer { cancel(); return fake.Answer{Delay: time.Minute} }
		_, err := env.gw.Resolve(ctx, Request{Chat: gwChat(t, chat)})
		gwCheck(t, gowaGateway, Result{}, err, gwWant{failure: Transient})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%v does not match Canceled", err)
		}
	})
	t.Run("malformed redirect", func(t *testing.T) {
		// A proxy in front echoing the query into a Location it cannot
		// escape: net/http would quote the Location, phone and all.
		env := newGOWAEnv(t, nil)
		a := fake.Text(http.StatusFound, "")
		a.Header = http.Header{"Location": {"/%zz/user/avatar?phone=" + chat}}
		env.fake.Set(chat+"@s.whatsapp.net", a)
		_, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, chat)})
		gwCheck(t, gowaGateway, Result{}, err, gwWant{failure: Transient})
		gwNoLeak(t, err, env.logs.String(), append(gowaSecrets(chat), "phone=", "%zz")...)
	})
	t.Run("refused", func(t *testing.T) {
		env := newGOWAEnv(t, nil)
		env.srv.Close()
		_, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, chat)})
		gwCheck(t, gowaGateway, Result{}, err, gwWant{failure: Transient})
		gwNoLeak(t, err, env.logs.String(), append(gowaSecrets(chat), "phone=", "/user/avatar")...)
		var ue *url.Error
		if errors.As(err, &ue) {
			t.Errorf("an error in the chain still exposes a URL")
		}
	})
	t.Run("body too large", func(t *testing.T) {
		env := newGOWAEnv(t, nil)
		env.fake.Set(chat+"@s.whatsapp.net", fake.Text(200, strings.Repeat("x", gatewayBodyCap+1)))
		_, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, chat)})
		gwCheck(t, gowaGateway, Result{}, err, gwWant{failure: Transient, status: 200})
	})
}

// TestGOWADefaultTimeout: GOWA may take about 15 s for a correct answer (its
// 10 s on-WhatsApp check, then up to 5 s for the picture; upstreams.md
// sections 2.3 and 2.5). Without a Timeout a 12 s answer is an answer; the
// 10 s every gateway used to get turned it into a timeout.
func TestGOWADefaultTimeout(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		want    gwWant
	}{
		{0, gwWant{state: StateOK}},
		{10 * time.Second, gwWant{failure: Transient}},
	} {
		t.Run(tc.timeout.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fake.GOWA{}
				slow := fake.GOWAAvatar(gowaPicURL, "1", false)
				slow.Delay = 12 * time.Second
				f.Set("79001234567@s.whatsapp.net", slow)
				gw, err := NewGOWA(GOWAConfig{BaseURL: "http://gowa.test", Timeout: tc.timeout,
					Client: &http.Client{Transport: handlerTransport{f}}})
				if err != nil {
					t.Fatal(err)
				}
				res, err := gw.Resolve(t.Context(), Request{Chat: gwChat(t, "79001234567")})
				gwCheck(t, gowaGateway, res, err, tc.want)
			})
		})
	}
}

func TestNewGOWAValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  GOWAConfig
		ok   bool
	}{
		{"minimal", GOWAConfig{BaseURL: "http://127.0.0.1:3000"}, true},
		{"with path and slash", GOWAConfig{BaseURL: "https://wa.example.com/gowa/", User: "u", Password: "p", DeviceID: "d"}, true},
		{"empty", GOWAConfig{}, false},
		{"no scheme", GOWAConfig{BaseURL: "127.0.0.1:3000"}, false},
		{"ftp", GOWAConfig{BaseURL: "ftp://host"}, false},
		{"credentials in url", GOWAConfig{BaseURL: "http://u:" + gowaPass + "@host"}, false},
		{"query", GOWAConfig{BaseURL: "http://host/?x=1"}, false},
		{"password without user", GOWAConfig{BaseURL: "http://host", Password: gowaPass}, false},
		{"colon in user", GOWAConfig{BaseURL: "http://host", User: "a:b", Password: gowaPass}, false},
		{"negative timeout", GOWAConfig{BaseURL: "http://host", Timeout: -1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewGOWA(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewGOWA: %v, want ok=%v", err, tc.ok)
			}
			gwNoLeak(t, err, "", gowaPass)
		})
	}
}

func TestGOWAConfigHidesPassword(t *testing.T) {
	cfg := GOWAConfig{BaseURL: "http://host", User: "u", Password: gowaPass}
	var logs testkit.Buffer
	logs.Logger().Info("config", "gowa", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), logs.String()} {
		if strings.Contains(s, gowaPass) {
			t.Errorf("%q shows the password", s)
		}
	}
}

func FuzzGOWAAnswer(f *testing.F) {
	f.Add(200, `{"code":"SUCCESS","message":"Success get avatar","results":{"url":"https://pps.whatsapp.net/v/x.jpg?oe=620AA726","id":"1","type":"preview"}}`, "", false)
	f.Add(500, `{"code":"INTERNAL_SERVER_ERROR","message":"that user or group does not have a profile picture"}`, "", false)
	f.Add(500, `{"code":"INTERNAL_SERVER_ERROR","message":"info query returned status 429: rate-overlimit"}`, "120", true)
	f.Add(401, `Unauthorized`, "", false)
	f.Add(400, `{"code":"INVALID_JID","message":"Phone 628123@s.whatsapp.net is not on whatsapp"}`, "", false)
	f.Add(429, ``, "Wed, 21 Oct 2015 07:28:00 GMT", false)
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string, preview bool) {
		res, e := gowaAnswer(status, retryAfter, []byte(body), preview, time.Unix(1700000000, 0))
		gwFuzzCheck(t, gowaGateway, status, res, e)
	})
}

// gwFuzzCheck holds for every answer mapper: exactly one of result and
// error, an OK result names a fetchable URL, an error is fully formed and
// never quotes the body.
func gwFuzzCheck(t *testing.T, gateway string, status int, res Result, e *Error) {
	t.Helper()
	if e != nil {
		if res != (Result{}) {
			t.Fatalf("both %+v and %v", res, e)
		}
		if e.Gateway != gateway || e.Status != status || e.Reason == "" || e.Err != nil {
			t.Fatalf("malformed error %+v", e)
		}
		if e.RetryAfter < 0 || e.RetryAfter > retryAfterCap || (e.RetryAfter > 0 && e.Failure != RateLimited) {
			t.Fatalf("retry after %v on %v", e.RetryAfter, e.Failure)
		}
		return
	}
	switch res.State {
	case StateOK:
		if !isHTTPURL(res.URL) || res.Uncertain {
			t.Fatalf("OK with URL %q, uncertain %v", res.URL, res.Uncertain)
		}
	case StateNoAvatar, StatePrivacy, StateNotOnWhatsApp, StateInvalid:
		if res.URL != "" {
			t.Fatalf("%s with URL %q", res.State, res.URL)
		}
	default:
		t.Fatalf("unknown state %q", res.State)
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "0", "7", "3600", "99999999999999999999", "-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT"} {
		f.Add(s)
	}
	now := time.Date(2015, 10, 21, 7, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		if d := parseRetryAfter(v, now); d < 0 || d > retryAfterCap {
			t.Fatalf("parseRetryAfter(%q) = %v", v, d)
		}
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2015, 10, 21, 7, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		" 120 ":                         2 * time.Minute,
		"-3":                            0,
		"soon":                          0,
		"999999999999":                  retryAfterCap,
		"Wed, 21 Oct 2015 07:28:00 GMT": 28 * time.Minute,
		"Wed, 21 Oct 2015 06:28:00 GMT": 0,
		"Thu, 22 Oct 2015 07:28:00 GMT": retryAfterCap,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

// The fake's own rejections must be GOWA's and Fiber's, byte for byte.
func TestFakeGOWABodies(t *testing.T) {
	srv := httptest.NewServer(&fake.GOWA{Users: map[string]string{"u": "p"}, Devices: []string{"a", "b"}})
	defer srv.Close()
	get := func(auth, device string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/user/avatar?phone=79001234567", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if device != "" {
			req.Header.Set("X-Device-Id", device)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := readCapped(resp.Body, 1<<10)
		return resp, string(b)
	}
	resp, body := get("", "")
	if resp.StatusCode != 401 || body != "Unauthorized" ||
		resp.Header.Get("WWW-Authenticate") != `Basic realm="Restricted", charset="UTF-8"` ||
		resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Vary") != "Authorization" {
		t.Errorf("no auth: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, body = get("Basic !!!", ""); resp.StatusCode != 400 || body != "Bad Request" {
		t.Errorf("malformed auth: %d %q", resp.StatusCode, body)
	}
	const ok = "Basic dTpw" // u:p
	if resp, body = get(ok, "zz"); resp.StatusCode != 404 || body != `{"code":"DEVICE_NOT_FOUND","message":"device not found; create a device first from /api/devices or provide a valid X-Device-Id","results":{"device_id":"zz"}}` {
		t.Errorf("unknown device: %d %s", resp.StatusCode, body)
	}
	if resp, body = get(ok, ""); resp.StatusCode != 400 || body != `{"code":"DEVICE_ID_REQUIRED","message":"device_id is required via X-Device-Id header or device_id query"}` {
		t.Errorf("no device: %d %s", resp.StatusCode, body)
	}
	if resp, body = get(ok, "b"); resp.StatusCode != 500 || body != `{"code":"INTERNAL_SERVER_ERROR","message":"that user or group does not have a profile picture"}` ||
		resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("default answer: %d %s %v", resp.StatusCode, body, resp.Header)
	}
}
