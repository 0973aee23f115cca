package proxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"strconv"
	"sync"
)

// Signer signs and verifies chat ids with HMAC-SHA256. The first key signs;
// every key verifies, so keys can be rotated without breaking links already
// sent in emails.
type Signer struct {
	keys   [][]byte
	pools  []sync.Pool  // one pool of hmac states per key: the hit path verifies without allocating
	opaque []*opaqueKey // one per key: the first seals, all open
}

// NewSigner returns a Signer over keys; with no keys it is nil (unsigned mode).
func NewSigner(keys [][]byte) *Signer {
	if len(keys) == 0 {
		return nil
	}
	s := &Signer{keys: keys, pools: make([]sync.Pool, len(keys))}
	for i, k := range keys {
		k := k
		s.pools[i].New = func() any { return hmac.New(sha256.New, k) }
		ok, err := newOpaqueKey(k)
		if err != nil {
			panic(err) // HKDF and AES-256 cannot fail for these fixed sizes
		}
		s.opaque = append(s.opaque, ok)
	}
	return s
}

// SignExpiring signs chat for use until exp (unix seconds): the signed
// message is chat + ":" + exp, so a link can be made to die.
func (s *Signer) SignExpiring(chat string, exp int64) string {
	return s.Sign(chat + ":" + strconv.FormatInt(exp, 10))
}

// Sign returns base64url_nopad(HMAC-SHA256(first key, msg)).
func (s *Signer) Sign(msg string) string {
	var sum [sha256.Size]byte
	s.mac(0, msg, sum[:0])
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func (s *Signer) mac(i int, msg string, dst []byte) []byte {
	h := s.pools[i].Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(msg))
	dst = h.Sum(dst)
	s.pools[i].Put(h)
	return dst
}

// Verify reports whether sig is a valid signature of msg under any key, in
// constant time with respect to the signature's content.
func (s *Signer) Verify(msg, sig string) bool {
	if len(sig) != base64.RawURLEncoding.EncodedLen(sha256.Size) {
		return false
	}
	var got [sha256.Size]byte
	if n, err := base64.RawURLEncoding.Decode(got[:], []byte(sig)); err != nil || n != sha256.Size {
		return false
	}
	ok := false
	for i := range s.keys {
		var want [sha256.Size]byte
		// Check every key, not stopping at the first match, so timing does not
		// tell which key verified.
		if hmac.Equal(s.mac(i, msg, want[:0]), got[:]) {
			ok = true
		}
	}
	return ok
}
