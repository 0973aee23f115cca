// Package storage is the durable cache tier: a local folder (Disk) and an S3
// bucket (S3, MinIO or any S3-compatible service). Both store opaque bytes
// under hashed object names, so the logical keys (which carry phone numbers)
// never reach a file system or a bucket listing. It knows nothing of images,
// HTTP serving or cache policy; callers treat its failures as misses.
package storage

import (
	"bytes"
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
// prefix + h[0:2]/h[2:4]/h with h = hex(sha256(key)). The hash hides the key
// (it may hold a phone number) and, being hex, cannot climb out of a folder or
// collide with the temp files Disk writes; the two levels of 256 folders keep
// directories small. Both tiers use it so an object has one name everywhere.
func objectName(prefix, key string) string {
	sum := sha256.Sum256([]byte(key))
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
// positive, pre-sizes the buffer so a known-size read allocates once.
func readCapped(r io.Reader, max, sizeHint int64) ([]byte, error) {
	if sizeHint > max {
		return nil, ErrTooLarge
	}
	var buf bytes.Buffer
	if sizeHint > 0 {
		// bytes.Buffer.ReadFrom asks for bytes.MinRead of free room before
		// each read; give it that much beyond the size to avoid a second
		// allocation just to discover EOF.
		buf.Grow(int(sizeHint) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, max+1)); err != nil {
		return nil, err
	}
	if int64(buf.Len()) > max {
		return nil, ErrTooLarge
	}
	if buf.Len() == 0 {
		// An empty object is a hit: return a non-nil slice so callers that
		// test data != nil are not fooled into seeing a miss.
		return []byte{}, nil
	}
	return buf.Bytes(), nil
}
