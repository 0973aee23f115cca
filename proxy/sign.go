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
	pools  []sync.Pool  // one pool of *macState per key: the hit path verifies without allocating
	opaque []*opaqueKey // one per key: the first seals, all open
}

// b64 is base64url without padding, refusing set bits past the data in the
// last character: without Strict each signature and token had four
// spellings, so four URLs (cache entries, deny-list entries) per picture.
var b64 = base64.RawURLEncoding.Strict()

// NewSigner returns a Signer over keys; with no keys it is nil (unsigned mode).
func NewSigner(keys [][]byte) *Signer {
	if len(keys) == 0 {
		return nil
	}
	s := &Signer{keys: keys, pools: make([]sync.Pool, len(keys))}
	for i, k := range keys {
		k := k
		s.pools[i].New = func() any { return &macState{h: hmac.New(sha256.New, k)} }
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
	return b64.EncodeToString(sum[:])
}

// macState is a pooled HMAC with its own buffers: the message and the sum
// pass through the hash.Hash interface, so buffers on the caller's stack
// would escape and cost an allocation per request.
type macState struct {
	h   hash.Hash
	msg []byte
	sum []byte
}

func (s *Signer) mac(i int, msg string, dst []byte) []byte {
	st := s.pools[i].Get().(*macState)
	st.h.Reset()
	st.msg = append(st.msg[:0], msg...)
	st.h.Write(st.msg)
	st.sum = st.h.Sum(st.sum[:0])
	dst = append(dst, st.sum...)
	s.pools[i].Put(st)
	return dst
}

// Verify reports whether sig is a valid signature of msg under any key, in
// constant time with respect to the signature's content.
func (s *Signer) Verify(msg, sig string) bool {
	if len(sig) != b64.EncodedLen(sha256.Size) {
		return false
	}
	var got [sha256.Size]byte
	var src [43]byte // the length checked above; a stack copy, not []byte(sig)
	copy(src[:], sig)
	if n, err := b64.Decode(got[:], src[:]); err != nil || n != sha256.Size {
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
