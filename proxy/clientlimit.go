package proxy

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"
)

// clientLimiter is a token bucket per client address, for unsigned mode where
// anyone who reaches the server could otherwise walk the number space
// through our gateway account. Buckets live in shards so clients do not all
// contend on one lock, and idle ones are forgotten.
type clientLimiter struct {
	rps    rate.Limit
	burst  int
	seed   maphash.Seed
	shards [32]limiterShard
}

type limiterShard struct {
	mu      sync.Mutex
	clients map[string]*clientBucket
	swept   time.Time
}

type clientBucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// idleAfter is how long an untouched bucket is kept: by then it is full
// again, so forgetting it changes nothing.
const idleAfter = 5 * time.Minute

func newClientLimiter(rps float64) *clientLimiter {
	l := &clientLimiter{rps: rate.Limit(rps), burst: max(1, int(rps*2)), seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].clients = make(map[string]*clientBucket)
	}
	return l
}

// allow takes a token for ip; when none is left it says how long to wait.
func (l *clientLimiter) allow(ip string, now time.Time) (time.Duration, bool) {
	sh := &l.shards[maphash.String(l.seed, ip)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now.Sub(sh.swept) > idleAfter {
		for k, b := range sh.clients {
			if now.Sub(b.seen) > idleAfter {
				delete(sh.clients, k)
			}
		}
		sh.swept = now
	}
	b := sh.clients[ip]
	if b == nil {
		b = &clientBucket{lim: rate.NewLimiter(l.rps, l.burst)}
		sh.clients[string([]byte(ip))] = b // ip may alias fasthttp's buffer
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
// to slow down; no-store keeps the answer out of every cache.
func (s *Server) sendLimited(c *fiber.Ctx, req *avatarRequest, wait time.Duration) error {
	s.stats.ClientLimited.Add(1)
	e, err := s.placeholderEntry(req, statusUnavailable, nil)
	if err != nil {
		return err
	}
	secs := max(1, int64((wait+time.Second-1)/time.Second))
	c.Set(fiber.HeaderRetryAfter, itoa(secs))
	if err := s.send(c.Context(), req, e, s.cfg.Now(), csMiss); err != nil {
		return err
	}
	// A placeholder image (not a 404 fallback, not a 304) says 429.
	if c.Response().StatusCode() == fiber.StatusOK {
		c.Status(fiber.StatusTooManyRequests)
	}
	return nil
}
