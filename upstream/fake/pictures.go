package fake

import (
	"bytes"
	"compress/zlib"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
)

// maxPictureSide bounds the generated pictures: the CDN's largest is 720.
const maxPictureSide = 4096

// Portrait returns a deterministic size x size JPEG (quality 85) that looks
// like a WhatsApp avatar: most seeds give a head-and-shoulders figure on a
// coloured background, some an abstract pattern; colours and proportions vary
// with seed. It panics unless 1 <= size <= 4096. The caller owns the slice.
func Portrait(seed string, size int) []byte {
	checkSide("Portrait", size, size)
	r := newSeeded(seed)
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	s := float64(size)

	bgTop := hsv(r.unit()*360, 0.30+0.25*r.unit(), 0.80+0.15*r.unit())
	bgBottom := shade(bgTop, 0.80)
	abstract := r.intn(4) == 0

	// Figure parameters, drawn before the pixel loop so every pixel sees the same.
	skin := skinTones[r.intn(len(skinTones))]
	hair := hairTones[r.intn(len(hairTones))]
	cloth := hsv(r.unit()*360, 0.45+0.3*r.unit(), 0.35+0.35*r.unit())
	headX, headY := 0.5+0.06*(r.unit()-0.5), 0.40+0.04*(r.unit()-0.5)
	headR := 0.17 + 0.04*r.unit()
	shoulderW := 0.34 + 0.08*r.unit()

	// Abstract parameters.
	ringA := hsv(r.unit()*360, 0.6, 0.9)
	ringB := hsv(r.unit()*360, 0.5, 0.6)
	rings := 3 + r.intn(5)
	cx, cy := 0.2+0.6*r.unit(), 0.2+0.6*r.unit()

	for y := 0; y < size; y++ {
		fy := (float64(y) + 0.5) / s
		row := mix(bgTop, bgBottom, fy)
		for x := 0; x < size; x++ {
			fx := (float64(x) + 0.5) / s
			c := row
			if abstract {
				d := math.Hypot(fx-cx, fy-cy) * float64(rings) * 2
				t := 0.5 + 0.5*math.Sin(d*math.Pi)
				c = mix(ringA, ringB, t)
				c = mix(c, row, 0.25)
			} else {
				// Shoulders, then hair behind the head, then the face.
				c = mix(c, cloth, ellipseCover(fx, fy, 0.5, 1.04, shoulderW, 0.33, s))
				c = mix(c, hair, ellipseCover(fx, fy, headX, headY-0.025, headR*1.08, headR*1.05, s))
				c = mix(c, skin, ellipseCover(fx, fy, headX, headY+0.012, headR*0.92, headR, s))
				eye := headR * 0.09
				c = mix(c, eyeTone, ellipseCover(fx, fy, headX-headR*0.35, headY, eye, eye, s))
				c = mix(c, eyeTone, ellipseCover(fx, fy, headX+headR*0.35, headY, eye, eye, s))
			}
			img.SetRGBA(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		panic(err) // writing to memory does not fail
	}
	return buf.Bytes()
}

// PNG returns a deterministic w x h PNG with a diagonal pattern coloured by
// seed, for non-JPEG and non-square cases. It panics unless both sides are
// 1..4096. The caller owns the slice.
func PNG(seed string, w, h int) []byte {
	checkSide("PNG", w, h)
	r := newSeeded(seed)
	a, b := hsv(r.unit()*360, 0.6, 0.9), hsv(r.unit()*360, 0.6, 0.5)
	period := 8 + r.intn(24)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := a
			if ((x+y)/period)%2 == 1 {
				c = b
			}
			img.SetNRGBA(x, y, color.NRGBA(c))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Bomb returns a PNG of a few hundred bytes that declares w x h RGBA pixels
// (up to 2^31-1 each side) but carries only a short run of zero rows: a
// decoder that trusts the header allocates w*h*4 bytes before finding the
// data short. image.DecodeConfig reports w x h.
func Bomb(w, h int) []byte {
	if w < 1 || h < 1 || w > math.MaxInt32 || h > math.MaxInt32 {
		panic(fmt.Sprintf("fake: Bomb(%d, %d): sides must be 1..2^31-1", w, h))
	}
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8] = 8  // bit depth
	ihdr[9] = 6  // colour type: RGBA
	ihdr[10] = 0 // compression: deflate
	ihdr[11] = 0 // filter method
	ihdr[12] = 0 // no interlace
	pngChunk(&buf, "IHDR", ihdr)

	// Up to 64 KiB of zeros (filter byte 0, transparent black pixels)
	// deflate to about a hundred bytes. A bomb small enough to be covered
	// gets exactly its data and decodes; a big one runs out.
	n := min(uint64(64<<10), (1+4*uint64(w))*uint64(h))
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	_, _ = zw.Write(make([]byte, n))
	_ = zw.Close()
	pngChunk(&buf, "IDAT", z.Bytes())
	pngChunk(&buf, "IEND", nil)
	return buf.Bytes()
}

func pngChunk(buf *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	buf.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	buf.WriteString(typ)
	buf.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	buf.Write(n[:])
}

func checkSide(fn string, w, h int) {
	if w < 1 || h < 1 || w > maxPictureSide || h > maxPictureSide {
		panic(fmt.Sprintf("fake: %s(%d x %d): sides must be 1..%d", fn, w, h, maxPictureSide))
	}
}

var (
	skinTones = []color.RGBA{
		{255, 224, 196, 255}, {241, 194, 150, 255}, {224, 172, 105, 255},
		{198, 134, 66, 255}, {141, 85, 36, 255}, {92, 56, 30, 255},
	}
	eyeTone   = color.RGBA{30, 22, 20, 255}
	hairTones = []color.RGBA{
		{35, 25, 20, 255}, {70, 45, 30, 255}, {120, 80, 40, 255},
		{190, 150, 90, 255}, {130, 130, 130, 255}, {20, 20, 24, 255},
	}
)

// seeded is a tiny deterministic generator: SHA-256 in counter mode, so a
// seed always draws the same parameters on every platform and Go version
// (math/rand's streams are not promised to stay the same).
type seeded struct {
	seed string
	n    uint64
}

func newSeeded(seed string) *seeded { return &seeded{seed: seed} }

func (s *seeded) next() uint64 {
	var ctr [8]byte
	binary.BigEndian.PutUint64(ctr[:], s.n)
	s.n++
	h := sha256.Sum256(append([]byte(s.seed+"\x00"), ctr[:]...))
	return binary.BigEndian.Uint64(h[:8])
}

// unit is uniform in [0, 1).
func (s *seeded) unit() float64 { return float64(s.next()>>11) / (1 << 53) }

func (s *seeded) intn(n int) int { return int(s.next() % uint64(n)) }

// ellipseCover is how much of the pixel at (fx, fy) (unit coordinates) an
// ellipse covers, with a one-pixel soft edge so outlines do not stair-step.
func ellipseCover(fx, fy, cx, cy, rx, ry, size float64) float64 {
	dx, dy := (fx-cx)/rx, (fy-cy)/ry
	d := math.Sqrt(dx*dx + dy*dy)
	edge := (d - 1) * math.Min(rx, ry) * size // signed distance in pixels, roughly
	return math.Max(0, math.Min(1, 0.5-edge))
}

func mix(a, b color.RGBA, t float64) color.RGBA {
	if t <= 0 {
		return a
	}
	if t >= 1 {
		return b
	}
	l := func(x, y uint8) uint8 { return uint8(float64(x)*(1-t) + float64(y)*t + 0.5) }
	return color.RGBA{l(a.R, b.R), l(a.G, b.G), l(a.B, b.B), 255}
}

func shade(c color.RGBA, f float64) color.RGBA {
	return color.RGBA{uint8(float64(c.R) * f), uint8(float64(c.G) * f), uint8(float64(c.B) * f), 255}
}

// hsv converts hue (degrees), saturation and value (0..1) to an opaque colour.
func hsv(h, s, v float64) color.RGBA {
	h = math.Mod(h, 360) / 60
	c := v * s
	x := c * (1 - math.Abs(math.Mod(h, 2)-1))
	var r, g, b float64
	switch int(h) {
	case 0:
		r, g, b = c, x, 0
	case 1:
		r, g, b = x, c, 0
	case 2:
		r, g, b = 0, c, x
	case 3:
		r, g, b = 0, x, c
	case 4:
		r, g, b = x, 0, c
	default:
		r, g, b = c, 0, x
	}
	m := v - c
	to := func(f float64) uint8 { return uint8(math.Round((f + m) * 255)) }
	return color.RGBA{to(r), to(g), to(b), 255}
}
