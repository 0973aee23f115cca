package fake

import (
	"encoding/json"
	"net/http"
	"sync"
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

// script is what a gateway fake keeps between requests: the answers a test
// scripted, by key, and one value per request it saw, in arrival order. Safe
// for concurrent use; the zero value is empty.
type script struct {
	mu      sync.Mutex
	answers map[string]Answer
	seen    []string
}

func (s *script) set(key string, a Answer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers == nil {
		s.answers = make(map[string]Answer)
	}
	s.answers[key] = a
}

// answer is the scripted answer for key; ok=false means none was scripted.
func (s *script) answer(key string) (a Answer, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok = s.answers[key]
	return a, ok
}

func (s *script) see(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, v)
}

// list returns a copy of what see recorded.
func (s *script) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}
