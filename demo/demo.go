// Package demo runs a stand-in Green API instance and WhatsApp CDN on
// loopback, serving generated pictures, so that `avatarproxy --demo` shows
// real avatars and every kind of placeholder without an account. It is only
// started when asked for and never listens beyond 127.0.0.1.
package demo

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

// Credentials of the demo instance. They guard nothing: the demo gateway only
// listens on loopback.
const (
	IDInstance = "1101000001"
	Token      = "demo0token0not0a0secret"
)

// Demo is a running demo gateway and CDN.
type Demo struct {
	GreenAPIURL string // base URL of the fake Green API
	CDNHost     string // host:port of the fake CDN, for the allow list
	Gateway     *fake.GreenAPI
	CDN         *fake.CDN

	servers []*http.Server
}

// Behaviour of a demo chat by the last digit of its number, so a newcomer
// can try every answer by editing one digit.
var scenarios = [10]string{
	0: "avatar", 1: "avatar", 2: "avatar", 3: "avatar", 4: "avatar",
	5: "privacy", 6: "no-avatar", 7: "legacy-avatar", 8: "invalid", 9: "slow-avatar",
}

// Scenario names what the demo gateway answers for a chat id.
func Scenario(chatID string) string {
	user, server, _ := strings.Cut(chatID, "@")
	if server == "g.us" {
		return "avatar"
	}
	if server == "lid" || user == "" {
		return "no-avatar"
	}
	last := user[len(user)-1]
	if last < '0' || last > '9' {
		return "no-avatar"
	}
	return scenarios[last-'0']
}

// Start serves the demo gateway and CDN on 127.0.0.1 ports until Close.
func Start(logger *slog.Logger) (*Demo, error) {
	d := &Demo{Gateway: fake.NewGreenAPI(IDInstance, Token), CDN: fake.NewCDN()}
	cdnURL, err := d.serve(d.CDN)
	if err != nil {
		return nil, err
	}
	d.CDNHost = strings.TrimPrefix(cdnURL, "http://")
	d.Gateway.Default = func(chatID string) fake.Answer {
		link := func() string {
			path := d.CDN.Add(fake.Portrait(chatID, 640))
			return d.CDN.URL(cdnURL, path, time.Now().Add(48*time.Hour))
		}
		switch Scenario(chatID) {
		case "avatar":
			return fake.AvatarAnswer(link())
		case "legacy-avatar":
			return fake.LegacyAvatarAnswer(link())
		case "slow-avatar":
			a := fake.AvatarAnswer(link())
			a.Delay = 4 * time.Second // longer than the first-load budget
			return a
		case "privacy":
			return fake.PrivacyAnswer()
		case "invalid":
			return fake.ReasonAnswer("bad request data")
		}
		return fake.NoAvatarAnswer()
	}
	if d.GreenAPIURL, err = d.serve(d.Gateway); err != nil {
		d.Close(context.Background())
		return nil, err
	}
	logger.Info("demo gateway and CDN started on loopback", "gateway", d.GreenAPIURL, "cdn", cdnURL)
	return d, nil
}

func (d *Demo) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	d.servers = append(d.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops both servers.
func (d *Demo) Close(ctx context.Context) error {
	var errs []error
	for _, s := range d.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// SampleChats are the chats the demo prints links for, one per scenario.
var SampleChats = []struct{ Chat, Name, What string }{
	{"79001234561@c.us", "Анна Петрова", "a person with an avatar"},
	{"120363043968066561@g.us", "Team chat", "a group with an avatar"},
	{"79001234565@c.us", "Анна Петрова", "privacy settings hide the avatar: initials"},
	{"79001234566@c.us", "", "no avatar set: silhouette"},
	{"79001234568@c.us", "", "the gateway rejects the id: silhouette"},
	{"79001234569@c.us", "Slow Gateway", "a slow gateway: placeholder first, avatar on reload"},
}
