package jpegscale

import (
	"bytes"
	"fmt"
	"image/jpeg"
	"testing"
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
			defer cpuPerOp(b)()
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
	defer cpuPerOp(b)()
	for b.Loop() {
		if _, err := jpeg.Decode(bytes.NewReader(src)); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuPerOp reports the process CPU time per iteration as "cpu-ns/op";
// call it with defer at the top of the measured loop's function.
func cpuPerOp(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
