package upstream

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

const (
	evoGlobalKey = "GLOBAL-evo-key-42"
	evoInstToken = "inst-token-B6D711FCDE4D"
	evoPicURL    = "https://pps.whatsapp.net/v/t61.24694-24/9_8_7_n.jpg?ccb=11-4&oh=01_Q5AaIB&oe=66041D5F"
)

type evoEnv struct {
	fake *fake.Evolution
	srv  *httptest.Server
	gw   *Evolution
	logs *testkit.Buffer
}

func newEvoEnv(t *testing.T, edit func(*EvolutionConfig)) *evoEnv {
	t.Helper()
	f := &fake.Evolution{
		APIKey:    evoGlobalKey,
		Instances: map[string]string{"shop one": evoInstToken, "other": "tok2"},
	}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	logs := &testkit.Buffer{}
	cfg := EvolutionConfig{BaseURL: srv.URL, APIKey: evoGlobalKey, Instance: "shop one", Timeout: 5 * time.Second, Logger: logs.Logger()}
	if edit != nil {
		edit(&cfg)
	}
	gw, err := NewEvolution(cfg)
	if err != nil {
		t.Fatalf("NewEvolution: %v", err)
	}
	return &evoEnv{fake: f, srv: srv, gw: gw, logs: logs}
}

func TestEvolutionAnswers(t *testing.T) {
	cases := []struct {
		name   string
		answer func(jid string) fake.Answer
		want   gwWant
	}{
		{"picture", func(j string) fake.Answer { return fake.EvolutionPicture(j, evoPicURL) }, gwWant{state: StateOK}},
		// Evolution's null is also every swallowed error: uncertain.
		{"null", fake.EvolutionNoPicture, gwWant{state: StateNoAvatar, uncertain: true}},
		{"url key absent", func(j string) fake.Answer { return fake.JSON(200, map[string]string{"wuid": j}) }, gwWant{state: StateNoAvatar, uncertain: true}},
		{"empty url", func(j string) fake.Answer {
			return fake.JSON(200, map[string]string{"wuid": j, "profilePictureUrl": ""})
		}, gwWant{state: StateNoAvatar, uncertain: true}},
		{"201 picture", func(j string) fake.Answer {
			a := fake.EvolutionPicture(j, evoPicURL)
			a.Status = 201
			return a
		}, gwWant{state: StateOK}},
		{"unauthorized", func(string) fake.Answer { return fake.EvolutionUnauthorized() }, gwWant{failure: Config, status: 401}},
		{"forbidden", func(string) fake.Answer { return fake.Text(403, "Forbidden") }, gwWant{failure: Config, status: 403}},
		{"instance not found", func(string) fake.Answer { return fake.EvolutionInstanceNotFound("shop one") }, gwWant{failure: Config, status: 404}},
		{"rate limited", func(string) fake.Answer { return fake.EvolutionTooManyRequests(90 * time.Second) }, gwWant{failure: RateLimited, status: 429, retry: 90 * time.Second}},
		{"internal error", func(string) fake.Answer { return fake.EvolutionInternalError() }, gwWant{failure: Transient, status: 500}},
		{"bad request", func(string) fake.Answer { return fake.EvolutionBadRequest("Connection Closed") }, gwWant{failure: Transient, status: 400}},
		{"empty object", func(string) fake.Answer { return fake.JSON(200, map[string]string{}) }, gwWant{failure: Transient, status: 200}},
		{"garbage", func(string) fake.Answer { return fake.Text(200, "ok") }, gwWant{failure: Transient, status: 200}},
		{"number url", func(j string) fake.Answer { return fake.JSON(200, map[string]any{"wuid": j, "profilePictureUrl": 1}) }, gwWant{failure: Transient, status: 200}},
		{"bad url", func(j string) fake.Answer { return fake.EvolutionPicture(j, "/relative.jpg") }, gwWant{failure: Transient, status: 200}},
		// A redirect means a base URL to correct, not a gateway to retry;
		// 300 is one too, not a success.
		{"redirect", func(string) fake.Answer {
			a := fake.Text(http.StatusMovedPermanently, "")
			a.Header = http.Header{"Location": {"https://elsewhere.example/"}}
			return a
		}, gwWant{failure: Config, status: 301}},
		{"multiple choices", func(j string) fake.Answer {
			return fake.JSON(http.StatusMultipleChoices, map[string]string{"wuid": j, "profilePictureUrl": evoPicURL})
		}, gwWant{failure: Config, status: 300}},
	}
	env := newEvoEnv(t, nil)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			phone := fmt.Sprintf("5511%07d", 3000000+i)
			jid := phone + "@s.whatsapp.net"
			env.fake.Set(jid, tc.answer(jid))
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, phone+"@c.us"), Preview: true})
			gwCheck(t, evolutionGateway, res, err, tc.want)
			if tc.want.state == StateOK && (res.URL != evoPicURL || res.Preview) {
				t.Errorf("result = %+v", res)
			}
			gwNoLeak(t, err, env.logs.String(), evoGlobalKey, phone)
		})
	}
	if got := env.fake.Recorder.Calls(); got != len(cases) {
		t.Errorf("fake saw %d calls, want %d", got, len(cases))
	}
}

