package jpegscale

import (
	"bytes"
	"image/jpeg"
	"reflect"
	"runtime"
	"testing"
)

// manyScans builds a progressive JPEG of w x h whose components have the
// given sampling bytes (HV) and whose scans are all AC refinement scans
// (Ss=1, Se=63, Ah=1) of comps[i%len(comps)] holding one EOB run: about 12
// bytes each, yet each walks every block of its component (the shape of
// libjpeg-turbo's LJT-01-003 report). image/jpeg decodes it.
func manyScans(w, h int, sampling []byte, comps []int, scans int) []byte {
	var b bytes.Buffer
	seg := func(marker byte, p []byte) {
		b.Write([]byte{0xff, marker, byte((len(p) + 2) >> 8), byte(len(p) + 2)})
		b.Write(p)
	}
	b.Write([]byte{0xff, soiMarker})
	dqt := make([]byte, 65)
	for i := 1; i < len(dqt); i++ {
		dqt[i] = 1
	}
	seg(dqtMarker, dqt)
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(len(sampling))}
	for i, hv := range sampling {
		sof = append(sof, byte(i+1), hv, 0)
	}
	seg(sof2Marker, sof)
	// One 1-bit code in each table: DC symbol 0, AC symbol 0xe0 (EOB14: a
	// run of 2^14 plus 14 value bits).
	for tc, sym := range []byte{0x00, 0xe0} {
		seg(dhtMarker, append([]byte{byte(tc) << 4, 1}, append(make([]byte, 15), sym)...))
	}
	// EOB runs of 16384 to 32767 blocks until every block is covered.
	var data []byte
	var acc uint32
	var n uint
	put := func(v uint32, bits uint) {
		acc, n = acc<<bits|v, n+bits
		for n >= 8 {
			c := byte(acc >> (n - 8))
			if data = append(data, c); c == 0xff {
				data = append(data, 0)
			}
			n -= 8
		}
	}
	for left := ((w + 7) / 8) * ((h + 7) / 8); left > 0; left -= 32767 {
		put(0, 1)
		put(uint32(min(max(left, 16384), 32767)-16384), 14)
	}
	if n > 0 {
		put(1<<(8-n)-1, 8-n)
	}
	for i := range scans {
		seg(sosMarker, []byte{1, byte(comps[i%len(comps)] + 1), 0x00, 1, 63, 0x10})
		b.Write(data)
	}
	b.Write([]byte{0xff, eoiMarker})
	return b.Bytes()
}

// A decode is refused past maxScans scans, or once its scans have visited
// maxScanVisits times the frame's blocks, at every scale; at the limit it
// still matches image/jpeg.
func TestScanLimits(t *testing.T) {
	const hv410 = 0x42 // 4:1:0 luma: a chroma scan walks 1/10 of the blocks
	for _, tc := range []struct {
		name     string
		sampling []byte
		comps    []int
		scans    int
		wantErr  error
	}{
		{"gray at the visit limit", []byte{0x11}, []int{0}, maxScanVisits, nil},
		{"gray over the visit limit", []byte{0x11}, []int{0}, maxScanVisits + 1, errScanVisits},
		{"4:1:0 chroma at the scan limit", []byte{hv410, 0x11, 0x11}, []int{1, 2}, maxScans, nil},
		{"4:1:0 chroma over the scan limit", []byte{hv410, 0x11, 0x11}, []int{1, 2}, maxScans + 1, errTooManyScans},
		{"4:1:0 luma over the visit limit", []byte{hv410, 0x11, 0x11}, []int{0}, 21, errScanVisits},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := manyScans(80, 48, tc.sampling, tc.comps, tc.scans)
			want, err := jpeg.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("image/jpeg refuses the test file: %v", err)
			}
			for _, denom := range []int{1, 2, 4, 8} {
				got, err := Decode(bytes.NewReader(data), denom)
				if err != tc.wantErr {
					t.Fatalf("denom %d: err = %v, want %v", denom, err, tc.wantErr)
				}
				if err == nil && denom == 1 && !reflect.DeepEqual(got, want) {
					t.Fatal("denom 1 differs from image/jpeg")
				}
			}
		})
	}
}

// DecodeMemory is what Decode at scale 1 allocates less tables and
// buffers (about 60 KB): planes, progressive coefficients and colour
// copies. It may only overstate, where a progressive file leaves a
// component without scans (its coefficients are allocated on first use).
func TestDecodeMemory(t *testing.T) {
	type memSample struct {
		sample
		exact bool
	}
	var all []memSample
	for _, s := range samples(t) {
		all = append(all, memSample{s, true})
	}
	all = append(all,
		memSample{sample{"progressive gray 400x300", manyScans(400, 300, []byte{0x11}, []int{0}, 1)}, true},
		memSample{sample{"progressive 4:1:0, Cb scans only", manyScans(640, 480, []byte{0x42, 0x11, 0x11}, []int{1}, 1)}, false},
	)
	const slack = 128 << 10
	for _, s := range all {
		est, err := DecodeMemory(bytes.NewReader(s.data))
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := Decode(bytes.NewReader(s.data), 1); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		runtime.ReadMemStats(&after)
		got := int64(after.TotalAlloc - before.TotalAlloc)
		if got > est+slack || s.exact && got < est {
			t.Errorf("%s: Decode allocated %d bytes, DecodeMemory says %d", s.name, got, est)
		}
	}
}
