package jpegscale

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// synth draws a deterministic, photo-like picture (gradients, a hard edge,
// fine stripes and noise) with integer arithmetic only, so the encoded
// bytes are the same on every platform.
func synth(w, h int, seed uint64) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(seed, seed*7+1))
	for y := range h {
		for x := range w {
			r := 40 + 170*x/max(w, 1)
			g := 60 + 150*y/max(h, 1)
			b := 200 - 120*(x+y)/max(w+h, 1)
			if x > w/2 && y < h/3 { // striped patch: detail that aliases
				s := 30
				if (x/2)%2 == 0 {
					s = 220
				}
				r, g, b = s, s, s
			}
			n := rng.IntN(13) - 6
			i := y*m.Stride + x*4
			m.Pix[i+0] = clamp(r + n)
			m.Pix[i+1] = clamp(g + n)
			m.Pix[i+2] = clamp(b + n)
			m.Pix[i+3] = 255
		}
	}
	return m
}

func clamp(v int) uint8 { return uint8(min(max(v, 0), 255)) }

func encode(tb testing.TB, img image.Image, q int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func gray(rgba *image.RGBA) *image.Gray {
	g := image.NewGray(rgba.Rect)
	for i := range g.Pix {
		g.Pix[i] = rgba.Pix[4*i+1]
	}
	return g
}

type sample struct {
	name string
	data []byte
}

// samples are the JPEGs every test runs over: the image/jpeg test images
// copied into testdata (4:4:4, 4:4:0, 4:2:2, 4:2:0, 4:1:1, 4:1:0, gray,
// RGB, CMYK, YCbCrK, restart intervals, progressive, separate DC scans)
// and images from Go's encoder at sizes that are not whole blocks.
func samples(tb testing.TB) []sample {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.jpeg"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no testdata JPEGs: %v", err)
	}
	var out []sample
	for _, f := range files {
		if strings.Contains(f, "truncated") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, sample{filepath.Base(f), b})
	}
	for _, sz := range []image.Point{{1, 1}, {7, 5}, {17, 13}, {64, 48}, {161, 99}, {640, 640}} {
		img := synth(sz.X, sz.Y, uint64(sz.X))
		out = append(out,
			sample{fmt.Sprintf("go-420-%dx%d", sz.X, sz.Y), encode(tb, img, 80)},
			sample{fmt.Sprintf("go-gray-%dx%d", sz.X, sz.Y), encode(tb, gray(img), 75)},
		)
	}
	out = append(out, sample{"go-420-q100", encode(tb, synth(99, 77, 3), 100)})
	return out
}

func TestDenom1MatchesStdlib(t *testing.T) {
	for _, s := range samples(t) {
		t.Run(s.name, func(t *testing.T) {
			want, err := jpeg.Decode(bytes.NewReader(s.data))
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(bytes.NewReader(s.data), 1)
			if err != nil {
				t.Fatal(err)
			}
			// DeepEqual compares the whole pixel slices, the block padding
			// beyond the visible rectangle included.
			if !reflect.DeepEqual(got, want) {
				t.Errorf("denom 1 differs from image/jpeg: got %T %v, want %T %v", got, got.Bounds(), want, want.Bounds())
			}
		})
	}
}

func TestDecodeErrorsMatchStdlib(t *testing.T) {
	trunc, err := os.ReadFile(filepath.Join("testdata", "video-001.progressive.truncated.jpeg"))
	if err != nil {
		t.Fatal(err)
	}
	ok := encode(t, synth(32, 32, 1), 80)
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not jpeg", []byte("<html></html>")},
		{"soi only", []byte("\xff\xd8")},
		{"truncated header", ok[:40]},
		{"truncated scan", ok[:len(ok)*2/3]},
		{"truncated progressive", trunc},
		{"arithmetic coding", []byte("\xff\xd8\xff\xc9\x00\x0b\x08\x00\x08\x00\x08\x01\x01\x11\x00")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, want := jpeg.Decode(bytes.NewReader(tc.data))
			for _, denom := range []int{1, 2, 4, 8} {
				_, err := Decode(bytes.NewReader(tc.data), denom)
				if fmt.Sprint(err) != fmt.Sprint(want) {
					t.Errorf("denom %d: err = %v, want %v", denom, err, want)
				}
				var fe FormatError
				var ue UnsupportedError
				if errors.As(want, &fe) != errors.As(err, &fe) || errors.As(want, &ue) != errors.As(err, &ue) {
					t.Errorf("denom %d: error type %T, want %T", denom, err, want)
				}
			}
		})
	}
}

