package resize

import (
	"encoding/binary"
	"math"
	"sync"
	"sync/atomic"
)

// plane is a window onto 8-bit samples with c interleaved channels per pixel
// (1 for a Y, Cb, Cr or Gray plane, 4 for RGBA).
type plane struct {
	pix    []uint8
	stride int // bytes between rows
	w, h   int // pixels
	c      int // channels per pixel
}

func (p plane) sub(x, y, w, h int) plane {
	return plane{pix: p.pix[y*p.stride+x*p.c:], stride: p.stride, w: w, h: h, c: p.c}
}

// boxGap decides how much of a reduction the box pre-shrink takes: the box
// factor is floor(ratio/boxGap). At 1 the box does every whole factor, so
// 640 -> 128 is a pure 5x5 area average with no filter stage at all; a
// fractional rest (720 -> 128: box 5, then 144 -> 128) goes to Lanczos.
// Measured on the test photo against imaging's Lanczos: gap 1 costs about
// 0.35 ms and gives luma PSNR ~36 dB; gap 2 (Pillow's reducing_gap: box 2,
// then Lanczos 320 -> 128) gives ~52 dB but costs ~2 ms, most of the render
// budget; gap 1.25 is worse on both counts (the box aliases and Lanczos
// cannot undo it). See TestFastPathQuality and BenchmarkSquare640to128.
const boxGap = 1

// maxBox caps the box factor so a block sum (k*k*255) fits in uint32.
const maxBox = 2048

// resample scales src into dst (both with the same c): an exact-integer box
// average first (cheap, and exact for whole-factor reductions), then a
// separable Lanczos-3 filter in 14-bit fixed point for what remains.
func resample(dst, src plane) {
	kx := min(max(int(float64(src.w)/float64(dst.w)/boxGap), 1), maxBox)
	ky := min(max(int(float64(src.h)/float64(dst.h)/boxGap), 1), maxBox)
	cur := src
	if kx > 1 || ky > 1 {
		bw, bh := src.w/kx, src.h/ky
		// Drop the remainder evenly from both sides to keep the crop centred.
		in := src.sub((src.w-bw*kx)/2, (src.h-bh*ky)/2, bw*kx, bh*ky)
		if bw == dst.w && bh == dst.h {
			boxShrink(dst, in, kx, ky)
			return
		}
		buf := getBuf(bw * bh * src.c)
		defer putBuf(buf)
		cur = plane{pix: *buf, stride: bw * src.c, w: bw, h: bh, c: src.c}
		boxShrink(cur, in, kx, ky)
	}
	switch {
	case cur.w == dst.w && cur.h == dst.h:
		copyPlane(dst, cur)
	case cur.w == dst.w:
		filterV(dst, cur, weightsFor(cur.h, dst.h))
	case cur.h == dst.h:
		filterH(dst, cur, weightsFor(cur.w, dst.w))
	default:
		buf := getBuf(max(dst.w*cur.h, cur.w*dst.h) * cur.c)
		defer putBuf(buf)
		// filterV is a streaming loop and much cheaper per tap than
		// filterH, so give it the larger intermediate: vertical first
		// when shrinking, horizontal first when enlarging.
		if dst.h < cur.h {
			mid := plane{pix: *buf, stride: cur.w * cur.c, w: cur.w, h: dst.h, c: cur.c}
			filterV(mid, cur, weightsFor(cur.h, dst.h))
			filterH(dst, mid, weightsFor(cur.w, dst.w))
		} else {
			mid := plane{pix: *buf, stride: dst.w * cur.c, w: dst.w, h: cur.h, c: cur.c}
			filterH(mid, cur, weightsFor(cur.w, dst.w))
			filterV(dst, mid, weightsFor(cur.h, dst.h))
		}
	}
}

func copyPlane(dst, src plane) {
	n := src.w * src.c
	for y := range src.h {
		copy(dst.pix[y*dst.stride:y*dst.stride+n], src.pix[y*src.stride:y*src.stride+n])
	}
}

