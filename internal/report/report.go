package report

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"time"
)

// Report is what one report shows: one partition of a score table.
type Report struct {
	Title        string // e.g. "ad_scores month=2020-09"
	Table        string
	Partition    string // e.g. "month=2020-09"
	RunID        string
	ModelName    string
	ModelVersion string
	GeneratedAt  time.Time
	Rows         int64          // rows scored
	Rejected     int64          // bad rows
	Status       string         // drift verdict of the run: "ok", "warn" or "fail"
	Scores       ScoreDist      // this partition's scores
	Training     *ScoreDist     // the training data's scores; nil when the model has no training profile
	Drift        []FeatureDrift // any order: the report sorts by severity
	Evaluation   *Evaluation    // nil when the partition has no labels
}

// ScoreDist is a score distribution.
type ScoreDist struct {
	Bins      []float64 // fraction of the scores in each of len(Bins) equal-width bins over [0,1]
	Mean      float64
	Quantiles []Quantile // e.g. 0.05 0.25 0.5 0.75 0.95
}

// Quantile is the Q-quantile (0 <= Q <= 1) of a distribution and its Value.
type Quantile struct{ Q, Value float64 }

// FeatureDrift is one input feature's drift.
type FeatureDrift struct {
	Feature, Kind        string  // Kind: numeric, categorical, cross, timestamp
	PSI, JS              float64 // vs the training profile; NaN when not computable
	PSIPrev, JSPrev      float64 // vs the previous partition; NaN when there is none
	WarnAbove, FailAbove float64 // PSI thresholds applied to this feature (0 = none)
	Status               string  // "ok", "warn" or "fail"
	History              []Point // PSI vs training over the last partitions, oldest first, this partition last
	MissingRate          float64 // this partition
	TrainMissingRate     float64 // NaN when unknown
	PrevMissingRate      float64 // NaN when unknown
}

// Point is one partition's value in a feature's history.
type Point struct {
	Partition string
	Value     float64 // NaN: not computed for that partition
}

// Evaluation is the partition's metrics against its labels.
type Evaluation struct {
	Rows, Positives   int64
	AUC, LogLoss, ECE float64
	Calibration       []CalBin // in score order
}

// CalBin is one bin of a calibration curve.
type CalBin struct {
	Lo, Hi    float64 // the bin's score range
	MeanScore float64 // mean predicted probability in the bin
	Rate      float64 // observed click rate in the bin
	Rows      int64
}

//go:embed report.html.tmpl
var pageText string

var page = template.Must(template.New("report").Parse(pageText))

// Render writes the report as one self-contained HTML document. The
// document is built in memory and written with one Write, so a failure
// leaves nothing half-rendered in w; the same Report always renders the
// same bytes.
func Render(w io.Writer, r *Report) error {
	if r == nil {
		return errors.New("render report: nil report")
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, newView(r)); err != nil {
		return fmt.Errorf("render report %q: %w", r.Title, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write report %q: %w", r.Title, err)
	}
	return nil
}
