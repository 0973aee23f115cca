// Package storage is the durable cache tier: a local folder (Disk) and an S3
// bucket (S3, MinIO or any S3-compatible service). Both store opaque bytes
// under hashed object names, so the logical keys (which carry phone numbers)
// are not written out in a file system or a bucket listing; only names keyed
// with a secret (NameKey) keep them from being recovered, as phone numbers
// are few enough to hash them all. It knows nothing of images, HTTP serving
// or cache policy; callers treat its failures as misses.
package storage

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
)

// DefaultMaxObjectSize is the largest object Get reads and Put writes when a
// store's MaxObjectSize is zero. Avatars are tens of kilobytes; the cap only
// stops a corrupt or hostile object from exhausting memory.
const DefaultMaxObjectSize = 32 << 20

// ErrTooLarge is matched (errors.Is) when an object is bigger than the
// store's MaxObjectSize, on Get (nothing is returned) and on Put (nothing is
// written).
var ErrTooLarge = errors.New("storage: object larger than the size cap")

// objectName maps a logical key to the name it is stored under:
// prefix + h[0:2]/h[2:4]/h with h = hex(HMAC-SHA256(nameKey, key)), or
// hex(SHA-256(key)) when nameKey is empty. Being hex, a name cannot climb out
// of a folder or collide with the temp files Disk writes; the two levels of
// 256 folders keep directories small. Both tiers use it so an object has one
// name everywhere for one name key.
//
// The plain hash only keeps the key out of sight: a key holds a phone number,
// and there are about 10^10 of those, so whoever can list the names can hash
// every number and match them in minutes. Under a secret key they cannot.
func objectName(prefix, key string, nameKey []byte) string {
	var sum [sha256.Size]byte
	if len(nameKey) == 0 {
		sum = sha256.Sum256([]byte(key))
	} else {
		m := hmac.New(sha256.New, nameKey)
		m.Write([]byte(key))
		m.Sum(sum[:0])
	}
	var b [2 + 1 + 2 + 1 + 2*sha256.Size]byte
	hex.Encode(b[6:], sum[:])
	copy(b[0:2], b[6:8])
	b[2] = '/'
	copy(b[3:5], b[8:10])
	b[5] = '/'
	return prefix + string(b[:])
}

// limit returns the effective size cap for a MaxObjectSize field.
func limit(maxObjectSize int64) int64 {
	if maxObjectSize <= 0 {
		return DefaultMaxObjectSize
	}
	return maxObjectSize
}

// readCapped reads r to EOF but refuses more than max bytes. sizeHint, when
// positive, is the expected size: the bytes are then read into a single
// allocation of that size. Callers keep what Get returns and the memory
// tier charges it by length, so the capacity of the result stays within an
// eighth of its length whatever the hint.
func readCapped(r io.Reader, max, sizeHint int64) ([]byte, error) {
	if sizeHint > max {
		return nil, ErrTooLarge
	}
	r = io.LimitReader(r, max+1)
	b := make([]byte, 0, 512)
	if sizeHint > 0 {
		// One byte of room past the size, so the read that meets EOF
		// needs no growth.
		b = make([]byte, 0, sizeHint+1)
	}
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	if cap(b)-len(b) > len(b)/8 {
		// No hint, or a wrong one: the buffer grew by appending and may
		// be up to twice the bytes it holds. One copy now is cheaper
		// than pinning the spare room for the entry's lifetime. The
		// result is never nil, so an empty object still reads as a hit.
		b = append([]byte{}, b...)
	}
	return b, nil
}
