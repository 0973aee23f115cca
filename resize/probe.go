package resize

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"
)

// codec is one accepted source format. The decoders are called directly, not
// through image.Decode, so what is accepted does not depend on which
// packages happen to register formats in the binary.
type codec struct {
	name   string
	config func(*bytes.Reader) (image.Config, error)
	decode func(*bytes.Reader) (image.Image, error)
}

var (
	codecJPEG = &codec{"jpeg",
		func(r *bytes.Reader) (image.Config, error) { return jpeg.DecodeConfig(r) },
		func(r *bytes.Reader) (image.Image, error) { return jpeg.Decode(r) }}
	codecPNG = &codec{"png",
		func(r *bytes.Reader) (image.Config, error) { return png.DecodeConfig(r) },
		func(r *bytes.Reader) (image.Image, error) { return png.Decode(r) }}
	// gif.Decode stops after the first frame, so a many-frame GIF costs no
	// more than a still one.
	codecGIF = &codec{"gif",
		func(r *bytes.Reader) (image.Config, error) { return gif.DecodeConfig(r) },
		func(r *bytes.Reader) (image.Image, error) { return gif.Decode(r) }}
	codecWebP = &codec{"webp",
		func(r *bytes.Reader) (image.Config, error) { return webp.DecodeConfig(r) },
		func(r *bytes.Reader) (image.Image, error) { return webp.Decode(r) }}
)

// sniff names the format from magic bytes alone; the Content-Type an
// upstream claims is never consulted. It returns ErrNotImage or
// ErrUnsupported when no accepted format matches.
func sniff(b []byte) (*codec, error) {
	switch {
	case len(b) == 0:
		return nil, fmt.Errorf("%w: empty input", ErrNotImage)
	case bytes.HasPrefix(b, []byte("\xff\xd8\xff")):
		return codecJPEG, nil
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return codecPNG, nil
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return codecGIF, nil
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		// VP8X flags byte: bit 1 marks an animation, which x/image/webp
		// cannot decode; say so instead of calling it corrupt.
		if len(b) >= 21 && string(b[12:16]) == "VP8X" && b[20]&0x02 != 0 {
			return nil, fmt.Errorf("%w: animated webp", ErrUnsupported)
		}
		return codecWebP, nil
	}
	if name := otherImage(b); name != "" {
		return nil, fmt.Errorf("%w: %s", ErrUnsupported, name)
	}
	return nil, ErrNotImage
}

// otherImage recognises image formats that are refused, so that callers (and
// logs) can tell "the CDN sent a HEIC" from "the CDN sent an HTML error page".
func otherImage(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("BM")) && len(b) >= 26:
		return "bmp"
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")):
		return "tiff"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return "iso-bmff (heic/avif)"
	case bytes.HasPrefix(b, []byte("\xff\x0a")), bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")):
		return "jpeg-xl"
	case bytes.HasPrefix(b, []byte("\x00\x00\x01\x00")):
		return "ico"
	}
	head := bytes.TrimLeft(b[:min(len(b), 512)], "\xef\xbb\xbf \t\r\n")
	if bytes.HasPrefix(head, []byte("<svg")) ||
		(bytes.HasPrefix(head, []byte("<?xml")) && bytes.Contains(head, []byte("<svg"))) {
		return "svg"
	}
	return ""
}

// Probe identifies src by its magic bytes and reads only its header: it
// checks Limits.MaxBytes before parsing and Limits.MaxPixels before any
// decode, so hostile input is refused without allocating pixel memory.
// src is only read.
func Probe(src []byte, lim Limits) (Info, error) {
	_, info, err := probe(src, lim)
	return info, err
}

func probe(src []byte, lim Limits) (*codec, Info, error) {
	if max := lim.maxBytes(); len(src) > max {
		return nil, Info{}, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(src), max)
	}
	c, err := sniff(src)
	if err != nil {
		return nil, Info{}, err
	}
	cfg, err := c.config(bytes.NewReader(src))
	if err != nil {
		return nil, Info{}, classify(c, err)
	}
	info := Info{Format: c.name, Width: cfg.Width, Height: cfg.Height}
	if info.Width <= 0 || info.Height <= 0 {
		return nil, Info{}, fmt.Errorf("%w: %s declares %dx%d", ErrCorrupt, c.name, info.Width, info.Height)
	}
	// int64: two int32-sized edges must not overflow on 32-bit platforms.
	if max := lim.maxPixels(); int64(info.Width)*int64(info.Height) > max {
		return nil, Info{}, fmt.Errorf("%w: %s %dx%d > %d", ErrTooManyPixels, c.name, info.Width, info.Height, max)
	}
	return c, info, nil
}

// classify maps a decoder error onto ErrUnsupported (a feature the decoder
// lacks) or ErrCorrupt (everything else: truncation, bad checksums, garbage).
func classify(c *codec, err error) error {
	var ju jpeg.UnsupportedError
	var pu png.UnsupportedError
	if errors.As(err, &ju) || errors.As(err, &pu) {
		return fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrCorrupt, c.name, err)
}

// Decode probes src (see Probe) and only then decodes it. Truncated or
// garbled data yields ErrCorrupt. For a GIF it returns the first frame on
// the full logical screen. The image is newly allocated and owned by the
// caller; src is not retained.
func Decode(src []byte, lim Limits) (image.Image, error) {
	img, _, err := decode(src, lim)
	return img, err
}

func decode(src []byte, lim Limits) (image.Image, Info, error) {
	c, info, err := probe(src, lim)
	if err != nil {
		return nil, Info{}, err
	}
	img, err := c.decode(bytes.NewReader(src))
	if err != nil {
		return nil, Info{}, classify(c, err)
	}
	want := image.Rect(0, 0, info.Width, info.Height)
	b := img.Bounds()
	if b == want {
		return img, info, nil
	}
	// A GIF frame may cover only part of the screen; place it as a viewer
	// would, on a transparent canvas. Any other mismatch between header and
	// pixels is a broken file (the decoders are not expected to produce one).
	if c == codecGIF && !b.Empty() && b.In(want) {
		canvas := image.NewNRGBA(want)
		draw.Draw(canvas, b, img, b.Min, draw.Src)
		return canvas, info, nil
	}
	return nil, Info{}, fmt.Errorf("%w: %s decoded to %v, header says %v", ErrCorrupt, c.name, b, want)
}
