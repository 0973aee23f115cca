package jpegscale

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"testing/iotest"
)

// The entropy decoder reads up to 63 bits ahead and decodes a code and its
// value bits in one look-up, where image/jpeg reads a byte at a time when
// it needs one. That must not show: these tests end the data, or put a
// marker, at every byte of the entropy-coded segments, and feed the data
// through readers that split it anywhere or fail, and want image/jpeg's
// error and (at scale 1) pixels every time.

// edgeSamples are small images whose entropy-coded data is cut at every
// byte: 4:2:0 and gray from Go's encoder, a progressive one and one with
// restart intervals.
func edgeSamples(tb testing.TB) []sample {
	tb.Helper()
	out := []sample{
		{"go-420-24x16", encode(tb, synth(24, 16, 11), 90)},
		{"go-gray-16x16", encode(tb, gray(synth(16, 16, 12)), 60)},
	}
	for _, name := range []string{"video-001.restart2.jpeg", "video-005.gray.q50.progressive.jpeg"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, sample{name, b})
	}
	return out
}

// scanStart is the offset of the first SOS marker, or len(data).
func scanStart(data []byte) int {
	if i := bytes.Index(data, []byte{0xff, sosMarker}); i >= 0 {
		return i
	}
	return len(data)
}

// matchStdlib decodes data with image/jpeg and with Decode at the given
// scales and reports any difference in the error, or at scale 1 in the
// image. r wraps each fresh reader over data.
func matchStdlib(t *testing.T, name string, data []byte, r func(io.Reader) io.Reader, denoms ...int) {
	t.Helper()
	want, wantErr := jpeg.Decode(r(bytes.NewReader(data)))
	for _, denom := range denoms {
		got, err := Decode(r(bytes.NewReader(data)), denom)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Fatalf("%s, denom %d: err = %v, image/jpeg err = %v", name, denom, err, wantErr)
		}
		if err == nil && denom == 1 && !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: pixels differ from image/jpeg", name)
		}
	}
}

func plain(r io.Reader) io.Reader { return r }

// cutPoints are the offsets in data's entropy-coded segments to cut at or
// insert at: every one in a small image; in a larger one, those within 4
// bytes of a 0xff (stuffed bytes, RST markers), of the first 4 KiB buffer's
// end and of the data's ends, and every 101st.
func cutPoints(data []byte) []int {
	start := scanStart(data)
	var out []int
	for i := start; i < len(data); i++ {
		near := len(data) < 1<<10 || i-start < 4 || len(data)-i <= 4 || (i >= 4092 && i <= 4100) || i%101 == 0
		for j := max(start, i-4); j <= min(len(data)-1, i+4) && !near; j++ {
			near = data[j] == 0xff
		}
		if near {
			out = append(out, i)
		}
	}
	return out
}

func TestEntropyEdgesMatchStdlib(t *testing.T) {
	for _, s := range edgeSamples(t) {
		t.Run(s.name, func(t *testing.T) {
			data := s.data
			for k, cut := range cutPoints(data) {
				if raceEnabled && k%5 != 0 {
					continue
				}
				head, tail := data[:cut:cut], data[cut:]
				for _, v := range []struct {
					name string
					data []byte
				}{
					{"cut", head},
					{"cut+EOI", append(head, 0xff, eoiMarker)},
					{"cut+0xff", append(head, 0xff)},
					{"RST inserted", append(append(head, 0xff, rst0Marker), tail...)},
					{"EOI inserted", append(append(head, 0xff, eoiMarker), tail...)},
					{"0xff00 inserted", append(append(head, 0xff, 0x00), tail...)},
					{"fill bytes inserted", append(append(head, 0xff, 0xff), tail...)},
					{"byte set to 0xff", append(append(head, 0xff), tail[1:]...)},
				} {
					// The scales share the entropy decoder: scale 1 and
					// the cheapest, 8, are enough here.
					matchStdlib(t, fmt.Sprintf("%s at %d", v.name, cut), v.data, plain, 1, 8)
				}
			}
		})
	}
}

// chunkReader returns at most n bytes per Read, so that fill's buffer
// ends fall everywhere in the data.
type chunkReader struct {
	r io.Reader
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), c.n)])
}

func TestEntropyReadersMatchStdlib(t *testing.T) {
	all := append(samples(t), edgeSamples(t)...)
	big := encode(t, synth(200, 150, 13), 95) // several 4 KiB buffer fills
	all = append(all, sample{"go-420-200x150-q95", big}, sample{"go-420-200x150-q95-cut", big[:len(big)*3/4]})
	errBoom := errors.New("boom")
	for _, s := range all {
		if len(s.data) > 64<<10 {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			for _, rd := range []struct {
				name string
				wrap func(io.Reader) io.Reader
			}{
				{"one byte", iotest.OneByteReader},
				{"half", iotest.HalfReader},
				{"data+EOF", iotest.DataErrReader},
				{"timeout", iotest.TimeoutReader},
				{"chunks of 7", func(r io.Reader) io.Reader { return &chunkReader{r, 7} }},
				{"chunks of 4093", func(r io.Reader) io.Reader { return &chunkReader{r, 4093} }},
				{"error at 3/4", func(r io.Reader) io.Reader {
					return io.MultiReader(io.LimitReader(r, int64(len(s.data)*3/4)), iotest.ErrReader(errBoom))
				}},
			} {
				matchStdlib(t, rd.name, s.data, rd.wrap, 1, 2, 4, 8)
			}
		})
	}
}

