// Package jpegscale decodes baseline and progressive JPEGs at 1/1, 1/2, 1/4
// or 1/8 scale ("shrink on load", as libjpeg's scale_denom), so that a
// small avatar is never decoded at full size first.
//
// It is a fork of the Go 1.26 standard library's image/jpeg decoder
// (reader.go, huffman.go, scan.go and the IDCT of dct.go; the encoder is
// dropped), under the Go licence in LICENSE. What changed: each 8x8 block
// is written as an (8/denom)-edge patch computed in the DCT domain (the
// area average of the block's low-pass IDCT, from 4 of 64 coefficients at
// 1/4 scale; see scale.go), the planes are allocated at the scaled size,
// and the colour conversion uses image/draw instead of std-internal
// imageutil. At scale 1 the output is byte-identical to image/jpeg, and
// errors are image/jpeg's own FormatError and UnsupportedError types. One
// addition: a file with more than 100 scans, or whose scans visit the
// frame's blocks more than 16 times on average, is refused with an
// UnsupportedError, because image/jpeg spends a full pass per scan however
// few bytes the scan has. The code stays bounds-checked Go like the
// original, so the risk from hostile input is a panic or a hang rather
// than memory corruption; FuzzDecodeScaled covers panics, and the scan
// limits bound the work (fuzzing cannot find a slow input).
package jpegscale
