package upstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
	"github.com/avatarproxy/avatarproxy/upstream"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

const (
	gaID    = "1101823456"
	gaToken = "d75b3a66374942c5b3c019c698abc2067e151558acbd451ab9"
)

// gaSecrets are the strings no error or log line may contain.
var gaSecrets = []string{gaToken, "waInstance" + gaID}

type gaEnv struct {
	fake *fake.GreenAPI
	srv  *httptest.Server
	res  *upstream.GreenAPI
	logs *testkit.Buffer
}

// gaSetup serves a fake instance and points a resolver at it; edit may
// change the resolver config before it is built.
func gaSetup(t *testing.T, edit func(*upstream.GreenAPIConfig)) *gaEnv {
	t.Helper()
	f := fake.NewGreenAPI(gaID, gaToken)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	logs := &testkit.Buffer{}
	cfg := upstream.GreenAPIConfig{
		BaseURL: srv.URL, IDInstance: gaID, Token: gaToken,
		Timeout: 5 * time.Second, Client: srv.Client(), Logger: logs.Logger(),
	}
	if edit != nil {
		edit(&cfg)
	}
	res, err := upstream.NewGreenAPI(cfg)
	if err != nil {
		t.Fatalf("NewGreenAPI: %v", err)
	}
	return &gaEnv{fake: f, srv: srv, res: res, logs: logs}
}

func gaChat(t *testing.T, s string) upstream.ChatID {
	t.Helper()
	c, err := upstream.ParseChatID(s)
	if err != nil {
		t.Fatalf("ParseChatID(%q): %v", s, err)
	}
	return c
}

// gaNoSecrets fails the test if err or the logs show a secret.
func gaNoSecrets(t *testing.T, err error, logs string) {
	t.Helper()
	for _, s := range gaSecrets {
		if err != nil && strings.Contains(err.Error(), s) {
			t.Errorf("error %q contains secret %q", err, s)
		}
		if strings.Contains(logs, s) {
			t.Errorf("logs contain secret %q:\n%s", s, logs)
		}
	}
}

const gaAvatar = "https://pps.whatsapp.net/v/t61.24694-24/4273448_2936578865433234872_5963139254683975433_n.jpg?ccb=11-4&oh=01_AdT76ECQgH2xpzu0Kt8GO3c8j7ChbnBK-G7796uIHdoE3g&oe=66041D5F&_nc_sid=e6ed6c&_nc_cat=104"

