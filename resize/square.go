package resize

import (
	"image"

	"github.com/disintegration/imaging"
)

// Square centre-crops img to a square on its short edge and resizes that to
// size x size pixels; size <= 0 means the short edge (crop only). An empty
// img yields an empty image.
//
// *image.YCbCr (JPEG, WebP), *image.Gray, *image.RGBA and *image.NRGBA (PNG)
// take a fast planar path: an exact-integer box average for whole-factor
// reductions, then Lanczos-3, with no conversion to another pixel format
// (YCbCr stays YCbCr, so a JPEG goes back out without a colour conversion).
// Other images (GIF palettes, CMYK, 16-bit) go through imaging.Fill with
// Lanczos. The result may share pixel memory with img when no resize is
// needed; it never aliases it otherwise.
func Square(img image.Image, size int) image.Image {
	out, _ := square(img, size, false)
	return out
}

// square is Square; with pooled set, a fast-path result may be built on a
// pooled buffer, and release (never nil) must be called once the result is
// dead.
func square(img image.Image, size int, pooled bool) (image.Image, func()) {
	noop := func() {}
	b := img.Bounds()
	side := min(b.Dx(), b.Dy())
	if side <= 0 {
		return image.NewNRGBA(image.Rectangle{}), noop
	}
	if size <= 0 {
		size = side
	}
	crop := image.Rect(0, 0, side, side).Add(b.Min).Add(image.Pt((b.Dx()-side)/2, (b.Dy()-side)/2))
	if size == side {
		if s, ok := img.(interface {
			SubImage(image.Rectangle) image.Image
		}); ok {
			return s.SubImage(crop), noop
		}
	}
	// The fast paths index planes from the crop origin; negative
	// coordinates (legal but never produced by a decoder) take the
	// general path rather than complicate the arithmetic.
	if crop.Min.X >= 0 && crop.Min.Y >= 0 {
		switch m := img.(type) {
		case *image.YCbCr:
			if out, release, ok := squareYCbCr(m, crop, size, pooled); ok {
				return out, release
			}
		case *image.Gray:
			out := image.NewGray(image.Rect(0, 0, size, size))
			src := plane{pix: m.Pix[m.PixOffset(crop.Min.X, crop.Min.Y):], stride: m.Stride, w: side, h: side, c: 1}
			resample(plane{pix: out.Pix, stride: out.Stride, w: size, h: size, c: 1}, src)
			return out, noop
		case *image.RGBA:
			out := image.NewRGBA(image.Rect(0, 0, size, size))
			src := plane{pix: m.Pix[m.PixOffset(crop.Min.X, crop.Min.Y):], stride: m.Stride, w: side, h: side, c: 4}
			resample(plane{pix: out.Pix, stride: out.Stride, w: size, h: size, c: 4}, src)
			clampToAlpha(out.Pix)
			return out, noop
		case *image.NRGBA:
			return squareNRGBA(m, crop, size), noop
		}
	}
	return imaging.Fill(img, size, size, imaging.Center, imaging.Lanczos), noop
}

// squareNRGBA resamples premultiplied samples, as imaging does, so that
// the colour of fully transparent pixels (often black) does not bleed into
// visible edges.
func squareNRGBA(m *image.NRGBA, crop image.Rectangle, size int) image.Image {
	side := crop.Dx()
	src := plane{pix: m.Pix[m.PixOffset(crop.Min.X, crop.Min.Y):], stride: m.Stride, w: side, h: side, c: 4}
	sub := m.SubImage(crop).(*image.NRGBA)
	if sub.Opaque() {
		// Non-premultiplied equals premultiplied when alpha is 255.
		out := image.NewNRGBA(image.Rect(0, 0, size, size))
		resample(plane{pix: out.Pix, stride: out.Stride, w: size, h: size, c: 4}, src)
		return out
	}
	buf := getBuf(side * side * 4)
	defer putBuf(buf)
	pm := plane{pix: *buf, stride: side * 4, w: side, h: side, c: 4}
	for y := range side {
		s := src.pix[y*src.stride : y*src.stride+side*4]
		d := pm.pix[y*pm.stride : y*pm.stride+side*4]
		for i := 0; i < len(s); i += 4 {
			p := s[i : i+4 : i+4]
			q := d[i : i+4 : i+4]
			a := uint32(p[3])
			q[0] = uint8((uint32(p[0])*a + 127) / 255)
			q[1] = uint8((uint32(p[1])*a + 127) / 255)
			q[2] = uint8((uint32(p[2])*a + 127) / 255)
			q[3] = p[3]
		}
	}
	out := image.NewRGBA(image.Rect(0, 0, size, size))
	resample(plane{pix: out.Pix, stride: out.Stride, w: size, h: size, c: 4}, pm)
	clampToAlpha(out.Pix)
	return out
}

