package jpegscale

import (
	"errors"
	"image"
	"io"
	"math"
	"sync"
	"unsafe"
)

// ErrDenom is returned by Decode for a scale denominator other than 1, 2, 4
// or 8.
var ErrDenom = errors.New("jpegscale: scale denominator must be 1, 2, 4 or 8")

// Decode reads a JPEG image from r and returns it scaled down by denom,
// which must be 1, 2, 4 or 8. The result's bounds are
// image.Rect(0, 0, ceil(w/denom), ceil(h/denom)) for a w x h JPEG, and its
// type is what image/jpeg.Decode returns for the same input (*image.YCbCr,
// *image.Gray, *image.RGBA or *image.CMYK). With denom 1 the pixels are
// byte-identical to image/jpeg.Decode, which, unlike Decode, also takes
// files past the scan limits (see the package doc). Otherwise each output
// sample is the area average of the denom x denom full-resolution samples
// it covers, of the block with its frequencies above the scaled image's
// Nyquist limit dropped (see scaleMatrix), computed from the DCT
// coefficients without a full-size inverse DCT; at the right and bottom
// edges a partial cell also averages the block's padding, as libjpeg does. Errors are image/jpeg's FormatError and
// UnsupportedError, or an I/O error from r, or ErrDenom.
func Decode(r io.Reader, denom int) (image.Image, error) {
	var bs int
	switch denom {
	case 1, 2, 4, 8:
		bs = 8 / denom
	default:
		return nil, ErrDenom
	}
	d := &decoder{denom: denom, bs: bs}
	return d.decode(r, false)
}

// scaleFracBits is the fixed-point precision of the scaled IDCT matrices.
// Two of them multiply, and dequantised coefficients stay below 2^27 even
// with 16-bit quantisation tables, so sums stay far inside int64.
const scaleFracBits = 14

// scaleMatrix is M for one block edge n (8/denom): out = M * F * M^T,
// where F is the 8x8 block of dequantised coefficients. For u < n, m[x][u]
// is the mean, over the denom full-resolution positions of output position
// x, of the JPEG IDCT basis function u: (1/2) C(u) cos((2i+1)u*pi/16), with
// C(0) = 1/sqrt(2) and C(u) = 1 otherwise. For u >= n it is zero: those
// frequencies are above the scaled image's Nyquist limit, and a plain area
// average lets too much of them through as aliasing (libjpeg's scaled IDCT
// drops them too). So out is the area average of the block's low-pass IDCT.
// With 1/4 and 1/8 that leaves 4 and 1 coefficients of 64 to dequantise.
type scaleMatrix struct {
	m [8][8]int64 // [output position][frequency], in 1<<scaleFracBits
}

// scaleMatrices is indexed by the block edge n: 4 (denom 2), 2 (denom 4)
// and 1 (denom 8).
var scaleMatrices = func() (ms [5]scaleMatrix) {
	for _, n := range []int{4, 2, 1} {
		k := 8 / n
		for u := range 8 {
			cu := 1.0
			if u == 0 {
				cu = 1 / math.Sqrt2
			}
			for x := range n {
				var sum float64
				for i := x * k; i < x*k+k; i++ {
					sum += math.Cos(float64(2*i+1) * float64(u) * math.Pi / 16)
				}
				v := 0.5 * cu * sum / float64(k)
				if u >= n {
					v = 0 // above the new Nyquist frequency: dropped
				}
				ms[n].m[x][u] = int64(math.Round(v * (1 << scaleFracBits)))
			}
		}
	}
	return ms
}()

// scaledQuant is what the scaled IDCTs need from one quantisation table,
// prepared once per DQT segment rather than once per block.
type scaledQuant struct {
	// nat is the table in natural (row-major) order.
	nat [blockSize]int64
	// w2 folds the 1/4-scale matrix into the table: w2[v*8+u] =
	// q[v][u] * m[0][u] * m[0][v], in 1<<(2*scaleFracBits).
	w2 [blockSize]int64
}

// prepareScaled fills d.scaledQ[tq] from d.quant[tq].
func (d *decoder) prepareScaled(tq uint8) {
	sq := &d.scaledQ[tq]
	for zig, nat := range unzig {
		sq.nat[nat] = int64(d.quant[tq][zig])
	}
	m := &scaleMatrices[2].m[0]
	for v := range 8 {
		for u := range 8 {
			sq.w2[v*8+u] = sq.nat[v*8+u] * m[u] * m[v]
		}
	}
}

// idctScaled computes the n x n area averages (n = 4, 2 or 1) of the
// inverse DCT of the block b (natural order, not yet dequantised, left
// unmodified), level-shifts and clamps them and writes them to dst.
func idctScaled(b *block, sq *scaledQuant, dst []byte, stride, n int) {
	switch n {
	case 1:
		// The mean of an 8x8 IDCT is its DC term over 8.
		writeClamped(dst, 0, (int64(b[0])*sq.nat[0]+4)>>3)
	case 2:
		idct2x2(b, sq, dst, stride)
	default:
		idct4x4(b, sq, dst, stride)
	}
}