func TestDecodeBadDenom(t *testing.T) {
	data := encode(t, synth(16, 16, 1), 80)
	for _, denom := range []int{-1, 0, 3, 5, 16} {
		if _, err := Decode(bytes.NewReader(data), denom); !errors.Is(err, ErrDenom) {
			t.Errorf("denom %d: err = %v, want ErrDenom", denom, err)
		}
	}
}

// plane is one channel of an image: sample (x, y) is pix[y*stride+x*step],
// for x < w and y < h (the visible part).
type plane struct {
	name      string
	pix       []byte
	stride, w int
	h, step   int
}

// decodePlanes decodes data at 1/denom and returns the decoder's sample
// planes before any colour conversion (RGB and CMYK outputs interleave
// planes of different resolutions, which would blur the comparison).
func decodePlanes(t *testing.T, data []byte, denom, lowpass int) []plane {
	t.Helper()
	d := &decoder{denom: denom, bs: 8 / denom, lowpass: lowpass}
	if _, err := d.decode(bytes.NewReader(data), false); err != nil {
		t.Fatal(err)
	}
	if m := d.img1; m != nil {
		return []plane{{"gray", m.Pix, m.Stride, m.Rect.Dx(), m.Rect.Dy(), 1}}
	}
	m := d.img3
	r := m.Rect
	cw, ch := r.Dx(), r.Dy()
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		cw = (cw + 1) / 2
	case image.YCbCrSubsampleRatio420:
		cw, ch = (cw+1)/2, (ch+1)/2
	case image.YCbCrSubsampleRatio440:
		ch = (ch + 1) / 2
	case image.YCbCrSubsampleRatio411:
		cw = (cw + 3) / 4
	case image.YCbCrSubsampleRatio410:
		cw, ch = (cw+3)/4, (ch+1)/2
	}
	ps := []plane{
		{"Y", m.Y, m.YStride, r.Dx(), r.Dy(), 1},
		{"Cb", m.Cb, m.CStride, cw, ch, 1},
		{"Cr", m.Cr, m.CStride, cw, ch, 1},
	}
	if d.blackPix != nil {
		// The fourth component has the first one's sampling factors.
		ps = append(ps, plane{"K", d.blackPix, d.blackStride, r.Dx(), r.Dy(), 1})
	}
	return ps
}

