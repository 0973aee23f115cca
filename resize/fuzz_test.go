package resize

import (
	"errors"
	"flag"
	"fmt"
	"image"
	"path/filepath"
	"testing"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// fuzzLimits keep each fuzz input cheap; the property under test is that
// limits are honoured, whatever they are.
var fuzzLimits = Limits{MaxPixels: 1 << 20, MaxBytes: 1 << 20}

func FuzzRender(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzRender (see TestFuzzSeeds); f.Add
	// adds the same shapes so `go test` covers them even without the files.
	for _, s := range fuzzSeeds(f) {
		f.Add(s.src, s.size, s.format)
	}
	f.Fuzz(func(t *testing.T, src []byte, size int, format uint8) {
		size %= 300 // keep outputs small; negative sizes are legal input
		spec := Spec{Size: size, Format: Format(format % 4), Quality: int(format)}
		out, err := Render(src, spec, fuzzLimits)
		if err != nil {
			for _, s := range []error{ErrNotImage, ErrUnsupported, ErrTooManyPixels, ErrTooLarge, ErrCorrupt} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error matches no sentinel: %v", err)
		}
		if spec.Format == 3 {
			t.Fatal("rendered to an unknown format")
		}
		in, err := Probe(src, fuzzLimits)
		if err != nil {
			t.Fatalf("Render succeeded on input Probe refuses: %v", err)
		}
		if int64(in.Width)*int64(in.Height) > int64(fuzzLimits.MaxPixels) {
			t.Fatalf("rendered a %dx%d source over MaxPixels", in.Width, in.Height)
		}
		want := size
		if want <= 0 {
			want = min(in.Width, in.Height)
		}
		got, err := Probe(out, Limits{})
		if err != nil {
			t.Fatalf("output does not probe: %v", err)
		}
		wantFormat := spec.Format
		if wantFormat == 0 {
			wantFormat = JPEG
		}
		if got.Format != wantFormat.String() || got.Width != want || got.Height != want {
			t.Fatalf("output %+v, want %v %dx%d", got, wantFormat, want, want)
		}
	})
}

type fuzzSeed struct {
	name   string
	src    []byte
	size   int
	format uint8
}

func fuzzSeeds(tb testing.TB) []fuzzSeed {
	// Integer-only pixels, so the seed bytes are the same on every
	// platform (photo uses math.Sin, which may differ in the last bit).
	pattern := func(w, h int) *image.NRGBA {
		m := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range m.Pix {
			m.Pix[i] = uint8(i * 37)
		}
		return m
	}
	jpg := jpegBytes(tb, pattern(8, 8), 75)
	return []fuzzSeed{
		{"jpeg-8x8", jpg, 4, uint8(JPEG)},
		{"jpeg-truncated", jpg[:len(jpg)-30], 16, uint8(JPEG)},
		{"png-6x4", pngBytes(tb, pattern(6, 4)), 0, uint8(PNG)},
		{"gif-5x5", gifBytes(tb, 5, 5), 3, uint8(JPEG)},
		{"webp-lossy-1x1", webpLossy, 2, uint8(PNG)},
		{"webp-alpha-1x1", webpAlpha, 1, uint8(JPEG)},
		{"webp-header-only", webpAlpha[:30], 8, uint8(JPEG)},
		{"png-bomb", bombPNG(tb, 30000, 30000, 1), 128, uint8(JPEG)},
		{"jpeg-many-scans", manyScansJPEG(16, 16, 1, 17), 8, uint8(JPEG)},
		{"html", []byte("<html>nope</html>"), 128, 0},
	}
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzRender seed files")

// TestFuzzSeeds keeps the committed seed corpus in step with fuzzSeeds:
// run `go test -run TestFuzzSeeds -update-seeds ./resize/` after changing it.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRender")
	for _, s := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nint(%d)\nuint8(%d)\n", s.src, s.size, s.format)
		testkit.SeedFile(t, dir, "seed-"+s.name, body, *updateSeeds)
	}
}
