package resize

import (
	"bytes"
	"errors"
	"image"
	"reflect"
	"sync"
	"testing"
)

func TestRender(t *testing.T) {
	jpg640 := jpegBytes(t, photo(640, 640, 1), 80)
	for _, tc := range []struct {
		name    string
		src     []byte
		spec    Spec
		want    int // output edge
		wantErr error
	}{
		{"jpeg 640 to 128 jpeg", jpg640, Spec{Size: 128, Format: JPEG}, 128, nil},
		{"jpeg 640 to 128 png", jpg640, Spec{Size: 128, Format: PNG}, 128, nil},
		{"zero format means jpeg", jpg640, Spec{Size: 64}, 64, nil},
		{"size 0 keeps the short edge", jpegBytes(t, photo(300, 200, 1), 80), Spec{}, 200, nil},
		{"non-square 720x640 to 96", jpegBytes(t, photo(720, 640, 1), 80), Spec{Size: 96, Quality: 50}, 96, nil},
		{"preview 96 to 1024", jpegBytes(t, photo(96, 96, 1), 80), Spec{Size: 1024}, 1024, nil},
		{"size 1", jpg640, Spec{Size: 1}, 1, nil},
		{"png source", pngBytes(t, photo(100, 80, 1)), Spec{Size: 50}, 50, nil},
		{"gif source", gifBytes(t, 40, 30), Spec{Size: 20, Format: PNG}, 20, nil},
		{"webp lossy 1x1", webpLossy, Spec{Size: 16}, 16, nil},
		{"webp alpha 1x1", webpAlpha, Spec{Size: 16}, 16, nil},
		{"1x1 jpeg", jpegBytes(t, photo(1, 1, 1), 80), Spec{Size: 1}, 1, nil},
		{"html", []byte("<html><body>Not Found</body></html>"), Spec{Size: 128}, 0, ErrNotImage},
		{"empty", []byte{}, Spec{Size: 128}, 0, ErrNotImage},
		{"truncated jpeg", jpg640[:len(jpg640)/3], Spec{Size: 128}, 0, ErrCorrupt},
		{"unknown output format", jpg640, Spec{Size: 128, Format: 3}, 0, ErrUnsupported},
		{"output over MaxPixels", jpg640, Spec{Size: 2049}, 0, ErrTooManyPixels},
		{"bomb", bombPNG(t, 30000, 30000, 4), Spec{Size: 128}, 0, ErrTooManyPixels},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Render(tc.src, tc.spec, Limits{})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			f := tc.spec.Format
			if f == 0 {
				f = JPEG
			}
			info, err := Probe(out, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if info.Format != f.String() || info.Width != tc.want || info.Height != tc.want {
				t.Errorf("output %+v, want %v %dx%d", info, f, tc.want, tc.want)
			}
			decodeAs(t, out, f)
		})
	}
}

// Renders running at once share the buffer pools; each must still get
// its own picture (run with -race).
func TestRenderConcurrent(t *testing.T) {
	srcs := [][]byte{
		jpegBytes(t, photo(640, 640, 1), 80),
		jpegBytes(t, photo(320, 200, 2), 80),
		pngBytes(t, photo(100, 100, 3)),
	}
	sizes := []int{128, 64, 200}
	var wg sync.WaitGroup
	errs := make(chan error, 3*8)
	for i := range 3 * 8 {
		wg.Go(func() {
			n := i % 3
			out, err := Render(srcs[n], Spec{Size: sizes[n]}, Limits{})
			if err != nil {
				errs <- err
				return
			}
			img, err := Decode(out, Limits{})
			if err != nil {
				errs <- err
				return
			}
			if img.Bounds() != image.Rect(0, 0, sizes[n], sizes[n]) {
				errs <- errors.New("wrong size " + img.Bounds().String())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// The fast path's rendered JPEG against imaging's Lanczos fill encoded the
// same way: what a client actually sees.
func TestRenderQualityVsImaging(t *testing.T) {
	src := jpegBytes(t, photo(640, 640, 11), 85)
	out, err := Render(src, Spec{Size: 128, Quality: 95}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(out, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	full, err := Decode(src, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	refBytes, err := Encode(referenceSquare(full, 128), JPEG, 95)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := Decode(refBytes, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p, pl := psnr(t, got, ref), psnrLuma(t, got, ref)
	t.Logf("rendered JPEG vs imaging Lanczos JPEG: PSNR %.1f dB, luma %.1f dB", p, pl)
	if p < 30 || pl < 33 {
		t.Errorf("PSNR %.1f dB (luma %.1f dB), want >= 30 dB (luma >= 33 dB)", p, pl)
	}
}

// The package doc says EXIF orientation is neither applied nor kept: a
// JPEG tagged "rotate 90 CW" renders to the same pixels as the untagged
// one, and the output carries no Exif segment.
func TestRenderIgnoresEXIFOrientation(t *testing.T) {
	plain := jpegBytes(t, photo(96, 64, 4), 90)
	// APP1 "Exif\0\0", a big-endian TIFF header, one IFD entry:
	// Orientation (0x0112), SHORT, count 1, value 6.
	exif := []byte("Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00\x00\x00\x00\x00")
	tagged := append([]byte{0xff, 0xd8, 0xff, 0xe1, 0, byte(len(exif) + 2)}, exif...)
	tagged = append(tagged, plain[2:]...)
	for _, f := range []Format{JPEG, PNG} {
		want, err := Render(plain, Spec{Size: 48, Format: f}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Render(tagged, Spec{Size: 48, Format: f}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(got, []byte("Exif")) {
			t.Errorf("%v output carries the Exif segment", f)
		}
		if !reflect.DeepEqual(decodeAs(t, got, f), decodeAs(t, want, f)) {
			t.Errorf("%v: the orientation tag changed the pixels", f)
		}
	}
}
