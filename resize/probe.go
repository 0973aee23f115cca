package resize

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/gif"
	"image/jpeg"
	"image/png"

	"golang.org/x/image/webp"

	"github.com/avatarproxy/avatarproxy/resize/internal/jpegscale"
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
		// jpegscale at scale 1 is image/jpeg plus the scan limits, which
		// bound the CPU a few KB of progressive scans can take.
		func(r *bytes.Reader) (image.Image, error) { return jpegscale.Decode(r, 1) }}
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
// Formats that decode to more than 4 bytes a pixel (progressive or CMYK
// JPEG, 16-bit or interlaced PNG) are held to the same memory, MaxPixels*4
// bytes, so fewer of their pixels pass. src is only read.
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
	max := lim.maxPixels()
	if int64(info.Width)*int64(info.Height) > max {
		return nil, Info{}, fmt.Errorf("%w: %s %dx%d > %d", ErrTooManyPixels, c.name, info.Width, info.Height, max)
	}
	need, err := decodeMemory(c, src, cfg)
	if err != nil {
		return nil, Info{}, classify(c, err)
	}
	if need > 4*max {
		return nil, Info{}, fmt.Errorf("%w: %s %dx%d takes %d MiB to decode > %d MiB",
			ErrTooManyPixels, c.name, info.Width, info.Height, need>>20, 4*max>>20)
	}
	return c, info, nil
}

// decodeMemory is about what decoding src allocates, from its header:
// probe holds it to 4 bytes per pixel of MaxPixels, the memory of an 8-bit
// RGBA image at the cap, so that formats which take more per pixel get
// proportionally fewer. A progressive JPEG keeps 4 bytes of coefficients
// per pixel per component on top of its planes, and a 4-component one a
// CMYK copy (a progressive CMYK JPEG: 24 bytes a pixel); a 16-bit PNG
// decodes to 8, and an interlaced PNG holds a pass of up to half the image
// besides. A GIF is counted at 5: its palette index and, when its frame
// does not cover the screen, the canvas it is drawn on. Other formats
// decode to at most 4 bytes a pixel.
func decodeMemory(c *codec, src []byte, cfg image.Config) (int64, error) {
	px := int64(cfg.Width) * int64(cfg.Height)
	switch c {
	case codecJPEG:
		return jpegscale.DecodeMemory(bytes.NewReader(src))
	case codecPNG:
		bpp := int64(4)
		if cfg.ColorModel == color.RGBA64Model || cfg.ColorModel == color.NRGBA64Model {
			bpp = 8
		}
		// IHDR's interlace method, after the signature, chunk length and
		// type, width, height, depth, colour type, compression and filter.
		if len(src) > 28 && src[28] == 1 {
			bpp += bpp / 2
		}
		return px * bpp, nil
	case codecGIF:
		return px * 5, nil
	}
	return px * 4, nil
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
	return decodeProbed(src, c, info)
}

// decodeProbed decodes src, which probe has accepted as c with info.
func decodeProbed(src []byte, c *codec, info Info) (image.Image, Info, error) {
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

// shrinkDenom is the JPEG shrink-on-load factor for a square of edge size:
// the largest of 8, 4 and 2 that leaves the short edge, rounded down, at
// least size, or 1 (decode at full size) for other formats, size <= 0
// (crop only) and enlargements.
func shrinkDenom(c *codec, info Info, size int) int {
	if c != codecJPEG || size <= 0 {
		return 1
	}
	short := min(info.Width, info.Height)
	for _, d := range []int{8, 4, 2} {
		if short/d >= size {
			return d
		}
	}
	return 1
}

// decodeForSquare is Decode for a size x size square (Render): a JPEG at
// least twice as large as needed is decoded at 1/2, 1/4 or 1/8 scale in the
// DCT domain (an area average of the low-passed block, so what square
// does next sees a reduction without aliasing), which skips most of the inverse DCT and
// pixel writes of a full decode. The limits are checked before, exactly as
// for Decode. The scaled image is cut to whole cells: a partial cell at the
// right or bottom edge would average in the block's padding.
func decodeForSquare(src []byte, lim Limits, size int) (image.Image, error) {
	c, info, err := probe(src, lim)
	if err != nil {
		return nil, err
	}
	denom := shrinkDenom(c, info, size)
	if denom == 1 {
		img, _, err := decodeProbed(src, c, info)
		return img, err
	}
	img, err := jpegscale.Decode(bytes.NewReader(src), denom)
	if err != nil {
		return nil, classify(c, err)
	}
	want := image.Rect(0, 0, (info.Width+denom-1)/denom, (info.Height+denom-1)/denom)
	if b := img.Bounds(); b != want {
		return nil, fmt.Errorf("%w: %s decoded at 1/%d to %v, header says %v", ErrCorrupt, c.name, denom, b, want)
	}
	whole := image.Rect(0, 0, info.Width/denom, info.Height/denom)
	if s, ok := img.(interface {
		SubImage(image.Rectangle) image.Image
	}); ok {
		return s.SubImage(whole), nil
	}
	return img, nil
}
