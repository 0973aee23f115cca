package upstream

import (
	"errors"
	"testing"
)

// TestGreenAPIMessage: a 400 is classified by its "message" alone when the
// body is JSON that has one; matching the whole body instead would let any
// other field (a path, an error title) pick the verdict.
func TestGreenAPIMessage(t *testing.T) {
	for _, tt := range []struct{ body, want string }{
		{`{"message":"Instance is deleted","error":"Bad Request data"}`, "Instance is deleted"},
		{` {"message":["chatId must be a string","Validation failed"]} `, "chatId must be a string; Validation failed"},
		{`{"message":""}`, ""},
		{"  bad request data\n", "bad request data"},
		{`{"statusCode":400}`, `{"statusCode":400}`},
		{`{"message":400}`, `{"message":400}`},
		{`{"message":`, `{"message":`},
		{"", ""},
		{"   ", ""},
	} {
		if got := greenAPIMessage([]byte(tt.body)); got != tt.want {
			t.Errorf("greenAPIMessage(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

// TestErrorText: the text is all a log line shows of a failure, so each part
// appears only when set and never with an empty separator.
func TestErrorText(t *testing.T) {
	cause := errors.New("connection refused")
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{Gateway: "gowa", Failure: Transient}, "gowa: transient"},
		{Error{Gateway: "gowa", Failure: Config, Status: 404}, "gowa: config (HTTP 404)"},
		{Error{Gateway: "waha", Failure: Account, Reason: "session not working"}, "waha: account: session not working"},
		{Error{Gateway: "cdn", Failure: Transient, Status: 200, Reason: "reading body", Err: cause}, "cdn: transient (HTTP 200): reading body: connection refused"},
		{Error{Gateway: "cdn", Failure: RateLimited, Err: cause}, "cdn: rate-limited: connection refused"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
