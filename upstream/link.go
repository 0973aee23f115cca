package upstream

import (
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxExpiryHex bounds the oe parameter: real links carry 8 hex digits, and
// anything past 11 would overflow Unix seconds that time.Time can express
// usefully.
const maxExpiryHex = 11

// LinkExpiry reads the expiry that Meta CDN links carry in their `oe` query
// parameter (Unix seconds in hex, e.g. oe=66041D5F). ok is false when rawURL
// does not parse, has no oe, or oe is not 1..11 hex digits; callers then fall
// back to a fixed lifetime. The link is dead at the returned instant.
func LinkExpiry(rawURL string) (time.Time, bool) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return time.Time{}, false
	}
	// A malformed pair elsewhere in the query does not spoil a good oe:
	// ParseQuery still returns every pair it could read.
	q, _ := url.ParseQuery(u.RawQuery)
	vs := q["oe"]
	if len(vs) != 1 {
		return time.Time{}, false
	}
	oe := vs[0]
	if len(oe) == 0 || len(oe) > maxExpiryHex {
		return time.Time{}, false
	}
	// ParseInt would accept a sign and "0x"; the CDN never sends either.
	for i := 0; i < len(oe); i++ {
		if !isHex(oe[i]) {
			return time.Time{}, false
		}
	}
	secs, err := strconv.ParseInt(oe, 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(secs, 0).UTC(), true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// PictureKey is the identity of the picture a CDN link names:
// "scheme://host/path" with the scheme and host lower-cased and no query or
// fragment. The query (signature, expiry) changes every time a gateway is
// asked while the path changes only when the owner sets a new picture, so two
// links with the same key show the same picture. It returns "" when rawURL is
// not an absolute URL.
func PictureKey(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + u.EscapedPath()
}
