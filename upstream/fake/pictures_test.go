package fake_test

import (
	"bytes"
	"image"
	_ "image/jpeg"
	_ "image/png"
	"testing"

	"github.com/avatarproxy/avatarproxy/upstream/fake"
)

func TestPictures(t *testing.T) {
	tests := []struct {
		name   string
		data   []byte
		format string
		w, h   int
	}{
		{"portrait full", fake.Portrait("79001234567@c.us", 640), "jpeg", 640, 640},
		{"portrait preview", fake.Portrait("79001234567@c.us", 96), "jpeg", 96, 96},
		{"png non-square", fake.PNG("x", 300, 200), "png", 300, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, format, err := image.Decode(bytes.NewReader(tt.data))
			if err != nil || format != tt.format || img.Bounds().Dx() != tt.w || img.Bounds().Dy() != tt.h {
				t.Fatalf("decoded %s %v, %v; want %s %dx%d", format, img.Bounds(), err, tt.format, tt.w, tt.h)
			}
		})
	}
	if !bytes.Equal(fake.Portrait("a", 64), fake.Portrait("a", 64)) {
		t.Errorf("Portrait is not deterministic")
	}
	if bytes.Equal(fake.Portrait("a", 64), fake.Portrait("b", 64)) {
		t.Errorf("Portrait ignores its seed")
	}
}

func TestBomb(t *testing.T) {
	b := fake.Bomb(100000, 100000)
	if len(b) > 1024 {
		t.Errorf("Bomb is %d bytes, want a few hundred", len(b))
	}
	cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil || format != "png" || cfg.Width != 100000 || cfg.Height != 100000 {
		t.Fatalf("DecodeConfig = %+v %s %v", cfg, format, err)
	}
	// A small bomb decodes far enough to prove its stream is well formed
	// up to the point where the data runs out.
	if _, _, err := image.Decode(bytes.NewReader(fake.Bomb(64, 64))); err != nil {
		t.Errorf("a 64x64 bomb (fully covered by its zeros) does not decode: %v", err)
	}
	if _, _, err := image.Decode(bytes.NewReader(fake.Bomb(1000, 1000))); err == nil {
		t.Errorf("a 1000x1000 bomb decoded, want the data to run out")
	}
}
