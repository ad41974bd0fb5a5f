package report

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// The charts are laid out here, in Go, as SVG coordinates already
// formatted: only finite values become coordinates (a NaN in an SVG
// attribute breaks the drawing), and every coordinate is clamped to its
// chart.

// box is a chart's plot area in SVG user units.
type box struct{ Left, Top, Width, Height float64 }

func (b box) right() float64  { return b.Left + b.Width }
func (b box) bottom() float64 { return b.Top + b.Height }

// x maps v in [0, max] to the plot's horizontal extent, clamped.
func (b box) x(v, maxV float64) float64 { return b.Left + clamp(v/maxV, 0, 1)*b.Width }

// y maps v in [0, max] to the plot's vertical extent (up), clamped.
func (b box) y(v, maxV float64) float64 { return b.bottom() - clamp(v/maxV, 0, 1)*b.Height }

func clamp(v, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, v)) }

// coord formats an SVG coordinate. Callers pass finite values only.
func coord(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// tick is an axis tick: its position along the axis and its label.
type tick struct{ Pos, Label string }

// bar is one histogram bar.
type bar struct {
	Bin                 int
	X, Y, Width, Height string
	Title               string
}

// histChart is the score histogram of the partition, with training's
// distribution overlaid as a step outline.
type histChart struct {
	Title                  string
	Left, Right, Top, Base string
	Bars                   []bar
	Training               string // SVG path data; "" when there is none to draw
	XTicks, YTicks         []tick
}

var histBox = box{Left: 64, Top: 16, Width: 560, Height: 200}

// newHistChart lays out the histogram; nil when neither distribution has
// bins. Both are drawn on one scale, so the tallest bin of either reaches
// the top; a bin that is not a finite fraction >= 0 is not drawn.
func newHistChart(s ScoreDist, train *ScoreDist) *histChart {
	var trainBins []float64
	if train != nil {
		trainBins = train.Bins
	}
	if len(s.Bins) == 0 && len(trainBins) == 0 {
		return nil
	}
	top := 0.0
	for _, v := range slices.Concat(s.Bins, trainBins) {
		if validBin(v) {
			top = math.Max(top, v)
		}
	}
	b := histBox
	h := &histChart{
		Title: "Score distribution of this partition (bars)",
		Left:  coord(b.Left), Right: coord(b.right()), Top: coord(b.Top), Base: coord(b.bottom()),
	}
	if train != nil {
		h.Title += " and of the training data (outline)"
	}
	for _, q := range []float64{0, 0.25, 0.5, 0.75, 1} {
		h.XTicks = append(h.XTicks, tick{Pos: coord(b.x(q, 1)), Label: strconv.FormatFloat(q, 'f', -1, 64)})
	}
	if top <= 0 {
		return h
	}
	for _, f := range []float64{0, 0.5, 1} {
		h.YTicks = append(h.YTicks, tick{Pos: coord(b.y(f*top, top)), Label: percent(f * top)})
	}
	width := b.Width / float64(len(s.Bins))
	gap := 0.0
	if width > 4 {
		gap = 1
	}
	for i, v := range s.Bins {
		if !validBin(v) {
			continue
		}
		x := b.Left + float64(i)*width
		y := b.y(v, top)
		h.Bars = append(h.Bars, bar{
			Bin: i,
			X:   coord(x + gap/2), Y: coord(y), Width: coord(width - gap), Height: coord(b.bottom() - y),
			Title: binRange(i, len(s.Bins)) + ": " + percent(v),
		})
	}
	h.Training = stepPath(trainBins, top, b)
	return h
}

func validBin(v float64) bool { return finite(v) && v >= 0 }

func binRange(i, n int) string {
	return num(float64(i)/float64(n), 2) + "–" + num(float64(i+1)/float64(n), 2)
}

// stepPath draws bins as a step outline, broken where a bin is not drawn.
func stepPath(bins []float64, top float64, b box) string {
	var d strings.Builder
	width := b.Width / float64(len(bins))
	prev := false
	for i, v := range bins {
		if !validBin(v) {
			prev = false
			continue
		}
		x0, x1, y := b.Left+float64(i)*width, b.Left+float64(i+1)*width, b.y(v, top)
		if prev {
			d.WriteString(" L")
		} else {
			if d.Len() > 0 {
				d.WriteByte(' ')
			}
			d.WriteString("M")
		}
		d.WriteString(coord(x0) + " " + coord(y) + " L" + coord(x1) + " " + coord(y))
		prev = true
	}
	return d.String()
}

// dot is a marked point of a chart.
type dot struct{ X, Y, Title string }

// threshold is a horizontal reference line.
type threshold struct{ Y, Class string }

// sparkline is a feature's PSI history: lines through consecutive computed
// points, gaps where a partition was not computed, the current (last) point
// marked.
type sparkline struct {
	Title      string
	Class      string   // the feature's status, for the current point
	Lines      []string // polyline points, one per run of computed partitions
	Dots       []dot    // computed partitions with no computed neighbour
	Current    *dot
	Thresholds []threshold
}

const (
	sparkWidth  = 120
	sparkHeight = 28
	sparkPad    = 4
)

var sparkBox = box{Left: sparkPad, Top: sparkPad, Width: sparkWidth - 2*sparkPad, Height: sparkHeight - 2*sparkPad}

// newSparkline lays out d.History; nil when there is none. The scale runs
// from 0 to the largest computed value or the warn threshold, whichever is
// larger, so a flat line far below the threshold looks it.
func newSparkline(d FeatureDrift) *sparkline {
	n := len(d.History)
	if n == 0 {
		return nil
	}
	top := 0.0
	for _, p := range d.History {
		if finite(p.Value) {
			top = math.Max(top, p.Value)
		}
	}
	if validBin(d.WarnAbove) {
		top = math.Max(top, d.WarnAbove)
	}
	if top <= 0 {
		top = 1
	}
	b := sparkBox
	at := func(i int) float64 {
		if n == 1 {
			return b.Left + b.Width/2
		}
		return b.Left + float64(i)*b.Width/float64(n-1)
	}
	s := &sparkline{Class: statusBadge(d.Status).Class}
	var titles []string
	var run []string
	flush := func() {
		switch len(run) {
		case 0:
		case 1:
			x, y, _ := strings.Cut(run[0], ",")
			s.Dots = append(s.Dots, dot{X: x, Y: y})
		default:
			s.Lines = append(s.Lines, strings.Join(run, " "))
		}
		run = nil
	}
	for i, p := range d.History {
		titles = append(titles, orDash(p.Partition)+" "+num(p.Value, 3))
		if !finite(p.Value) {
			flush()
			continue
		}
		run = append(run, coord(at(i))+","+coord(b.y(p.Value, top)))
	}
	flush()
	if last := d.History[n-1]; finite(last.Value) {
		s.Current = &dot{X: coord(at(n - 1)), Y: coord(b.y(last.Value, top)), Title: "this partition: " + num(last.Value, 3)}
	}
	for _, t := range []struct {
		v     float64
		class string
	}{{d.WarnAbove, "warn"}, {d.FailAbove, "fail"}} {
		if validBin(t.v) && t.v > 0 && t.v <= top {
			s.Thresholds = append(s.Thresholds, threshold{Y: coord(b.y(t.v, top)), Class: t.class})
		}
	}
	s.Title = "PSI vs training of " + d.Feature + ", oldest first: " + strings.Join(titles, ", ")
	return s
}

// calChart is the calibration curve: observed rate against mean predicted
// score per bin, with the diagonal of perfect calibration.
type calChart struct {
	Left, Right, Top, Base string
	Diagonal               [4]string // x1 y1 x2 y2
	Lines                  []string
	Points                 []dot
	Ticks                  []calTick
}

// calTick is a tick on both axes: X along the bottom, Y along the left.
type calTick struct{ X, Y, Label string }

var calBox = box{Left: 64, Top: 16, Width: 260, Height: 260}

// newCalChart lays out the calibration curve; nil when no bin has a
// computed mean score and rate. Both axes run from 0 to a round number just
// above the largest mean score or rate (at most 1), so the usual click
// rates of a few percent are not squeezed into a corner.
func newCalChart(bins []CalBin) *calChart {
	top := 0.0
	for _, c := range bins {
		if finite(c.MeanScore) && finite(c.Rate) {
			top = math.Max(top, math.Max(c.MeanScore, c.Rate))
		}
	}
	if top <= 0 {
		return nil
	}
	top = niceCeil(top)
	b := calBox
	ch := &calChart{
		Left: coord(b.Left), Right: coord(b.right()), Top: coord(b.Top), Base: coord(b.bottom()),
		Diagonal: [4]string{coord(b.x(0, top)), coord(b.y(0, top)), coord(b.x(top, top)), coord(b.y(top, top))},
	}
	for _, f := range []float64{0, 0.5, 1} {
		ch.Ticks = append(ch.Ticks, calTick{
			X: coord(b.x(f*top, top)), Y: coord(b.y(f*top, top)),
			Label: strconv.FormatFloat(math.Round(f*top*1e6)/1e6, 'f', -1, 64),
		})
	}
	var run []string
	flush := func() {
		if len(run) > 1 {
			ch.Lines = append(ch.Lines, strings.Join(run, " "))
		}
		run = nil
	}
	for _, c := range bins {
		if !finite(c.MeanScore) || !finite(c.Rate) {
			flush()
			continue
		}
		x, y := coord(b.x(c.MeanScore, top)), coord(b.y(c.Rate, top))
		run = append(run, x+","+y)
		ch.Points = append(ch.Points, dot{
			X: x, Y: y,
			Title: "scores " + num(c.Lo, 3) + "–" + num(c.Hi, 3) + ": mean score " + num(c.MeanScore, 4) +
				", click rate " + num(c.Rate, 4) + ", " + count(c.Rows) + " rows",
		})
	}
	flush()
	return ch
}

// niceCeil rounds v > 0 up to 1, 2, 2.5 or 5 times a power of ten, at
// most 1.
func niceCeil(v float64) float64 {
	if v >= 1 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5} {
		if m*p >= v*(1-1e-9) {
			return m * p
		}
	}
	return math.Min(1, 10*p)
}
