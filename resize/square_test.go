package resize

import (
	"fmt"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"math"
	"slices"
	"testing"

	"github.com/disintegration/imaging"
)

// referenceSquare is the quality reference: imaging's Lanczos centre fill.
func referenceSquare(img image.Image, size int) image.Image {
	return imaging.Fill(img, size, size, imaging.Center, imaging.Lanczos)
}

// TestFastPathQuality compares the planar fast path (box pre-shrink and
// fixed-point Lanczos on YCbCr planes) with imaging's float Lanczos on the
// same decoded photo, for whole and fractional reduction factors and an
// upscale.
func TestFastPathQuality(t *testing.T) {
	for _, tc := range []struct {
		name     string
		w, h     int
		size     int
		fromJPEG bool
	}{
		{"jpeg 640 to 128 (5x, box only)", 640, 640, 128, true},
		{"jpeg 720 to 128 (5.6x)", 720, 720, 128, true},
		{"jpeg 640 to 256 (2.5x)", 640, 640, 256, true},
		{"jpeg 640x480 to 96 (crop, 5x)", 640, 480, 96, true},
		{"jpeg 640 to 500 (1.28x)", 640, 640, 500, true},
		{"jpeg 96 to 1024 (upscale)", 96, 96, 1024, true},
		{"rgba 640 to 128", 640, 640, 128, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var src image.Image = photo(tc.w, tc.h, 7)
			if tc.fromJPEG {
				var err error
				src, err = Decode(jpegBytes(t, src, 90), Limits{})
				if err != nil {
					t.Fatal(err)
				}
			}
			got := Square(src, tc.size)
			if got.Bounds().Dx() != tc.size || got.Bounds().Dy() != tc.size {
				t.Fatalf("size %v, want %dx%d", got.Bounds().Size(), tc.size, tc.size)
			}
			ref := referenceSquare(src, tc.size)
			p, pl := psnr(t, got, ref), psnrLuma(t, got, ref)
			t.Logf("PSNR vs imaging Lanczos: %.1f dB, luma %.1f dB (%T)", p, pl, got)
			// The YCbCr path keeps chroma at half resolution (4:2:0, as
			// image/jpeg would write it anyway) while the reference has
			// full-resolution chroma, so the colour bar is lower here;
			// TestRenderQualityVsImaging compares like with like.
			if pl < 33 || p < 28 {
				t.Errorf("PSNR %.1f dB, luma %.1f dB; want >= 28 dB, luma >= 33 dB", p, pl)
			}
		})
	}
}

