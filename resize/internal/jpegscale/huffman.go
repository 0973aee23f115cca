// Copyright 2009 The Go Authors. All rights reserved.
// Use of this source code is governed by a BSD-style
// license that can be found in the LICENSE file.

package jpegscale

import (
	"encoding/binary"
	"io"
)

// maxCodeLength is the maximum (inclusive) number of bits in a Huffman code.
const maxCodeLength = 16

// maxNCodes is the maximum (inclusive) number of codes in a Huffman tree.
const maxNCodes = 256

// lutSize is the log-2 size of the Huffman decoder's look-up table.
const lutSize = 8

// fastBits is the log-2 size of the Huffman decoder's second look-up
// table, fast, which also resolves codes of 9 and 10 bits and, when the code
// and the value bits that follow it fit in fastBits, the value too.
const fastBits = 10

// huffman is a Huffman decoder, specified in section C.
type huffman struct {
	// length is the number of codes in the tree.
	nCodes int32
	// lut is the look-up table for the next lutSize bits in the bit-stream.
	// The high 8 bits of the uint16 are the encoded value. The low 8 bits
	// are 1 plus the code length, or 0 if the value is too large to fit in
	// lutSize bits.
	lut [1 << lutSize]uint16
	// fast is indexed by the next fastBits bits and gives what image/jpeg's
	// decodeHuffman (lut, then the bit-by-bit walk) decodes from them, so
	// that malformed tables decode the same too:
	//	bits 0-7:   the decoded value (symbol);
	//	bits 8-11:  the code length, or 0 if the code needs more than
	//	            fastBits bits (then decode the slow way);
	//	bits 12-15: the code length plus the number of value bits that
	//	            follow it (RECEIVE/EXTEND), or 0 if these do not fit
	//	            or the symbol has none (see buildFast);
	//	bits 16-31: the extended value as an int16, when bits 12-15 are set.
	fast [1 << fastBits]uint32
	// vals are the decoded values, sorted by their encoding.
	vals [maxNCodes]uint8
	// minCodes[i] is the minimum code of length i, or -1 if there are no
	// codes of that length.
	minCodes [maxCodeLength]int32
	// maxCodes[i] is the maximum code of length i, or -1 if there are no
	// codes of that length.
	maxCodes [maxCodeLength]int32
	// valsIndices[i] is the index into vals of minCodes[i].
	valsIndices [maxCodeLength]int32
}

// errShortHuffmanData means that an unexpected EOF occurred while decoding
// Huffman data. The variable is an error (holding a FormatError) so that
// returning it does not allocate: fillBits can meet the end of the data
// several times at the end of a scan without it being an error.
var errShortHuffmanData error = FormatError("short Huffman data")

// fillBuffered tops the accumulator up, to between 56 and 63 bits where
// it can, from bytes already in d.bytes.buf: eight bytes without a 0xff in
// one go, otherwise one byte or 0xff 0x00 pair at a time. It stops short,
// without an error, at a 0xff that starts a marker or that it cannot yet
// tell from one, and never calls d.fill.
//
// Reading ahead like this does not change what the decoder does: only
// fillBits, called when a read needs more bits than d.bits holds, as
// image/jpeg's ensureNBits is, reads from the io.Reader or fails. When it
// does, every earlier byte is in d.bits in both decoders, so the Read calls
// and errors are the same. Bytes read ahead but unused when a scan ends
// are entropy-coded data, which the marker search after the scan skips.
func (d *decoder) fillBuffered() {
	for d.bits.n < 56 {
		i := d.bytes.i
		if i+8 <= d.bytes.j {
			x := binary.BigEndian.Uint64(d.bytes.buf[i : i+8])
			// The usual has-zero-byte test, on ^x: true if a byte of x
			// is 0xff.
			const lo, hi = 0x0101010101010101, 0x8080808080808080
			if (^x-lo)&x&hi == 0 {
				k := (63 - d.bits.n) >> 3 // whole bytes that fit, 1 to 7
				d.bits.a = d.bits.a<<(8*k) | x>>(64-8*k)
				d.bits.n += 8 * k
				d.bytes.i = i + int(k)
				continue
			}
		}
		if i+2 > d.bytes.j {
			return
		}
		c := d.bytes.buf[i]
		if c == 0xff {
			if d.bytes.buf[i+1] != 0x00 {
				return
			}
			i++
		}
		d.bytes.i = i + 1
		d.bits.a = d.bits.a<<8 | uint64(c)
		d.bits.n += 8
	}
}

