package jpegscale

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"testing"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

// benchSrc is a noisy photo-like 640x640 4:2:0 JPEG at quality 80, the
// largest avatar WhatsApp serves.
func benchSrc(b *testing.B) []byte {
	return encode(b, synth(640, 640, 1), 80)
}

func BenchmarkDecodeScaled640(b *testing.B) {
	src := benchSrc(b)
	for _, denom := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("denom=%d", denom), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			b.ReportAllocs()
			defer testkit.CPUPerOp(b)()
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(src), denom); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeScaled640Stdlib(b *testing.B) {
	src := benchSrc(b)
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	defer testkit.CPUPerOp(b)()
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(src)); err != nil {
			b.Fatal(err)
		}
	}
}
