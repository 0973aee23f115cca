package fake

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// WAHA imitates WAHA's GET /api/contacts/profile-picture (upstreams.md
// section 3): the X-Api-Key check, session lookup and status, the
// {"profilePictureURL": ...} answer, and the 24 h cache in front of the
// lookup: a 200 answer is kept per session and contact and given again,
// whatever was scripted since, until it is 24 h old or a request carries
// refresh=true. The zero value has no API key and one WORKING session
// "default", and answers null (no picture) to every contact. Configure the
// exported fields before serving; Set may be called at any time.
type WAHA struct {
	// APIKey, when set, must arrive as X-Api-Key (WAHA_API_KEY).
	APIKey string
	// Sessions maps session names to their status ("WORKING", "STARTING",
	// "SCAN_QR_CODE", "FAILED", "STOPPED"). Nil means {"default": "WORKING"}.
	// A missing or STOPPED session is 404; any other non-WORKING one is 422.
	Sessions map[string]string
	// Default answers contacts without a scripted answer; nil means
	// WAHANoPicture.
	Default func(contactID string) Answer
	// Recorder sees every request, rejected ones included.
	Recorder Recorder
	// Now is the cache's clock; nil means time.Now.
	Now func() time.Time

	script script // answers by contact id; the contactId of every request past key and session

	mu        sync.Mutex
	cache     map[string]wahaCached // by session and contact id
	refreshes int
}

// wahaCacheTTL is WAHA's documented "24h cache by default".
const wahaCacheTTL = 24 * time.Hour

type wahaCached struct {
	a  Answer
	at time.Time
}

// Set scripts the answer for a contact id as WAHA sees it after appending
// "@c.us" to ids without '@' ("79001234567@c.us", "120363...@g.us").
func (f *WAHA) Set(contactID string, a Answer) {
	f.script.set(contactID, a)
}

// ContactIDs lists the contactId parameter of every request that passed
// the key and session checks, exactly as received, in arrival order.
func (f *WAHA) ContactIDs() []string {
	return f.script.list()
}

// Refreshes counts the requests past the key and session checks that asked
// for refresh=true.
func (f *WAHA) Refreshes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes
}

func (f *WAHA) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// ServeHTTP answers one request the way WAHA does: key, route, session,
// validation, then the scripted lookup.
func (f *WAHA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer f.Recorder.Begin()()
	if f.APIKey != "" && r.Header.Get("X-Api-Key") != f.APIKey {
		WAHAUnauthorized().Write(w, r)
		return
	}
	if r.URL.Path != "/api/contacts/profile-picture" || r.Method != http.MethodGet {
		wahaNest(http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path, "Not Found").Write(w, r)
		return
	}
	q := r.URL.Query()
	session := q.Get("session")
	if session == "" {
		session = "default"
	}
	sessions := f.Sessions
	if sessions == nil {
		sessions = map[string]string{"default": "WORKING"}
	}
	switch status, ok := sessions[session]; {
	case !ok || status == "STOPPED":
		WAHASessionNotFound(session).Write(w, r)
		return
	case status != "WORKING":
		WAHASessionNotWorking(session, status).Write(w, r)
		return
	}
	id := q.Get("contactId")
	f.script.see(id)
	if id == "" {
		// The DTO validator's wording is not documented; the status is
		// NestJS's for a failed validation.
		wahaNest(http.StatusBadRequest, []string{"contactId should not be empty"}, "Bad Request").Write(w, r)
		return
	}
	if !strings.Contains(id, "@") {
		id += "@c.us"
	}
	// WAHA binds refresh as a boolean; "true" is what clients send.
	refresh := q.Get("refresh") == "true"
	key, now := session+"\x00"+id, f.now()
	f.mu.Lock()
	if refresh {
		f.refreshes++
	}
	c, hit := f.cache[key]
	f.mu.Unlock()
	if hit && !refresh && now.Sub(c.at) < wahaCacheTTL {
		c.a.Write(w, r)
		return
	}
	a, scripted := f.script.answer(id)
	switch {
	case scripted:
	case f.Default != nil:
		a = f.Default(id)
	default:
		a = WAHANoPicture()
	}
	if a.Status == 0 || a.Status == http.StatusOK {
		// Kept without the delay: a cache hit is answered at once.
		kept := a
		kept.Delay = 0
		f.mu.Lock()
		if f.cache == nil {
			f.cache = make(map[string]wahaCached)
		}
		f.cache[key] = wahaCached{a: kept, at: now}
		f.mu.Unlock()
	}
	a.Write(w, r)
}

// wahaNest is a NestJS HttpException body: {"message", "error", "statusCode"}.
func wahaNest(status int, message any, errText string) Answer {
	return JSON(status, struct {
		Message    any    `json:"message"`
		Error      string `json:"error"`
		StatusCode int    `json:"statusCode"`
	}{message, errText, status})
}

// WAHAPicture is the success answer naming url.
func WAHAPicture(url string) Answer {
	return JSON(http.StatusOK, map[string]any{"profilePictureURL": url})
}

// WAHANoPicture is the documented answer when there is no picture or
// privacy hides it: {"profilePictureURL": null}.
func WAHANoPicture() Answer {
	return JSON(http.StatusOK, map[string]any{"profilePictureURL": nil})
}

// WAHAPictureAbsent is the WEBJS engine's undefined, dropped by JSON: {}.
func WAHAPictureAbsent() Answer { return JSON(http.StatusOK, map[string]any{}) }

// WAHAUnauthorized is the wrong or missing X-Api-Key answer.
func WAHAUnauthorized() Answer {
	return JSON(http.StatusUnauthorized, struct {
		Message    string `json:"message"`
		StatusCode int    `json:"statusCode"`
	}{"Unauthorized", http.StatusUnauthorized})
}

// WAHASessionNotFound is a session that was never started (or is stopped).
func WAHASessionNotFound(session string) Answer {
	return wahaNest(http.StatusNotFound,
		"We didn't find a session with name '"+session+"'.\nPlease start it first by using POST /api/sessions/"+session+"/start request",
		"Not Found")
}

// WAHASessionNotWorking is a session whose status is not WORKING; NestJS
// sends the exception's object as the body.
func WAHASessionNotWorking(session, status string) Answer {
	return JSON(http.StatusUnprocessableEntity, struct {
		Error    string   `json:"error"`
		Session  string   `json:"session"`
		Status   string   `json:"status"`
		Expected []string `json:"expected"`
	}{"Session status is not as expected. Try again later or restart the session", session, status, []string{"WORKING"}})
}

// WAHATooManyRequests is a 429 with an optional Retry-After; WAHA's own body
// for it is not documented, so this is NestJS's default shape.
func WAHATooManyRequests(retryAfter time.Duration) Answer {
	a := wahaNest(http.StatusTooManyRequests, "Too Many Requests", "Too Many Requests")
	if retryAfter > 0 {
		a.Header = http.Header{"Retry-After": {strconv.Itoa(int(retryAfter / time.Second))}}
	}
	return a
}

// WAHAInternalError is NestJS's default 500 (the NOWEB engine lets Baileys
// errors through as these).
func WAHAInternalError() Answer {
	return JSON(http.StatusInternalServerError, struct {
		StatusCode int    `json:"statusCode"`
		Message    string `json:"message"`
	}{http.StatusInternalServerError, "Internal server error"})
}