// bands is w x h with the left quarter red, the right quarter blue and the
// middle green (or the same vertically when h > w): a centre crop of a
// non-square image must see only green.
func bands(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	long, short := max(w, h), min(w, h)
	margin := (long - short) / 2
	for y := range h {
		for x := range w {
			p := x
			if h > w {
				p = y
			}
			c := color.RGBA{0, 200, 0, 255}
			switch {
			case p < margin:
				c = color.RGBA{255, 0, 0, 255}
			case p >= long-margin:
				c = color.RGBA{0, 0, 255, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	return m
}

func toYCbCr(m image.Image, r image.YCbCrSubsampleRatio) *image.YCbCr {
	b := m.Bounds()
	out := image.NewYCbCr(b, r)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := color.YCbCrModel.Convert(m.At(x, y)).(color.YCbCr)
			out.Y[out.YOffset(x, y)] = c.Y
			ci := out.COffset(x, y)
			out.Cb[ci], out.Cr[ci] = c.Cb, c.Cr
		}
	}
	return out
}

func toNRGBA(m image.Image) *image.NRGBA {
	out := image.NewNRGBA(m.Bounds())
	draw.Draw(out, out.Rect, m, m.Bounds().Min, draw.Src)
	return out
}

func toGray(m image.Image) *image.Gray {
	out := image.NewGray(m.Bounds())
	draw.Draw(out, out.Rect, m, m.Bounds().Min, draw.Src)
	return out
}

func toPaletted(m image.Image) *image.Paletted {
	out := image.NewPaletted(m.Bounds(), palette.Plan9)
	draw.Draw(out, out.Rect, m, m.Bounds().Min, draw.Src)
	return out
}

// near reports whether c is within tol of want on R, G and B (8-bit).
func near(c color.Color, want color.RGBA, tol int) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, b uint8) bool { return abs(int(a>>8)-int(b)) <= tol }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestSquare(t *testing.T) {
	green := color.RGBA{0, 200, 0, 255}
	kinds := []struct {
		name string
		conv func(image.Image) image.Image
		want string // dynamic type of a resized result
	}{
		{"ycbcr420", func(m image.Image) image.Image { return toYCbCr(m, image.YCbCrSubsampleRatio420) }, "*image.YCbCr"},
		{"ycbcr444", func(m image.Image) image.Image { return toYCbCr(m, image.YCbCrSubsampleRatio444) }, "*image.YCbCr"},
		{"ycbcr422", func(m image.Image) image.Image { return toYCbCr(m, image.YCbCrSubsampleRatio422) }, "*image.YCbCr"},
		{"ycbcr411", func(m image.Image) image.Image { return toYCbCr(m, image.YCbCrSubsampleRatio411) }, "*image.YCbCr"},
		{"rgba", func(m image.Image) image.Image { return m }, "*image.RGBA"},
		{"nrgba", func(m image.Image) image.Image { return toNRGBA(m) }, "*image.NRGBA"},
		{"gray", func(m image.Image) image.Image { return toGray(m) }, "*image.Gray"},
		{"paletted (imaging path)", func(m image.Image) image.Image { return toPaletted(m) }, "*image.NRGBA"},
		{"ycbcr420 sub-image at odd offset", func(m image.Image) image.Image {
			y := toYCbCr(m, image.YCbCrSubsampleRatio420)
			r := y.Bounds()
			return y.SubImage(image.Rect(r.Min.X+1, r.Min.Y+1, r.Max.X-1, r.Max.Y-1))
		}, "*image.YCbCr"},
	}
	geoms := []struct {
		name       string
		w, h, size int
		wantSide   int
	}{
		{"landscape 300x200 to 64", 300, 200, 64, 64},
		{"portrait 200x300 to 100", 200, 300, 100, 100},
		{"landscape 640x480 to 128", 640, 480, 128, 128},
		{"size 0 keeps the short edge", 300, 200, 0, 200},
		{"size 1", 300, 200, 1, 1},
		{"upscale 96 to 1024", 96, 96, 1024, 1024},
		{"1x1 to 1", 1, 1, 1, 1},
		{"1x1 to 32", 1, 1, 32, 32},
		{"720 to 128", 720, 720, 128, 128},
	}
	for _, k := range kinds {
		for _, g := range geoms {
			t.Run(k.name+"/"+g.name, func(t *testing.T) {
				src := k.conv(bands(g.w, g.h))
				side := min(src.Bounds().Dx(), src.Bounds().Dy())
				want := g.wantSide
				if g.size == 0 {
					want = side
				}
				got := Square(src, g.size)
				if sz := got.Bounds().Size(); sz != image.Pt(want, want) {
					t.Fatalf("size %v, want %dx%d", sz, want, want)
				}
				if want != side {
					if typ := fmt.Sprintf("%T", got); typ != k.want {
						t.Errorf("type %s, want %s", typ, k.want)
					}
				}
				// Every pixel away from the crop edges must be the middle
				// band: a wrong crop shows red or blue.
				b := got.Bounds()
				tol := 12
				if k.name == "gray" {
					if c := color.GrayModel.Convert(got.At(b.Min.X+want/2, b.Min.Y+want/2)).(color.Gray); abs(int(c.Y)-int(color.GrayModel.Convert(green).(color.Gray).Y)) > 3 {
						t.Errorf("centre gray %d, want the middle band", c.Y)
					}
					return
				}
				for _, p := range []image.Point{{want / 2, want / 2}, {want / 4, want / 2}, {want * 3 / 4, want / 2}, {want / 2, want / 4}, {want / 2, want * 3 / 4}} {
					if c := got.At(b.Min.X+p.X, b.Min.Y+p.Y); !near(c, green, tol) {
						t.Fatalf("pixel %v = %v, want ~%v (the centre band)", p, c, green)
					}
				}
			})
		}
	}
}

// Transparent pixels (often stored as black) must not bleed into the
// visible ones: the NRGBA path resizes premultiplied samples.
func TestSquareNRGBAAlpha(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 100, 100))
	for y := range 100 {
		for x := range 100 {
			if (x/2+y/2)%2 == 0 {
				m.SetNRGBA(x, y, color.NRGBA{255, 255, 255, 255})
			} // else transparent black
		}
	}
	got := Square(m, 10)
	c := color.NRGBAModel.Convert(got.At(5, 5)).(color.NRGBA)
	if c.R < 250 || c.G < 250 || c.B < 250 {
		t.Errorf("colour %v: transparent black bled into white", c)
	}
	if c.A < 100 || c.A > 155 {
		t.Errorf("alpha %d, want about half", c.A)
	}
}

