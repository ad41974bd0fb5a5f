package demodata

import (
	"image"
	"image/color"
	"testing"
)

// A creative is a function of its id, and its banner shows what its Logit
// reads: the background's hue, the button, the lines of text.
func TestCreatives(t *testing.T) {
	if CreativeOf("ad-1") != CreativeOf("ad-1") {
		t.Fatal("the same id gave two creatives")
	}
	seen := map[Creative]bool{}
	buttons, lines := 0, map[int]bool{}
	for i := range 200 {
		c := CreativeOf(string(rune('a'+i%26)) + string(rune('a'+i/26)))
		seen[c] = true
		if c.Button {
			buttons++
		}
		lines[c.TextLines] = true
		if c.Hue < 0 || c.Hue >= 360 || c.TextLines < 0 || c.TextLines > 6 {
			t.Fatalf("%+v out of range", c)
		}
	}
	if len(seen) < 190 || buttons < 60 || buttons > 140 || len(lines) != 7 {
		t.Errorf("200 ids: %d creatives, %d with a button, %d text line counts: not spread", len(seen), buttons, len(lines))
	}

	warm, cool := Creative{Hue: 10}, Creative{Hue: 190}
	if !(warm.Logit() > cool.Logit()) || !(Creative{Hue: 10, Button: true}.Logit() > warm.Logit()) ||
		!(Creative{Hue: 10, TextLines: 6}.Logit() < warm.Logit()) {
		t.Error("warm over cool, a button, fewer lines of text: each must raise the logit")
	}

	for _, c := range []Creative{{Hue: 0.5, Button: true, TextLines: 3}, {Hue: 240.5}} {
		img := c.Draw(300, 250)
		bg := hsv(c.Hue, 0.65, 0.95)
		if got := img.RGBAAt(299, 0); got != bg {
			t.Errorf("%+v: background %v, want %v", c, got, bg)
		}
		button := img.RGBAAt(260, 210) != bg
		if button != c.Button {
			t.Errorf("%+v: button drawn %v", c, button)
		}
		dark := 0
		for y := range 250 {
			if img.RGBAAt(30, y) == (color.RGBA{30, 30, 40, 255}) {
				dark++
			}
		}
		if want := c.TextLines * max(2, 250/16); dark != want {
			t.Errorf("%+v: %d rows of text at x=30, want %d", c, dark, want)
		}
		if img.Bounds() != image.Rect(0, 0, 300, 250) {
			t.Errorf("bounds %v", img.Bounds())
		}
	}
	if c := hsv(0, 1, 1); c != (color.RGBA{255, 0, 0, 255}) {
		t.Errorf("hsv(0, 1, 1) = %v, want red", c)
	}
	if c := hsv(240, 1, 1); c != (color.RGBA{0, 0, 255, 255}) {
		t.Errorf("hsv(240, 1, 1) = %v, want blue", c)
	}
}
