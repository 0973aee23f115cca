package jpegscale

import (
	"bytes"
	"image"
	"image/jpeg"
	"reflect"
	"testing"
)

// FuzzDecodeScaled: no panic at any scale; success exactly when image/jpeg
// succeeds, unless the scan limits refuse the input; bounds from the
// header divided by denom, rounded up; and at scale 1 the very pixels
// image/jpeg decodes. Seeds are in testdata/fuzz/FuzzDecodeScaled (small
// 4:2:0 and gray images from Go's encoder, a truncated one, image/jpeg's
// q50 4:4:4 and progressive 4:2:0 test images, and many-scan files at
// either limit); the larger testdata images are added here.
func FuzzDecodeScaled(f *testing.F) {
	for _, s := range samples(f) {
		if len(s.data) < 8<<10 {
			f.Add(s.data, uint8(0))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, sel uint8) {
		denom := []int{1, 2, 4, 8}[sel%4]
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cfg.Width*cfg.Height > 1<<20 {
			return // stay cheap: the header check is the caller's job
		}
		want, wantErr := jpeg.Decode(bytes.NewReader(data))
		got, err := Decode(bytes.NewReader(data), denom)
		if err == errTooManyScans || err == errScanVisits {
			return // the one place this decoder refuses what image/jpeg takes
		}
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("denom %d: err = %v, image/jpeg err = %v", denom, err, wantErr)
		}
		if err != nil {
			return
		}
		wb := image.Rect(0, 0, (cfg.Width+denom-1)/denom, (cfg.Height+denom-1)/denom)
		if got.Bounds() != wb {
			t.Fatalf("denom %d: bounds %v, want %v", denom, got.Bounds(), wb)
		}
		if reflect.TypeOf(got) != reflect.TypeOf(want) {
			t.Fatalf("denom %d: type %T, image/jpeg gives %T", denom, got, want)
		}
		if denom == 1 && !reflect.DeepEqual(got, want) {
			t.Fatal("denom 1 differs from image/jpeg")
		}
	})
}
