package placeholder

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"math"
	"sync"
	"testing"
)

var sizes = []int{1, 16, 32, 96, 128, 512, 1024}

var kinds = []Kind{Initials, Person, Group, Blank}

func TestDrawDimensions(t *testing.T) {
	clamps := []struct{ in, want int }{{-5, 1}, {0, 1}, {1025, 1024}, {1 << 30, 1024}}
	for _, k := range kinds {
		for _, s := range sizes {
			clamps = append(clamps, struct{ in, want int }{s, s})
		}
		for _, c := range clamps {
			t.Run(fmt.Sprintf("%v/%d", k, c.in), func(t *testing.T) {
				img := Draw(Params{Kind: k, Name: "Анна Петрова", Seed: "79001234567@c.us", Size: c.in})
				if got := img.Bounds(); got != image.Rect(0, 0, c.want, c.want) {
					t.Fatalf("bounds = %v, want %dx%d at the origin", got, c.want, c.want)
				}
				if len(img.Pix) != 4*c.want*c.want {
					t.Fatalf("len(Pix) = %d, want %d", len(img.Pix), 4*c.want*c.want)
				}
			})
		}
	}
}

// TestDrawOpacity guards the premultiplied view Draw paints through: it is
// exact only while every painted pixel stays opaque.
func TestDrawOpacity(t *testing.T) {
	for _, k := range kinds {
		for _, s := range sizes {
			t.Run(fmt.Sprintf("%v/%d", k, s), func(t *testing.T) {
				img := Draw(Params{Kind: k, Name: "Zoë Ångström", Seed: "chat", Size: s})
				want := uint8(0xFF)
				if k == Blank {
					want = 0
				}
				for i := 3; i < len(img.Pix); i += 4 {
					if img.Pix[i] != want {
						p := i / 4
						t.Fatalf("alpha at (%d,%d) = %d, want %d", p%s, p/s, img.Pix[i], want)
					}
				}
				if k == Blank && !bytes.Equal(img.Pix, make([]byte, len(img.Pix))) {
					t.Fatal("Blank has non-zero colour bytes; want all zero")
				}
			})
		}
	}
}

func TestDrawDeterministic(t *testing.T) {
	for _, k := range kinds {
		for _, s := range []int{1, 33, 128} {
			p := Params{Kind: k, Name: "Jean-Luc Picard", Seed: "123@g.us", Size: s}
			if a, b := Draw(p), Draw(p); !bytes.Equal(a.Pix, b.Pix) {
				t.Errorf("%v at %d: two draws differ", k, s)
			}
		}
	}
}

func TestSeedPicksColour(t *testing.T) {
	seen := map[color.NRGBA]int{}
	for i := range 200 {
		seed := fmt.Sprintf("7900%07d@c.us", i)
		img := Draw(Params{Kind: Initials, Name: "Anna", Seed: seed, Size: 32})
		corner := img.NRGBAAt(0, 0)
		if corner != seedColor(seed) {
			t.Fatalf("seed %q: corner %v, want its seed colour %v", seed, corner, seedColor(seed))
		}
		seen[corner]++
	}
	if len(seen) != len(palette) {
		t.Errorf("200 seeds used %d of %d palette colours", len(seen), len(palette))
	}
	for c, n := range seen {
		if n > 40 {
			t.Errorf("colour %v picked %d times of 200: hash badly spread", c, n)
		}
	}
	if seedColor("a") == seedColor("b") && seedColor("b") == seedColor("c") {
		t.Error("seeds a, b, c all share one colour")
	}
}

// The hash and the palette's order are part of the output: a chat keeps
// its colour across releases.
func TestSeedColourStable(t *testing.T) {
	for seed, want := range map[string]int{
		"79001234567@c.us":        12,
		"79001234568@c.us":        5,
		"79001234569@c.us":        8,
		"120363012345678901@g.us": 3,
	} {
		if got := seedColor(seed); got != palette[want] {
			t.Errorf("seed %q: %v, want palette[%d] %v", seed, got, want, palette[want])
		}
	}
}

// TestPaletteContrast checks WCAG 2 contrast of white text on every
// background against the 3:1 large-text threshold.
func TestPaletteContrast(t *testing.T) {
	distinct := map[color.NRGBA]bool{}
	for _, c := range palette {
		if c.A != 0xFF {
			t.Errorf("%v is not opaque", c)
		}
		if r := contrast(color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}, c); r < 3 {
			t.Errorf("white on %v: contrast %.2f, want >= 3", c, r)
		}
		distinct[c] = true
	}
	if len(distinct) != len(palette) || len(palette) < 10 {
		t.Errorf("palette has %d distinct of %d colours, want >= 10 all distinct", len(distinct), len(palette))
	}
	if r := contrast(greyFigure, greyBackground); r < 1.5 {
		t.Errorf("silhouette on grey: contrast %.2f, want a visible figure (>= 1.5)", r)
	}
}

