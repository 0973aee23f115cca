// Package resize turns untrusted image bytes into a square avatar: it sniffs
// and guards the decode (byte and pixel limits checked before any pixel
// buffer exists), centre-crops and resizes to a square, and encodes JPEG or
// PNG. It owns no I/O, caching or HTTP knowledge: bytes in, bytes out.
// EXIF orientation is neither applied nor kept (no metadata reaches the
// output): pixels come out as stored, which suits WhatsApp, whose avatars
// are normalised upright.
package resize
