// Package placeholder draws the pictures served when a chat has no avatar:
// coloured initials, a neutral person silhouette, a group glyph, or a fully
// transparent square. It is pure computation on images: it knows nothing of
// gateways, caching, HTTP or encoding, and its output depends only on Params.
package placeholder

import (
	"hash/fnv"
	"image"
	"image/color"
	"strconv"
)

// Kind selects what Draw renders.
type Kind uint8

const (
	// Initials draws up to two letters of Params.Name on a colour chosen by
	// Params.Seed, falling back to a silhouette on that colour (a group's
	// with Params.Group) when the name has no letter or the font lacks a
	// glyph for one.
	Initials Kind = iota + 1
	// Person draws a neutral head-and-shoulders silhouette.
	Person
	// Group draws three overlapping silhouettes.
	Group
	// Blank is fully transparent.
	Blank
)

// String returns the lower-case name of k, or "kind(N)" for an unknown value.
func (k Kind) String() string {
	switch k {
	case Initials:
		return "initials"
	case Person:
		return "person"
	case Group:
		return "group"
	case Blank:
		return "blank"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Size bounds for Params.Size; Draw clamps into this range.
const (
	MinSize = 1
	MaxSize = 1024
)

// Params describes one placeholder picture. The zero Kind (and any unknown
// Kind) draws Person, so a caller that forgets to choose still gets a
// sensible image.
type Params struct {
	Kind Kind
	// Name is the display name, used by Initials only; see InitialsOf.
	Name string
	// Seed is stable per chat (the chat id). It picks the Initials
	// background colour, so the same chat always gets the same colour.
	Seed string
	// Size is the edge in pixels, clamped to MinSize..MaxSize.
	Size int
	// Group makes the Initials fallback the group glyph instead of the
	// person: a group named in a script the font lacks is still a group.
	Group bool
}

// Draw renders p as a Size x Size image. It never fails and is safe for
// concurrent use; the caller owns the returned image. Every kind but Blank is
// fully opaque; Blank is fully transparent (alpha 0 everywhere), so an
// encoder without alpha must flatten it onto a background of its choosing.
func Draw(p Params) *image.NRGBA {
	size := min(max(p.Size, MinSize), MaxSize)
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	switch p.Kind {
	case Blank:
		return img
	case Initials:
		bg := seedColor(p.Seed)
		fill(img, bg)
		if !drawInitials(img, InitialsOf(p.Name)) {
			if p.Group {
				drawGroup(img, onColourFigureBack, bg, onColourFigure)
			} else {
				drawPerson(img, onColourFigure)
			}
		}
	case Group:
		fill(img, greyBackground)
		drawGroup(img, greyFigureBack, greyBackground, greyFigure)
	default:
		fill(img, greyBackground)
		drawPerson(img, greyFigure)
	}
	return img
}

// palette holds the Initials backgrounds. Each is dark enough for white bold
// text to meet WCAG 2 contrast of at least 3:1 (the large-text threshold),
// and they are spread around the hue circle so neighbouring chats differ.
// The order is part of the output: changing it recolours every chat.
var palette = [...]color.NRGBA{
	{0xD3, 0x2F, 0x2F, 0xFF}, // red
	{0xC2, 0x18, 0x5B, 0xFF}, // pink
	{0x8E, 0x24, 0xAA, 0xFF}, // purple
	{0x5E, 0x35, 0xB1, 0xFF}, // deep purple
	{0x39, 0x49, 0xAB, 0xFF}, // indigo
	{0x19, 0x76, 0xD2, 0xFF}, // blue
	{0x02, 0x77, 0xBD, 0xFF}, // light blue
	{0x00, 0x83, 0x8F, 0xFF}, // cyan
	{0x00, 0x79, 0x6B, 0xFF}, // teal
	{0x38, 0x8E, 0x3C, 0xFF}, // green
	{0xE6, 0x4A, 0x19, 0xFF}, // deep orange
	{0x6D, 0x4C, 0x41, 0xFF}, // brown
	{0x54, 0x6E, 0x7A, 0xFF}, // blue grey
}

// seedColor returns the Initials background colour for seed: an FNV-1a hash
// of seed indexes palette, so the mapping is stable across processes and
// releases as long as the palette is unchanged.
func seedColor(seed string) color.NRGBA {
	h := fnv.New32a()
	h.Write([]byte(seed))
	return palette[h.Sum32()%uint32(len(palette))]
}

// fill paints every pixel of img with c.
func fill(img *image.NRGBA, c color.NRGBA) {
	px := img.Pix
	if len(px) == 0 {
		return
	}
	px[0], px[1], px[2], px[3] = c.R, c.G, c.B, c.A
	// Doubling copies keep the fill at memmove speed for 1024 px edges.
	for n := 4; n < len(px); n *= 2 {
		copy(px[n:], px[:n])
	}
}

// rgbaView returns an *image.RGBA over the same pixels as img. Premultiplied
// and straight alpha are the same bytes when alpha is 0xFF, and Draw keeps
// every drawn image opaque (an opaque fill, then Over with any source), so
// drawing through the view is exact while hitting the fast paths that
// image/draw and x/image/vector only have for *image.RGBA destinations.
func rgbaView(img *image.NRGBA) *image.RGBA {
	return &image.RGBA{Pix: img.Pix, Stride: img.Stride, Rect: img.Rect}
}