func contrast(a, b color.NRGBA) float64 {
	la, lb := luminance(a), luminance(b)
	return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)
}

func luminance(c color.NRGBA) float64 {
	lin := func(v uint8) float64 {
		s := float64(v) / 255
		if s <= 0.04045 {
			return s / 12.92
		}
		return math.Pow((s+0.055)/1.055, 2.4)
	}
	return 0.2126*lin(c.R) + 0.7152*lin(c.G) + 0.0722*lin(c.B)
}

func isWhitish(c color.NRGBA) bool { return c.R >= 0xF0 && c.G >= 0xF0 && c.B >= 0xF0 }

// inkBox returns the bounds of the pixels of img for which in is true.
func inkBox(img *image.NRGBA, in func(color.NRGBA) bool) (box image.Rectangle, n int) {
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if in(img.NRGBAAt(x, y)) {
				box = box.Union(image.Rect(x, y, x+1, y+1))
				n++
			}
		}
	}
	return box, n
}

func TestInitialsLayout(t *testing.T) {
	// Names whose initials have no accents or descenders, so the ink is the
	// cap-height box and must sit in the middle.
	for _, name := range []string{"Анна Петрова", "Walter Mitty", "Hi", "ΩΣ"} {
		for _, s := range []int{32, 128, 1024} {
			t.Run(fmt.Sprintf("%s/%d", name, s), func(t *testing.T) {
				seed := "seed-" + name
				img := Draw(Params{Kind: Initials, Name: name, Seed: seed, Size: s})
				bg := seedColor(seed)
				for _, p := range []image.Point{{0, 0}, {s - 1, 0}, {0, s - 1}, {s - 1, s - 1}} {
					if got := img.NRGBAAt(p.X, p.Y); got != bg {
						t.Errorf("corner %v = %v, want background %v", p, got, bg)
					}
				}
				box, n := inkBox(img, isWhitish)
				if n < s*s/50 {
					t.Fatalf("%d white-ish pixels, want at least %d", n, s*s/50)
				}
				// Centred within 4% of the edge (plus a pixel of
				// antialiasing at small sizes).
				tol := 0.04*float64(s) + 1
				cx := float64(box.Min.X+box.Max.X) / 2
				cy := float64(box.Min.Y+box.Max.Y) / 2
				if math.Abs(cx-float64(s)/2) > tol || math.Abs(cy-float64(s)/2) > tol {
					t.Errorf("ink %v centred at (%.1f,%.1f), want (%d,%d) ± %.1f", box, cx, cy, s/2, s/2, tol)
				}
				// Cap height about a third of the edge; wide pairs may shrink.
				if h := float64(box.Dy()) / float64(s); h < 0.25 || h > 0.38 {
					t.Errorf("ink height %.2f of the edge, want about 0.34", h)
				}
				// Well inside the circle a round crop keeps.
				if w := float64(box.Dx()) / float64(s); w > 0.64 {
					t.Errorf("ink width %.2f of the edge, want <= 0.62", w)
				}
			})
		}
	}
}

// TestInitialsBaseline checks that the vertical position comes from font
// metrics, not from each string's own extent: a capital keeps its baseline
// whether or not its neighbour has a descender (Go Bold's "J" has one). The
// pairs are narrow, so neither is shrunk to fit.
func TestInitialsBaseline(t *testing.T) {
	const s = 256
	stem := func(name string) image.Rectangle {
		img := Draw(Params{Kind: Initials, Name: name, Seed: "x", Size: s})
		all, _ := inkBox(img, isWhitish)
		// The stem of the first "I": the leftmost few columns of ink.
		left := img.SubImage(image.Rect(all.Min.X, 0, all.Min.X+4, s)).(*image.NRGBA)
		box, _ := inkBox(left, isWhitish)
		return box
	}
	a, b := stem("Ivy Iris"), stem("Ivy Jones")
	if a.Min.Y != b.Min.Y || a.Max.Y != b.Max.Y {
		t.Errorf("I spans y %d..%d next to I but %d..%d next to J; want one cap line and baseline",
			a.Min.Y, a.Max.Y, b.Min.Y, b.Max.Y)
	}
}