func TestEvolutionFakeChecks(t *testing.T) {
	cases := []struct {
		name string
		edit func(*EvolutionConfig)
		want gwWant
	}{
		{"instance token", func(c *EvolutionConfig) { c.APIKey = evoInstToken }, gwWant{state: StateNoAvatar, uncertain: true}},
		{"other instance's token", func(c *EvolutionConfig) { c.APIKey = "tok2" }, gwWant{failure: Config, status: 401}},
		{"wrong key", func(c *EvolutionConfig) { c.APIKey = "nope" }, gwWant{failure: Config, status: 401}},
		{"unknown instance", func(c *EvolutionConfig) { c.Instance = "ghost" }, gwWant{failure: Config, status: 404}},
		{"wrong base path", func(c *EvolutionConfig) { c.BaseURL += "/evo" }, gwWant{failure: Config, status: 404}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := newEvoEnv(t, tc.edit)
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "5511999999999")})
			gwCheck(t, evolutionGateway, res, err, tc.want)
			gwNoLeak(t, err, env.logs.String(), evoGlobalKey, evoInstToken, "tok2", "5511999999999")
			if tc.want.failure == Config && !strings.Contains(env.logs.String(), "level=ERROR") {
				t.Errorf("config failure not logged at Error:\n%s", env.logs)
			}
		})
	}
}

func TestEvolutionNumberForms(t *testing.T) {
	env := newEvoEnv(t, nil)
	cases := []struct{ in, sent, jid string }{
		{"5511999999999@c.us", "5511999999999", "5511999999999@s.whatsapp.net"},
		{"5511999999999@s.whatsapp.net", "5511999999999", "5511999999999@s.whatsapp.net"},
		{"79001234567-1581234048@g.us", "79001234567-1581234048@g.us", "79001234567-1581234048@g.us"},
		{"120363043968066561@g.us", "120363043968066561@g.us", "120363043968066561@g.us"},
		{"120650379300963@lid", "120650379300963@lid", "120650379300963@lid"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			env.fake.Set(tc.jid, fake.EvolutionPicture(tc.jid, evoPicURL))
			res, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, tc.in)})
			if err != nil || res.State != StateOK {
				t.Fatalf("Resolve = %+v, %v", res, err)
			}
			nums := env.fake.Numbers()
			if last := nums[len(nums)-1]; last != tc.sent || fake.EvolutionJID(last) != tc.jid {
				t.Errorf("sent %q (read as %q), want %q (%q)", last, fake.EvolutionJID(last), tc.sent, tc.jid)
			}
		})
	}
}

func TestEvolutionTransportFailures(t *testing.T) {
	env := newEvoEnv(t, func(c *EvolutionConfig) { c.Timeout = 20 * time.Millisecond })
	env.fake.Set("5511999999999@s.whatsapp.net", fake.Answer{Delay: time.Minute})
	_, err := env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "5511999999999")})
	gwCheck(t, evolutionGateway, Result{}, err, gwWant{failure: Transient})
	env.srv.Close()
	_, err = env.gw.Resolve(t.Context(), Request{Chat: gwChat(t, "5511999999998")})
	gwCheck(t, evolutionGateway, Result{}, err, gwWant{failure: Transient})
	gwNoLeak(t, err, env.logs.String(), evoGlobalKey, "5511999999998", "fetchProfilePictureUrl")
}

