package resize

import (
	"bytes"
	"image"
	"image/jpeg"
	"sync"
	"testing"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// The benchmark source: a photo-like 640x640 JPEG at quality 80, the
// largest size WhatsApp serves for a full avatar (GOWA re-encodes uploads at
// q80; Baileys uses q50, which decodes faster).
var benchSrc = sync.OnceValue(func() []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photo(640, 640, 1), &jpeg.Options{Quality: 80}); err != nil {
		panic(err)
	}
	return buf.Bytes()
})

func BenchmarkDecode640(b *testing.B) {
	src := benchSrc()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	defer testkit.CPUPerOp(b)()
	for b.Loop() {
		if _, err := Decode(src, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchRender(b *testing.B, src []byte, spec Spec) {
	b.Helper()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	defer testkit.CPUPerOp(b)()
	for b.Loop() {
		if _, err := Render(src, spec, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRender640to128(b *testing.B) {
	benchRender(b, benchSrc(), Spec{Size: 128, Format: JPEG})
}

// An odd size: its chroma planes cannot be half the luma's.
func BenchmarkRender640to127(b *testing.B) {
	benchRender(b, benchSrc(), Spec{Size: 127, Format: JPEG})
}

// PNG output from the same JPEG source (the Spec.Format=PNG case).
func BenchmarkRender640to128PNG(b *testing.B) {
	benchRender(b, benchSrc(), Spec{Size: 128, Format: PNG})
}

// A PNG source (no YCbCr planes: the RGBA fast path), JPEG output.
func BenchmarkRender640PNGSourceTo128(b *testing.B) {
	benchRender(b, pngBytes(b, photo(640, 640, 1)), Spec{Size: 128, Format: JPEG})
}

func BenchmarkSquare640to128(b *testing.B) { benchSquare(b, Square) }

// The general path on the same image, for comparison.
func BenchmarkSquare640to128Imaging(b *testing.B) { benchSquare(b, referenceSquare) }

// benchSquare times square on the decoded benchmark source, to 128 px.
func benchSquare(b *testing.B, square func(image.Image, int) image.Image) {
	img, err := Decode(benchSrc(), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer testkit.CPUPerOp(b)()
	for b.Loop() {
		square(img, 128)
	}
}

func BenchmarkEncode128(b *testing.B) {
	img, err := Decode(benchSrc(), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	sq := Square(img, 128)
	if _, ok := sq.(*image.YCbCr); !ok {
		b.Fatalf("Square gave %T, want *image.YCbCr", sq)
	}
	b.ReportAllocs()
	defer testkit.CPUPerOp(b)()
	for b.Loop() {
		if _, err := Encode(sq, JPEG, 0); err != nil {
			b.Fatal(err)
		}
	}
}