// fillBits makes d.bits.n at least need (at most 56), reading ahead with
// fillBuffered and then one byte at a time as image/jpeg's ensureNBits
// does; the caller checks d.bits.n < need first. If the data ends or a
// marker comes first it returns ensureNBits's error (errShortHuffmanData,
// errMissingFF00 or the reader's error), with d.bytes stepped back to the
// marker's 0xff as image/jpeg's decodeHuffman does, so that a later read,
// or the marker search after the scan, sees it again.
func (d *decoder) fillBits(need uint) error {
	d.fillBuffered()
	for d.bits.n < need {
		c, err := d.readByteStuffedByte()
		if err != nil {
			d.bytes.i -= d.bytes.nUnreadable
			d.bytes.nUnreadable = 0
			if err == io.ErrUnexpectedEOF {
				return errShortHuffmanData
			}
			return err
		}
		d.bytes.nUnreadable = 0
		d.bits.a = d.bits.a<<8 | uint64(c)
		d.bits.n += 8
	}
	return nil
}

// peekFast returns the fast table entry for the next fastBits bits. The
// caller makes sure that d.bits.n >= fastBits.
func (d *decoder) peekFast(h *huffman) uint32 {
	return h.fast[(d.bits.a>>((d.bits.n-fastBits)&63))&(1<<fastBits-1)]
}

// receiveExtend is the composition of RECEIVE and EXTEND, specified in section
// F.2.2.1.
func (d *decoder) receiveExtend(t uint8) (int32, error) {
	if d.bits.n < uint(t) {
		if err := d.fillBits(uint(t)); err != nil {
			return 0, err
		}
	}
	d.bits.n -= uint(t)
	return extend(uint32(d.bits.a>>(d.bits.n&63)), t), nil
}

// extend returns the t low bits of x as the signed value they code
// (EXTEND, section F.2.2.1).
func extend(x uint32, t uint8) int32 {
	s := int32(1) << t
	v := int32(x) & (s - 1)
	if v < s>>1 {
		v += ((-1) << t) + 1
	}
	return v
}

// processDHT processes a Define Huffman Table marker, and initializes a huffman
// struct from its contents. Specified in section B.2.4.2.
func (d *decoder) processDHT(n int) error {
	for n > 0 {
		if n < 17 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(d.tmp[:17]); err != nil {
			return err
		}
		tc := d.tmp[0] >> 4
		if tc > maxTc {
			return FormatError("bad Tc value")
		}
		th := d.tmp[0] & 0x0f
		// The baseline th <= 1 restriction is specified in table B.5.
		if th > maxTh || (d.baseline && th > 1) {
			return FormatError("bad Th value")
		}
		h := &d.huff[tc][th]

		// Read nCodes and h.vals (and derive h.nCodes).
		// nCodes[i] is the number of codes with code length i.
		// h.nCodes is the total number of codes.
		h.nCodes = 0
		var nCodes [maxCodeLength]int32
		for i := range nCodes {
			nCodes[i] = int32(d.tmp[i+1])
			h.nCodes += nCodes[i]
		}
		if h.nCodes == 0 {
			return FormatError("Huffman table has zero length")
		}
		if h.nCodes > maxNCodes {
			return FormatError("Huffman table has excessive length")
		}
		n -= int(h.nCodes) + 17
		if n < 0 {
			return FormatError("DHT has wrong length")
		}
		if err := d.readFull(h.vals[:h.nCodes]); err != nil {
			return err
		}

		// Derive the look-up table.
		clear(h.lut[:])
		var x, code uint32
		for i := uint32(0); i < lutSize; i++ {
			code <<= 1
			for j := int32(0); j < nCodes[i]; j++ {
				// The codeLength is 1+i, so shift code by 8-(1+i) to
				// calculate the high bits for every 8-bit sequence
				// whose codeLength's high bits matches code.
				// The high 8 bits of lutValue are the encoded value.
				// The low 8 bits are 1 plus the codeLength.
				base := uint8(code << (7 - i))
				lutValue := uint16(h.vals[x])<<8 | uint16(2+i)
				for k := uint8(0); k < 1<<(7-i); k++ {
					h.lut[base|k] = lutValue
				}
				code++
				x++
			}
		}

		// Derive minCodes, maxCodes, and valsIndices.
		var c, index int32
		for i, n := range nCodes {
			if n == 0 {
				h.minCodes[i] = -1
				h.maxCodes[i] = -1
				h.valsIndices[i] = -1
			} else {
				h.minCodes[i] = c
				h.maxCodes[i] = c + n - 1
				h.valsIndices[i] = index
				c += n
				index += n
			}
			c <<= 1
		}
		h.buildFast(tc)
	}
	return nil
}