func TestNewEvolutionValidation(t *testing.T) {
	cases := []struct {
		name string
		cfg  EvolutionConfig
		ok   bool
	}{
		{"full", EvolutionConfig{BaseURL: "http://127.0.0.1:8080", APIKey: evoGlobalKey, Instance: "a"}, true},
		{"no key", EvolutionConfig{BaseURL: "http://127.0.0.1:8080", Instance: "a"}, false},
		{"no instance", EvolutionConfig{BaseURL: "http://127.0.0.1:8080", APIKey: evoGlobalKey}, false},
		{"spaced instance", EvolutionConfig{BaseURL: "http://host", APIKey: evoGlobalKey, Instance: "a "}, false},
		{"bad url", EvolutionConfig{BaseURL: "//host", APIKey: evoGlobalKey, Instance: "a"}, false},
		{"key in url", EvolutionConfig{BaseURL: "http://k:" + evoGlobalKey + "@host", APIKey: evoGlobalKey, Instance: "a"}, false},
		{"newline in key", EvolutionConfig{BaseURL: "http://host", APIKey: evoGlobalKey + "\n", Instance: "a"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewEvolution(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewEvolution: %v, want ok=%v", err, tc.ok)
			}
			gwNoLeak(t, err, "", evoGlobalKey)
		})
	}
	var logs testkit.Buffer
	cfg := EvolutionConfig{BaseURL: "http://host", APIKey: evoGlobalKey, Instance: "a"}
	logs.Logger().Info("config", "evolution", cfg)
	gwNoLeak(t, nil, logs.String()+fmt.Sprint(cfg)+fmt.Sprintf("%+v", cfg), evoGlobalKey)
}

// The fake's guard answers must be the documented bodies, byte for byte,
// and in evolution-api's order: instance first, then key.
func TestFakeEvolutionGuardBodies(t *testing.T) {
	srv := httptest.NewServer(&fake.Evolution{APIKey: evoGlobalKey, Instances: map[string]string{"myinst": ""}})
	defer srv.Close()
	post := func(inst, key string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/chat/fetchProfilePictureUrl/"+inst, bytes.NewReader([]byte(`{"number":"1"}`)))
		req.Header.Set("apikey", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, b := post("ghost", "wrong"); s != 404 || b != `{"status":404,"error":"Not Found","response":{"message":["The \"ghost\" instance does not exist"]}}` {
		t.Errorf("unknown instance: %d %s", s, b)
	}
	if s, b := post("myinst", "wrong"); s != 401 || b != `{"status":401,"error":"Unauthorized","response":{"message":"Unauthorized"}}` {
		t.Errorf("wrong key: %d %s", s, b)
	}
	if s, b := post("myinst", evoGlobalKey); s != 200 || b != `{"wuid":"1@s.whatsapp.net","profilePictureUrl":null}` {
		t.Errorf("no picture: %d %s", s, b)
	}
}

func FuzzEvolutionAnswer(f *testing.F) {
	f.Add(200, `{"wuid":"5511999999999@s.whatsapp.net","profilePictureUrl":"https://pps.whatsapp.net/v/x.jpg"}`, "")
	f.Add(200, `{"wuid":"5511999999999@s.whatsapp.net","profilePictureUrl":null}`, "")
	f.Add(401, `{"status":401,"error":"Unauthorized","response":{"message":"Unauthorized"}}`, "")
	f.Add(429, ``, "5")
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		res, e := evolutionAnswer(status, retryAfter, []byte(body), time.Unix(1700000000, 0))
		gwFuzzCheck(t, evolutionGateway, status, res, e)
		if e == nil && res.State != StateOK && res.State != StateNoAvatar {
			t.Fatalf("Evolution cannot know state %q", res.State)
		}
		if e == nil && res.State == StateNoAvatar && !res.Uncertain {
			t.Fatalf("Evolution's no-avatar may be a swallowed error, yet it is certain")
		}
	})
}
