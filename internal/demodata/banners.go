package demodata

import (
	"image"
	"image/color"
	"math"
)

// Creative is the look of an ad's image, what the banner generator draws:
// a background hue, a call-to-action button in the complementary colour or
// not, and a number of lines of "text" (dark blocks). Its Logit is what the
// image adds to an ad's click logit, so that a model which sees the image
// can learn something a model of the CSV columns cannot.
type Creative struct {
	Hue       float64 // background hue in degrees, [0, 360)
	Button    bool    // a button in the complementary hue
	TextLines int     // 0..6 lines of text
}

// CreativeOf is the creative of an image, drawn from a hash of its id: the
// same id, the same creative.
func CreativeOf(id string) Creative {
	h := Hash64("creative/" + id)
	return Creative{
		Hue:       float64(h%360) + 0.5,
		Button:    h>>16&1 == 1,
		TextLines: int(h >> 20 % 7),
	}
}

// Logit is the creative's term of the click logit: warm backgrounds (red,
// orange: hue near 0) up to +0.6 and cool ones (blue: near 180) down to
// -0.6, a button +0.4, and every line of text beyond two -0.15 (clutter).
func (c Creative) Logit() float64 {
	l := 0.6 * math.Cos(c.Hue*math.Pi/180)
	if c.Button {
		l += 0.4
	}
	if c.TextLines > 2 {
		l -= 0.15 * float64(c.TextLines-2)
	}
	return l
}

// Draw renders the creative as a w × h banner: the background, the text
// lines across its upper part, the button in the lower right.
func (c Creative) Draw(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill := func(r image.Rectangle, col color.RGBA) {
		r = r.Intersect(img.Bounds())
		for y := r.Min.Y; y < r.Max.Y; y++ {
			for x := r.Min.X; x < r.Max.X; x++ {
				img.SetRGBA(x, y, col)
			}
		}
	}
	fill(img.Bounds(), hsv(c.Hue, 0.65, 0.95))
	line := max(2, h/16)
	for i := range c.TextLines {
		y := h/10 + i*2*line
		fill(image.Rect(w/12, y, w-w/12-(i%3)*w/10, y+line), color.RGBA{30, 30, 40, 255})
	}
	if c.Button {
		fill(image.Rect(w*3/5, h*3/4, w-w/12, h-h/12), hsv(math.Mod(c.Hue+180, 360), 0.9, 0.9))
	}
	return img
}

// hsv is the opaque colour of a hue in degrees, saturation and value in
// [0, 1].
func hsv(hue, s, v float64) color.RGBA {
	c := v * s
	x := c * (1 - math.Abs(math.Mod(hue/60, 2)-1))
	var r, g, b float64
	switch {
	case hue < 60:
		r, g = c, x
	case hue < 120:
		r, g = x, c
	case hue < 180:
		g, b = c, x
	case hue < 240:
		g, b = x, c
	case hue < 300:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := v - c
	to := func(f float64) uint8 { return uint8(math.Round(255 * (f + m))) }
	return color.RGBA{to(r), to(g), to(b), 255}
}
