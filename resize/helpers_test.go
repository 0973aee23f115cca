package resize

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"testing"
)

// photo draws a deterministic photo-like picture: smooth lighting
// gradients, soft-edged blobs, a few hard edges and fine stripes (the
// detail a bad filter aliases), plus sensor-like noise. No downloaded
// files: the same seed always gives the same pixels.
func photo(w, h int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	type blob struct{ cx, cy, r, cr, cg, cb float64 }
	blobs := make([]blob, 7)
	for i := range blobs {
		blobs[i] = blob{
			cx: rng.Float64() * float64(w), cy: rng.Float64() * float64(h),
			r:  (0.08 + 0.2*rng.Float64()) * float64(min(w, h)),
			cr: rng.Float64() * 255, cg: rng.Float64() * 255, cb: rng.Float64() * 255,
		}
	}
	fw, fh := float64(w), float64(h)
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/fw, float64(y)/fh
			// Lighting: a diagonal gradient with a slow wave, like a sky or wall.
			r := 70 + 120*fx + 25*math.Sin(fy*5.1)
			g := 90 + 80*fy + 20*math.Sin((fx+fy)*7.3)
			b := 150 - 60*fx + 40*fy
			for _, bl := range blobs {
				d := math.Hypot(float64(x)-bl.cx, float64(y)-bl.cy)
				// Soft edge over ~3 px: a face or a ball out of focus.
				a := math.Min(1, math.Max(0, (bl.r-d)/3))
				r = r*(1-a) + bl.cr*a
				g = g*(1-a) + bl.cg*a
				b = b*(1-a) + bl.cb*a
			}
			// Hard-edged bright rectangle with fine stripes (fabric, text).
			if fx > 0.55 && fx < 0.85 && fy > 0.1 && fy < 0.3 {
				s := 200.0
				if (x/3)%2 == 0 {
					s = 40
				}
				r, g, b = s, s, s*0.9
			}
			n := rng.NormFloat64() * 6
			img.Pix[y*img.Stride+x*4+0] = clamp8(r + n)
			img.Pix[y*img.Stride+x*4+1] = clamp8(g + n)
			img.Pix[y*img.Stride+x*4+2] = clamp8(b + n)
			img.Pix[y*img.Stride+x*4+3] = 255
		}
	}
	return img
}

func clamp8(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}

// jpegBytes encodes img as a JPEG the way a WhatsApp client might (4:2:0).
func jpegBytes(tb testing.TB, img image.Image, quality int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func pngBytes(tb testing.TB, img image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// psnr compares two images of the same size over R, G and B.
func psnr(tb testing.TB, a, b image.Image) float64 {
	tb.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		tb.Fatalf("psnr: sizes differ: %v vs %v", a.Bounds().Size(), b.Bounds().Size())
	}
	ab, bb := a.Bounds(), b.Bounds()
	var sum float64
	var n int
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			c1 := color.NRGBAModel.Convert(a.At(ab.Min.X+x, ab.Min.Y+y)).(color.NRGBA)
			c2 := color.NRGBAModel.Convert(b.At(bb.Min.X+x, bb.Min.Y+y)).(color.NRGBA)
			for _, d := range [3]float64{
				float64(c1.R) - float64(c2.R),
				float64(c1.G) - float64(c2.G),
				float64(c1.B) - float64(c2.B),
			} {
				sum += d * d
				n++
			}
		}
	}
	if sum == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(sum/float64(n)))
}

// psnrLuma compares the BT.601 luma of two same-sized images: the channel
// that carries the detail (image/jpeg stores chroma at half resolution anyway).
func psnrLuma(tb testing.TB, a, b image.Image) float64 {
	tb.Helper()
	if a.Bounds().Size() != b.Bounds().Size() {
		tb.Fatalf("psnr: sizes differ: %v vs %v", a.Bounds().Size(), b.Bounds().Size())
	}
	ab, bb := a.Bounds(), b.Bounds()
	var sum float64
	for y := 0; y < ab.Dy(); y++ {
		for x := 0; x < ab.Dx(); x++ {
			d := luma(a.At(ab.Min.X+x, ab.Min.Y+y)) - luma(b.At(bb.Min.X+x, bb.Min.Y+y))
			sum += d * d
		}
	}
	if sum == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(sum/float64(ab.Dx()*ab.Dy())))
}

func luma(c color.Color) float64 {
	r, g, b, _ := c.RGBA()
	return (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)) / 257
}
