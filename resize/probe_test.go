package resize

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/color/palette"
	"image/gif"
	"runtime"
	"testing"
)

// Tiny WebP files (1x1) from the well-known feature-detection snippets;
// golang.org/x/image has no WebP encoder to make our own.
var (
	webpLossy, _    = base64.StdEncoding.DecodeString("UklGRiIAAABXRUJQVlA4IBYAAAAwAQCdASoBAAEADsD+JaQAA3AAAAAA")
	webpLossless, _ = base64.StdEncoding.DecodeString("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")
	webpAlpha, _    = base64.StdEncoding.DecodeString("UklGRkoAAABXRUJQVlA4WAoAAAAQAAAAAAAAAAAAQUxQSAwAAAARBxAR/Q9ERP8DAABWUDggGAAAABQBAJ0BKgEAAQAAAP4AAA3AAP7mtQAAAA==")
	webpAnimated, _ = base64.StdEncoding.DecodeString("UklGRlIAAABXRUJQVlA4WAoAAAASAAAAAAAAAAAAQU5JTQYAAAD/////AABBTk1GJgAAAAAAAAAAAAAAAAAAAGQAAABWUDhMDQAAAC8AAAAQBxAREYiI/gcA")
)

// pngChunk appends one PNG chunk with its CRC.
func pngChunk(b []byte, typ string, data []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	start := len(b)
	b = append(b, typ...)
	b = append(b, data...)
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b[start:]))
}

// bombPNG builds a small, well-formed PNG whose header declares w x h RGBA
// pixels, with the first rows of zero pixel data: a decompression bomb.
func bombPNG(tb testing.TB, w, h, rows int) []byte {
	return zeroPNG(tb, w, h, 8, 0, rows)
}

