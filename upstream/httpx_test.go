package upstream

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// handlerTransport serves requests with h in memory, so a gateway client can
// run inside a testing/synctest bubble: a real socket would keep the bubble's
// clock from moving. Like a transport, it gives up when the request's
// context ends; the fakes' delays end then too.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t.h.ServeHTTP(rec, req)
	}()
	select {
	case <-done:
		return rec.Result(), nil
	case <-req.Context().Done():
		<-done
		return nil, req.Context().Err()
	}
}

// TestGatewayDefaultTimeouts: a zero Timeout, which is what the
// upstream-timeout setting passes by default, is each gateway's own figure
// (the one DefaultTimeout reports, which config checks the fill budget with),
// and with every one a fill whose link turns out dead (a resolve, a refused
// download, a second resolve, a download) fits the proxy's 60 s fill
// deadline (proxy.FillTimeout) with room for the durable read and the resize.
func TestGatewayDefaultTimeouts(t *testing.T) {
	const fill = 60 * time.Second
	mk := map[string]func() (gatewayHTTP, error){
		"greenapi": func() (gatewayHTTP, error) {
			g, err := NewGreenAPI(GreenAPIConfig{BaseURL: "http://127.0.0.1:1", IDInstance: "1101000001", Token: "tok"})
			if err != nil {
				return gatewayHTTP{}, err
			}
			return g.h, nil
		},
		"gowa": func() (gatewayHTTP, error) {
			g, err := NewGOWA(GOWAConfig{BaseURL: "http://127.0.0.1:1"})
			if err != nil {
				return gatewayHTTP{}, err
			}
			return g.h, nil
		},
		"waha": func() (gatewayHTTP, error) {
			g, err := NewWAHA(WAHAConfig{BaseURL: "http://127.0.0.1:1"})
			if err != nil {
				return gatewayHTTP{}, err
			}
			return g.h, nil
		},
		"evolution": func() (gatewayHTTP, error) {
			g, err := NewEvolution(EvolutionConfig{BaseURL: "http://127.0.0.1:1", APIKey: "k", Instance: "i"})
			if err != nil {
				return gatewayHTTP{}, err
			}
			return g.h, nil
		},
	}
	want := map[string]time.Duration{"greenapi": 10 * time.Second, "gowa": 20 * time.Second, "waha": 15 * time.Second, "evolution": 15 * time.Second}
	for name, f := range mk {
		h, err := f()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if h.timeout != want[name] {
			t.Errorf("%s: timeout %s, want %s", name, h.timeout, want[name])
		}
		if d := DefaultTimeout(name); d != h.timeout {
			t.Errorf("DefaultTimeout(%q) = %s, but a zero Timeout gives %s", name, d, h.timeout)
		}
		if worst := 2*h.timeout + defaultFetchTimeout; worst >= fill {
			t.Errorf("%s: two resolves and a download may take %s, the whole %s of a fill", name, worst, fill)
		}
	}
	for _, name := range []string{"none", "", "cdn"} {
		if d := DefaultTimeout(name); d != 0 {
			t.Errorf("DefaultTimeout(%q) = %s, want 0", name, d)
		}
	}
}

// TestConfigErrorsNameTheField: every problem Validate finds is a
// *ConfigError naming the gateway and the field, which config maps back to
// the setting; NewX returns the same errors.
func TestConfigErrorsNameTheField(t *testing.T) {
	for _, tc := range []struct {
		err, fromNew error
		want         []string // gateway.Field of each problem, in order
	}{
		{GreenAPIConfig{BaseURL: "ftp://h", IDInstance: "12a", Token: "a/b", Timeout: -1}.Validate(),
			func() error {
				_, err := NewGreenAPI(GreenAPIConfig{BaseURL: "ftp://h", IDInstance: "12a", Token: "a/b", Timeout: -1})
				return err
			}(),
			[]string{"greenapi.BaseURL", "greenapi.IDInstance", "greenapi.Token", "greenapi.Timeout"}},
		{GOWAConfig{BaseURL: "http://u:p@h", User: "a:b"}.Validate(),
			func() error { _, err := NewGOWA(GOWAConfig{BaseURL: "http://u:p@h", User: "a:b"}); return err }(),
			[]string{"gowa.BaseURL", "gowa.User"}},
		{WAHAConfig{BaseURL: "http://h", APIKey: "k\r\n", Session: "s "}.Validate(),
			func() error {
				_, err := NewWAHA(WAHAConfig{BaseURL: "http://h", APIKey: "k\r\n", Session: "s "})
				return err
			}(),
			[]string{"waha.APIKey", "waha.Session"}},
		{EvolutionConfig{BaseURL: "http://h?x=1"}.Validate(),
			func() error { _, err := NewEvolution(EvolutionConfig{BaseURL: "http://h?x=1"}); return err }(),
			[]string{"evolution.BaseURL", "evolution.APIKey", "evolution.Instance"}},
	} {
		if tc.err == nil || tc.fromNew == nil || tc.err.Error() != tc.fromNew.Error() {
			t.Errorf("Validate: %v; New: %v", tc.err, tc.fromNew)
			continue
		}
		var got []string
		for _, e := range tc.err.(interface{ Unwrap() []error }).Unwrap() {
			ce, ok := e.(*ConfigError)
			if !ok {
				t.Errorf("%v is a %T, not a *ConfigError", e, e)
				continue
			}
			got = append(got, ce.Gateway+"."+ce.Field)
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("problems %v, want %v", got, tc.want)
		}
	}
	for _, ok := range []error{
		GreenAPIConfig{BaseURL: "https://api.green-api.com", IDInstance: "1101000001", Token: "abc"}.Validate(),
		GOWAConfig{BaseURL: "http://h:3000/base"}.Validate(),
		WAHAConfig{BaseURL: "http://h"}.Validate(),
		EvolutionConfig{BaseURL: "http://h", APIKey: "k", Instance: "i"}.Validate(),
	} {
		if ok != nil {
			t.Errorf("a valid config: %v", ok)
		}
	}
}
