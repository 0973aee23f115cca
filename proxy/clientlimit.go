package proxy

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"
)

// clientLimiter is a token bucket per client, for unsigned mode where
// anyone who reaches the server could otherwise walk the number space
// through our gateway account. A client is an IPv4 address or an IPv6 /64
// (one host usually holds a whole /64). Buckets live in shards so clients
// do not all contend on one lock; idle ones are forgotten, and their number
// is bounded.
type clientLimiter struct {
	rps   rate.Limit
	burst int
	// header names the header with the forwarding chain (ClientIPHeader),
	// believed only from a peer in trusted.
	header  string
	trusted []netip.Prefix
	// perShard bounds each shard's buckets (maxClients in all).
	perShard int
	// idle is how long an untouched bucket is kept (idleAfter, or longer
	// for a bucket slower to fill).
	idle   time.Duration
	seed   maphash.Seed
	shards [32]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	clients map[netip.Addr]*clientBucket
	swept   time.Time
}

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

const (
	// idleAfter is how long an untouched bucket is kept at least; it is
	// kept until it would be full again, so forgetting it changes nothing.
	idleAfter = 5 * time.Minute
	// maxClients bounds the buckets (about 160 bytes each: 10 MiB). Past
	// it a new client takes the place of a random one, which can only give
	// that one a full bucket again; refusing new clients instead would let
	// anyone holding many addresses lock everyone else out.
	maxClients = 1 << 16
)

// newClientLimiter limits each client to rps; header and trusted are
// Config.ClientIPHeader and Config.TrustedProxies.
func newClientLimiter(rps float64, header string, trusted []string) (*clientLimiter, error) {
	l := &clientLimiter{
		rps: rate.Limit(rps), burst: max(1, int(rps*2)), header: header,
		seed: maphash.MakeSeed(),
	}
	l.perShard = maxClients / len(l.shards)
	// A bucket is kept until it would be full again; past a Duration's
	// range (rps near 0), for good.
	if fill := float64(l.burst) / rps * float64(time.Second); fill >= math.MaxInt64 {
		l.idle = math.MaxInt64
	} else {
		l.idle = max(idleAfter, time.Duration(fill))
	}
	for _, t := range trusted {
		p, err := netip.ParsePrefix(t)
		if err != nil {
			a, aerr := netip.ParseAddr(t)
			if aerr != nil {
				return nil, fmt.Errorf("proxy: trusted proxy %q is not an IP or a CIDR", t)
			}
			a = a.Unmap().WithZone("")
			p = netip.PrefixFrom(a, a.BitLen())
		}
		l.trusted = append(l.trusted, p.Masked())
	}
	for i := range l.shards {
		l.shards[i].clients = make(map[netip.Addr]*clientBucket)
	}
	return l, nil
}

// client is the bucket key of a request. Without a header, or from a peer
// that is not a trusted proxy, it is the peer. Otherwise it is the
// rightmost address of the header's chain that is not a trusted proxy:
// every proxy appends the address it got the request from, so everything
// left of the first hop we do not trust was written by the client itself
// (fiber's c.IP() takes the leftmost, which let a client pick its bucket).
// A hop that is not an address ends the walk at the last trusted one.
func (l *clientLimiter) client(ctx *fasthttp.RequestCtx) netip.Addr {
	peer, _ := netip.AddrFromSlice(ctx.RemoteIP())
	client := peer.Unmap()
	if l.header == "" || !l.isTrusted(client) {
		return bucketKey(client)
	}
	values := ctx.Request.Header.PeekAll(l.header)
	for i := len(values) - 1; i >= 0; i-- {
		v := values[i]
		for len(v) > 0 {
			hop := v
			if c := bytes.LastIndexByte(v, ','); c >= 0 {
				hop, v = v[c+1:], v[:c]
			} else {
				v = nil
			}
			hop = bytes.TrimSpace(hop)
			if len(hop) == 0 {
				continue
			}
			a, ok := parseHop(hop)
			if !ok {
				return bucketKey(client)
			}
			client = a
			if !l.isTrusted(a) {
				return bucketKey(a)
			}
		}
	}
	return bucketKey(client) // every hop trusted: the farthest one
}

func (l *clientLimiter) isTrusted(a netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHop reads one address of a forwarding chain: an IP, or an IP with a
// port ("192.0.2.1:4711", "[2001:db8::1]:4711"), or a bracketed IPv6.
func parseHop(b []byte) (netip.Addr, bool) {
	s := view(b)
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, perr := netip.ParseAddrPort(s)
		if perr != nil {
			return netip.Addr{}, false
		}
		a = ap.Addr()
	}
	return a.Unmap().WithZone(""), true
}

// bucketKey is a's bucket: a itself, or its /64 for IPv6.
func bucketKey(a netip.Addr) netip.Addr {
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// allow takes a token for client; when none is left it says how long to
// wait.
func (l *clientLimiter) allow(client netip.Addr, now time.Time) (time.Duration, bool) {
	sh := &l.shards[maphash.Comparable(l.seed, client)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now.Sub(sh.swept) > l.idle {
		for k, b := range sh.clients {
			if now.Sub(b.seen) > l.idle {
				delete(sh.clients, k)
			}
		}
		sh.swept = now
	}
	b := sh.clients[client]
	if b == nil {
		if len(sh.clients) >= l.perShard {
			for k := range sh.clients { // the map's random order: a random one
				delete(sh.clients, k)
				break
			}
		}
		b = &clientBucket{lim: rate.NewLimiter(l.rps, l.burst)}
		sh.clients[client] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

// sendLimited answers a client over its rate with a placeholder image, never
// an error body: it is usually an <img>. 429 and Retry-After tell scripts
// to slow down; no-store keeps the answer out of every cache. With d=404
// (a script, mostly) it is a text 429: a 404 would read as "no avatar".
func (s *Server) sendLimited(c *fiber.Ctx, req *avatarRequest, wait time.Duration) error {
	s.stats.ClientLimited.Add(1)
	e := limitedEntry
	if req.Fallback != Fallback404 {
		var err error
		if e, err = s.placeholderEntry(req, statusUnavailable, nil, s.fence.generation()); err != nil {
			return err
		}
	}
	secs := max(1, int64((wait+time.Second-1)/time.Second))
	c.Set(fiber.HeaderRetryAfter, itoa(secs))
	limited := *e // the placeholder image says 429 too; the cached drawing stays 200
	limited.code = fiber.StatusTooManyRequests
	return s.send(c.Context(), req, &limited, s.cfg.Now(), csClientLimit)
}

// csClientLimit is the Cache-Status of a limited answer: nothing was
// looked up or forwarded.
const csClientLimit = "avatarproxy; fwd=bypass; detail=client-limit"

// limitedEntry is the answer to a client over its rate that asked for d=404.
var limitedEntry = &entry{
	code: fiber.StatusTooManyRequests, ctype: fiber.MIMETextPlainCharsetUTF8,
	body: []byte("too many requests, retry later\n"), status: statusUnavailable, noStore: true,
}
