package proxy

import (
	"hash/maphash"
	"sync"

	"github.com/avatarproxy/avatarproxy/upstream"
)

// purgeFence keeps a purge final. A fill or refresh already under way when
// a chat is purged (it may be waiting on the gateway for seconds) would
// otherwise write the chat back to memory and to the durable tier after
// the erasure was answered. Loads note the chat's generation when they
// start and store only if no purge has happened since; a purge waits for
// stores already past that check, so none lands after it.
//
// Chats share a few generations: a purge also turns away the stores of
// loads of other chats that were under way in its shard. Purges are rare,
// and such a load only answers its request uncached.
type purgeFence struct {
	seed   maphash.Seed
	shards [64]fenceShard
}

type fenceShard struct {
	mu  sync.RWMutex
	gen uint64
}

func newPurgeFence() *purgeFence { return &purgeFence{seed: maphash.MakeSeed()} }

func (f *purgeFence) shard(chat upstream.ChatID) *fenceShard {
	var b [64]byte
	return &f.shards[maphash.Bytes(f.seed, chat.AppendTo(b[:0]))%uint64(len(f.shards))]
}

// generation is chat's purge generation, for a load starting now.
func (f *purgeFence) generation(chat upstream.ChatID) uint64 {
	sh := f.shard(chat)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	return sh.gen
}

// store runs keep, which caches what a load that started at generation gen
// found, unless chat has been purged since. It reports whether keep ran.
func (f *purgeFence) store(chat upstream.ChatID, gen uint64, keep func()) bool {
	sh := f.shard(chat)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if sh.gen != gen {
		return false
	}
	keep()
	return true
}

// purge starts a new generation for chat, once the stores under way have
// finished: the caller then deletes, and nothing older is written after.
func (f *purgeFence) purge(chat upstream.ChatID) {
	sh := f.shard(chat)
	sh.mu.Lock()
	sh.gen++
	sh.mu.Unlock()
}
