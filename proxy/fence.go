package proxy

import (
	"sync"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
)

// purgeFence keeps a purge final. A fill or refresh already under way when
// a chat is purged (it may be waiting on the gateway for seconds) would
// otherwise write the chat back to memory and to the durable tier after
// the erasure was answered. Loads note the generation when they start and
// store only if their chat has not been purged since; a purge waits for
// stores already past that check, so none lands after it.
//
// Purges are remembered per chat, for longer than any load can run, so a
// purge never turns away another chat's store.
type purgeFence struct {
	remember time.Duration
	now      func() time.Time

	mu     sync.RWMutex
	gen    uint64               // purges so far
	purged map[string]purgeMark // chat.String() of recent purges
}

type purgeMark struct {
	gen uint64 // the generation the purge started
	at  time.Time
}

// newPurgeFence remembers each purge for remember, which must outlast any
// load (a fill's deadline).
func newPurgeFence(remember time.Duration, now func() time.Time) *purgeFence {
	return &purgeFence{remember: remember, now: now, purged: make(map[string]purgeMark)}
}

// generation is the generation a load starting now stores under.
func (f *purgeFence) generation() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.gen
}

// store runs keep, which caches what a load that started at generation gen
// found for chat, unless chat has been purged since. It reports whether
// keep ran.
func (f *purgeFence) store(chat upstream.ChatID, gen uint64, keep func()) bool {
	var b [64]byte
	key := chat.AppendTo(b[:0])
	f.mu.RLock()
	defer f.mu.RUnlock()
	if m, ok := f.purged[string(key)]; ok && m.gen > gen {
		return false
	}
	keep()
	return true
}

// purge starts a new generation in which chat is purged, once the stores
// under way have finished: the caller then deletes, and no load that
// started before writes chat afterwards.
func (f *purgeFence) purge(chat upstream.ChatID) {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, m := range f.purged {
		if now.Sub(m.at) > f.remember {
			delete(f.purged, k)
		}
	}
	f.gen++
	f.purged[chat.String()] = purgeMark{gen: f.gen, at: now}
}
