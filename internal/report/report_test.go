package report_test

import (
	"bytes"
	"errors"
	"html"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/report"
)

var nan = math.NaN()

// binScores counts scores into n equal-width bins over [0,1] as fractions.
func binScores(scores []float64, n int) []float64 {
	bins := make([]float64, n)
	for _, s := range scores {
		i := min(int(s*float64(n)), n-1)
		bins[i]++
	}
	for i := range bins {
		bins[i] /= float64(len(scores))
	}
	return bins
}

// skewedScores draws n scores skewed towards 0, like click probabilities.
func skewedScores(seed uint64, n int, power float64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = math.Pow(rng.Float64(), power)
	}
	return out
}

func history(values ...float64) []report.Point {
	var ps []report.Point
	for i, v := range values {
		ps = append(ps, report.Point{Partition: "month=2020-0" + strconv.Itoa(i+1), Value: v})
	}
	return ps
}

// sampleReport is a report with every section filled in.
func sampleReport() *report.Report {
	return &report.Report{
		Title:        "ad_scores month=2020-09",
		Table:        "ad_scores",
		Partition:    "month=2020-09",
		RunID:        "20200930T010203Z-abcd1234",
		ModelName:    "ctr-demo",
		ModelVersion: "2020-08.1",
		GeneratedAt:  time.Date(2020, 10, 1, 3, 4, 5, 0, time.FixedZone("CEST", 2*3600)),
		Rows:         1234567,
		Rejected:     12,
		Status:       "warn",
		Scores: report.ScoreDist{
			Bins: binScores(skewedScores(1, 5000, 3), 20),
			Mean: 0.25,
			Quantiles: []report.Quantile{
				{Q: 0.05, Value: 0.0001}, {Q: 0.5, Value: 0.12}, {Q: 0.95, Value: 0.86},
			},
		},
		Training: &report.ScoreDist{
			Bins:      binScores(skewedScores(2, 5000, 2.5), 20),
			Mean:      0.28,
			Quantiles: []report.Quantile{{Q: 0.05, Value: 0.0003}, {Q: 0.5, Value: 0.15}, {Q: 0.99, Value: 0.97}},
		},
		Drift: []report.FeatureDrift{
			{
				Feature: "hour", Kind: "timestamp", PSI: 0.02, JS: 0.01, PSIPrev: 0.01, JSPrev: 0.004,
				WarnAbove: 0.1, FailAbove: 0.25, Status: "ok", History: history(0.01, nan, 0.015, 0.02, 0.02),
				MissingRate: 0, TrainMissingRate: 0, PrevMissingRate: 0,
			},
			{
				Feature: "site_id", Kind: "categorical", PSI: 0.41, JS: 0.12, PSIPrev: 0.3, JSPrev: 0.09,
				WarnAbove: 0.1, FailAbove: 0.25, Status: "fail", History: history(0.05, 0.1, 0.2, 0.41),
				MissingRate: 0.12, TrainMissingRate: 0.01, PrevMissingRate: 0.02,
			},
			{
				Feature: "device", Kind: "categorical", PSI: 0.15, JS: 0.05, PSIPrev: nan, JSPrev: nan,
				WarnAbove: 0.1, FailAbove: 0.25, Status: "warn", History: history(nan, 0.15),
				MissingRate: 0.03, TrainMissingRate: 0.02, PrevMissingRate: nan,
			},
			{
				Feature: "price", Kind: "numeric", PSI: nan, JS: nan, PSIPrev: nan, JSPrev: nan,
				Status: "ok", MissingRate: 1, TrainMissingRate: nan, PrevMissingRate: nan,
			},
			{
				Feature: "site_id x device", Kind: "cross", PSI: 0.12, JS: 0.04, PSIPrev: 0.11, JSPrev: 0.03,
				WarnAbove: 0.1, Status: "warn", History: history(0.09, 0.1, 0.11, 0.12),
				MissingRate: 0.05, TrainMissingRate: 0.05, PrevMissingRate: 0.05,
			},
		},
		Evaluation: &report.Evaluation{
			Rows: 40000, Positives: 1432, AUC: 0.7312, LogLoss: 0.1543, ECE: 0.0042,
			Calibration: []report.CalBin{
				{Lo: 0, Hi: 0.02, MeanScore: 0.011, Rate: 0.009, Rows: 20000},
				{Lo: 0.02, Hi: 0.05, MeanScore: 0.034, Rate: 0.038, Rows: 12000},
				{Lo: 0.05, Hi: 0.1, MeanScore: 0.071, Rate: 0.066, Rows: 6000},
				{Lo: 0.1, Hi: 1, MeanScore: 0.16, Rate: 0.18, Rows: 2000},
			},
		},
	}
}

