package fake_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// The resolver tests in package upstream drive the fake through every
// scripted answer; these check the gatekeeping it does on its own.
func TestGreenAPIFakeGatekeeping(t *testing.T) {
	g := fake.NewGreenAPI("1101000001", "tok")
	g.Set("79001234567@c.us", fake.PrivacyAnswer())
	srv := httptest.NewServer(g)
	defer srv.Close()
	tests := []struct {
		name, method, path, ctype, body string
		status                          int
		contains                        string
	}{
		{"scripted", "POST", "/waInstance1101000001/getAvatar/tok", "application/json", `{"chatId":"79001234567@c.us"}`, 200, `"available":false`},
		{"old casing", "POST", "/waInstance1101000001/GetAvatar/tok", "application/json; charset=utf-8", `{"chatId":"79001234567@c.us"}`, 200, `"available":false`},
		{"unscripted", "POST", "/waInstance1101000001/getAvatar/tok", "application/json", `{"chatId":"79001234568@c.us"}`, 200, `"available":true`},
		{"malformed chat id", "POST", "/waInstance1101000001/getAvatar/tok", "application/json", `{"chatId":"+7 900"}`, 200, `"reason":"bad request data"`},
		{"GET", "GET", "/waInstance1101000001/getAvatar/tok", "", "", 404, "Not Found"},
		{"other method", "POST", "/waInstance1101000001/getContactInfo/tok", "application/json", `{"chatId":"79001234567@c.us"}`, 404, ""},
		{"double slash", "POST", "//waInstance1101000001/getAvatar/tok", "application/json", `{"chatId":"79001234567@c.us"}`, 404, ""},
		{"wrong id", "POST", "/waInstance1101000002/getAvatar/tok", "application/json", `{"chatId":"79001234567@c.us"}`, 403, "Forbidden"},
		{"wrong token", "POST", "/waInstance1101000001/getAvatar/tok2", "application/json", `{"chatId":"79001234567@c.us"}`, 401, "Unauthorized"},
		{"no content type", "POST", "/waInstance1101000001/getAvatar/tok", "", `{"chatId":"79001234567@c.us"}`, 400, "Validation failed"},
		{"bad json", "POST", "/waInstance1101000001/getAvatar/tok", "application/json", `{"chatId":`, 400, "Unexpected token"},
		{"legacy phoneNumber", "POST", "/waInstance1101000001/getAvatar/tok", "application/json", `{"phoneNumber":79001234567}`, 400, "phoneNumber"},
		{"no chatId", "POST", "/waInstance1101000001/getAvatar/tok", "application/json", `{}`, 400, "'chatId' is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.contains) {
				t.Errorf("%d %q, want %d containing %q", resp.StatusCode, b, tt.status, tt.contains)
			}
		})
	}
	if got := g.Recorder.Calls(); got != len(tests) {
		t.Errorf("Recorder saw %d calls, want %d", got, len(tests))
	}
	if got := strings.Join(g.Chats(), ","); got != "79001234567@c.us,79001234567@c.us,79001234568@c.us,+7 900" {
		t.Errorf("Chats() = %s", got)
	}
}
