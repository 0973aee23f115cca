package fake

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Evolution imitates Evolution API's POST /chat/fetchProfilePictureUrl/
// {instance} (upstreams.md section 4): the instance-exists guard, the apikey
// guard (global key or the instance's token), the {"number"} body and its
// JID normalisation, and the 200 answer that folds every lookup error into
// profilePictureUrl: null. The zero value knows one instance "default"
// with no token and no global key, so every call is 401 until a key is set.
// Configure the exported fields before serving; Set may be called at any time.
type Evolution struct {
	// APIKey is the global AUTHENTICATION_API_KEY; empty accepts only
	// instance tokens.
	APIKey string
	// Instances maps instance names to their tokens (empty: none). Nil means
	// {"default": ""}.
	Instances map[string]string
	// Default answers numbers without a scripted answer, given the
	// normalised JID; nil means EvolutionNoPicture(jid).
	Default func(jid string) Answer
	// Recorder sees every request, rejected ones included.
	Recorder Recorder

	script script // answers by JID; the number of every request past the guards
}

// Set scripts the answer for a JID in Evolution's normalised form
// ("5511999999999@s.whatsapp.net", "120363...@g.us", "123@lid").
func (f *Evolution) Set(jid string, a Answer) {
	f.script.set(jid, a)
}

// Numbers lists the number of every request that passed the guards, exactly
// as received, in arrival order.
func (f *Evolution) Numbers() []string {
	return f.script.list()
}

var evolutionPath = regexp.MustCompile(`^/chat/fetchProfilePictureUrl/([^/]+)$`)

// ServeHTTP answers one request the way Evolution API does: route, then its
// chat router's guards in order (instance exists, then apikey), then body
// validation and the scripted lookup.
func (f *Evolution) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer f.Recorder.Begin()()
	m := evolutionPath.FindStringSubmatch(r.URL.Path)
	if m == nil || r.Method != http.MethodPost {
		// Express's default 404 page.
		a := Text(http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path)
		a.ContentType = "text/html; charset=utf-8"
		a.Write(w, r)
		return
	}
	name := m[1]
	instances := f.Instances
	if instances == nil {
		instances = map[string]string{"default": ""}
	}
	token, ok := instances[name]
	if !ok {
		EvolutionInstanceNotFound(name).Write(w, r)
		return
	}
	key := r.Header.Get("apikey")
	if key == "" || (key != f.APIKey && key != token) {
		EvolutionUnauthorized().Write(w, r)
		return
	}
	var body struct {
		Number *string `json:"number"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&body); err != nil {
		EvolutionBadRequest("Unexpected token in JSON").Write(w, r)
		return
	}
	if body.Number == nil {
		// The JSON-schema validator's exact wording is not documented.
		EvolutionBadRequest(`instance requires property "number"`).Write(w, r)
		return
	}
	f.script.see(*body.Number)
	jid := EvolutionJID(*body.Number)
	a, scripted := f.script.answer(jid)
	switch {
	case scripted:
	case f.Default != nil:
		a = f.Default(jid)
	default:
		a = EvolutionNoPicture(jid)
	}
	a.Write(w, r)
}

var evolutionNonDigit = regexp.MustCompile(`\D`)

// EvolutionJID is evolution-api's createJid without its Brazil, Mexico and
// Argentina number fix-ups: values naming @g.us, @s.whatsapp.net, @lid or
// @broadcast are kept; otherwise spaces, '+', '(', ')', a ":device" and an
// "@server" are dropped, then a '-' with 24 or more characters or 18 or more
// digits makes a group, anything else a user.
func EvolutionJID(number string) string {
	for _, s := range []string{"@g.us", "@s.whatsapp.net", "@lid", "@broadcast"} {
		if strings.Contains(number, s) {
			return number
		}
	}
	n := strings.NewReplacer(" ", "", "+", "", "(", "", ")", "").Replace(number)
	n, _, _ = strings.Cut(n, ":")
	n, _, _ = strings.Cut(n, "@")
	if strings.Contains(n, "-") && len(n) >= 24 {
		return n + "@g.us"
	}
	n = evolutionNonDigit.ReplaceAllString(n, "")
	if len(n) >= 18 {
		return n + "@g.us"
	}
	return n + "@s.whatsapp.net"
}

// evolutionError is the body of evolution-api's error handler.
func evolutionError(status int, errText string, message any) Answer {
	return JSON(status, struct {
		Status   int    `json:"status"`
		Error    string `json:"error"`
		Response struct {
			Message any `json:"message"`
		} `json:"response"`
	}{Status: status, Error: errText, Response: struct {
		Message any `json:"message"`
	}{message}})
}

type evolutionPicture struct {
	WUID string  `json:"wuid"`
	URL  *string `json:"profilePictureUrl"`
}

// EvolutionPicture is the success answer for wuid naming url.
func EvolutionPicture(wuid, url string) Answer {
	return JSON(http.StatusOK, evolutionPicture{WUID: wuid, URL: &url})
}

// EvolutionNoPicture is what Evolution answers for no picture, a hidden one,
// and any lookup error: 200 with profilePictureUrl null.
func EvolutionNoPicture(wuid string) Answer {
	return JSON(http.StatusOK, evolutionPicture{WUID: wuid})
}

// EvolutionUnauthorized is the apikey guard's rejection.
func EvolutionUnauthorized() Answer {
	return evolutionError(http.StatusUnauthorized, "Unauthorized", "Unauthorized")
}

// EvolutionInstanceNotFound is the instance-exists guard's rejection.
func EvolutionInstanceNotFound(name string) Answer {
	return evolutionError(http.StatusNotFound, "Not Found", []string{`The "` + name + `" instance does not exist`})
}

// EvolutionBadRequest is a body validation failure.
func EvolutionBadRequest(msg string) Answer {
	return evolutionError(http.StatusBadRequest, "Bad Request", []string{msg})
}

// EvolutionTooManyRequests is a 429 with an optional Retry-After, as a proxy
// in front of Evolution would send it; Evolution's own has no documented body.
func EvolutionTooManyRequests(retryAfter time.Duration) Answer {
	a := evolutionError(http.StatusTooManyRequests, "Too Many Requests", []string{"Too Many Requests"})
	if retryAfter > 0 {
		a.Header = http.Header{"Retry-After": {strconv.Itoa(int(retryAfter / time.Second))}}
	}
	return a
}

// EvolutionInternalError is the error handler's 500.
func EvolutionInternalError() Answer {
	return evolutionError(http.StatusInternalServerError, "Internal Server Error", []string{"Internal Server Error"})
}