// refBits is a bit string for refBlock: image/jpeg's decoding steps over
// bits that never run out.
type refBits struct {
	bits []byte // one bit a byte
	pos  int
}

func (r *refBits) take(n int) uint32 {
	var x uint32
	for range n {
		x = x<<1 | uint32(r.bits[r.pos])
		r.pos++
	}
	return x
}

// refDecodeHuffman is image/jpeg's decodeHuffman when 8 or more bits are
// left: the 8-bit look-up table, else the bit-by-bit walk.
func refDecodeHuffman(h *huffman, r *refBits) (uint8, error) {
	if v := h.lut[r.take(lutSize)]; v != 0 {
		r.pos -= lutSize - int(v&0xff-1)
		return uint8(v >> 8), nil
	}
	r.pos -= lutSize
	for i, code := 0, int32(0); i < maxCodeLength; i++ {
		code |= int32(r.take(1))
		if code <= h.maxCodes[i] {
			return h.vals[h.valsIndices[i]+code-h.minCodes[i]], nil
		}
		code <<= 1
	}
	return 0, FormatError("bad Huffman code")
}

// refBlock is image/jpeg's sequential block decode (processSOS with
// zigStart 0, zigEnd 63, al 0).
func refBlock(b *block, dcH, acH *huffman, dc *int32, eobRun *uint16, r *refBits) error {
	value, err := refDecodeHuffman(dcH, r)
	if err != nil {
		return err
	}
	if value > 16 {
		return UnsupportedError("excessive DC component")
	}
	*dc += extend(r.take(int(value)), value)
	b[0] = *dc
	if *eobRun > 0 {
		*eobRun--
		return nil
	}
	for zig := 1; zig <= 63; zig++ {
		value, err := refDecodeHuffman(acH, r)
		if err != nil {
			return err
		}
		val0, val1 := value>>4, value&0x0f
		if val1 != 0 {
			zig += int(val0)
			if zig > 63 {
				break
			}
			b[unzig[zig]] = extend(r.take(int(val1)), val1)
		} else {
			if val0 != 0x0f {
				*eobRun = uint16(1<<val0) | uint16(r.take(int(val0)))
				*eobRun--
				break
			}
			zig += 0x0f
		}
	}
	return nil
}

// A malformed Huffman table (say, more codes of a length than fit) decodes
// differently through image/jpeg's 8-bit look-up table than through its
// bit-by-bit walk; the fast table must give whichever image/jpeg uses.
// Random tables, many malformed, decode random bits here block by block,
// with decodeBlock and with image/jpeg's steps.
func TestDecodeBlockMatchesStdlibSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	dht := func(tc byte) []byte {
		seg := []byte{tc << 4}
		total := 0
		for i := range maxCodeLength {
			n := 0
			if rng.IntN(3) > 0 && total < 200 {
				n = min(rng.IntN(1+2<<min(i, 5)), maxNCodes-total)
			}
			seg = append(seg, byte(n))
			total += n
		}
		if total == 0 {
			seg[1+rng.IntN(maxCodeLength)] = 1
			total = 1
		}
		for range total {
			v := byte(rng.IntN(256))
			if tc == dcTable {
				v = byte(rng.IntN(18))
			}
			seg = append(seg, v)
		}
		return seg
	}
	for table := range 300 {
		seg := append(dht(dcTable), dht(acTable)...)
		d := &decoder{denom: 1, bs: 8}
		d.r = bytes.NewReader(seg)
		if err := d.processDHT(len(seg)); err != nil {
			t.Fatal(err)
		}
		dcH, acH := &d.huff[dcTable][0], &d.huff[acTable][0]

		// The bits: random, with no 0xff bytes, so that no byte stuffing
		// is needed, and enough for any 40 blocks.
		stream := make([]byte, 40*64*4+64)
		for i := range stream {
			stream[i] = byte(rng.IntN(255))
		}
		ref := &refBits{}
		for _, c := range stream {
			for k := 7; k >= 0; k-- {
				ref.bits = append(ref.bits, c>>k&1)
			}
		}
		d.r = bytes.NewReader(stream)
		d.bits, d.bytes.i, d.bytes.j = bits{}, 0, 0
		var dc, refDC int32
		var refEOB uint16
		for blk := range 40 {
			var got, want block
			err := d.decodeBlock(&got, dcH, acH, &dc)
			wantErr := refBlock(&want, dcH, acH, &refDC, &refEOB, ref)
			if fmt.Sprint(err) != fmt.Sprint(wantErr) || got != want || d.eobRun != refEOB {
				t.Fatalf("table %d, block %d: got %v %v (eob run %d), want %v %v (%d)", table, blk, err, got, d.eobRun, wantErr, want, refEOB)
			}
			if err != nil {
				break
			}
			// Both have used the same bits.
			if used := 8*(d.bytes.i) - int(d.bits.n); used != ref.pos {
				t.Fatalf("table %d, block %d: used %d bits, want %d", table, blk, used, ref.pos)
			}
		}
	}
}
