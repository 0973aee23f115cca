package resize

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		f       Format
		ct, str string
	}{
		{JPEG, "image/jpeg", "jpeg"},
		{PNG, "image/png", "png"},
		{0, "", "Format(0)"},
		{9, "", "Format(9)"},
	} {
		if got := tc.f.ContentType(); got != tc.ct {
			t.Errorf("%d.ContentType() = %q, want %q", tc.f, got, tc.ct)
		}
		if got := tc.f.String(); got != tc.str {
			t.Errorf("%d.String() = %q, want %q", tc.f, got, tc.str)
		}
	}
}

// decodeAs decodes b with the decoder for f only, so the test checks the
// format actually written.
func decodeAs(t *testing.T, b []byte, f Format) image.Image {
	t.Helper()
	var img image.Image
	var err error
	switch f {
	case JPEG:
		img, err = jpeg.Decode(bytes.NewReader(b))
	case PNG:
		img, err = png.Decode(bytes.NewReader(b))
	}
	if err != nil {
		t.Fatalf("output is not a valid %v: %v", f, err)
	}
	return img
}

func TestEncode(t *testing.T) {
	transparent := image.NewNRGBA(image.Rect(0, 0, 16, 16)) // all zero: transparent black
	half := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(half.Pix); i += 4 {
		copy(half.Pix[i:], []byte{0, 0, 0, 128}) // 50% black
	}
	premulTransparent := image.NewRGBA(image.Rect(0, 0, 16, 16))
	opaqueNRGBA := toNRGBA(photo(16, 16, 2))
	for _, tc := range []struct {
		name    string
		img     image.Image
		f       Format
		quality int
		want    *color.RGBA // expected pixel at (8,8), if checked
		tol     int
	}{
		{"transparent nrgba to jpeg is white", transparent, JPEG, 0, &color.RGBA{255, 255, 255, 255}, 2},
		{"transparent rgba to jpeg is white", premulTransparent, JPEG, 90, &color.RGBA{255, 255, 255, 255}, 2},
		{"half-transparent black to jpeg is grey", half, JPEG, 90, &color.RGBA{127, 127, 127, 255}, 4},
		{"transparent paletted to jpeg is white", image.NewPaletted(image.Rect(0, 0, 16, 16), color.Palette{color.Transparent}), JPEG, 0, &color.RGBA{255, 255, 255, 255}, 2},
		{"ycbcr to jpeg", toYCbCr(photo(128, 128, 1), image.YCbCrSubsampleRatio420), JPEG, 85, nil, 0},
		{"opaque nrgba to jpeg", opaqueNRGBA, JPEG, 100, nil, 0},
		{"gray to jpeg", toGray(photo(16, 16, 1)), JPEG, 1, nil, 0},
		{"ycbcr to png", toYCbCr(photo(32, 32, 1), image.YCbCrSubsampleRatio420), PNG, 0, nil, 0},
		{"transparent to png stays transparent", transparent, PNG, 0, &color.RGBA{0, 0, 0, 0}, 0},
		{"quality over 100 is clamped", opaqueNRGBA, JPEG, 1000, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Encode(tc.img, tc.f, tc.quality)
			if err != nil {
				t.Fatal(err)
			}
			got := decodeAs(t, out, tc.f)
			if got.Bounds().Size() != tc.img.Bounds().Size() {
				t.Fatalf("size %v, want %v", got.Bounds().Size(), tc.img.Bounds().Size())
			}
			if tc.want != nil {
				c := got.At(8, 8)
				_, _, _, a := c.RGBA()
				if !near(c, *tc.want, tc.tol) || int(a>>8) != int(tc.want.A) {
					t.Errorf("pixel %v, want ~%v", c, *tc.want)
				}
			}
		})
	}
}

// Exact-colour check for the opaque NRGBA zero-copy path: the bytes are
// reinterpreted as RGBA, which is only right when alpha is 255.
func TestEncodeOpaqueNRGBAColours(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 16, 16))
	for i := 0; i < len(m.Pix); i += 4 {
		copy(m.Pix[i:], []byte{200, 40, 90, 255})
	}
	out, err := Encode(m, JPEG, 100)
	if err != nil {
		t.Fatal(err)
	}
	if c := decodeAs(t, out, JPEG).At(8, 8); !near(c, color.RGBA{200, 40, 90, 255}, 3) {
		t.Errorf("pixel %v, want ~{200 40 90}", c)
	}
}

func TestEncodeUnknownFormat(t *testing.T) {
	if _, err := Encode(photo(4, 4, 1), Format(7), 0); !errors.Is(err, ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
}

// The returned bytes are the caller's: a second Encode (which reuses the
// pooled buffer) must not change them.
func TestEncodeResultNotShared(t *testing.T) {
	a, err := Encode(photo(32, 32, 1), JPEG, 0)
	if err != nil {
		t.Fatal(err)
	}
	keep := bytes.Clone(a)
	if _, err := Encode(photo(32, 32, 9), JPEG, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, keep) {
		t.Error("first result changed by the second Encode")
	}
}