func TestInitialsTinyIsPlain(t *testing.T) {
	for s := 1; s < minTextSize; s++ {
		img := Draw(Params{Kind: Initials, Name: "Anna", Seed: "q", Size: s})
		_, n := inkBox(img, func(c color.NRGBA) bool { return c != seedColor("q") })
		if n != 0 {
			t.Errorf("size %d: %d pixels differ from the plain background", s, n)
		}
	}
}

func TestInitialsFallback(t *testing.T) {
	tests := []struct{ name, in string }{
		{"cjk", "王小明"},
		{"arabic", "محمد علي"},
		{"no letters", "😀 123"},
		{"empty", ""},
		{"mark without glyph", "q\u0307ux"},
	}
	const s = 128
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := Draw(Params{Kind: Initials, Name: tt.in, Seed: "fallback", Size: s})
			bg := seedColor("fallback")
			if got := img.NRGBAAt(0, 0); got != bg {
				t.Errorf("corner = %v, want the seed colour %v", got, bg)
			}
			// The head, at the middle top, is the light figure.
			head := img.NRGBAAt(s/2, int(person.headY*s))
			if head.R < 0xE0 || head.G < 0xE0 || head.B < 0xE0 {
				t.Errorf("head pixel = %v, want a light figure", head)
			}
			// The shoulders reach the bottom edge at the middle.
			if got := img.NRGBAAt(s/2, s-1); got == bg {
				t.Errorf("bottom middle = background; want the shoulders")
			}
			plain := Draw(Params{Kind: Initials, Name: "", Seed: "fallback", Size: s})
			if !bytes.Equal(img.Pix, plain.Pix) {
				t.Errorf("fallback differs from the silhouette drawn for an empty name")
			}
		})
	}
	if a, b := Draw(Params{Kind: Initials, Name: "Anna", Seed: "fallback", Size: s}),
		Draw(Params{Kind: Initials, Name: "", Seed: "fallback", Size: s}); bytes.Equal(a.Pix, b.Pix) {
		t.Error("a drawable name gives the same image as the fallback")
	}
}

// A group's Initials fall back to the group glyph on the group's colour.
func TestInitialsFallbackGroup(t *testing.T) {
	const s = 128
	at := func(img *image.NRGBA, x, y float64) color.NRGBA { return img.NRGBAAt(int(x*s), int(y*s)) }
	bg := seedColor("fallback")
	img := Draw(Params{Kind: Initials, Name: "王小明", Seed: "fallback", Size: s, Group: true})
	if got := at(img, 0, 0); got != bg {
		t.Errorf("corner = %v, want the seed colour %v", got, bg)
	}
	for _, p := range [][2]float64{{0.2, 0.48}, {0.8, 0.48}, {0.5, 0.5}} {
		if got := at(img, p[0], p[1]); got == bg {
			t.Errorf("(%.2f,%.2f) is background; want a figure of the group", p[0], p[1])
		}
	}
	if front, back := at(img, 0.5, 0.5), at(img, 0.2, 0.48); front.R <= back.R {
		t.Errorf("front figure %v not lighter than the back one %v", front, back)
	}
	if named := Draw(Params{Kind: Initials, Name: "Anna", Seed: "fallback", Size: s, Group: true}); bytes.Equal(named.Pix, img.Pix) {
		t.Error("Group replaced drawable initials")
	}
}

// On a chat's colour the fallback figures are translucent white (the
// front one more opaque than a group's back row), so they take the colour's
// tint, and the gap around a group's front figure is the colour itself:
// nothing on the picture is darker than the background in any channel.
func TestInitialsFallbackTint(t *testing.T) {
	const s = 128
	over := func(bg color.NRGBA, a uint8) color.NRGBA {
		mix := func(c uint8) uint8 { return uint8((int(c)*(255-int(a)) + 255*int(a) + 127) / 255) }
		return color.NRGBA{mix(bg.R), mix(bg.G), mix(bg.B), 0xFF}
	}
	near := func(a, b color.NRGBA) bool {
		d := func(x, y uint8) bool { return x-y <= 1 || y-x <= 1 }
		return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B) && a.A == b.A
	}
	for i := range 13 {
		seed := fmt.Sprintf("7900%07d@c.us", i)
		bg := seedColor(seed)
		for _, c := range []struct {
			group bool
			x, y  float64
			alpha uint8
		}{
			{false, 0.5, person.headY, onColourFigure.A},
			{true, 0.5, 0.5, onColourFigure.A},      // front head
			{true, 0.2, 0.48, onColourFigureBack.A}, // back row
		} {
			img := Draw(Params{Kind: Initials, Seed: seed, Size: s, Group: c.group})
			if got, want := img.NRGBAAt(int(c.x*s), int(c.y*s)), over(bg, c.alpha); !near(got, want) {
				t.Errorf("seed %q, group %v: (%.2f,%.2f) = %v, want white at alpha %#x over %v: %v", seed, c.group, c.x, c.y, got, c.alpha, bg, want)
			}
			for j := 0; j < len(img.Pix); j += 4 {
				if p := img.Pix[j : j+3]; p[0] < bg.R || p[1] < bg.G || p[2] < bg.B {
					t.Fatalf("seed %q, group %v: pixel %d is %v, darker than the background %v", seed, c.group, j/4, p, bg)
				}
			}
		}
	}
}