// boxShrink averages kx*ky blocks of src into dst; src must be exactly
// (dst.w*kx) x (dst.h*ky). Rows are summed first, over whole rows, because
// that loop is a plain streaming add; the horizontal fold then touches only
// 1/ky of the data.
func boxShrink(dst, src plane, kx, ky int) {
	c := src.c
	n := uint64(kx * ky)
	// Multiply by a 32-bit reciprocal instead of dividing per sample;
	// rounding it up keeps (s + n/2) / n exact while n < 2900 (blocks up
	// to 53x53), and within one level beyond.
	mul := (uint64(1)<<32 + n - 1) / n
	rowLen := src.w * c
	accBuf := getAcc(rowLen)
	defer putAcc(accBuf)
	acc := (*accBuf)[:rowLen]
	// Column sums fit 16-bit lanes while ky*255 <= 65535: then add eight
	// bytes per step (SWAR), the even and odd bytes of a uint64 into two
	// 4x16-bit accumulators. Go does not vectorise the plain loop.
	var lanes []uint64
	if ky > 1 && ky <= 257 {
		lb := getAcc64(rowLen / 8 * 2)
		defer putAcc64(lb)
		lanes = (*lb)[:rowLen/8*2]
	}
	for oy := range dst.h {
		rows := src.pix[oy*ky*src.stride:]
		if lanes != nil {
			sumRowsSWAR(acc, lanes, rows, src.stride, ky)
		} else {
			copyWiden(acc, rows)
			for t := 1; t < ky; t++ {
				addRow(acc, rows[t*src.stride:])
			}
		}
		out := dst.pix[oy*dst.stride : oy*dst.stride+dst.w*c]
		switch {
		case kx == 1:
			for i, s := range acc[:len(out)] {
				out[i] = uint8((uint64(s)*mul + 1<<31) >> 32)
			}
		case c == 1:
			for i := range out {
				var s uint32
				for _, v := range acc[i*kx : i*kx+kx] {
					s += v
				}
				out[i] = uint8((uint64(s)*mul + 1<<31) >> 32)
			}
		default:
			for x := range dst.w {
				blk := acc[x*kx*c : (x+1)*kx*c]
				for ch := range c {
					var s uint32
					for q := ch; q < len(blk); q += c {
						s += blk[q]
					}
					out[x*c+ch] = uint8((uint64(s)*mul + 1<<31) >> 32)
				}
			}
		}
	}
}

// sumRowsSWAR sets acc[i] to the sum of rows[t*stride+i] over t < ky.
// lanes holds len(acc)/8 pairs of uint64 and ky*255 must fit in 16 bits.
func sumRowsSWAR(acc []uint32, lanes []uint64, rows []uint8, stride, ky int) {
	const m = 0x00ff00ff00ff00ff
	n8 := len(acc) / 8 * 8
	clear(lanes)
	for t := range ky {
		row := rows[t*stride:]
		row = row[:n8]
		for j := 0; j+1 < len(lanes); j += 2 {
			v := binary.LittleEndian.Uint64(row[j*4:])
			lanes[j] += v & m
			lanes[j+1] += (v >> 8) & m
		}
	}
	for j := 0; j+1 < len(lanes); j += 2 {
		e, o := lanes[j], lanes[j+1]
		a := acc[j*4 : j*4+8 : j*4+8]
		a[0], a[1] = uint32(e&0xffff), uint32(o&0xffff)
		a[2], a[3] = uint32(e>>16&0xffff), uint32(o>>16&0xffff)
		a[4], a[5] = uint32(e>>32&0xffff), uint32(o>>32&0xffff)
		a[6], a[7] = uint32(e>>48), uint32(o>>48)
	}
	if n8 < len(acc) {
		tail := acc[n8:]
		copyWiden(tail, rows[n8:])
		for t := 1; t < ky; t++ {
			addRow(tail, rows[t*stride+n8:])
		}
	}
}

func copyWiden(acc []uint32, row []uint8) {
	row = row[:len(acc)]
	for i, v := range row {
		acc[i] = uint32(v)
	}
}

func addRow(acc []uint32, row []uint8) {
	row = row[:len(acc)]
	for i, v := range row {
		acc[i] += uint32(v)
	}
}

const (
	fixBits = 14
	fixOne  = 1 << fixBits
)

// weights is a resampling filter from srcLen to dstLen samples: output i is
// sum(w[i*n+j] * src[start[i]+j]). Every output has the same tap count n
// (edge outputs are padded with zero weights) so the inner loops have a
// fixed shape, and the weights of each output sum to exactly fixOne so flat
// areas stay flat.
type weights struct {
	start []int
	w     []int32
	n     int
}

// lanczos3 is the kernel imaging.Lanczos uses, so the fast path and the
// reference differ by the box stage and rounding, not by the filter.
func lanczos3(x float64) float64 {
	x = math.Abs(x)
	if x >= 3 {
		return 0
	}
	if x < 1e-9 {
		return 1
	}
	px := math.Pi * x
	return 3 * math.Sin(px) * math.Sin(px/3) / (px * px)
}

// weightsFor is newWeights through a cache: avatars come in a few sizes
// from a few source sizes, and building a table (hundreds of sines) was
// about 5% of a 640->128 render. The cache is bounded in bytes, since
// output sizes come from clients; past the bound tables are built each time.
func weightsFor(srcLen, dstLen int) weights {
	k := [2]int{srcLen, dstLen}
	if w, ok := weightCache.m.Load(k); ok {
		return w.(weights)
	}
	w := newWeights(srcLen, dstLen)
	size := int64(len(w.start))*8 + int64(len(w.w))*4
	if weightCache.bytes.Add(size) > maxWeightCacheBytes {
		weightCache.bytes.Add(-size)
		return w
	}
	if _, loaded := weightCache.m.LoadOrStore(k, w); loaded {
		weightCache.bytes.Add(-size)
	}
	return w
}