func TestGreenAPIAnswers(t *testing.T) {
	retryDate := time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)
	tests := []struct {
		name   string
		answer fake.Answer
		// either a state ...
		state upstream.State
		url   string
		// ... or a failure
		fail      bool
		failure   upstream.Failure
		status    int
		retryMin  time.Duration
		retryMax  time.Duration
		loudError bool // an Error-level log line is expected
	}{
		{name: "newest avatar", answer: fake.AvatarAnswer(gaAvatar), state: upstream.StateOK, url: gaAvatar},
		{name: "legacy avatar", answer: fake.LegacyAvatarAnswer(gaAvatar), state: upstream.StateOK, url: gaAvatar},
		{name: "mid avatar", answer: fake.MidAvatarAnswer(gaAvatar), state: upstream.StateOK, url: gaAvatar},
		{name: "avatar with extra fields", answer: fake.ExtrasAvatarAnswer(gaAvatar), state: upstream.StateOK, url: gaAvatar},
		{name: "avatar with 2020 empty reason", answer: fake.JSON(200, map[string]any{"existsWhatsapp": true, "urlAvatar": gaAvatar, "reason": ""}), state: upstream.StateOK, url: gaAvatar},
		{name: "avatar padded with spaces", answer: fake.AvatarAnswer(" " + gaAvatar + "\n"), state: upstream.StateOK, url: gaAvatar},
		{name: "privacy", answer: fake.PrivacyAnswer(), state: upstream.StatePrivacy},
		{name: "no avatar", answer: fake.NoAvatarAnswer(), state: upstream.StateNoAvatar},
		{name: "legacy no-avatar bug is not not-on-whatsapp", answer: fake.LegacyNoAvatarAnswer(), state: upstream.StateNoAvatar},
		{name: "mid no avatar", answer: fake.JSON(200, map[string]any{"urlAvatar": ""}), state: upstream.StateNoAvatar},
		{name: "undefined literal", answer: fake.AvatarAnswer("undefined"), state: upstream.StateNoAvatar},
		{name: "null literal hidden", answer: fake.JSON(200, map[string]any{"urlAvatar": "null", "available": false}), state: upstream.StatePrivacy},
		{name: "json null urlAvatar", answer: fake.JSON(200, map[string]any{"urlAvatar": nil, "available": true}), state: upstream.StateNoAvatar},
		{name: "200 bad request data", answer: fake.ReasonAnswer("bad request data"), state: upstream.StateInvalid},
		{name: "200 timeout reason", answer: fake.ReasonAnswer("get avatar timeout limit exceeded"), fail: true, failure: upstream.Transient, status: 200},
		{name: "200 unknown reason", answer: fake.ReasonAnswer("something new"), fail: true, failure: upstream.Transient, status: 200},
		{name: "400 text bad request data", answer: fake.Text400("bad request data"), state: upstream.StateInvalid},
		{name: "400 json bad request data", answer: fake.JSON400("bad request data"), state: upstream.StateInvalid},
		{name: "400 nest validation", answer: fake.NestValidation400("/waInstance" + gaID + "/getAvatar/" + gaToken), state: upstream.StateInvalid},
		{name: "400 nest validation list", answer: fake.JSON(400, map[string]any{"statusCode": 400, "message": []string{"Validation failed. Details: 'chatId' is required"}}), state: upstream.StateInvalid},
		{name: "400 starting", answer: fake.Text400("instance in starting process try later"), fail: true, failure: upstream.Transient, status: 400},
		{name: "400 not authorized", answer: fake.Text400("instance account not authorized"), fail: true, failure: upstream.Account, status: 400},
		{name: "400 starting or not authorized", answer: fake.JSON400("instance is starting or not authorized"), fail: true, failure: upstream.Account, status: 400},
		{name: "400 expired", answer: fake.Text400("Instance account is expired. Renew your instance from personal area"), fail: true, failure: upstream.Account, status: 400},
		{name: "400 deleted", answer: fake.JSON400("Instance is deleted"), fail: true, failure: upstream.Account, status: 400},
		{name: "400 chat limit", answer: fake.Text400("You have used up the chat limit on your tariff. Renew you instance from personal area."), fail: true, failure: upstream.Account, status: 400},
		{name: "400 json syntax", answer: fake.Text400("Unexpected token _ in JSON at position 12"), fail: true, failure: upstream.Transient, status: 400},
		{name: "401", answer: fake.Unauthorized401(), fail: true, failure: upstream.Config, status: 401, loudError: true},
		{name: "403", answer: fake.Forbidden403(), fail: true, failure: upstream.Config, status: 403, loudError: true},
		{name: "200 with code 401", answer: fake.Unauthorized200(), fail: true, failure: upstream.Config, status: 200, loudError: true},
		{name: "429 seconds", answer: fake.TooManyRequests(7 * time.Second), fail: true, failure: upstream.RateLimited, status: 429, retryMin: 7 * time.Second, retryMax: 7 * time.Second},
		{name: "429 date", answer: fake.Answer{Status: 429, Header: http.Header{"Retry-After": {retryDate}}}, fail: true, failure: upstream.RateLimited, status: 429, retryMin: 20 * time.Second, retryMax: 31 * time.Second},
		{name: "429 bare", answer: fake.TooManyRequests(0), fail: true, failure: upstream.RateLimited, status: 429},
		{name: "466 quota", answer: fake.Quota466(), fail: true, failure: upstream.Account, status: 466},
		{name: "499", answer: fake.StatusAnswer(499), fail: true, failure: upstream.Transient, status: 499},
		{name: "500", answer: fake.StatusAnswer(500), fail: true, failure: upstream.Transient, status: 500},
		{name: "502", answer: fake.StatusAnswer(502), fail: true, failure: upstream.Transient, status: 502},
		{name: "404", answer: fake.StatusAnswer(404), fail: true, failure: upstream.Transient, status: 404},
		{name: "200 html", answer: fake.HTMLAnswer(200), fail: true, failure: upstream.Transient, status: 200},
		{name: "200 garbage", answer: fake.Text(200, "\x00\xffnot json"), fail: true, failure: upstream.Transient, status: 200},
		{name: "200 empty object", answer: fake.JSON(200, map[string]any{}), fail: true, failure: upstream.Transient, status: 200},
		{name: "200 json array", answer: fake.Text(200, "[]"), fail: true, failure: upstream.Transient, status: 200},
		{name: "200 json null", answer: fake.Text(200, "null"), fail: true, failure: upstream.Transient, status: 200},
		{name: "200 wrong type", answer: fake.JSON(200, map[string]any{"urlAvatar": 5}), fail: true, failure: upstream.Transient, status: 200},
		{name: "200 urlAvatar not a url", answer: fake.AvatarAnswer("pps.whatsapp.net/x.jpg"), fail: true, failure: upstream.Transient, status: 200},
	}
	env := gaSetup(t, nil)
	chat := gaChat(t, "79001234567@c.us")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.fake.Set(chat.String(), tt.answer)
			before := len(env.logs.String())
			res, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
			logs := env.logs.String()[before:]
			gaNoSecrets(t, err, logs)
			if !tt.fail {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if res.State != tt.state || res.URL != tt.url {
					t.Fatalf("Resolve = %+v, want state %q url %q", res, tt.state, tt.url)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve = %+v, want a %v failure", res, tt.failure)
			}
			var e *upstream.Error
			if !errors.As(err, &e) || !errors.Is(err, upstream.ErrUnavailable) {
				t.Fatalf("error %v (%T) is not an *upstream.Error matching ErrUnavailable", err, err)
			}
			if e.Gateway != "greenapi" || e.Failure != tt.failure || e.Status != tt.status {
				t.Errorf("error = %+v, want gateway greenapi, failure %v, status %d", e, tt.failure, tt.status)
			}
			if e.RetryAfter < tt.retryMin || e.RetryAfter > tt.retryMax {
				t.Errorf("RetryAfter = %v, want %v..%v", e.RetryAfter, tt.retryMin, tt.retryMax)
			}
			if got := strings.Contains(logs, "level=ERROR"); got != tt.loudError {
				t.Errorf("Error-level log = %v, want %v; logs:\n%s", got, tt.loudError, logs)
			}
		})
	}
	// Every call was well formed: the fake records a chat only after
	// checking method, path, credentials, Content-Type and body.
	if got, want := len(env.fake.Chats()), len(tests); got != want {
		t.Errorf("fake accepted %d well-formed calls, want %d", got, want)
	}
}

