package placeholder

import (
	"image"
	"sync"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/font/sfnt"
	"golang.org/x/image/math/fixed"
)

const (
	// capShare is the cap height of the initials as a share of the edge.
	capShare = 0.34
	// maxInkShare bounds the ink width as a share of the edge, so wide
	// pairs such as "WM" stay inside the circle that WhatsApp-style
	// clients crop avatars to.
	maxInkShare = 0.62
	// minTextSize is the smallest edge that gets letters: below it they
	// would be a few grey pixels, and the plain colour reads better.
	minTextSize = 10
)

// boldFont is Go Bold, parsed once. The *sfnt.Font is safe for concurrent
// use; font.Face values are not, so Draw builds its own (opentype.NewFace is
// a small allocation with no parsing).
var boldFont = sync.OnceValue(func() *sfnt.Font {
	f, err := opentype.Parse(gobold.TTF)
	if err != nil {
		// The font is compiled in; failing to parse it is a build defect.
		panic("placeholder: parse Go Bold: " + err.Error())
	}
	return f
})

// hasGlyphs reports whether the font has a glyph for every rune of s.
func hasGlyphs(f *sfnt.Font, s string) bool {
	var buf sfnt.Buffer
	for _, r := range s {
		if i, err := f.GlyphIndex(&buf, r); err != nil || i == 0 {
			return false
		}
	}
	return true
}

// drawInitials draws text in white, centred on img, and reports whether it
// did. It returns false for empty text or a rune the font cannot draw, so the
// caller can draw a silhouette instead; tiny images get neither and return
// true, leaving the plain background.
func drawInitials(img *image.NRGBA, text string) bool {
	f := boldFont()
	if text == "" || !hasGlyphs(f, text) {
		return false
	}
	edge := img.Rect.Dx()
	if edge < minTextSize {
		return true
	}

	// Size the em so the cap height is capShare of the edge, then shrink if
	// the ink is too wide. Without hinting, outlines scale linearly, so
	// one re-measure is exact.
	unitsPerEm := float64(f.UnitsPerEm())
	capUnits := capHeightUnits(f)
	em := capShare * float64(edge) * unitsPerEm / capUnits
	face, err := newFace(f, em)
	if err != nil {
		return false
	}
	ink, _ := font.BoundString(face, text)
	if w := fixedToFloat(ink.Max.X - ink.Min.X); w > maxInkShare*float64(edge) {
		em *= maxInkShare * float64(edge) / w
		if face, err = newFace(f, em); err != nil {
			return false
		}
		ink, _ = font.BoundString(face, text)
	}

	// Horizontally the ink is centred, since side bearings differ per letter
	// ("J", "L"). Vertically the cap height, a font metric, is centred, so
	// every capital sits on the same baseline whatever its own extent:
	// accents rise above the cap line and descenders ("Q", "Ц") drop below,
	// as a designer would set them.
	capPx := em * capUnits / unitsPerEm
	half := float64(edge) / 2
	dot := fixed.Point26_6{
		X: floatToFixed(half) - (ink.Min.X+ink.Max.X)/2,
		Y: floatToFixed(half + capPx/2),
	}
	d := font.Drawer{Dst: rgbaView(img), Src: image.White, Face: face, Dot: dot}
	d.DrawString(text)
	return true
}

// capHeightUnits returns the cap height of f in font units, falling back to
// the height of "H" should the font not record it.
func capHeightUnits(f *sfnt.Font) float64 {
	var buf sfnt.Buffer
	ppem := fixed.Int26_6(f.UnitsPerEm())
	m, err := f.Metrics(&buf, ppem, font.HintingNone)
	if err == nil && m.CapHeight > 0 {
		return float64(m.CapHeight)
	}
	if i, err := f.GlyphIndex(&buf, 'H'); err == nil && i != 0 {
		if b, _, err := f.GlyphBounds(&buf, i, ppem, font.HintingNone); err == nil {
			return float64(-b.Min.Y)
		}
	}
	return 0.7 * float64(f.UnitsPerEm())
}

// newFace returns a face of f with an em of em pixels. Faces are cheap (no
// parsing, no tables) but hold scratch buffers, so each Draw makes its own
// rather than sharing one across goroutines.
func newFace(f *sfnt.Font, em float64) (font.Face, error) {
	return opentype.NewFace(f, &opentype.FaceOptions{Size: em, DPI: 72, Hinting: font.HintingNone})
}

func fixedToFloat(v fixed.Int26_6) float64 { return float64(v) / 64 }
func floatToFixed(v float64) fixed.Int26_6 { return fixed.Int26_6(v*64 + 0.5) }