func render(t *testing.T, r *report.Report) string {
	t.Helper()
	var b bytes.Buffer
	if err := report.Render(&b, r); err != nil {
		t.Fatalf("Render: %v", err)
	}
	return b.String()
}

var featureAttr = regexp.MustCompile(`data-feature="([^"]*)"`)

// driftFeatures lists the feature names of the drift table's rows in
// document order.
func driftFeatures(doc string) []string {
	var names []string
	for _, m := range featureAttr.FindAllStringSubmatch(doc, -1) {
		names = append(names, html.UnescapeString(m[1]))
	}
	return names
}

func TestDriftSortedBySeverity(t *testing.T) {
	drift := func(name, status string, psi float64) report.FeatureDrift {
		return report.FeatureDrift{
			Feature: name, Kind: "numeric", Status: status, PSI: psi, JS: nan, PSIPrev: nan, JSPrev: nan,
			TrainMissingRate: nan, PrevMissingRate: nan,
		}
	}
	// The input is in no useful order; the wanted order is written out.
	in := []report.FeatureDrift{
		drift("ok-small", "ok", 0.01),
		drift("warn-nan", "warn", nan),
		drift("fail-small", "fail", 0.3),
		drift("ok-nan", "ok", nan),
		drift("warn-big", "warn", 0.2),
		drift("b-tie", "warn", 0.15),
		drift("fail-inf", "fail", math.Inf(1)),
		drift("a-tie", "warn", 0.15),
		drift("ok-big", "ok", 0.05),
		drift("fail-big", "fail", 0.9),
	}
	want := []string{
		"fail-inf", "fail-big", "fail-small",
		"warn-big", "a-tie", "b-tie", "warn-nan",
		"ok-big", "ok-small", "ok-nan",
	}
	r := sampleReport()
	r.Drift = slices.Clone(in)
	got := driftFeatures(render(t, r))
	if !slices.Equal(got, want) {
		t.Errorf("drift rows in order\n%q\nwant\n%q", got, want)
	}
	if !slices.EqualFunc(r.Drift, in, func(a, b report.FeatureDrift) bool { return a.Feature == b.Feature }) {
		t.Errorf("Render reordered the caller's Drift slice")
	}
}

func TestHostileNamesEscaped(t *testing.T) {
	const hostile = `<script>alert("x")</script>`
	r := sampleReport()
	r.Title = `</title><script>alert(1)</script>`
	r.ModelName = `<img src=x onerror=alert(1)>`
	r.Status = `<b>bad</b>`
	r.Drift[0].Feature = hostile
	r.Drift[0].Kind = `"><script>x</script>`
	r.Drift[0].History[1].Partition = `</title><script>y</script>`
	doc := render(t, r)

	for _, raw := range []string{"<script", "<img", "<b>"} {
		if strings.Contains(strings.ToLower(doc), raw) {
			t.Errorf("output contains a raw %q", raw)
		}
	}
	if !slices.Contains(driftFeatures(doc), hostile) {
		t.Errorf("the hostile feature name is not shown (escaped) in the drift table: rows %q", driftFeatures(doc))
	}
	if !strings.Contains(doc, `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`) {
		t.Errorf("the hostile feature name is not shown escaped as text")
	}
	if !strings.Contains(doc, `class="badge unknown"`) {
		t.Errorf("an unknown status did not get the neutral badge")
	}
}

var (
	svgElem = regexp.MustCompile(`(?s)<svg\b.*?</svg>`)
	svgTag  = regexp.MustCompile(`<[a-z]+\b[^>]*>`)
	attr    = regexp.MustCompile(`([a-zA-Z:-]+)="([^"]*)"`)
	number  = regexp.MustCompile(`[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?`)
)