func TestGreenAPIRequestShape(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	f := fake.NewGreenAPI(gaID, gaToken)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+body.String())
		mu.Unlock()
		// The fake needs the body too.
		r.Body = io.NopCloser(bytes.NewReader(body.Bytes()))
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	res, err := upstream.NewGreenAPI(upstream.GreenAPIConfig{BaseURL: srv.URL + "/", IDInstance: gaID, Token: gaToken})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"79001234567@s.whatsapp.net", "79001234567-1581234048@g.us", "120363043968066561@g.us", "120650379300963@lid"} {
		if _, err := res.Resolve(context.Background(), upstream.Request{Chat: gaChat(t, id), Preview: true}); err != nil {
			t.Fatalf("Resolve(%s): %v", id, err)
		}
	}
	want := []string{
		`POST /waInstance` + gaID + `/getAvatar/` + gaToken + ` application/json {"chatId":"79001234567@c.us"}`,
		`POST /waInstance` + gaID + `/getAvatar/` + gaToken + ` application/json {"chatId":"79001234567-1581234048@g.us"}`,
		`POST /waInstance` + gaID + `/getAvatar/` + gaToken + ` application/json {"chatId":"120363043968066561@g.us"}`,
		`POST /waInstance` + gaID + `/getAvatar/` + gaToken + ` application/json {"chatId":"120650379300963@lid"}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestGreenAPIWrongCredentials(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(*upstream.GreenAPIConfig)
		status int
	}{
		{"wrong token", func(c *upstream.GreenAPIConfig) { c.Token = "ffff" + gaToken[4:] }, 401},
		{"wrong instance", func(c *upstream.GreenAPIConfig) { c.IDInstance = "1101000000" }, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := gaSetup(t, tt.edit)
			_, err := env.res.Resolve(context.Background(), upstream.Request{Chat: gaChat(t, "79001234567")})
			var e *upstream.Error
			if !errors.As(err, &e) || e.Failure != upstream.Config || e.Status != tt.status {
				t.Fatalf("Resolve error = %v, want a config failure with HTTP %d", err, tt.status)
			}
			gaNoSecrets(t, err, env.logs.String())
			if !strings.Contains(env.logs.String(), "level=ERROR") {
				t.Errorf("no Error-level log for rejected credentials")
			}
			if n := len(env.fake.Chats()); n != 0 {
				t.Errorf("fake accepted %d calls with bad credentials", n)
			}
		})
	}
}

func TestGreenAPIDefaultAnswer(t *testing.T) {
	env := gaSetup(t, nil)
	chat := gaChat(t, "79001234567")
	res, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
	if err != nil || res.State != upstream.StateNoAvatar {
		t.Fatalf("unscripted chat = %+v, %v; want no-avatar", res, err)
	}
	env.fake.Default = func(chatID string) fake.Answer { return fake.AvatarAnswer(gaAvatar + "&chat=" + chatID) }
	res, err = env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
	if err != nil || res.State != upstream.StateOK || res.URL != gaAvatar+"&chat=79001234567@c.us" {
		t.Fatalf("Default chat = %+v, %v", res, err)
	}
}

func TestGreenAPIZeroChatMakesNoCall(t *testing.T) {
	env := gaSetup(t, nil)
	res, err := env.res.Resolve(context.Background(), upstream.Request{})
	if err != nil || res.State != upstream.StateInvalid {
		t.Fatalf("zero chat = %+v, %v; want invalid", res, err)
	}
	if n := env.fake.Recorder.Calls(); n != 0 {
		t.Errorf("%d calls for a zero chat id", n)
	}
}

func TestGreenAPIDeadline(t *testing.T) {
	env := gaSetup(t, func(c *upstream.GreenAPIConfig) { c.Timeout = 50 * time.Millisecond })
	chat := gaChat(t, "79001234567")
	slow := fake.AvatarAnswer(gaAvatar)
	slow.Delay = time.Minute
	env.fake.Set(chat.String(), slow)
	start := time.Now()
	_, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
	var e *upstream.Error
	if !errors.As(err, &e) || e.Failure != upstream.Transient || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resolve error = %v, want a transient deadline failure", err)
	}
	// Not a timing assertion: only that the call did not wait for the answer.
	if time.Since(start) > 30*time.Second {
		t.Errorf("Resolve waited for the slow answer")
	}
	gaNoSecrets(t, err, env.logs.String())
}

func TestGreenAPICancel(t *testing.T) {
	f := fake.NewGreenAPI(gaID, gaToken)
	chat := gaChat(t, "79001234567")
	slow := fake.AvatarAnswer(gaAvatar)
	slow.Delay = time.Minute
	f.Set(chat.String(), slow)
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		f.ServeHTTP(w, r)
	}))
	defer srv.Close()
	res, err := upstream.NewGreenAPI(upstream.GreenAPIConfig{BaseURL: srv.URL, IDInstance: gaID, Token: gaToken, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-arrived
		cancel()
	}()
	_, err = res.Resolve(ctx, upstream.Request{Chat: chat})
	var e *upstream.Error
	if !errors.As(err, &e) || e.Failure != upstream.Transient || !errors.Is(err, context.Canceled) {
		t.Fatalf("Resolve error = %v, want a transient cancellation", err)
	}
	gaNoSecrets(t, err, "")
}

// TestGreenAPIBodyCap: Green API may put the whole picture in base64Avatar
// next to urlAvatar, so its answers may be up to 1 MiB; past that they are
// garbage.
func TestGreenAPIBodyCap(t *testing.T) {
	huge := `{"urlAvatar":"` + gaAvatar + `","available":true,"base64Avatar":"` + strings.Repeat("A", 1<<20) + `"}`
	chat := gaChat(t, "79001234567")
	t.Run("full-size base64Avatar", func(t *testing.T) {
		env := gaSetup(t, nil)
		picture := bytes.Repeat([]byte{0xff, 0xd8, 0xff, 0xe0}, 20<<10) // 80 KiB, a full-size JPEG's weight
		a := fake.Base64AvatarAnswer(gaAvatar, picture)
		if len(a.Body) < 100<<10 {
			t.Fatalf("answer is %d bytes, want a 100 KiB one", len(a.Body))
		}
		env.fake.Set(chat.String(), a)
		res, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
		if err != nil || res.State != upstream.StateOK || res.URL != gaAvatar {
			t.Fatalf("Resolve = %+v, %v; want the avatar", res, err)
		}
	})
	t.Run("streamed", func(t *testing.T) {
		env := gaSetup(t, nil)
		env.fake.Set(chat.String(), fake.Answer{ContentType: "application/json", Body: huge})
		_, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
		var e *upstream.Error
		if !errors.As(err, &e) || e.Failure != upstream.Transient || e.Reason != "response too large" {
			t.Fatalf("Resolve error = %v, want response too large", err)
		}
		gaNoSecrets(t, err, env.logs.String())
	})
	t.Run("declared", func(t *testing.T) {
		env := gaSetup(t, nil)
		env.fake.Set(chat.String(), fake.Answer{ContentType: "application/json", Body: huge,
			Header: http.Header{"Content-Length": {fmt.Sprint(len(huge))}}})
		_, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
		var e *upstream.Error
		if !errors.As(err, &e) || e.Reason != "response too large" {
			t.Fatalf("Resolve error = %v, want response too large", err)
		}
		gaNoSecrets(t, err, env.logs.String())
	})
	t.Run("just under", func(t *testing.T) {
		env := gaSetup(t, nil)
		body := `{"urlAvatar":"` + gaAvatar + `","available":true}`
		body += strings.Repeat(" ", 1<<20-len(body))
		env.fake.Set(chat.String(), fake.Answer{ContentType: "application/json", Body: body})
		res, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
		if err != nil || res.URL != gaAvatar {
			t.Fatalf("Resolve = %+v, %v; want the avatar", res, err)
		}
	})
}

func TestGreenAPINetworkErrorHidesURL(t *testing.T) {
	env := gaSetup(t, nil)
	env.srv.Close()
	_, err := env.res.Resolve(context.Background(), upstream.Request{Chat: gaChat(t, "79001234567")})
	var e *upstream.Error
	if !errors.As(err, &e) || e.Failure != upstream.Transient || e.Status != 0 {
		t.Fatalf("Resolve error = %v, want a transient network failure", err)
	}
	gaNoSecrets(t, err, env.logs.String())
	if strings.Contains(err.Error(), "getAvatar") {
		t.Errorf("error %q shows the request URL", err)
	}
}

func TestGreenAPIFakeRateLimit(t *testing.T) {
	env := gaSetup(t, nil)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	env.fake.RateLimit = 2
	env.fake.Now = func() time.Time { return now }
	chat := gaChat(t, "79001234567")
	for i, wantLimited := range []bool{false, false, true} {
		_, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat})
		var e *upstream.Error
		limited := errors.As(err, &e) && e.Failure == upstream.RateLimited
		if limited != wantLimited {
			t.Fatalf("call %d: err = %v, want rate limited %v", i, err, wantLimited)
		}
	}
	now = now.Add(time.Second)
	if _, err := env.res.Resolve(context.Background(), upstream.Request{Chat: chat}); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestNewGreenAPIValidation(t *testing.T) {
	good := upstream.GreenAPIConfig{BaseURL: "https://1103.api.green-api.com", IDInstance: gaID, Token: gaToken}
	tests := []struct {
		name string
		edit func(*upstream.GreenAPIConfig)
		ok   bool
	}{
		{"good", func(*upstream.GreenAPIConfig) {}, true},
		{"trailing slash", func(c *upstream.GreenAPIConfig) { c.BaseURL += "/" }, true},
		{"path prefix", func(c *upstream.GreenAPIConfig) { c.BaseURL += "/v3" }, true},
		{"empty url", func(c *upstream.GreenAPIConfig) { c.BaseURL = "" }, false},
		{"no scheme", func(c *upstream.GreenAPIConfig) { c.BaseURL = "1103.api.green-api.com" }, false},
		{"ftp", func(c *upstream.GreenAPIConfig) { c.BaseURL = "ftp://1103.api.green-api.com" }, false},
		{"query", func(c *upstream.GreenAPIConfig) { c.BaseURL += "?x=1" }, false},
		{"credentials", func(c *upstream.GreenAPIConfig) { c.BaseURL = "https://u:p@1103.api.green-api.com" }, false},
		{"bad url", func(c *upstream.GreenAPIConfig) { c.BaseURL = "https://[::1" }, false},
		{"id not digits", func(c *upstream.GreenAPIConfig) { c.IDInstance = "11a3" }, false},
		{"id empty", func(c *upstream.GreenAPIConfig) { c.IDInstance = "" }, false},
		{"id of 20 digits", func(c *upstream.GreenAPIConfig) { c.IDInstance = "11030000011103000001" }, true},
		{"id of 21 digits", func(c *upstream.GreenAPIConfig) { c.IDInstance = "110300000111030000011" }, false},
		// Each end of every unreserved range, and the byte just past it.
		{"token of every unreserved end", func(c *upstream.GreenAPIConfig) { c.Token = "azAZ09-_.~" }, true},
		{"token with a backquote", func(c *upstream.GreenAPIConfig) { c.Token = gaToken + "`" }, false},
		{"token with a brace", func(c *upstream.GreenAPIConfig) { c.Token = gaToken + "{" }, false},
		{"token with an at", func(c *upstream.GreenAPIConfig) { c.Token = gaToken + "@" }, false},
		{"token with a bracket", func(c *upstream.GreenAPIConfig) { c.Token = gaToken + "[" }, false},
		{"token with a colon", func(c *upstream.GreenAPIConfig) { c.Token = gaToken + ":" }, false},
		{"token with a percent", func(c *upstream.GreenAPIConfig) { c.Token = gaToken + "%2F" }, false},
		{"token empty", func(c *upstream.GreenAPIConfig) { c.Token = "" }, false},
		{"token with slash", func(c *upstream.GreenAPIConfig) { c.Token = gaToken + "/x" }, false},
		{"negative timeout", func(c *upstream.GreenAPIConfig) { c.Timeout = -time.Second }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			g, err := upstream.NewGreenAPI(cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewGreenAPI err = %v, want ok %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), gaToken) {
				t.Errorf("error %q shows the token", err)
			}
			if g != nil && strings.Contains(fmt.Sprint(g), gaToken) {
				t.Errorf("GreenAPI prints its token")
			}
		})
	}
}

