package resize

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

func TestShrinkDenom(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    *codec
		w, h int
		size int
		want int
	}{
		{"640 to 128", codecJPEG, 640, 640, 128, 4},
		{"640 to 96", codecJPEG, 640, 640, 96, 4},
		{"640 to 200", codecJPEG, 640, 640, 200, 2},
		{"640 to 64", codecJPEG, 640, 640, 64, 8},
		{"640 to 80: exact 1/8", codecJPEG, 640, 640, 80, 8},
		{"640 to 81", codecJPEG, 640, 640, 81, 4},
		{"640x480 to 128: short edge rules", codecJPEG, 640, 480, 128, 2},
		{"641 to 128", codecJPEG, 641, 641, 128, 4},
		{"639 to 160: floor, not ceil", codecJPEG, 639, 639, 160, 2},
		{"640 to 321: no shrink", codecJPEG, 640, 640, 321, 1},
		{"upscale", codecJPEG, 96, 96, 1024, 1},
		{"size 0 keeps full size", codecJPEG, 640, 640, 0, 1},
		{"png never", codecPNG, 640, 640, 128, 1},
		{"webp never", codecWebP, 640, 640, 64, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := shrinkDenom(tc.c, Info{Width: tc.w, Height: tc.h}, tc.size)
			if got != tc.want {
				t.Errorf("shrinkDenom = %d, want %d", got, tc.want)
			}
		})
	}
}

// decodeForSquare hands square an image whose short edge still covers the
// output, cut to whole cells of the scaled decode.
func TestDecodeForSquareBounds(t *testing.T) {
	for _, tc := range []struct {
		w, h, size int
		want       image.Rectangle
	}{
		{640, 640, 128, image.Rect(0, 0, 160, 160)},
		{641, 641, 128, image.Rect(0, 0, 160, 160)},
		{640, 480, 128, image.Rect(0, 0, 320, 240)},
		{647, 333, 41, image.Rect(0, 0, 80, 41)},
		{100, 100, 100, image.Rect(0, 0, 100, 100)},
	} {
		img, err := decodeForSquare(jpegBytes(t, photo(tc.w, tc.h, 2), 80), Limits{}, tc.size)
		if err != nil {
			t.Fatal(err)
		}
		if img.Bounds() != tc.want {
			t.Errorf("%dx%d for %d: bounds %v, want %v", tc.w, tc.h, tc.size, img.Bounds(), tc.want)
		}
	}
}

// renderFullDecode is Render without shrink-on-load, decoding with
// image/jpeg: the previous path, kept here as the baseline the scaled
// decode is measured against (Decode itself now goes through jpegscale).
func renderFullDecode(tb testing.TB, src []byte, spec Spec) []byte {
	tb.Helper()
	img, err := jpeg.Decode(bytes.NewReader(src))
	if err != nil {
		tb.Fatal(err)
	}
	out, err := Encode(Square(img, spec.Size), JPEG, spec.Quality)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// The shrink-on-load Render against imaging's Lanczos fill from a full
// decode (both encoded at q95, as a client sees them), next to the
// full-decode path. The scaled decode low-passes in the DCT domain and
// Lanczos does the rest, so it wins clearly where the full path's box
// stage aliases (640->200, 640x480->128) and gives up at most ~1.7 dB of
// RGB PSNR (chroma) where a whole-factor box was already close (640->128).
func TestRenderScaledQuality(t *testing.T) {
	for _, tc := range []struct {
		w, h, size int
	}{
		{640, 640, 128}, {640, 640, 96}, {640, 640, 200}, {640, 640, 64},
		{640, 480, 128}, {641, 641, 128}, {500, 700, 150},
	} {
		src := jpegBytes(t, photo(tc.w, tc.h, 11), 85)
		full, err := Decode(src, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		refBytes, err := Encode(referenceSquare(full, tc.size), JPEG, 95)
		if err != nil {
			t.Fatal(err)
		}
		ref := decodeAs(t, refBytes, JPEG)
		spec := Spec{Size: tc.size, Quality: 95}
		out, err := Render(src, spec, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got := decodeAs(t, out, JPEG)
		old := decodeAs(t, renderFullDecode(t, src, spec), JPEG)
		p, pl := psnr(t, got, ref), psnrLuma(t, got, ref)
		op, opl := psnr(t, old, ref), psnrLuma(t, old, ref)
		t.Logf("%dx%d -> %d (1/%d decode): PSNR %.2f dB, luma %.2f dB; full decode %.2f dB, luma %.2f dB",
			tc.w, tc.h, tc.size, shrinkDenom(codecJPEG, Info{Width: tc.w, Height: tc.h}, tc.size), p, pl, op, opl)
		if p < 32 || pl < 34 || p < op-2 || pl < opl-2.5 {
			t.Errorf("%dx%d -> %d: PSNR %.2f dB (luma %.2f dB), want >= 32 (34) and within 2 (2.5) dB of the full decode's %.2f (%.2f)",
				tc.w, tc.h, tc.size, p, pl, op, opl)
		}
	}
}

func BenchmarkRender640to128Stdlib(b *testing.B) {
	src := benchSrc()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	defer testkit.CPUPerOp(b)()
	for b.Loop() {
		renderFullDecode(b, src, Spec{Size: 128})
	}
}