// buildFast derives h.fast from h.lut and the code tables, for a DC (tc 0)
// or AC (tc 1) table. Each entry is what image/jpeg's decodeHuffman would
// decode from that bit pattern, worked out the way it does it: h.lut if it
// has the code, otherwise the bit-by-bit walk. A DC value is the size of
// the difference that follows; an AC value is a run (high nibble) and a
// size (low nibble), with size 0 meaning EOB or ZRL, which have no value
// bits and are left to the caller.
func (h *huffman) buildFast(tc uint8) {
	const extra = fastBits - lutSize
	for top := range uint32(1 << lutSize) {
		v := h.lut[top]
		for low := range uint32(1 << extra) {
			idx := top<<extra | low
			sym, codeLen := uint8(v>>8), uint32(v&0xff)-1
			if v == 0 {
				// h.lut has no code here, so the walk finds none of
				// lutSize bits or fewer either (each such code is in
				// h.lut, if need be under a later one that overwrote
				// it): go on from there.
				codeLen = 0
				for i := uint32(lutSize); i < fastBits; i++ {
					if code := int32(idx >> (fastBits - 1 - i)); code <= h.maxCodes[i] {
						sym, codeLen = h.vals[h.valsIndices[i]+code-h.minCodes[i]], i+1
						break
					}
				}
				if codeLen == 0 {
					h.fast[idx] = 0
					continue
				}
			}
			e := uint32(sym) | codeLen<<8
			size := uint32(sym)
			if tc == acTable {
				size &= 0x0f
			}
			// An AC size of 0 is EOB or ZRL. A DC size above 16, an error
			// the caller reports, never fits in fastBits.
			if total := codeLen + size; (tc == dcTable || size != 0) && total <= fastBits {
				x := idx >> (fastBits - total)
				e |= total<<12 | uint32(uint16(int16(extend(x, uint8(size)))))<<16
			}
			h.fast[idx] = e
		}
	}
}

// decodeHuffman returns the next Huffman-coded value from the bit-stream,
// decoded according to h.
func (d *decoder) decodeHuffman(h *huffman) (uint8, error) {
	if h.nCodes == 0 {
		return 0, FormatError("uninitialized Huffman table")
	}
	if d.bits.n < maxCodeLength {
		d.fillBuffered()
	}
	if d.bits.n >= fastBits {
		if e := d.peekFast(h); e&0xf00 != 0 {
			d.bits.n -= uint(e>>8) & 0x0f
			return uint8(e), nil
		}
		if d.bits.n >= maxCodeLength {
			return d.decodeHuffmanLong(h)
		}
		return d.decodeHuffmanWalk(h)
	}
	// Near a marker or the end of the buffered data: image/jpeg's way.
	if d.bits.n < lutSize {
		if err := d.fillBits(lutSize); err != nil {
			if err != errMissingFF00 && err != errShortHuffmanData {
				return 0, err
			}
			// There are no more bytes of data in this segment, but we may
			// still be able to read the next symbol out of the bits we have.
			return d.decodeHuffmanWalk(h)
		}
	}
	if v := h.lut[(d.bits.a>>((d.bits.n-lutSize)&63))&0xff]; v != 0 {
		d.bits.n -= uint(v&0xff) - 1
		return uint8(v >> 8), nil
	}
	return d.decodeHuffmanWalk(h)
}

// decodeHuffmanLong decodes a code that h.fast does not hold, with at
// least 16 bits in d.bits. h.fast holding nothing means that h.lut had
// nothing and the bit-by-bit walk found no code in the first fastBits bits,
// so this takes up the walk from there, a length at a time.
func (d *decoder) decodeHuffmanLong(h *huffman) (uint8, error) {
	peek := int32(d.bits.a>>((d.bits.n-maxCodeLength)&63)) & (1<<maxCodeLength - 1)
	for i := fastBits; i < maxCodeLength; i++ {
		if code := peek >> (maxCodeLength - 1 - i); code <= h.maxCodes[i] {
			d.bits.n -= uint(i) + 1
			return h.vals[h.valsIndices[i]+code-h.minCodes[i]], nil
		}
	}
	d.bits.n -= maxCodeLength
	return 0, FormatError("bad Huffman code")
}

// decodeHuffmanWalk decodes a code one bit at a time: image/jpeg's slow
// path, for codes the look-up tables do not hold.
func (d *decoder) decodeHuffmanWalk(h *huffman) (uint8, error) {
	for i, code := 0, int32(0); i < maxCodeLength; i++ {
		if d.bits.n == 0 {
			if err := d.fillBits(1); err != nil {
				return 0, err
			}
		}
		d.bits.n--
		code |= int32(d.bits.a>>(d.bits.n&63)) & 1
		if code <= h.maxCodes[i] {
			return h.vals[h.valsIndices[i]+code-h.minCodes[i]], nil
		}
		code <<= 1
	}
	return 0, FormatError("bad Huffman code")
}

func (d *decoder) decodeBit() (bool, error) {
	if d.bits.n == 0 {
		if err := d.fillBits(1); err != nil {
			return false, err
		}
	}
	d.bits.n--
	return d.bits.a>>(d.bits.n&63)&1 != 0, nil
}

func (d *decoder) decodeBits(n int32) (uint32, error) {
	if d.bits.n < uint(n) {
		if err := d.fillBits(uint(n)); err != nil {
			return 0, err
		}
	}
	d.bits.n -= uint(n)
	return uint32(d.bits.a>>(d.bits.n&63)) & (1<<uint32(n) - 1), nil
}