func TestGreenAPIConfigHidesToken(t *testing.T) {
	cfg := upstream.GreenAPIConfig{BaseURL: "https://1103.api.green-api.com", IDInstance: gaID, Token: gaToken}
	var logs testkit.Buffer
	logs.Logger().Info("config", "greenapi", cfg)
	for _, s := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%v", &cfg), logs.String()} {
		if strings.Contains(s, gaToken) {
			t.Errorf("%q shows the token", s)
		}
	}
}

// FuzzGreenAPIResponse feeds arbitrary answers to the response mapping: it
// must never panic, and must yield either a known State or an *Error whose
// text is one of ours (short, never the body).
func FuzzGreenAPIResponse(f *testing.F) {
	f.Add(200, "", []byte(`{"urlAvatar":"https://pps.whatsapp.net/v/a_n.jpg?oe=66041D5F","available":true}`))
	f.Add(200, "", []byte(`{"existsWhatsapp":false,"urlAvatar":"","reason":"bad request data"}`))
	f.Add(200, "", []byte(`{"code":401,"description":"Unauthorized"}`))
	f.Add(400, "", []byte(`{"statusCode":400,"message":["Validation failed"]}`))
	f.Add(400, "", []byte(`instance account not authorized`))
	f.Add(429, "Wed, 21 Oct 2015 07:28:00 GMT", []byte(``))
	f.Add(429, "99999999999999999999", []byte(``))
	f.Add(466, "", []byte(`{"invokeStatus":{}}`))
	f.Add(200, "", []byte(`<html>`))
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter string, body []byte) {
		res, err := upstream.GreenAPIAnswerForTest(status, retryAfter, body, now)
		if err != nil {
			var e *upstream.Error
			if !errors.As(err, &e) || !errors.Is(err, upstream.ErrUnavailable) {
				t.Fatalf("error %v (%T) is not an *upstream.Error", err, err)
			}
			if len(e.Reason) == 0 || len(e.Reason) > 40 || e.Err != nil {
				t.Fatalf("reason %q is not a fixed short text", e.Reason)
			}
			if e.RetryAfter < 0 || e.RetryAfter > time.Hour {
				t.Fatalf("RetryAfter %v out of range", e.RetryAfter)
			}
			return
		}
		switch res.State {
		case upstream.StateOK:
			if res.URL == "" || strings.TrimSpace(res.URL) != res.URL {
				t.Fatalf("StateOK with URL %q", res.URL)
			}
		case upstream.StatePrivacy, upstream.StateNoAvatar, upstream.StateInvalid:
			if res.URL != "" {
				t.Fatalf("state %q with URL %q", res.State, res.URL)
			}
		default:
			t.Fatalf("unknown state %q", res.State)
		}
	})
}

// BenchmarkGreenAPIResolve is one getAvatar round trip over loopback HTTP,
// the gateway half of a cold miss.
func BenchmarkGreenAPIResolve(b *testing.B) {
	f := fake.NewGreenAPI(gaID, gaToken)
	f.Default = func(string) fake.Answer { return fake.AvatarAnswer(gaAvatar) }
	srv := httptest.NewServer(f)
	defer srv.Close()
	g, err := upstream.NewGreenAPI(upstream.GreenAPIConfig{BaseURL: srv.URL, IDInstance: gaID, Token: gaToken})
	if err != nil {
		b.Fatal(err)
	}
	chat, _ := upstream.ParseChatID("79001234567")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Resolve(context.Background(), upstream.Request{Chat: chat}); err != nil {
			b.Fatal(err)
		}
	}
}
