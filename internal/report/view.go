package report

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// missingMoveAbove is how far (as a fraction: 0.05 is 5 points) a
// feature's missing rate must move from the previous partition (or, with no
// previous one, from training) to be highlighted.
const missingMoveAbove = 0.05

// dash stands for a value that is unknown or not computable.
const dash = "—"

// view is the Report as the template shows it: every number already
// formatted, every chart already laid out, so the template only places
// strings and the output depends on nothing but the Report.
type view struct {
	Title, Table, Partition, RunID, Model, GeneratedAt string
	Rows, Rejected, RejectedShare                      string
	Status                                             badge
	Hist                                               *histChart
	Quantiles                                          []quantRow
	HasTraining                                        bool
	Drift                                              []driftRow
	Eval                                               *evalView
}

type badge struct{ Text, Class string }

type quantRow struct{ Name, Value, Training string }

type driftRow struct {
	Feature, Kind                 string
	PSI, JS, PSIPrev, JSPrev      string
	MissTrain, MissPrev, MissThis string
	MissDelta                     string
	MissMoved                     bool
	Thresholds                    string
	Status                        badge
	Spark                         *sparkline
}

type evalView struct {
	Rows, Positives, PositiveRate, AUC, LogLoss, ECE string
	Chart                                            *calChart
	Bins                                             []calRow
}

type calRow struct{ Range, MeanScore, Rate, Rows string }

func newView(r *Report) *view {
	v := &view{
		Title:       orDash(cmp.Or(r.Title, strings.TrimSpace(r.Table+" "+r.Partition))),
		Table:       orDash(r.Table),
		Partition:   orDash(r.Partition),
		RunID:       orDash(r.RunID),
		Model:       orDash(strings.TrimSpace(r.ModelName + " " + r.ModelVersion)),
		GeneratedAt: dash,
		Rows:        count(r.Rows),
		Rejected:    count(r.Rejected),
		Status:      statusBadge(r.Status),
		Hist:        newHistChart(r.Scores, r.Training),
		HasTraining: r.Training != nil,
	}
	if !r.GeneratedAt.IsZero() {
		v.GeneratedAt = r.GeneratedAt.UTC().Format(time.RFC3339)
	}
	if total := r.Rows + r.Rejected; total > 0 {
		v.RejectedShare = share(float64(r.Rejected) / float64(total))
	}
	v.Quantiles = quantRows(r.Scores, r.Training)
	drift := slices.Clone(r.Drift)
	slices.SortStableFunc(drift, bySeverity)
	for _, d := range drift {
		v.Drift = append(v.Drift, newDriftRow(d))
	}
	if e := r.Evaluation; e != nil {
		ev := &evalView{
			Rows:         count(e.Rows),
			Positives:    count(e.Positives),
			PositiveRate: dash,
			AUC:          num(e.AUC, 4),
			LogLoss:      num(e.LogLoss, 4),
			ECE:          num(e.ECE, 4),
			Chart:        newCalChart(e.Calibration),
		}
		if e.Rows > 0 {
			ev.PositiveRate = percent(float64(e.Positives) / float64(e.Rows))
		}
		for _, b := range e.Calibration {
			ev.Bins = append(ev.Bins, calRow{
				Range:     num(b.Lo, 3) + "–" + num(b.Hi, 3),
				MeanScore: num(b.MeanScore, 4),
				Rate:      num(b.Rate, 4),
				Rows:      count(b.Rows),
			})
		}
		v.Eval = ev
	}
	return v
}

// severity orders statuses: fail, warn, ok, then anything else.
func severity(status string) int {
	switch status {
	case "fail":
		return 0
	case "warn":
		return 1
	case "ok":
		return 2
	}
	return 3
}

// bySeverity orders drift rows: by status (fail first), then by PSI
// descending with NaN last, then by feature name.
func bySeverity(a, b FeatureDrift) int {
	if c := cmp.Compare(severity(a.Status), severity(b.Status)); c != 0 {
		return c
	}
	aNaN, bNaN := math.IsNaN(a.PSI), math.IsNaN(b.PSI)
	switch {
	case aNaN && !bNaN:
		return 1
	case bNaN && !aNaN:
		return -1
	case !aNaN && !bNaN:
		if c := cmp.Compare(b.PSI, a.PSI); c != 0 {
			return c
		}
	}
	return strings.Compare(a.Feature, b.Feature)
}