// geometry lists the attributes whose values are coordinates.
var geometry = map[string]bool{
	"x": true, "y": true, "x1": true, "x2": true, "y1": true, "y2": true, "width": true, "height": true,
	"cx": true, "cy": true, "r": true, "points": true, "d": true, "viewBox": true, "transform": true,
}

func TestNonFiniteValues(t *testing.T) {
	inf := math.Inf(1)
	r := sampleReport()
	r.Scores.Bins[3] = nan
	r.Scores.Bins[4] = inf
	r.Scores.Bins[5] = -0.1
	r.Scores.Mean = nan
	r.Scores.Quantiles = append(r.Scores.Quantiles, report.Quantile{Q: nan, Value: inf})
	r.Training.Bins[0] = nan
	r.Training.Bins[7] = inf
	r.Drift[0].PSI, r.Drift[0].JS, r.Drift[0].PSIPrev = inf, nan, math.Inf(-1)
	r.Drift[0].History = history(nan, inf, 0.1, math.Inf(-1), nan)
	r.Drift[0].WarnAbove, r.Drift[0].FailAbove = nan, inf
	r.Drift[0].MissingRate = nan
	r.Drift[1].History = history(nan, nan)
	r.Drift[2].History = history(inf)
	r.Evaluation.AUC, r.Evaluation.ECE = nan, inf
	r.Evaluation.Calibration[0].MeanScore = inf
	r.Evaluation.Calibration[1].Rate = nan
	r.Evaluation.Calibration[2].Lo = nan
	r.Evaluation.Calibration = append(r.Evaluation.Calibration, report.CalBin{Lo: nan, Hi: inf, MeanScore: nan, Rate: inf})
	doc := render(t, r)

	for _, bad := range []string{"NaN", "Inf", "inf"} {
		if strings.Contains(doc, bad) {
			t.Errorf("output contains %q", bad)
		}
	}
	if !strings.Contains(doc, "—") || !strings.Contains(doc, "∞") {
		t.Errorf("NaN and infinite values are not shown as — and ∞")
	}
	svgs := svgElem.FindAllString(doc, -1)
	if len(svgs) < 4 {
		t.Fatalf("%d SVG charts, want the histogram, sparklines and the calibration curve", len(svgs))
	}
	checked := 0
	for _, svg := range svgs {
		for _, tag := range svgTag.FindAllString(svg, -1) {
			for _, a := range attr.FindAllStringSubmatch(tag, -1) {
				name, value := a[1], a[2]
				if strings.Contains(strings.ToLower(value), "nan") || strings.Contains(strings.ToLower(value), "inf") {
					t.Errorf("SVG attribute %s=%q in %s", name, value, tag)
				}
				if !geometry[name] {
					continue
				}
				for _, n := range number.FindAllString(value, -1) {
					f, err := strconv.ParseFloat(n, 64)
					if err != nil || math.Abs(f) > 1000 {
						t.Errorf("SVG attribute %s=%q: coordinate %q out of any chart", name, value, n)
					}
					checked++
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d coordinates checked", checked)
	}
	// The finite values are still drawn around the bad ones.
	if bars := strings.Count(doc, `<rect class="bar" data-bin=`); bars != len(r.Scores.Bins)-3 {
		t.Errorf("%d histogram bars, want %d (the finite bins >= 0)", bars, len(r.Scores.Bins)-3)
	}
	if !strings.Contains(doc, `class="train"`) {
		t.Errorf("the training outline is not drawn")
	}
}

func TestSelfContained(t *testing.T) {
	doc := render(t, sampleReport())
	rest := strings.ReplaceAll(doc, `xmlns="http://www.w3.org/2000/svg"`, "")
	for _, ref := range []string{"http:", "https:", "//", "src=", "href=", "url(", "@import", "<script", "<link"} {
		if strings.Contains(rest, ref) {
			i := strings.Index(rest, ref)
			t.Errorf("output refers to something outside it: %q near %q", ref, rest[max(0, i-60):min(len(rest), i+60)])
		}
	}
	if !strings.Contains(doc, `content="default-src 'none'; style-src 'unsafe-inline'"`) {
		t.Errorf("the content security policy that forbids loading anything is missing")
	}
}

func TestDeterministic(t *testing.T) {
	a := render(t, sampleReport())
	if b := render(t, sampleReport()); a != b {
		t.Fatalf("two renders of the same report differ")
	}
	r := sampleReport()
	slices.Reverse(r.Drift)
	if b := render(t, r); a != b {
		t.Errorf("the drift rows' input order changes the output")
	}
}

func TestHeader(t *testing.T) {
	doc := render(t, sampleReport())
	for _, want := range []string{
		"<title>ad_scores month=2020-09</title>",
		"<dd>ctr-demo 2020-08.1</dd>",
		"<dd>20200930T010203Z-abcd1234</dd>",
		"<dd>2020-10-01T01:04:05Z</dd>", // UTC
		"<dd>1,234,567</dd>",
		`<span class="badge warn" data-status="warn">warn</span>`,
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("header lacks %q", want)
		}
	}
	r := sampleReport()
	r.Title, r.Partition = "", "month=2020-10"
	if doc := render(t, r); !strings.Contains(doc, "<title>ad_scores month=2020-10</title>") {
		t.Errorf("a report without a title is not titled by its table and partition")
	}
}

func TestEvaluationSection(t *testing.T) {
	r := sampleReport()
	r.Evaluation = nil
	doc := render(t, r)
	if strings.Contains(doc, `id="evaluation"`) || strings.Contains(doc, `class="calibration"`) {
		t.Errorf("evaluation section rendered without an evaluation")
	}

	r = sampleReport()
	r.Evaluation.Calibration[2].Rate = nan
	doc = render(t, r)
	if !strings.Contains(doc, `id="evaluation"`) || !strings.Contains(doc, "<td>0.7312</td>") {
		t.Fatalf("evaluation section or its AUC missing")
	}
	cal := regexp.MustCompile(`(?s)<svg[^>]*class="calibration".*?</svg>`).FindString(doc)
	if cal == "" {
		t.Fatalf("no calibration chart")
	}
	if n := strings.Count(cal, `class="cal-dot"`); n != 3 {
		t.Errorf("%d calibration points, want 3 (the bins with a computed rate)", n)
	}
	// The NaN bin breaks the curve: two segments, of two and one points,
	// and a one-point segment is no line.
	if n := strings.Count(cal, `<polyline class="cal"`); n != 1 {
		t.Errorf("%d calibration line segments, want 1", n)
	}
	if !strings.Contains(cal, `class="diagonal"`) {
		t.Errorf("no diagonal in the calibration chart")
	}
}

var barAttrs = regexp.MustCompile(`<rect class="bar" data-bin="(\d+)"[^>]*\bheight="([^"]+)"`)

func TestHistogramBarsProportional(t *testing.T) {
	for _, tc := range []struct {
		name     string
		training bool
	}{{"alone", false}, {"with training", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleReport()
			scores := skewedScores(3, 20000, 4)
			r.Scores.Bins = binScores(scores, 25)
			if tc.training {
				// Flatter than the scores: the scale is shared, the
				// partition's bars no longer reach the top.
				r.Training.Bins = binScores(skewedScores(4, 20000, 1.5), 25)
			} else {
				r.Training = nil
			}
			heights := map[int]float64{}
			for _, m := range barAttrs.FindAllStringSubmatch(render(t, r), -1) {
				bin, _ := strconv.Atoi(m[1])
				h, err := strconv.ParseFloat(m[2], 64)
				if err != nil {
					t.Fatalf("bar %d height %q: %v", bin, m[2], err)
				}
				heights[bin] = h
			}
			if len(heights) != len(r.Scores.Bins) {
				t.Fatalf("%d bars, want %d", len(heights), len(r.Scores.Bins))
			}
			top := slices.Max(r.Scores.Bins)
			topBin := slices.Index(r.Scores.Bins, top)
			scale := heights[topBin] / top // pixels per unit of fraction
			if scale <= 0 {
				t.Fatalf("tallest bin's bar has height %v", heights[topBin])
			}
			for i, f := range r.Scores.Bins {
				// Heights are written with two decimals.
				if want := f * scale; math.Abs(heights[i]-want) > 0.011 {
					t.Errorf("bin %d (%.4f of the scores): bar height %v, want %.3f", i, f, heights[i], want)
				}
			}
		})
	}
}

var driftRowRe = regexp.MustCompile(`(?s)<tr data-feature="([^"]*)".*?</tr>`)

// driftRow returns the drift table row of a feature.
func driftRow(t *testing.T, doc, feature string) string {
	t.Helper()
	for _, m := range driftRowRe.FindAllStringSubmatch(doc, -1) {
		if html.UnescapeString(m[1]) == feature {
			return m[0]
		}
	}
	t.Fatalf("no drift row for %q", feature)
	return ""
}

func TestMissingRateHighlight(t *testing.T) {
	for _, tc := range []struct {
		name              string
		train, prev, this float64
		moved             bool
		delta             string
	}{
		{"up from previous", 0.1, 0.1, 0.16, true, "(+6.0 pts)"},
		{"down from previous", 0.3, 0.3, 0.2, true, "(-10.0 pts)"},
		{"small move", 0.1, 0.1, 0.14, false, "(+4.0 pts)"},
		{"previous unknown: vs training", 0.0, nan, 0.06, true, "(+6.0 pts)"},
		{"previous decides over training", 0.0, 0.05, 0.06, false, "(+1.0 pts)"},
		{"nothing to compare with", nan, nan, 0.5, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleReport()
			d := &r.Drift[0]
			d.TrainMissingRate, d.PrevMissingRate, d.MissingRate = tc.train, tc.prev, tc.this
			row := driftRow(t, render(t, r), d.Feature)
			if got := strings.Contains(row, `class="this moved"`); got != tc.moved {
				t.Errorf("highlighted: %v, want %v\n%s", got, tc.moved, row)
			}
			if tc.delta != "" && !strings.Contains(html.UnescapeString(row), tc.delta) {
				t.Errorf("row lacks the change %q\n%s", tc.delta, row)
			}
			if tc.delta == "" && strings.Contains(row, "pts") {
				t.Errorf("row shows a change with nothing to compare with\n%s", row)
			}
		})
	}
}

