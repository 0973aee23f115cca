package upstream

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"
)

// The SSRF guard of the CDN fetcher lives here in two layers. The allow-list
// (hostPattern) is checked on the URL before each request and each redirect
// hop, so a disallowed host costs no request. The address check (publicAddr)
// runs in net.Dialer.Control on the IP actually being dialled, after DNS, so
// neither a hostile DNS answer nor a redirect can reach an internal address.

// specialPrefixes are the ranges no CDN picture lives in: loopback, private,
// link-local, shared (CGNAT), documentation, benchmarking, multicast,
// reserved, and the IPv6 ranges that embed or translate IPv4 (NAT64, 6to4,
// Teredo) and so could smuggle an internal IPv4 address past the v4 rules.
var specialPrefixes = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		// IPv4
		"0.0.0.0/8",       // "this network"
		"10.0.0.0/8",      // private
		"100.64.0.0/10",   // shared address space (CGNAT)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata services
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // TEST-NET-1
		"192.88.99.0/24",  // 6to4 relay anycast (deprecated)
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // TEST-NET-2
		"203.0.113.0/24",  // TEST-NET-3
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
		// IPv6
		"::/96",           // unspecified, loopback, IPv4-compatible (deprecated)
		"::ffff:0:0/96",   // IPv4-mapped (unmapped before the check; kept as a backstop)
		"::ffff:0:0:0/96", // IPv4-translated (SIIT)
		"64:ff9b::/96",    // NAT64 well-known prefix
		"64:ff9b:1::/48",  // NAT64 local use
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments, Teredo (2001::/32) included
		"2001:db8::/32",   // documentation
		"2002::/16",       // 6to4
		"3fff::/20",       // documentation
		"5f00::/16",       // SRv6 SIDs
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

// publicAddr reports whether ip may be dialled by the CDN fetcher: a valid,
// globally routable unicast address. IPv4-mapped IPv6 addresses are judged as
// the IPv4 address they carry.
func publicAddr(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	if ip.Zone() != "" || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() ||
		ip.IsMulticast() {
		return false
	}
	for _, p := range specialPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// dialControl returns the net.Dialer.Control function that refuses any
// address for which ok is false. address is what the dialer is about to
// connect to: always a literal IP and port, DNS having been resolved already.
func dialControl(ok func(netip.AddrPort) bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return fmt.Errorf("%w: network %s", ErrForbiddenTarget, network)
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil || !ok(ap) {
			// The address is ours to show (not a secret), and it is what an
			// operator needs to see to understand a refusal.
			return fmt.Errorf("%w: address %s", ErrForbiddenTarget, address)
		}
		return nil
	}
}

func publicAddrPort(ap netip.AddrPort) bool { return publicAddr(ap.Addr()) }

// hostPattern is one parsed allow-list entry.
type hostPattern struct {
	// host is a lower-case hostname or IP literal (IPv6 without brackets).
	// With wildcard set it is the suffix ("whatsapp.net" for
	// "*.whatsapp.net") and matches strict subdomains only.
	host     string
	wildcard bool
	// port is "" (the scheme's default port), "*" (any) or digits.
	port string
}

// errBadPattern is wrapped by every allow-list parse error.
var errBadPattern = errors.New("bad cdn allow-list pattern")

// ParseAllowList parses a comma-separated list of CDN host patterns, as the
// config takes it: "pps.whatsapp.net", "*.whatsapp.net" (any strict
// subdomain), "host:8443", "host:*" (any port), IP literals ("127.0.0.1:*",
// "[::1]:443"). A pattern without a port allows only the scheme's default
// port. Blank items are skipped; it returns the patterns lower-cased, in
// order, and nil for a blank list.
func ParseAllowList(s string) ([]string, error) {
	var out []string
	var errs []error
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parseHostPattern(item)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p.String())
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

func parseHostPattern(s string) (hostPattern, error) {
	bad := func(why string) (hostPattern, error) {
		return hostPattern{}, fmt.Errorf("%w %q: %s", errBadPattern, s, why)
	}
	if len(s) > 300 {
		return bad("too long")
	}
	s = strings.ToLower(s)
	var p hostPattern
	host := s
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return bad("unclosed [")
		}
		host, rest := s[1:end], s[end+1:]
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return bad("not an IPv6 address in brackets")
		}
		p.host = ip.String()
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return bad("junk after ]")
			}
			port, err := parsePatternPort(rest[1:])
			if err != nil {
				return bad(err.Error())
			}
			p.port = port
		}
		return p, nil
	}
	if h, port, found := strings.Cut(s, ":"); found {
		pp, err := parsePatternPort(port)
		if err != nil {
			return bad(err.Error())
		}
		host, p.port = h, pp
	}
	if strings.HasPrefix(host, "*.") {
		p.wildcard = true
		host = host[2:]
	}
	host = strings.TrimSuffix(host, ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if p.wildcard || !ip.Is4() {
			return bad("IP patterns take no wildcard, and IPv6 needs brackets")
		}
		p.host = ip.String()
		return p, nil
	}
	if !validHostname(host) {
		return bad("not a hostname")
	}
	// "*.net" would trust a whole top-level domain.
	if p.wildcard && !strings.Contains(host, ".") {
		return bad("wildcard needs at least two labels after *.")
	}
	p.host = host
	return p, nil
}

func parsePatternPort(s string) (string, error) {
	if s == "*" {
		return s, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 || s[0] == '0' {
		return "", errors.New("port must be 1-65535 or *")
	}
	return s, nil
}

// validHostname accepts lower-case LDH labels of 1..63 bytes that neither
// start nor end with '-', at most 253 bytes in all, not all digits (which
// would be a mistyped IP).
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	allDigits := true
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			switch {
			case 'a' <= c && c <= 'z', c == '-':
				allDigits = false
			case '0' <= c && c <= '9':
			default:
				return false
			}
		}
	}
	return !allDigits
}

// String is the canonical pattern text; parsing it yields p again.
func (p hostPattern) String() string {
	h := p.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if p.wildcard {
		h = "*." + h
	}
	if p.port != "" {
		h += ":" + p.port
	}
	return h
}

// match reports whether host (lower-case, IPv6 without brackets) and port
// (never empty: the caller fills in the scheme's default) are allowed, given
// the scheme's default port.
func (p hostPattern) match(host, port, defaultPort string) bool {
	switch p.port {
	case "*":
	case "":
		if port != defaultPort {
			return false
		}
	default:
		if port != p.port {
			return false
		}
	}
	if p.wildcard {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}

// allowedHost reports whether the URL host hostport ("h", "h:port", "[v6]:port")
// under scheme matches one of ps.
func allowedHost(ps []hostPattern, scheme, hostport string) bool {
	defaultPort := "443"
	if scheme == "http" {
		defaultPort = "80"
	}
	host, port := hostport, defaultPort
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		if p == "" {
			p = defaultPort
		}
		host, port = h, p
	} else if strings.HasPrefix(hostport, "[") && strings.HasSuffix(hostport, "]") {
		host = hostport[1 : len(hostport)-1]
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return false
		}
		host = ip.String()
	}
	if host == "" {
		return false
	}
	for _, p := range ps {
		if p.match(host, port, defaultPort) {
			return true
		}
	}
	return false
}