// Square must not write to its input, and a resized result must not share
// its memory.
func TestSquareLeavesInputAlone(t *testing.T) {
	src := toYCbCr(photo(64, 48, 3), image.YCbCrSubsampleRatio420)
	before := slices.Clone(src.Y)
	out := Square(src, 32).(*image.YCbCr)
	for i := range out.Y {
		out.Y[i] = 0
	}
	if !slices.Equal(before, src.Y) {
		t.Error("input changed")
	}
}

func TestSquareEmpty(t *testing.T) {
	if got := Square(image.NewRGBA(image.Rect(0, 0, 0, 10)), 64); !got.Bounds().Empty() {
		t.Errorf("bounds %v, want empty", got.Bounds())
	}
}

func TestWeightsSumToOne(t *testing.T) {
	for _, tc := range [][2]int{{640, 128}, {144, 128}, {96, 1024}, {1, 1024}, {2, 1}, {3, 2}, {160, 128}, {7, 3}} {
		ws := newWeights(tc[0], tc[1])
		for i := range tc[1] {
			var s int32
			for _, w := range ws.w[i*ws.n : i*ws.n+ws.n] {
				s += w
			}
			if s != fixOne || ws.start[i] < 0 || ws.start[i]+ws.n > tc[0] {
				t.Fatalf("%d->%d output %d: sum %d start %d n %d", tc[0], tc[1], i, s, ws.start[i], ws.n)
			}
		}
	}
}

// The SWAR row sum must match a plain one, including row tails that are
// not a multiple of 8 and the largest ky it is used for.
func TestBoxShrinkExact(t *testing.T) {
	for _, tc := range []struct{ w, h, kx, ky, c int }{
		{640, 640, 5, 5, 1}, {13, 9, 3, 3, 1}, {7, 257, 7, 257, 1}, {40, 12, 4, 3, 4}, {300, 258, 1, 258, 1},
	} {
		src := plane{pix: make([]byte, tc.w*tc.h*tc.c), stride: tc.w * tc.c, w: tc.w, h: tc.h, c: tc.c}
		for i := range src.pix {
			src.pix[i] = uint8(i*7919>>3) | 0x80*uint8(i%3/2)
		}
		dw, dh := tc.w/tc.kx, tc.h/tc.ky
		dst := plane{pix: make([]byte, dw*dh*tc.c), stride: dw * tc.c, w: dw, h: dh, c: tc.c}
		boxShrink(dst, src, tc.kx, tc.ky)
		for y := range dh {
			for x := range dw * tc.c {
				px, ch := x/tc.c, x%tc.c
				var s int
				for yy := range tc.ky {
					for xx := range tc.kx {
						s += int(src.pix[(y*tc.ky+yy)*src.stride+(px*tc.kx+xx)*tc.c+ch])
					}
				}
				n := tc.kx * tc.ky
				if want := (s + n/2) / n; abs(int(dst.pix[y*dst.stride+x])-want) > 0 {
					t.Fatalf("%+v at (%d,%d): %d, want %d", tc, x, y, dst.pix[y*dst.stride+x], want)
				}
			}
		}
	}
}

// alphaEdge is 640x640: opaque black left of x=300, an opaque white band
// to x=310, transparent beyond. Lanczos overshoots colour more than alpha
// at such an edge, which must not yield premultiplied pixels with c > a:
// flattening for JPEG and un-premultiplying for PNG both wrap on them.
func alphaEdge() *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, 640, 640))
	for y := range 640 {
		for x := range 310 {
			c := uint8(0)
			if x >= 300 {
				c = 255
			}
			m.SetNRGBA(x, y, color.NRGBA{c, c, c, 255})
		}
	}
	return m
}