func TestSilhouettes(t *testing.T) {
	const s = 128
	at := func(img *image.NRGBA, x, y float64) color.NRGBA { return img.NRGBAAt(int(x*s), int(y*s)) }
	person := Draw(Params{Kind: Person, Size: s})
	group := Draw(Params{Kind: Group, Size: s})
	checks := []struct {
		name string
		img  *image.NRGBA
		x, y float64
		want color.NRGBA
	}{
		{"person corner", person, 0, 0, greyBackground},
		{"person head", person, 0.5, 0.385, greyFigure},
		{"person neck gap side", person, 0.2, 0.55, greyBackground},
		{"person shoulders", person, 0.5, 0.9, greyFigure},
		{"person beside shoulders", person, 0.1, 0.99, greyBackground},
		{"group corner", group, 0, 0, greyBackground},
		{"group front head", group, 0.5, 0.5, greyFigure},
		{"group left head", group, 0.2, 0.48, greyFigureBack},
		{"group right head", group, 0.8, 0.48, greyFigureBack},
		{"group left shoulder", group, 0.1, 0.95, greyFigureBack},
	}
	for _, c := range checks {
		if got := at(c.img, c.x, c.y); got != c.want {
			t.Errorf("%s at (%.2f,%.2f) = %v, want %v", c.name, c.x, c.y, got, c.want)
		}
	}
	if bytes.Equal(person.Pix, group.Pix) {
		t.Error("Person and Group are identical")
	}
}

func TestUnknownKindIsPerson(t *testing.T) {
	want := Draw(Params{Kind: Person, Size: 64})
	for _, k := range []Kind{0, Blank + 1, 255} {
		if got := Draw(Params{Kind: k, Name: "Anna", Seed: "s", Size: 64}); !bytes.Equal(got.Pix, want.Pix) {
			t.Errorf("Kind %d: not the Person image", k)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{Initials: "initials", Person: "person", Group: "group", Blank: "blank", 0: "kind(0)", 200: "kind(200)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}

// TestDrawConcurrent draws from many goroutines at once; under -race it
// catches shared face or buffer state, and the comparison catches
// corruption the detector would miss.
func TestDrawConcurrent(t *testing.T) {
	params := []Params{
		{Kind: Initials, Name: "Анна Петрова", Seed: "a", Size: 96},
		{Kind: Initials, Name: "Walter Mitty", Seed: "b", Size: 128},
		{Kind: Initials, Name: "王小明", Seed: "c", Size: 64},
		{Kind: Person, Size: 80},
		{Kind: Group, Size: 72},
		{Kind: Blank, Size: 16},
	}
	want := make([][]byte, len(params))
	for i, p := range params {
		want[i] = Draw(p).Pix
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 8 {
		wg.Go(func() {
			for r := range 12 {
				i := (g + r) % len(params)
				if got := Draw(params[i]); !bytes.Equal(got.Pix, want[i]) {
					select {
					case errs <- fmt.Sprintf("goroutine %d: %+v differs from the serial draw", g, params[i]):
					default:
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func benchmarkDraw(b *testing.B, p Params) {
	b.ReportAllocs()
	for b.Loop() {
		Draw(p)
	}
}

func BenchmarkDrawInitials128(b *testing.B) {
	benchmarkDraw(b, Params{Kind: Initials, Name: "Анна Петрова", Seed: "79001234567@c.us", Size: 128})
}

func BenchmarkDrawPerson128(b *testing.B) {
	benchmarkDraw(b, Params{Kind: Person, Size: 128})
}

func BenchmarkDrawGroup128(b *testing.B) {
	benchmarkDraw(b, Params{Kind: Group, Size: 128})
}

func BenchmarkDrawInitials1024(b *testing.B) {
	benchmarkDraw(b, Params{Kind: Initials, Name: "Анна Петрова", Seed: "79001234567@c.us", Size: 1024})
}
