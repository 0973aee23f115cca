package placeholder

import (
	"image"
	"image/color"
	"math"

	"golang.org/x/image/vector"
)

// Silhouette colours: a light figure on a muted grey-blue, in the spirit of
// Gravatar's "mystery person", and a translucent white figure for the
// Initials fallback so it takes on the chat's colour.
var (
	greyBackground = color.NRGBA{0xA9, 0xB6, 0xC4, 0xFF}
	greyFigure     = color.NRGBA{0xEC, 0xF0, 0xF4, 0xFF}
	greyFigureBack = color.NRGBA{0xCF, 0xD7, 0xE0, 0xFF}
	onColourFigure = color.NRGBA{0xFF, 0xFF, 0xFF, 0xD9}
	// onColourFigureBack is the back row of a group on colour, fainter than
	// the front one as greyFigureBack is.
	onColourFigureBack = color.NRGBA{0xFF, 0xFF, 0xFF, 0x99}
)

// figure is a head-and-shoulders silhouette in unit coordinates, where the
// image is the square [0,1]x[0,1] and y grows downwards. The shoulders are
// the top half of an ellipse standing on the bottom edge.
type figure struct {
	cx           float64 // centre line
	headY, headR float64 // head centre height and radius
	shoulderRX   float64 // half the shoulder width
	shoulderTop  float64 // height of the top of the shoulders
	bottom       float64 // where the shoulders stop (the bottom edge or below)
}

// person is the single silhouette: the head a little above the centre, the
// shoulders cut by the bottom edge, the whole inside the inscribed circle
// except where it leaves through the bottom, so a circular crop keeps it.
var person = figure{cx: 0.5, headY: 0.385, headR: 0.175, shoulderRX: 0.31, shoulderTop: 0.615, bottom: 1}

// scaled returns f shrunk by k around the point (ox, oy), keeping its bottom
// on the bottom edge.
func (f figure) scaled(k, ox, oy float64) figure {
	at := func(v, o float64) float64 { return o + (v-o)*k }
	return figure{
		cx:          at(f.cx, ox),
		headY:       at(f.headY, oy),
		headR:       f.headR * k,
		shoulderRX:  f.shoulderRX * k,
		shoulderTop: at(f.shoulderTop, oy),
		bottom:      f.bottom,
	}
}

// grown returns f with every outline pushed out by d, for the gap drawn in
// the background colour between overlapping figures.
func (f figure) grown(d float64) figure {
	f.headR += d
	f.shoulderRX += d
	f.shoulderTop -= d
	return f
}

// bounds returns the pixels f covers at an edge of s pixels.
func (f figure) bounds(s float64) image.Rectangle {
	halfW := max(f.headR, f.shoulderRX)
	return image.Rect(
		int(math.Floor((f.cx-halfW)*s)), int(math.Floor((f.headY-f.headR)*s)),
		int(math.Ceil((f.cx+halfW)*s)), int(math.Ceil(f.bottom*s)),
	)
}

// path adds f's outline, scaled to an edge of s pixels and moved by (dx, dy),
// to z.
func (f figure) path(z *vector.Rasterizer, s, dx, dy float64) {
	ellipse(z, f.cx*s+dx, f.headY*s+dy, f.headR*s, f.headR*s)
	// The shoulders: top half of an ellipse whose centre is on the bottom
	// line, closed along that line.
	cx, cy := f.cx*s+dx, f.bottom*s+dy
	rx, ry := f.shoulderRX*s, (f.bottom-f.shoulderTop)*s
	z.MoveTo(float32(cx-rx), float32(cy))
	quarter(z, cx-rx, cy, cx, cy-ry, cx-rx, cy-ry)
	quarter(z, cx, cy-ry, cx+rx, cy, cx+rx, cy-ry)
	z.ClosePath()
}

// kappa places the control points of a cubic Bézier that approximates a
// quarter circle to within 0.03 %.
const kappa = 0.5522847498

// quarter adds a quarter-ellipse arc from (x0, y0) to (x1, y1) whose corner
// (the point the arc bulges towards) is (qx, qy).
func quarter(z *vector.Rasterizer, x0, y0, x1, y1, qx, qy float64) {
	c1x, c1y := x0+(qx-x0)*kappa, y0+(qy-y0)*kappa
	c2x, c2y := x1+(qx-x1)*kappa, y1+(qy-y1)*kappa
	z.CubeTo(float32(c1x), float32(c1y), float32(c2x), float32(c2y), float32(x1), float32(y1))
}

// ellipse adds a closed ellipse centred on (cx, cy).
func ellipse(z *vector.Rasterizer, cx, cy, rx, ry float64) {
	z.MoveTo(float32(cx+rx), float32(cy))
	quarter(z, cx+rx, cy, cx, cy+ry, cx+rx, cy+ry)
	quarter(z, cx, cy+ry, cx-rx, cy, cx-rx, cy+ry)
	quarter(z, cx-rx, cy, cx, cy-ry, cx-rx, cy-ry)
	quarter(z, cx, cy-ry, cx+rx, cy, cx+rx, cy-ry)
	z.ClosePath()
}

// paint rasterises the figures, antialiased, over img in colour c. The
// rasteriser only spans the figures' bounds: its cost is per pixel of its
// area, and a person covers about half the square.
func paint(img *image.NRGBA, c color.NRGBA, figs ...figure) {
	s := float64(img.Rect.Dx())
	var r image.Rectangle
	for _, f := range figs {
		r = r.Union(f.bounds(s))
	}
	if r = r.Intersect(img.Rect); r.Empty() {
		return
	}
	z := vector.NewRasterizer(r.Dx(), r.Dy())
	for _, f := range figs {
		f.path(z, s, -float64(r.Min.X), -float64(r.Min.Y))
	}
	z.Draw(rgbaView(img), r, image.NewUniform(c), image.Point{})
}

func drawPerson(img *image.NRGBA, c color.NRGBA) {
	paint(img, c, person)
}

// drawGroup draws two figures in colour back behind a third in fore, each
// separated from the one in front by a gap in the background colour bg so
// the outlines stay readable.
func drawGroup(img *image.NRGBA, back, bg, fore color.NRGBA) {
	front := person.scaled(0.84, 0.5, 1)
	left := person.scaled(0.68, 0.5, 1)
	// Lift the back figures so their heads stand level with the front
	// head instead of hiding behind its shoulders.
	left.headY -= 0.11
	left.shoulderTop -= 0.11
	// The lift makes the shoulders taller; widen them to keep the build.
	left.shoulderRX *= 1.12
	left.cx = 0.25
	right := left
	right.cx = 0.75

	paint(img, back, left, right)
	paint(img, bg, front.grown(0.035))
	paint(img, fore, front)
}