func TestSquareNRGBAAlphaEdge(t *testing.T) {
	nrgba := alphaEdge()
	rgba := image.NewRGBA(nrgba.Rect)
	draw.Draw(rgba, rgba.Rect, nrgba, image.Point{}, draw.Src)
	src := pngBytes(t, nrgba)
	for _, size := range []int{97, 200} {
		for _, in := range []image.Image{nrgba, rgba} {
			sq, ok := Square(in, size).(*image.RGBA)
			if !ok {
				t.Fatalf("Square(%T, %d) is not *image.RGBA", in, size)
			}
			for i := 0; i < len(sq.Pix); i += 4 {
				if p := sq.Pix[i : i+4]; p[0] > p[3] || p[1] > p[3] || p[2] > p[3] {
					t.Fatalf("Square(%T, %d): pixel %d is %v, colour over alpha", in, size, i/4, p)
				}
			}
		}
		// Along the middle row, against imaging (which un-premultiplies in
		// float and clamps): the filters differ by up to about 45 levels
		// at the black/white step; a wrapped pixel is about 250 off.
		refImg := referenceSquare(nrgba, size)
		for _, f := range []Format{JPEG, PNG} {
			out, err := Render(src, Spec{Size: size, Format: f, Quality: 95}, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			img := decodeAs(t, out, f)
			worst, wx := 0.0, 0
			for x := range size {
				r := color.NRGBAModel.Convert(refImg.At(x, size/2)).(color.NRGBA)
				c := color.NRGBAModel.Convert(img.At(x, size/2)).(color.NRGBA)
				if f == JPEG {
					r = flatten(r)
				} else if r.A < 16 {
					continue
				}
				if d := math.Abs(luma(r) - luma(color.NRGBA{c.R, c.G, c.B, 255})); d > worst {
					worst, wx = d, x
				}
			}
			if worst > 64 {
				t.Errorf("size %d %v: luma at x=%d is %.0f levels from imaging's", size, f, wx, worst)
			}
		}
	}
}

// flatten composes c onto white, as Encode does for JPEG.
func flatten(c color.NRGBA) color.NRGBA {
	a := int(c.A)
	f := func(v uint8) uint8 { return uint8((int(v)*a + 255*(255-a) + 127) / 255) }
	return color.NRGBA{f(c.R), f(c.G), f(c.B), 255}
}

// At an odd size, (size+1)/2 chroma samples cover size+1 luma pixels: a
// 4:2:0 result drew the chroma stretched by (size+1)/size against the
// luma, up to a pixel off at the far edge. A red|blue split must come out
// with the colour edge where the luma edge is.
func TestSquareOddSizeChroma(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 640, 640))
	for i := 0; i < len(m.Pix); i += 4 {
		c := [4]uint8{220, 30, 30, 255}
		if i/4%640 >= 320 {
			c = [4]uint8{30, 30, 220, 255}
		}
		copy(m.Pix[i:], c[:])
	}
	src := jpegBytes(t, m, 95)
	at := func(size, x int) color.NRGBA {
		t.Helper()
		out, err := Render(src, Spec{Size: size, Format: PNG}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		return color.NRGBAModel.Convert(decodeAs(t, out, PNG).At(x, size/2)).(color.NRGBA)
	}
	// Size 7: the centre pixel straddles the edge, an even mix
	// (imaging: 125,30,125).
	if c := at(7, 3); abs(int(c.R)-int(c.B)) >= 60 {
		t.Errorf("size 7: centre pixel %v, want red and blue mixed", c)
	}
	// Size 9: x=5 lies right of the edge (imaging: 17,30,234).
	if c := at(9, 5); c.B < 180 || c.R > 60 {
		t.Errorf("size 9: pixel x=5 is %v, want blue", c)
	}
	// Size 8 (4:2:0, unchanged): x=4 is the first blue pixel.
	if c := at(8, 4); c.B < 180 || c.R > 60 {
		t.Errorf("size 8: pixel x=4 is %v, want blue", c)
	}
}
