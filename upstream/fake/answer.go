package fake

import (
	"encoding/json"
	"net/http"
	"time"
)

// Answer is one scripted HTTP response of a fake upstream.
type Answer struct {
	Status      int    // zero means 200
	ContentType string // empty means none is set (Go may sniff one)
	Body        string
	Header      http.Header
	// Delay holds the answer back; it ends early when the client goes away,
	// so timeout tests do not leave handlers sleeping.
	Delay time.Duration
}

// Text is a plain-text answer.
func Text(status int, body string) Answer {
	return Answer{Status: status, ContentType: "text/plain; charset=utf-8", Body: body}
}

// JSON is an answer whose body is v marshalled, typed the way Fiber/Express
// servers type theirs.
func JSON(status int, v any) Answer {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a test scripted an unmarshalable value
	}
	return Answer{Status: status, ContentType: "application/json; charset=utf-8", Body: string(b)}
}

// Write sends a.
func (a Answer) Write(w http.ResponseWriter, r *http.Request) {
	if a.Delay > 0 {
		t := time.NewTimer(a.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	for k, vs := range a.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if a.ContentType != "" {
		w.Header().Set("Content-Type", a.ContentType)
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(a.Body))
}
