package proxy

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// Opaque tokens hide the chat id from everything between avatarproxy and the
// browser: /avatar/t/{token}.jpg. A token is the chat id sealed with
// AES-256-GCM whose nonce is an HMAC of the chat id (a synthetic IV, as in
// SIV mode): the same chat always gets the same token, so caches work, and
// opening checks both the GCM tag and that the nonce matches the content, so
// a forged or altered token is refused.
type opaqueKey struct {
	aead   cipher.AEAD
	macKey []byte
}

const opaqueNonce = 12

var errBadToken = errors.New("proxy: bad opaque token")

func newOpaqueKey(signingKey []byte) (*opaqueKey, error) {
	enc, err := hkdf.Key(sha256.New, signingKey, nil, "avatarproxy opaque token aes-256-gcm", 32)
	if err != nil {
		return nil, err
	}
	mac, err := hkdf.Key(sha256.New, signingKey, nil, "avatarproxy opaque token siv", 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &opaqueKey{aead: aead, macKey: mac}, nil
}

func (k *opaqueKey) nonce(plain []byte) []byte {
	m := hmac.New(sha256.New, k.macKey)
	m.Write(plain)
	return m.Sum(nil)[:opaqueNonce]
}

func (k *opaqueKey) seal(chat string) string {
	plain := []byte(chat)
	n := k.nonce(plain)
	out := k.aead.Seal(append([]byte(nil), n...), n, plain, nil)
	return b64.EncodeToString(out)
}

func (k *opaqueKey) open(raw []byte) (string, error) {
	if len(raw) < opaqueNonce+k.aead.Overhead()+1 {
		return "", errBadToken
	}
	n := raw[:opaqueNonce]
	plain, err := k.aead.Open(nil, n, raw[opaqueNonce:], nil)
	if err != nil || !hmac.Equal(k.nonce(plain), n) {
		return "", errBadToken
	}
	return string(plain), nil
}

// Seal returns the opaque token of a chat id under the first key.
func (s *Signer) Seal(chat string) string { return s.opaque[0].seal(chat) }

// Open returns the chat id sealed in token under any key.
func (s *Signer) Open(token string) (string, error) {
	if len(token) > 256 {
		return "", errBadToken
	}
	raw, err := b64.DecodeString(token)
	if err != nil {
		return "", errBadToken
	}
	for _, k := range s.opaque {
		if chat, err := k.open(raw); err == nil {
			return chat, nil
		}
	}
	return "", errBadToken
}