// zeroPNG is an RGBA PNG of w x h at depth 8 or 16, interlaced (Adam7) or
// not, with rows rows of zero data: all of them make a valid
// non-interlaced file, fewer a truncated one.
// smallFrameGIF is a GIF whose screen is edge square and whose one frame
// is 16x16 in its corner: decoding it takes a full-screen canvas.
func smallFrameGIF(tb testing.TB, edge int) []byte {
	tb.Helper()
	frame := image.NewPaletted(image.Rect(0, 0, 16, 16), palette.Plan9)
	var b bytes.Buffer
	err := gif.EncodeAll(&b, &gif.GIF{
		Image: []*image.Paletted{frame}, Delay: []int{0},
		Config: image.Config{ColorModel: frame.Palette, Width: edge, Height: edge},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func zeroPNG(tb testing.TB, w, h int, depth, interlace byte, rows int) []byte {
	tb.Helper()
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	ihdr = append(ihdr, depth, 6, 0, 0, interlace) // RGBA, deflate, filter 0
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	row := make([]byte, 1+4*w*int(depth/8))
	for range rows {
		zw.Write(row)
	}
	zw.Close()
	b := []byte("\x89PNG\r\n\x1a\n")
	b = pngChunk(b, "IHDR", ihdr)
	b = pngChunk(b, "IDAT", z.Bytes())
	return pngChunk(b, "IEND", nil)
}

// hugeJPEG patches a valid JPEG's SOF0 frame header to claim w x h.
func hugeJPEG(tb testing.TB, w, h int) []byte {
	tb.Helper()
	b := bytes.Clone(jpegBytes(tb, photo(16, 16, 1), 80))
	i := bytes.Index(b, []byte{0xff, 0xc0})
	if i < 0 {
		tb.Fatal("no SOF0 in test JPEG")
	}
	binary.BigEndian.PutUint16(b[i+5:], uint16(h))
	binary.BigEndian.PutUint16(b[i+7:], uint16(w))
	return b
}

func gifBytes(tb testing.TB, w, h int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	m := image.NewPaletted(image.Rect(0, 0, w, h), palette.Plan9)
	for i := range m.Pix {
		m.Pix[i] = uint8(i % 200)
	}
	if err := gif.Encode(&buf, m, nil); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func TestProbe(t *testing.T) {
	jpg := jpegBytes(t, photo(64, 48, 1), 80)
	for _, tc := range []struct {
		name    string
		src     []byte
		lim     Limits
		want    Info
		wantErr error
	}{
		{"jpeg", jpg, Limits{}, Info{"jpeg", 64, 48}, nil},
		{"png", pngBytes(t, photo(20, 30, 1)), Limits{}, Info{"png", 20, 30}, nil},
		{"gif", gifBytes(t, 7, 5), Limits{}, Info{"gif", 7, 5}, nil},
		{"webp lossy", webpLossy, Limits{}, Info{"webp", 1, 1}, nil},
		{"webp lossless", webpLossless, Limits{}, Info{"webp", 1, 1}, nil},
		{"webp alpha", webpAlpha, Limits{}, Info{"webp", 1, 1}, nil},
		{"webp animated", webpAnimated, Limits{}, Info{}, ErrUnsupported},
		{"empty", nil, Limits{}, Info{}, ErrNotImage},
		{"html", []byte("<!DOCTYPE html><html><body>403 Forbidden</body></html>"), Limits{}, Info{}, ErrNotImage},
		{"json", []byte(`{"error":"URL signature expired"}`), Limits{}, Info{}, ErrNotImage},
		{"text", []byte("URL signature expired"), Limits{}, Info{}, ErrNotImage},
		{"jpeg magic only", []byte{0xff, 0xd8, 0xff}, Limits{}, Info{}, ErrCorrupt},
		{"png header cut", pngBytes(t, photo(4, 4, 1))[:20], Limits{}, Info{}, ErrCorrupt},
		{"bmp", append([]byte("BM"), make([]byte, 60)...), Limits{}, Info{}, ErrUnsupported},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), Limits{}, Info{}, ErrUnsupported},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00"), Limits{}, Info{}, ErrUnsupported},
		{"svg", []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>`), Limits{}, Info{}, ErrUnsupported},
		{"too many bytes", jpg, Limits{MaxBytes: len(jpg) - 1}, Info{}, ErrTooLarge},
		{"exactly max bytes", jpg, Limits{MaxBytes: len(jpg)}, Info{"jpeg", 64, 48}, nil},
		{"png bomb 30000x30000", bombPNG(t, 30000, 30000, 64), Limits{}, Info{}, ErrTooManyPixels},
		{"jpeg claims 65535x65535", hugeJPEG(t, 65535, 65535), Limits{}, Info{}, ErrTooManyPixels},
		{"over a custom pixel limit", jpg, Limits{MaxPixels: 64*48 - 1}, Info{}, ErrTooManyPixels},
		{"at a custom pixel limit", jpg, Limits{MaxPixels: 64 * 48}, Info{"jpeg", 64, 48}, nil},
		{"jpeg at the default pixel limit", hugeJPEG(t, 2048, 2048), Limits{}, Info{"jpeg", 2048, 2048}, nil},
		{"jpeg over the default pixel limit", hugeJPEG(t, 2049, 2048), Limits{}, Info{}, ErrTooManyPixels},
		{"jpeg claims 0 wide", hugeJPEG(t, 0, 16), Limits{}, Info{}, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Probe(tc.src, tc.lim)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("info = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestBombRefusedCheaply: a few-KB PNG declaring 30000x30000 (3.6 GB of
// RGBA) must be refused from its header, allocating next to nothing.
func TestBombRefusedCheaply(t *testing.T) {
	bomb := bombPNG(t, 30000, 30000, 64)
	if len(bomb) > 16<<10 {
		t.Fatalf("bomb is %d bytes, want a few KB", len(bomb))
	}
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"Probe", func() error { _, err := Probe(bomb, Limits{}); return err }},
		{"Decode", func() error { _, err := Decode(bomb, Limits{}); return err }},
		{"Render", func() error { _, err := Render(bomb, Spec{Size: 128}, Limits{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, ErrTooManyPixels) {
				t.Fatalf("err = %v, want ErrTooManyPixels", err)
			}
			allocs := testing.AllocsPerRun(20, func() { tc.fn() })
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const runs = 20
			for range runs {
				tc.fn()
			}
			runtime.ReadMemStats(&after)
			perRun := (after.TotalAlloc - before.TotalAlloc) / runs
			t.Logf("%.0f allocs, %d bytes per call", allocs, perRun)
			// png.DecodeConfig reads the header through a small bufio and
			// zlib is never started: a few KB. A decode would need 3.6 GB.
			if perRun > 64<<10 {
				t.Errorf("allocated %d bytes per call, want < 64 KiB", perRun)
			}
			if allocs > 50 {
				t.Errorf("%.0f allocations per call, want few", allocs)
			}
		})
	}
}

// manyScansJPEG builds a w x h progressive JPEG of comps components (1:
// gray, 4: Adobe CMYK) and n AC refinement scans, scan i of component
// i%comps, each one EOB run: about 12 bytes a scan, yet image/jpeg walks
// every block of the component per scan (libjpeg-turbo's LJT-01-003).
func manyScansJPEG(w, h, comps, n int) []byte {
	var b bytes.Buffer
	seg := func(marker byte, p []byte) {
		b.Write([]byte{0xff, marker, byte((len(p) + 2) >> 8), byte(len(p) + 2)})
		b.Write(p)
	}
	b.Write([]byte{0xff, 0xd8})
	seg(0xdb, append([]byte{0}, bytes.Repeat([]byte{1}, 64)...))
	if comps == 4 {
		seg(0xee, []byte("Adobe\x00\x64\x00\x00\x00\x00\x00")) // transform 0: CMYK
	}
	sof := []byte{8, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(comps)}
	for i := range comps {
		sof = append(sof, byte(i+1), 0x11, 0)
	}
	seg(0xc2, sof)
	// One 1-bit code (0) per table: DC symbol 0; AC 0xe0, an EOB run of
	// 2^14 plus 14 value bits.
	seg(0xc4, append([]byte{0x00, 1}, append(make([]byte, 15), 0x00)...))
	seg(0xc4, append([]byte{0x10, 1}, append(make([]byte, 15), 0xe0)...))
	// Each EOB run is 15 zero bits (the code, then 14 value bits of 0: a
	// run of exactly 2^14); a last run past the end is harmless. The
	// final byte is padded with 1 bits.
	bits := 15 * (((w+7)/8*((h+7)/8) + 1<<14 - 1) >> 14)
	data := make([]byte, bits/8, bits/8+1)
	if bits%8 != 0 {
		data = append(data, 0xff>>(bits%8))
	}
	for i := range n {
		seg(0xda, []byte{1, byte(i%comps + 1), 0x00, 1, 63, 0x10})
		b.Write(data)
	}
	b.Write([]byte{0xff, 0xd9})
	return b.Bytes()
}

// TestManyScansRefusedCheaply: a 1600x1600 progressive JPEG (inside the
// default pixel and memory caps) of a thousand EOB-run scans, 16 KB that
// take seconds of CPU through image/jpeg, is refused with ErrUnsupported
// by every entry point, shrink-on-load or not, after the 16 passes the
// scan budget allows.
func TestManyScansRefusedCheaply(t *testing.T) {
	src := manyScansJPEG(1600, 1600, 1, 1000)
	for _, tc := range []struct {
		name string
		fn   func() error
	}{
		{"Decode", func() error { _, err := Decode(src, Limits{}); return err }},
		{"Render 128", func() error { _, err := Render(src, Spec{Size: 128}, Limits{}); return err }},
		{"Render full size", func() error { _, err := Render(src, Spec{}, Limits{}); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v, want ErrUnsupported", err)
			}
		})
	}
	// The same shape within the budget still decodes.
	if _, err := Decode(manyScansJPEG(64, 64, 1, 16), Limits{}); err != nil {
		t.Errorf("16 scans: %v", err)
	}
}

// TestMemoryBudget: the pixel cap holds a decode to 4 bytes a pixel of
// MaxPixels; formats that take more are refused from their header when
// they would pass that, and decode when they fit. The progressive CMYK
// file (about 300 bytes at 4000x4000) took 366 MiB to Decode under the
// old 16 MP cap; at 2048x2048 it would take 100 MiB.
func TestMemoryBudget(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     []byte
		wantErr error
	}{
		{"progressive CMYK 4000x4000", manyScansJPEG(4000, 4000, 4, 4), ErrTooManyPixels},
		{"progressive CMYK 2048x2048", manyScansJPEG(2048, 2048, 4, 4), ErrTooManyPixels},
		{"progressive gray 2048x2048", manyScansJPEG(2048, 2048, 1, 1), ErrTooManyPixels},
		{"16-bit PNG 2048x2048", zeroPNG(t, 2048, 2048, 16, 0, 1), ErrTooManyPixels},
		{"interlaced PNG 2048x2048", zeroPNG(t, 2048, 2048, 8, 1, 1), ErrTooManyPixels},
		{"progressive CMYK 800x800", manyScansJPEG(800, 800, 4, 4), nil},
		{"progressive gray 1600x1600", manyScansJPEG(1600, 1600, 1, 1), nil},
		{"16-bit PNG 1024x1024", zeroPNG(t, 1024, 1024, 16, 0, 1024), nil},
		{"GIF 2048x2048, a 16x16 frame", smallFrameGIF(t, 2048), ErrTooManyPixels},
		{"GIF 1024x1024, a 16x16 frame", smallFrameGIF(t, 1024), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decode := func() error { _, err := Decode(tc.src, Limits{}); return err }
			render := func() error { _, err := Render(tc.src, Spec{Size: 128}, Limits{}); return err }
			for _, err := range []error{decode(), render()} {
				if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			}
			if tc.wantErr == nil {
				return
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			const runs = 10
			for range runs {
				decode()
				render()
			}
			runtime.ReadMemStats(&after)
			// Headers only: tens of KB at most.
			if perRun := (after.TotalAlloc - before.TotalAlloc) / (2 * runs); perRun > 1<<20 {
				t.Errorf("allocated %d bytes per call, want < 1 MiB", perRun)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	jpg := jpegBytes(t, photo(64, 48, 1), 80)
	png := pngBytes(t, photo(20, 30, 1))
	for _, tc := range []struct {
		name    string
		src     []byte
		w, h    int
		wantErr error
	}{
		{"jpeg", jpg, 64, 48, nil},
		{"png", png, 20, 30, nil},
		{"gif", gifBytes(t, 7, 5), 7, 5, nil},
		{"webp lossy", webpLossy, 1, 1, nil},
		{"webp lossless", webpLossless, 1, 1, nil},
		{"webp alpha", webpAlpha, 1, 1, nil},
		{"truncated jpeg", jpg[:len(jpg)/2], 0, 0, ErrCorrupt},
		{"jpeg without EOI and half the scan", jpg[:len(jpg)*3/4], 0, 0, ErrCorrupt},
		{"truncated png", png[:len(png)-40], 0, 0, ErrCorrupt},
		{"truncated gif", gifBytes(t, 30, 30)[:40], 0, 0, ErrCorrupt},
		{"jpeg header claims 65535 square", hugeJPEG(t, 65535, 65535), 0, 0, ErrTooManyPixels},
		{"jpeg header claims 2000x2000 (allowed, data missing)", hugeJPEG(t, 2000, 2000), 0, 0, ErrCorrupt},
		{"html", []byte("<html>"), 0, 0, ErrNotImage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Decode(tc.src, Limits{})
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				if img != nil {
					t.Errorf("image %T returned with error", img)
				}
				return
			}
			if got := img.Bounds(); got != image.Rect(0, 0, tc.w, tc.h) {
				t.Errorf("bounds %v, want %dx%d", got, tc.w, tc.h)
			}
		})
	}
}

// A GIF whose first frame covers part of the screen decodes to the whole
// screen, the rest transparent.
func TestDecodeGIFPartialFrame(t *testing.T) {
	pal := color.Palette{color.Transparent, color.RGBA{255, 0, 0, 255}}
	frame := image.NewPaletted(image.Rect(2, 2, 6, 6), pal)
	for i := range frame.Pix {
		frame.Pix[i] = 1
	}
	second := image.NewPaletted(image.Rect(0, 0, 10, 8), pal)
	var buf bytes.Buffer
	err := gif.EncodeAll(&buf, &gif.GIF{
		Image:  []*image.Paletted{frame, second},
		Delay:  []int{0, 0},
		Config: image.Config{ColorModel: pal, Width: 10, Height: 8},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := Decode(buf.Bytes(), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds(); got != image.Rect(0, 0, 10, 8) {
		t.Fatalf("bounds %v, want the 10x8 screen", got)
	}
	if _, _, _, a := img.At(0, 0).RGBA(); a != 0 {
		t.Errorf("outside the frame alpha = %d, want transparent", a)
	}
	if r, _, _, a := img.At(3, 3).RGBA(); r>>8 != 255 || a>>8 != 255 {
		t.Errorf("inside the first frame = %v, want opaque red", img.At(3, 3))
	}
}