// TestScaledMatchesBoxAverage checks the scaled IDCT against its
// definition: decode at full size with the frequencies at and above 8/denom
// dropped, then average each denom x denom cell.
// Only whole cells inside the visible image are compared. The reference
// averages samples already clamped to 0..255 while the scaled IDCT clamps
// the average, so a cell with a saturated sample is only held to the
// one-sided bound that clamping implies.
func TestScaledMatchesBoxAverage(t *testing.T) {
	for _, s := range samples(t) {
		full, err := jpeg.Decode(bytes.NewReader(s.data))
		if err != nil {
			t.Fatal(err)
		}
		for _, denom := range []int{2, 4, 8} {
			t.Run(fmt.Sprintf("%s/1:%d", s.name, denom), func(t *testing.T) {
				got, err := Decode(bytes.NewReader(s.data), denom)
				if err != nil {
					t.Fatal(err)
				}
				fb := full.Bounds()
				want := image.Rect(0, 0, (fb.Dx()+denom-1)/denom, (fb.Dy()+denom-1)/denom)
				if got.Bounds() != want {
					t.Fatalf("bounds %v, want %v", got.Bounds(), want)
				}
				if reflect.TypeOf(got) != reflect.TypeOf(full) {
					t.Fatalf("type %T, want %T", got, full)
				}
				if a, b := subsampleOf(got), subsampleOf(full); a != b {
					t.Fatalf("subsampling %v, want %v", a, b)
				}
				fps, gps := decodePlanes(t, s.data, 1, 8/denom), decodePlanes(t, s.data, denom, 0)
				for i, fp := range fps {
					gp := gps[i]
					maxDiff, sum, n := 0, 0, 0
					for y := 0; y < fp.h/denom; y++ {
						for x := 0; x < fp.w/denom; x++ {
							acc := 0
							lo, hi := false, false
							for dy := range denom {
								for dx := range denom {
									v := fp.pix[(y*denom+dy)*fp.stride+(x*denom+dx)*fp.step]
									acc += int(v)
									lo, hi = lo || v == 0, hi || v == 255
								}
							}
							ref := (acc + denom*denom/2) / (denom * denom)
							d := int(gp.pix[y*gp.stride+x*gp.step]) - ref
							switch {
							case lo && hi:
								continue
							case lo && d < 0: // true mean below the clamped one
								d = 0
							case hi && d > 0:
								d = 0
							}
							d = max(d, -d)
							maxDiff = max(maxDiff, d)
							sum += d
							n++
						}
					}
					if n == 0 {
						continue
					}
					mean := float64(sum) / float64(n)
					if maxDiff > 3 || mean >= 1 {
						t.Errorf("plane %s: max abs diff %d, mean %.3f over %d samples; want <= 3, < 1", fp.name, maxDiff, mean, n)
					}
				}
			})
		}
	}
}

func subsampleOf(img image.Image) image.YCbCrSubsampleRatio {
	if m, ok := img.(*image.YCbCr); ok {
		return m.SubsampleRatio
	}
	return -1
}

// The scaled decode of a flat image is exactly flat: the DC path and the
// matrices are normalised right.
func TestScaledFlat(t *testing.T) {
	for _, v := range []uint8{0, 1, 77, 128, 254, 255} {
		img := image.NewGray(image.Rect(0, 0, 24, 16))
		for i := range img.Pix {
			img.Pix[i] = v
		}
		data := encode(t, img, 100)
		for _, denom := range []int{2, 4, 8} {
			got, err := Decode(bytes.NewReader(data), denom)
			if err != nil {
				t.Fatal(err)
			}
			g := got.(*image.Gray)
			for y := range g.Rect.Dy() {
				for x := range g.Rect.Dx() {
					if p := g.GrayAt(x, y).Y; p != v {
						t.Fatalf("value %d, denom %d: pixel (%d,%d) = %d", v, denom, x, y, p)
					}
				}
			}
		}
	}
}

// The scaled IDCTs hard-code which frequencies they drop and the mirror
// symmetry between output positions.
func TestScaleMatrixZeros(t *testing.T) {
	for _, tc := range []struct {
		n     int
		zeros []int
	}{
		{4, []int{4, 5, 6, 7}},
		{2, []int{2, 3, 4, 5, 6, 7}},
		{1, []int{1, 2, 3, 4, 5, 6, 7}},
	} {
		m := &scaleMatrices[tc.n].m
		for u := range 8 {
			zero := slices.Contains(tc.zeros, u)
			for x := range tc.n {
				if (m[x][u] == 0) != zero {
					t.Errorf("n=%d: m[%d][%d] = %d, want zero: %v", tc.n, x, u, m[x][u], zero)
				}
				sign := int64(1 - 2*(u%2))
				if m[tc.n-1-x][u] != sign*m[x][u] {
					t.Errorf("n=%d: m[%d][%d] = %d is not the mirror of m[%d][%d] = %d", tc.n, tc.n-1-x, u, m[tc.n-1-x][u], x, u, m[x][u])
				}
			}
		}
	}
}
