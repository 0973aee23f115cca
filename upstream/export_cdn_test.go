package upstream

import (
	"crypto/tls"
	"net/http"
	"net/netip"
	"time"
)

// Hooks for the external tests of greenapi.go, cdn.go and dialguard.go.

// GreenAPIAnswerForTest is the HTTP-free response mapping, for fuzzing.
func GreenAPIAnswerForTest(status int, retryAfter string, body []byte, now time.Time) (Result, error) {
	res, e := greenAPIAnswer(status, retryAfter, body, now)
	if e != nil {
		return Result{}, e
	}
	return res, nil
}

// PublicAddrForTest is the dial-time address classifier.
func PublicAddrForTest(ip netip.Addr) bool { return publicAddr(ip) }

// AllowedHostForTest matches a URL host against parsed patterns.
func AllowedHostForTest(patterns []string, scheme, hostport string) bool {
	var ps []hostPattern
	for _, s := range patterns {
		p, err := parseHostPattern(s)
		if err != nil {
			panic(err)
		}
		ps = append(ps, p)
	}
	return allowedHost(ps, scheme, hostport)
}

// SetDialCheckForTest replaces the address check of f, so a test can let one
// loopback server through while everything else stays refused.
func SetDialCheckForTest(f *Fetcher, ok func(netip.AddrPort) bool) { f.dialOK = ok }

// SetTLSForTest makes f trust an httptest TLS server.
func SetTLSForTest(f *Fetcher, cfg *tls.Config) {
	f.client.Transport.(locationCheck).next.(*http.Transport).TLSClientConfig = cfg
}