// maxWeightCacheBytes bounds weightCache: a 640->128 pair takes 4.5 KiB.
const maxWeightCacheBytes = 4 << 20

// weightCache holds immutable weights by [srcLen, dstLen].
var weightCache struct {
	m     sync.Map
	bytes atomic.Int64
}

func newWeights(srcLen, dstLen int) weights {
	scale := float64(srcLen) / float64(dstLen)
	support := 3 * max(scale, 1)
	n := min(int(math.Ceil(support))*2+1, srcLen)
	ws := weights{start: make([]int, dstLen), w: make([]int32, dstLen*n), n: n}
	fw := make([]float64, n)
	for i := range dstLen {
		centre := (float64(i)+0.5)*scale - 0.5
		start := int(math.Ceil(centre - support))
		start = min(max(start, 0), srcLen-n)
		var sum float64
		for j := range n {
			fw[j] = lanczos3((float64(start+j) - centre) / max(scale, 1))
			sum += fw[j]
		}
		out := ws.w[i*n : i*n+n]
		if !(sum > 0) {
			// Unreachable for Lanczos-3 over a full window; keep the
			// nearest sample rather than divide by zero.
			clear(fw)
			fw[min(max(int(math.Round(centre))-start, 0), n-1)] = 1
			sum = 1
		}
		var isum int32
		peak := 0
		for j := range n {
			out[j] = int32(math.Round(fw[j] / sum * fixOne))
			isum += out[j]
			if out[j] > out[peak] {
				peak = j
			}
		}
		out[peak] += fixOne - isum
		ws.start[i] = start
	}
	return ws
}

func clampFix(v int32) uint8 {
	v = (v + fixOne/2) >> fixBits
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return uint8(v)
}

// filterH resamples rows: src.h == dst.h.
func filterH(dst, src plane, ws weights) {
	c, n := src.c, ws.n
	for y := range dst.h {
		srow := src.pix[y*src.stride : y*src.stride+src.w*c]
		drow := dst.pix[y*dst.stride : y*dst.stride+dst.w*c]
		if c == 1 {
			for x := range drow {
				w := ws.w[x*n : x*n+n]
				p := srow[ws.start[x]:]
				p = p[:len(w)]
				var acc int32
				for j, wj := range w {
					acc += int32(p[j]) * wj
				}
				drow[x] = clampFix(acc)
			}
			continue
		}
		for x := range dst.w {
			w := ws.w[x*n : x*n+n]
			p := srow[ws.start[x]*c:]
			p = p[:len(w)*c]
			var a0, a1, a2, a3 int32
			for j, wj := range w {
				q := p[j*4 : j*4+4 : j*4+4]
				a0 += int32(q[0]) * wj
				a1 += int32(q[1]) * wj
				a2 += int32(q[2]) * wj
				a3 += int32(q[3]) * wj
			}
			d := drow[x*4 : x*4+4 : x*4+4]
			d[0], d[1], d[2], d[3] = clampFix(a0), clampFix(a1), clampFix(a2), clampFix(a3)
		}
	}
}

// filterV resamples columns: src.w == dst.w. It walks whole rows so memory
// is read sequentially.
func filterV(dst, src plane, ws weights) {
	rowLen := src.w * src.c
	accBuf := getAcc(rowLen)
	defer putAcc(accBuf)
	acc := (*accBuf)[:rowLen]
	n := ws.n
	for y := range dst.h {
		clear(acc)
		for j, wj := range ws.w[y*n : y*n+n] {
			if wj == 0 {
				continue
			}
			srow := src.pix[(ws.start[y]+j)*src.stride:]
			srow = srow[:len(acc)]
			for i, v := range srow {
				acc[i] += uint32(int32(v) * wj)
			}
		}
		drow := dst.pix[y*dst.stride : y*dst.stride+rowLen]
		for i, a := range acc {
			drow[i] = clampFix(int32(a))
		}
	}
}

// Scratch buffers for the intermediate planes and accumulators: a render
// needs a few of each and they are dead once it returns.
var (
	bufPool   sync.Pool // *[]byte
	accPool   sync.Pool // *[]uint32
	acc64Pool sync.Pool // *[]uint64
)

func getBuf(n int) *[]byte {
	if p, ok := bufPool.Get().(*[]byte); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]byte, n)
	return &b
}

func putBuf(p *[]byte) { bufPool.Put(p) }

func getAcc(n int) *[]uint32 {
	if p, ok := accPool.Get().(*[]uint32); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]uint32, n)
	return &b
}

func putAcc(p *[]uint32) { accPool.Put(p) }

func getAcc64(n int) *[]uint64 {
	if p, ok := acc64Pool.Get().(*[]uint64); ok && cap(*p) >= n {
		*p = (*p)[:n]
		return p
	}
	b := make([]uint64, n)
	return &b
}

func putAcc64(p *[]uint64) { acc64Pool.Put(p) }