func TestSparkline(t *testing.T) {
	for _, tc := range []struct {
		name           string
		history        []float64
		lines, dots    int
		current        bool
		wantLinePoints []int
	}{
		{"gaps", []float64{0.1, nan, 0.2, 0.3, nan, 0.25}, 1, 2, true, []int{2}},
		{"current not computed", []float64{0.1, 0.2, nan}, 1, 0, false, []int{2}},
		{"one partition", []float64{0.2}, 0, 1, true, nil},
		{"all computed", []float64{0.1, 0.2, 0.3, 0.2}, 1, 0, true, []int{4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sampleReport()
			r.Drift = r.Drift[:1]
			r.Drift[0].History = history(tc.history...)
			row := driftRow(t, render(t, r), r.Drift[0].Feature)
			lines := regexp.MustCompile(`<polyline class="spark" points="([^"]*)"`).FindAllStringSubmatch(row, -1)
			var pts []int
			for _, l := range lines {
				pts = append(pts, len(strings.Fields(l[1])))
			}
			if !slices.Equal(pts, tc.wantLinePoints) {
				t.Errorf("line segments with %v points, want %v", pts, tc.wantLinePoints)
			}
			if n := strings.Count(row, `class="spark-dot"`); n != tc.dots {
				t.Errorf("%d isolated points, want %d", n, tc.dots)
			}
			if got := strings.Contains(row, `<circle class="current`); got != tc.current {
				t.Errorf("current point marked: %v, want %v", got, tc.current)
			}
		})
	}
}

type failingWriter struct{}

var errDiskFull = errors.New("disk full")

func (failingWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestRenderErrors(t *testing.T) {
	if err := report.Render(&bytes.Buffer{}, nil); err == nil {
		t.Errorf("Render(nil report) succeeded")
	}
	if err := report.Render(failingWriter{}, sampleReport()); !errors.Is(err, errDiskFull) {
		t.Errorf("Render to a failing writer: %v, want it to wrap %v", err, errDiskFull)
	}
}