// idct2x2 is the 1/4 scale: only u, v in {0, 1} contribute, and the
// second output position sees u = 1 with the opposite sign (the basis
// functions are symmetric or antisymmetric about the block's middle).
func idct2x2(b *block, sq *scaledQuant, dst []byte, stride int) {
	w := &sq.w2
	ee := int64(b[0]) * w[0]
	oe := int64(b[1]) * w[1] // u = 1, v = 0
	eo := int64(b[8]) * w[8] // u = 0, v = 1
	oo := int64(b[9]) * w[9]
	const sh, half = 2 * scaleFracBits, 1 << (2*scaleFracBits - 1)
	writeClamped(dst, 0, (ee+oe+eo+oo+half)>>sh)
	writeClamped(dst, 1, (ee-oe+eo-oo+half)>>sh)
	writeClamped(dst, stride, (ee+oe-eo-oo+half)>>sh)
	writeClamped(dst, stride+1, (ee-oe-eo+oo+half)>>sh)
}

// idct4x4 is the 1/2 scale, as two separable passes over u, v < 4.
// Positions 2 and 3 mirror 1 and 0 (odd frequencies change sign), so each
// 1-D pass is an even and an odd sum for two positions.
func idct4x4(b *block, sq *scaledQuant, dst []byte, stride int) {
	m := &scaleMatrices[4].m
	var t [4][4]int64 // t[v][x]: horizontal pass of frequency row v
	for v := range 4 {
		r := b[v*8 : v*8+4 : v*8+4]
		if r[0]|r[1]|r[2]|r[3] == 0 {
			continue // t[v] stays zero
		}
		q := sq.nat[v*8 : v*8+4 : v*8+4]
		f0, f1, f2, f3 := int64(r[0])*q[0], int64(r[1])*q[1], int64(r[2])*q[2], int64(r[3])*q[3]
		for x := range 2 {
			mx := &m[x]
			e := mx[0]*f0 + mx[2]*f2
			o := mx[1]*f1 + mx[3]*f3
			t[v][x], t[v][3-x] = e+o, e-o
		}
	}
	const sh, half = 2 * scaleFracBits, 1 << (2*scaleFracBits - 1)
	for y := range 2 {
		my := &m[y]
		for x := range 4 {
			e := my[0]*t[0][x] + my[2]*t[2][x]
			o := my[1]*t[1][x] + my[3]*t[3][x]
			writeClamped(dst, y*stride+x, (e+o+half)>>sh)
			writeClamped(dst, (3-y)*stride+x, (e-o+half)>>sh)
		}
	}
}

// writeClamped level-shifts a signed sample by +128 and stores it clamped
// to 0..255.
func writeClamped(dst []byte, i int, v int64) {
	v += 128
	switch {
	case v < 0:
		v = 0
	case v > 255:
		v = 255
	}
	dst[i] = uint8(v)
}

// lowpass zeroes the coefficients of b (natural order) with u or v >= n.
func lowpass(b *block, n int) {
	for v := range 8 {
		for u := range 8 {
			if u >= n || v >= n {
				b[v*8+u] = 0
			}
		}
	}
}

// DecodeMemory reads r's headers, up to the frame header or the first
// scan, and returns the bytes Decode(r, 1) allocates for the image, which
// bounds every scale: the planes (64 bytes per 8x8 block), for a
// progressive file every block's coefficients (256 bytes a block, held at
// full size at every scale), and the RGBA or CMYK copy of an RGB, CMYK or
// YCbCrK file. Tables and buffers (under 50 KB) are left out, and so is
// the RGBA copy of a file that an APP14 after its first scan turns into
// RGB (4 bytes per pixel). Errors are those of Decode.
func DecodeMemory(r io.Reader) (int64, error) {
	d := headerDecoders.Get().(*decoder)
	defer func() {
		*d = decoder{}
		headerDecoders.Put(d)
	}()
	d.denom, d.bs = 1, 8
	if _, err := d.decode(r, true); err != nil {
		return 0, err
	}
	if d.nComp == 0 {
		return 0, FormatError("missing SOF marker")
	}
	h0, v0 := d.comp[0].h, d.comp[0].v
	mcus := int64((d.width+8*h0-1)/(8*h0)) * int64((d.height+8*v0-1)/(8*v0))
	var blocks int64
	for _, c := range d.comp[:d.nComp] {
		blocks += mcus * int64(c.h*c.v)
	}
	n := blocks * blockSize
	if d.progressive {
		n += blocks * int64(unsafe.Sizeof(block{}))
	}
	if d.nComp == 4 || d.nComp == 3 && d.isRGB() {
		n += 4 * int64(d.width) * int64(d.height)
	}
	return n, nil
}

// headerDecoders saves DecodeMemory, which runs before every decode, from
// allocating a decoder (about 45 KB, mostly Huffman tables it never fills).
var headerDecoders = sync.Pool{New: func() any { return new(decoder) }}
