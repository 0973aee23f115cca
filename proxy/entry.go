package proxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/avatarproxy/avatarproxy/upstream"
)

// freshness is shared by a source record and every variant rendered from it,
// so renewing the record (same picture, new TTL) refreshes all variants at
// once, and replacing it (new picture, purge) retires them, without the hit
// path looking anything up besides its own entry.
type freshness struct {
	identity   string       // state plus picture hash: equal identities show the same thing
	freshUntil atomic.Int64 // unix nanoseconds
	staleUntil atomic.Int64 // unix nanoseconds; served (and revalidated) until then
	retired    atomic.Bool  // a newer record or a purge replaced it
	// A refresh that failed defers the next one: without it, a chat whose
	// refresh keeps failing (a new link the CDN refuses, a picture we
	// reject) would cost a gateway call per stale hit, not one per back-off.
	retryAt  atomic.Int64 // unix nanoseconds: no refresh before
	failures atomic.Int32 // refreshes failed in a row
}

// Refresh back-off: the first retry after a minute, doubling up to a
// quarter of the TTL, so a gateway that comes back is noticed within hours
// while a chat that keeps failing costs a few calls a day.
const refreshRetryMin = time.Minute

// deferRefresh records a failed refresh at now and returns the wait before
// the next one.
func (f *freshness) deferRefresh(now time.Time, ttl time.Duration) time.Duration {
	n := min(f.failures.Add(1), 20)
	d := min(refreshRetryMin<<(n-1), max(ttl/4, refreshRetryMin))
	f.retryAt.Store(now.Add(d).UnixNano())
	return d
}

// refreshed clears the back-off after a refresh that worked.
func (f *freshness) refreshed() {
	f.failures.Store(0)
	f.retryAt.Store(0)
}

// mayRefresh reports whether a refresh may start at now.
func (f *freshness) mayRefresh(now time.Time) bool { return now.UnixNano() >= f.retryAt.Load() }

type age uint8

const (
	ageFresh   age = iota // serve
	ageStale              // serve and revalidate in the background
	ageExpired            // do not serve: miss
)

func (f *freshness) age(now time.Time) age {
	if f.retired.Load() {
		return ageExpired
	}
	n := now.UnixNano()
	switch {
	case n < f.freshUntil.Load():
		return ageFresh
	case n < f.staleUntil.Load():
		return ageStale
	}
	return ageExpired
}

func (f *freshness) set(fresh, stale time.Time) {
	f.freshUntil.Store(fresh.UnixNano())
	f.staleUntil.Store(stale.UnixNano())
}

// record is what the durable tier keeps per chat (and per preview/full): the
// gateway's answer and, for StateOK, the source picture as downloaded.
type record struct {
	State      upstream.State `json:"state"`
	PictureKey string         `json:"pictureKey,omitempty"` // CDN path without query: change detection
	PictureID  string         `json:"pictureId,omitempty"`  // gateway's picture id where it has one
	ResolvedAt time.Time      `json:"resolvedAt"`           // last answer from the gateway
	FetchedAt  time.Time      `json:"fetchedAt,omitzero"`   // when Picture was downloaded
	LinkExpiry time.Time      `json:"linkExpiry,omitzero"`  // the CDN link's oe, for operators
	Uncertain  bool           `json:"uncertain,omitempty"`  // upstream.Result.Uncertain: kept briefly
	Picture    []byte         `json:"-"`
}

// samePicture reports whether a new gateway answer names the picture r holds.
func (r *record) samePicture(res upstream.Result) bool {
	if r.State != upstream.StateOK || len(r.Picture) == 0 {
		return false
	}
	if res.PictureID != "" && r.PictureID != "" {
		return res.PictureID == r.PictureID
	}
	return r.PictureKey != "" && r.PictureKey == upstream.PictureKey(res.URL)
}

// The durable encoding: magic, a big-endian header length, the JSON header,
// then the picture bytes. One object per record, so one PUT is atomic.
var recordMagic = []byte("AVP1")

const maxRecordHeader = 4 << 10

var errBadRecord = errors.New("proxy: malformed durable record")

func encodeRecord(r *record) ([]byte, error) {
	h, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(recordMagic)+4+len(h)+len(r.Picture))
	out = append(out, recordMagic...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(h)))
	out = append(out, h...)
	return append(out, r.Picture...), nil
}

// decodeRecord parses b; the returned Picture aliases b.
func decodeRecord(b []byte) (*record, error) {
	if len(b) < len(recordMagic)+4 || !bytes.Equal(b[:len(recordMagic)], recordMagic) {
		return nil, errBadRecord
	}
	b = b[len(recordMagic):]
	n := binary.BigEndian.Uint32(b)
	b = b[4:]
	if n > maxRecordHeader || int(n) > len(b) {
		return nil, errBadRecord
	}
	var r record
	if err := json.Unmarshal(b[:n], &r); err != nil {
		return nil, errBadRecord
	}
	switch r.State {
	case upstream.StateOK:
		if int(n) == len(b) {
			return nil, errBadRecord // an OK record without its picture is useless
		}
	case upstream.StatePrivacy, upstream.StateNoAvatar, upstream.StateNotOnWhatsApp, upstream.StateInvalid:
	default:
		return nil, errBadRecord
	}
	if r.ResolvedAt.IsZero() {
		return nil, errBadRecord
	}
	if p := b[n:]; len(p) > 0 {
		r.Picture = p
	}
	return &r, nil
}

// strongETag is a quoted, content-derived entity tag: equal bytes, equal tag,
// on every replica.
func strongETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}
