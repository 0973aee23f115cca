package resize

import (
	"errors"
	"fmt"
)

// Format is an output encoding.
type Format uint8

const (
	JPEG Format = iota + 1
	PNG
)

// ContentType is the MIME type of f, or "" for an unknown Format.
func (f Format) ContentType() string {
	switch f {
	case JPEG:
		return "image/jpeg"
	case PNG:
		return "image/png"
	}
	return ""
}

// String is the short name of f ("jpeg", "png"), or "Format(n)".
func (f Format) String() string {
	switch f {
	case JPEG:
		return "jpeg"
	case PNG:
		return "png"
	}
	return fmt.Sprintf("Format(%d)", uint8(f))
}

// Default limits, used for zero (or negative) Limits fields. WhatsApp
// serves avatars at 640x640 (0.4 MP); 2048x2048 leaves room for other
// sources and keeps one decode to about 16 MiB of pixels.
const (
	DefaultMaxPixels = 2048 * 2048
	DefaultMaxBytes  = 8 << 20
)

// Limits guard decoding of untrusted bytes. The zero value is usable: zero
// or negative fields take the defaults.
type Limits struct {
	// MaxPixels bounds width*height of the source image, read from its
	// header with DecodeConfig before any pixel buffer is allocated, and
	// the decode's memory to MaxPixels*4 bytes: a progressive JPEG, a CMYK
	// one or a 16-bit PNG takes more per pixel, so fewer of its pixels
	// pass (see Probe). Default DefaultMaxPixels (4 MP: 2048x2048).
	MaxPixels int
	// MaxBytes bounds the encoded input; larger input is refused before
	// parsing. Default DefaultMaxBytes (8 MiB).
	MaxBytes int
}

func (l Limits) maxPixels() int64 {
	if l.MaxPixels <= 0 {
		return DefaultMaxPixels
	}
	return int64(l.MaxPixels)
}

func (l Limits) maxBytes() int {
	if l.MaxBytes <= 0 {
		return DefaultMaxBytes
	}
	return l.MaxBytes
}

// Info describes a source image as its header declares it.
type Info struct {
	Format        string // "jpeg", "png", "webp" or "gif"
	Width, Height int
}

// Sentinel errors. Every error from this package matches exactly one of them
// with errors.Is; their texts, and the texts wrapped around them, carry no
// input bytes and are safe for logs.
var (
	// ErrNotImage: the bytes are not an image at all (empty, HTML, JSON...).
	ErrNotImage = errors.New("resize: not an image")
	// ErrUnsupported: a recognised image format or feature that is not
	// accepted (BMP, TIFF, HEIC/AVIF, SVG, animated WebP, arithmetic JPEG...),
	// or an output Format that does not exist.
	ErrUnsupported = errors.New("resize: unsupported image format")
	// ErrTooManyPixels: the header declares more than Limits.MaxPixels,
	// or more than the decode's memory budget allows for its format.
	ErrTooManyPixels = errors.New("resize: image has too many pixels")
	// ErrTooLarge: the input is longer than Limits.MaxBytes.
	ErrTooLarge = errors.New("resize: image too large")
	// ErrCorrupt: the bytes claim to be an accepted format but do not decode
	// (truncated, garbled, zero-sized).
	ErrCorrupt = errors.New("resize: corrupt image")
)

// Spec is what Render produces.
type Spec struct {
	// Size is the edge of the square output in pixels; 0 means the source's
	// short edge. Negative sizes are treated as 0.
	Size int
	// Format is the output encoding; the zero Format means JPEG.
	Format Format
	// Quality is the JPEG quality 1..100; 0 means DefaultQuality. PNG ignores it.
	Quality int
}

// Render decodes src (within lim), centre-crops and resizes it to a
// Spec.Size square and encodes it as Spec.Format. The output square is held
// to lim.MaxPixels too (ErrTooManyPixels), so a wild Size cannot allocate
// more than a source could. The returned slice is newly
// allocated and owned by the caller; src is only read, never retained.
func Render(src []byte, spec Spec, lim Limits) ([]byte, error) {
	f := spec.Format
	if f == 0 {
		f = JPEG
	}
	if f.ContentType() == "" {
		return nil, fmt.Errorf("%w: output %v", ErrUnsupported, f)
	}
	if int64(spec.Size)*int64(spec.Size) > lim.maxPixels() {
		return nil, fmt.Errorf("%w: output %dx%d > %d", ErrTooManyPixels, spec.Size, spec.Size, lim.maxPixels())
	}
	img, err := decodeForSquare(src, lim, spec.Size)
	if err != nil {
		return nil, err
	}
	sq, release := square(img, spec.Size, true)
	defer release()
	return Encode(sq, f, spec.Quality)
}