func newDriftRow(d FeatureDrift) driftRow {
	row := driftRow{
		Feature:    d.Feature,
		Kind:       orDash(d.Kind),
		PSI:        num(d.PSI, 3),
		JS:         num(d.JS, 3),
		PSIPrev:    num(d.PSIPrev, 3),
		JSPrev:     num(d.JSPrev, 3),
		MissTrain:  percent(d.TrainMissingRate),
		MissPrev:   percent(d.PrevMissingRate),
		MissThis:   percent(d.MissingRate),
		Thresholds: thresholds(d.WarnAbove, d.FailAbove),
		Status:     statusBadge(d.Status),
		Spark:      newSparkline(d),
	}
	ref := d.PrevMissingRate
	if !finite(ref) {
		ref = d.TrainMissingRate
	}
	if delta := d.MissingRate - ref; finite(delta) {
		row.MissDelta = signed(delta*100, 1) + " pts"
		row.MissMoved = math.Abs(delta) > missingMoveAbove
	}
	return row
}

func thresholds(warn, fail float64) string {
	var parts []string
	if warn != 0 {
		parts = append(parts, "warn > "+num(warn, 3))
	}
	if fail != 0 {
		parts = append(parts, "fail > "+num(fail, 3))
	}
	if len(parts) == 0 {
		return dash
	}
	return strings.Join(parts, ", ")
}

func statusBadge(s string) badge {
	switch s {
	case "ok", "warn", "fail":
		return badge{Text: s, Class: s}
	case "":
		return badge{Text: dash, Class: "unknown"}
	}
	return badge{Text: s, Class: "unknown"}
}

// quantRows lists the mean and the quantiles of both distributions, by Q,
// a Q that only one of them has shown as unknown in the other.
func quantRows(s ScoreDist, train *ScoreDist) []quantRow {
	rows := []quantRow{{Name: "mean", Value: num(s.Mean, 4), Training: dash}}
	var qs []float64
	for _, q := range s.Quantiles {
		qs = append(qs, q.Q)
	}
	if train != nil {
		rows[0].Training = num(train.Mean, 4)
		for _, q := range train.Quantiles {
			qs = append(qs, q.Q)
		}
	}
	slices.SortFunc(qs, cmp.Compare[float64])
	qs = slices.Compact(qs)
	lookup := func(d *ScoreDist, q float64) string {
		if d == nil {
			return dash
		}
		for _, x := range d.Quantiles {
			if x.Q == q {
				return num(x.Value, 4)
			}
		}
		return dash
	}
	for _, q := range qs {
		name := dash
		if finite(q) {
			name = "p" + strconv.FormatFloat(math.Round(q*1000)/10, 'f', -1, 64)
		}
		rows = append(rows, quantRow{Name: name, Value: lookup(&s, q), Training: lookup(train, q)})
	}
	return rows
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// num formats v with prec decimals; NaN is unknown, infinities are ±∞.
func num(v float64, prec int) string {
	switch {
	case math.IsNaN(v):
		return dash
	case math.IsInf(v, 1):
		return "∞"
	case math.IsInf(v, -1):
		return "−∞"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func signed(v float64, prec int) string {
	s := num(v, prec)
	if v >= 0 {
		return "+" + s
	}
	return s
}

// percent formats a fraction as a percentage with one decimal.
func percent(v float64) string {
	if !finite(v) {
		return num(v, 1)
	}
	return num(v*100, 1) + "%"
}

// share formats a fraction of rows as a percentage, a small nonzero one
// as "< 0.1%" rather than 0.0%.
func share(v float64) string {
	if v > 0 && v < 0.0005 {
		return "< 0.1%"
	}
	return percent(v)
}

// count formats n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return dash
	}
	return s
}