// clampToAlpha keeps resampled premultiplied RGBA valid (c <= a). Lanczos
// overshoots each channel on its own, colour more than alpha at a sharp
// opaque/transparent edge, and both consumers of c > a wrap around:
// draw.Over onto white in forJPEG and image/png's un-premultiply turn a
// white edge black. The pass is over the output only; with alpha 255
// everywhere it changes nothing.
func clampToAlpha(pix []uint8) {
	for i := 0; i+3 < len(pix); i += 4 {
		q := pix[i : i+4 : i+4]
		q[0], q[1], q[2] = min(q[0], q[3]), min(q[1], q[3]), min(q[2], q[3])
	}
}

// chromaStep is the luma pixels per chroma sample for each ratio.
func chromaStep(r image.YCbCrSubsampleRatio) (sx, sy int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio444:
		return 1, 1, true
	case image.YCbCrSubsampleRatio422:
		return 2, 1, true
	case image.YCbCrSubsampleRatio420:
		return 2, 2, true
	case image.YCbCrSubsampleRatio440:
		return 1, 2, true
	case image.YCbCrSubsampleRatio411:
		return 4, 1, true
	case image.YCbCrSubsampleRatio410:
		return 4, 2, true
	}
	return 0, 0, false
}

// squareYCbCr resizes the three planes separately and produces 4:2:0,
// which is what image/jpeg writes anyway, or 4:4:4 at odd sizes: there
// (size+1)/2 chroma samples would cover size+1 luma pixels, and resampling
// the chroma window onto them would draw the chroma up to a pixel right of
// and below the luma. The chroma window is the chroma samples touching the
// luma crop; for crops not aligned to the subsampling grid that is off by
// under one chroma sample, which is invisible at avatar sizes.
func squareYCbCr(m *image.YCbCr, crop image.Rectangle, size int, pooled bool) (image.Image, func(), bool) {
	sx, sy, ok := chromaStep(m.SubsampleRatio)
	if !ok {
		return nil, nil, false
	}
	side := crop.Dx()
	cs, ratio := size/2, image.YCbCrSubsampleRatio420
	if size%2 == 1 {
		cs, ratio = size, image.YCbCrSubsampleRatio444
	}
	n := size*size + 2*cs*cs
	var buf *[]byte
	var pix []byte
	release := func() {}
	if pooled {
		buf = getBuf(n)
		pix = *buf
		release = func() { putBuf(buf) }
	} else {
		pix = make([]byte, n)
	}
	out := &image.YCbCr{
		Y:              pix[: size*size : size*size],
		Cb:             pix[size*size : size*size+cs*cs : size*size+cs*cs],
		Cr:             pix[size*size+cs*cs:],
		YStride:        size,
		CStride:        cs,
		SubsampleRatio: ratio,
		Rect:           image.Rect(0, 0, size, size),
	}
	resample(plane{pix: out.Y, stride: size, w: size, h: size, c: 1},
		plane{pix: m.Y[m.YOffset(crop.Min.X, crop.Min.Y):], stride: m.YStride, w: side, h: side, c: 1})
	cw := (crop.Max.X-1)/sx - crop.Min.X/sx + 1
	ch := (crop.Max.Y-1)/sy - crop.Min.Y/sy + 1
	co := m.COffset(crop.Min.X, crop.Min.Y)
	dc := plane{w: cs, h: cs, c: 1, stride: cs}
	dc.pix = out.Cb
	resample(dc, plane{pix: m.Cb[co:], stride: m.CStride, w: cw, h: ch, c: 1})
	dc.pix = out.Cr
	resample(dc, plane{pix: m.Cr[co:], stride: m.CStride, w: cw, h: ch, c: 1})
	return out, release, true
}
