package jobs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/criteotest"
	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/metrics"
	"github.com/adtech/scorer/scoring/training"
)

// writeDemoMonth writes files × rows demo rows of month (YYYY-MM) as gzip
// CSV dumps under dir/dumps/month/, laid out as gendemo does, and returns
// the rows by ad_id.
func writeDemoMonth(t *testing.T, dir string, g *demodata.Generator, month, prefix string, files, rows int) map[string]demodata.Row {
	t.Helper()
	from, err := time.Parse("2006-01", month)
	if err != nil {
		t.Fatal(err)
	}
	to := from.AddDate(0, 1, 0)
	byID := map[string]demodata.Row{}
	for part := range files {
		name := fmt.Sprintf("%s-%s-%03d", prefix, month, part)
		rs := g.Rows(name, rows, from, to)
		for _, r := range rs {
			byID[r.ID] = r
		}
		p := filepath.Join(dir, "dumps", month, name+".csv.gz")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := demodata.WriteCSV(f, rs, true); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if len(byID) != files*rows {
		t.Fatalf("%d distinct ids for %d rows", len(byID), files*rows)
	}
	return byID
}

// scored is what scoreDir returns: per row, in read order, its id (if
// asked), its label and the model's score.
type scored struct {
	ids    []string
	labels []float32
	scores []float32
}

// scoreDir reads every file under dir of b (one at a time, in key order),
// computes the bundle's features and scores them with a Model: the scoring
// path without the pool and the writers.
func scoreDir(t *testing.T, b store.Bucket, dir string, bu *bundle.Bundle, csv readers.CSVOptions, idCol string) scored {
	t.Helper()
	ctx := context.Background()
	files, _, err := ListInputs(ctx, b, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no input files under %s", dir)
	}
	var ids []string
	if idCol != "" {
		ids = []string{idCol}
	}
	src, err := readers.Open(ctx, b, files, readers.Options{
		Schema: bu.Features.InputSchema(ids, true), Concurrency: 1, CSV: csv,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		t.Fatal(err)
	}
	m, err := scoring.NewModel(bu, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()

	var out scored
	var batch features.Batch
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := fx.Transform(rec, &batch); err != nil {
			rec.Release()
			t.Fatal(err)
		}
		p := make([]float32, batch.N)
		if err := m.Score(&batch, p); err != nil {
			rec.Release()
			t.Fatal(err)
		}
		out.scores = append(out.scores, p...)
		for _, y := range rec.Column(rec.Schema().FieldIndices(bu.Features.Label)[0]).(*array.Float64).Float64Values() {
			out.labels = append(out.labels, float32(y))
		}
		if idCol != "" {
			col := rec.Column(rec.Schema().FieldIndices(idCol)[0]).(*array.String)
			for i := range col.Len() {
				out.ids = append(out.ids, col.Value(i))
			}
		}
		rec.Release()
	}
	return out
}

// demoTrainJob is `scorer train` with the defaults of internal/app/config.go
// (wide_deep, E=8, hidden [32, 16], lr 0.001, 8 epochs, batch 256,
// validation 0.2, seed 1) on month of the store at dir.
func demoTrainJob(t *testing.T, dir, month string) TrainJob {
	t.Helper()
	spec, err := features.LoadSpec("../../testdata/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := training.DefaultConfig()
	cfg.Arch = bundle.Architecture{Kind: bundle.WideDeep, EmbeddingDim: 8, Hidden: []int{32, 16}}
	cfg.Epochs, cfg.BatchSize, cfg.LearningRate, cfg.Seed = 8, 256, 0.001, 1
	return TrainJob{
		Input: store.NewFileBucket(dir), Dir: "dumps", Month: month, Spec: spec,
		Name: "ctr-test", Config: cfg, ValidationFraction: 0.2, BatchSize: 4096,
		CSV: readers.CSVOptions{Header: true},
	}
}

// TestTrainDemo trains on a generated month and checks the model against
// the known click function on a fresh month: its AUC must come within 0.02
// of the AUC of the true click probabilities on the same rows.
func TestTrainDemo(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := demodata.New(2020)
	writeDemoMonth(t, dir, g, "2020-08", "ads", 2, 20000)

	bu, err := Train(ctx, demoTrainJob(t, dir, "2020-08"))
	if err != nil {
		t.Fatal(err)
	}
	if err := bu.Validate(); err != nil {
		t.Fatalf("trained bundle: %v", err)
	}

	t.Run("metrics", func(t *testing.T) {
		m := bu.Metrics
		for _, k := range []string{"auc", "logloss", "val_auc", "val_logloss", "val_rows", "train_rows"} {
			if _, ok := m[k]; !ok {
				t.Errorf("metric %q missing; have %v", k, m)
			}
		}
		if got := m["val_rows"]; got != 8000 {
			t.Errorf("val_rows = %g, want 8000 (0.2 of 40000)", got)
		}
		if got := m["train_rows"]; got != 32000 {
			t.Errorf("train_rows = %g, want 32000", got)
		}
		if got := bu.Training.Rows; got != 40000 {
			t.Errorf("Training.Rows = %d, want 40000", got)
		}
		// A model that learned something: well above chance and below the
		// log loss of a fair coin, ln 2.
		if v := m["val_auc"]; !(v > 0.65 && v < 1) {
			t.Errorf("val_auc = %g, want in (0.65, 1)", v)
		}
		if v := m["val_logloss"]; !(v > 0 && v < math.Ln2) {
			t.Errorf("val_logloss = %g, want in (0, ln 2)", v)
		}
		t.Logf("train auc %.4f logloss %.4f; val auc %.4f logloss %.4f", m["auc"], m["logloss"], m["val_auc"], m["val_logloss"])
	})

	t.Run("fresh month vs truth", func(t *testing.T) {
		// The same click function, rows never seen in training.
		truth := writeDemoMonth(t, dir, g, "2020-09", "fresh", 2, 20000)
		got := scoreDir(t, store.NewFileBucket(dir), "dumps/2020-09", bu, readers.CSVOptions{Header: true}, "ad_id")
		if len(got.scores) != len(truth) {
			t.Fatalf("scored %d rows, wrote %d", len(got.scores), len(truth))
		}
		trueProb := make([]float32, len(got.ids))
		for i, id := range got.ids {
			r, ok := truth[id]
			if !ok {
				t.Fatalf("scored unknown id %q", id)
			}
			if float32(r.Clicked) != got.labels[i] {
				t.Fatalf("%s: label %g read, %d written", id, got.labels[i], r.Clicked)
			}
			trueProb[i] = float32(r.TrueProb)
		}
		model := metrics.AUC(got.scores, got.labels)
		ideal := metrics.AUC(trueProb, got.labels)
		t.Logf("2020-09, %d rows: AUC model %.4f, true probabilities %.4f (gap %.4f); log loss model %.4f, truth %.4f",
			len(got.scores), model, ideal, ideal-model, metrics.LogLoss(got.scores, got.labels), metrics.LogLoss(trueProb, got.labels))
		if !(math.Abs(model-ideal) < 0.02) {
			t.Errorf("|AUC(model) - AUC(truth)| = |%.4f - %.4f| = %.4f, want < 0.02", model, ideal, math.Abs(model-ideal))
		}
	})
}

// TestTrainDeterministic trains twice with one seed and once with another
// on a small month: the same seed must give the same bundle bit for bit,
// another seed a different one (so the comparison can fail).
func TestTrainDeterministic(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeDemoMonth(t, dir, demodata.New(7), "2020-07", "ads", 2, 3000)
	train := func(seed int64) *bundle.Bundle {
		j := demoTrainJob(t, dir, "2020-07")
		j.Config.Epochs, j.Config.Seed = 2, seed
		j.BatchSize = 1000 // several records a file
		bu, err := Train(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		return bu
	}
	a, b, c := train(1), train(1), train(2)
	if diff := weightDiff(a, b); diff != "" {
		t.Errorf("same seed, different weights: %s", diff)
	}
	for k, v := range a.Metrics {
		if b.Metrics[k] != v {
			t.Errorf("same seed: metric %s %v then %v", k, v, b.Metrics[k])
		}
	}
	if weightDiff(a, c) == "" {
		t.Error("seeds 1 and 2 gave identical weights")
	}
}

// weightDiff describes the first difference between two bundles' weights,
// or returns "".
func weightDiff(a, b *bundle.Bundle) string {
	names := make([]string, 0, len(a.Weights))
	for n := range a.Weights {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(a.Weights) != len(b.Weights) {
		return fmt.Sprintf("%d tensors vs %d", len(a.Weights), len(b.Weights))
	}
	for _, n := range names {
		p, q := a.Weights[n], b.Weights[n]
		if q == nil {
			return fmt.Sprintf("%s missing", n)
		}
		if !slices.Equal(p.Shape, q.Shape) {
			return fmt.Sprintf("%s: shape %v vs %v", n, p.Shape, q.Shape)
		}
		for i := range p.Data {
			if math.Float32bits(p.Data[i]) != math.Float32bits(q.Data[i]) {
				return fmt.Sprintf("%s[%d]: %g vs %g", n, i, p.Data[i], q.Data[i])
			}
		}
	}
	return ""
}

// criteoHoldout is how many of the sample's last lines are held out.
const criteoHoldout = 2000

func criteoColumns() []string {
	cols := []string{"label"}
	for i := 1; i <= 13; i++ {
		cols = append(cols, fmt.Sprintf("I%d", i))
	}
	for i := 1; i <= 26; i++ {
		cols = append(cols, fmt.Sprintf("C%d", i))
	}
	return cols
}

func criteoSpec(t *testing.T) features.Spec {
	t.Helper()
	var b strings.Builder
	b.WriteString("label: label\nfeatures:\n")
	for i := 1; i <= 13; i++ {
		// Counts, some negative (I2 has -1): log1p keeps the sign.
		fmt.Fprintf(&b, "  - {name: I%d, kind: numeric, fill: 0, log1p: true, standardize: true}\n", i)
	}
	for i := 1; i <= 26; i++ {
		fmt.Fprintf(&b, "  - {name: C%d, kind: categorical, hash_buckets: 1000}\n", i)
	}
	s, err := features.ParseSpec([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestTrainCriteo trains on the first 8000 lines of the Criteo sample and
// scores the last 2000 (another month of the store): the model's log loss
// there must beat a constant predictor at the training click rate.
func TestTrainCriteo(t *testing.T) {
	lines := criteotest.Lines(t)
	if len(lines) <= criteoHoldout {
		t.Fatalf("%d lines in the sample", len(lines))
	}
	trainLines, valLines := lines[:len(lines)-criteoHoldout], lines[len(lines)-criteoHoldout:]

	// The labels, read here independently of the readers.
	labelsOf := func(ls []string) []float32 {
		ys := make([]float32, len(ls))
		for i, l := range ls {
			switch first, _, _ := strings.Cut(l, "\t"); first {
			case "0":
			case "1":
				ys[i] = 1
			default:
				t.Fatalf("line %q: label %q", l, first)
			}
		}
		return ys
	}
	trainY, valY := labelsOf(trainLines), labelsOf(valLines)

	dir := t.TempDir()
	for key, ls := range map[string][]string{"dumps/2013-01/train.tsv": trainLines, "dumps/2013-02/val.tsv": valLines} {
		p := filepath.Join(dir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.Join(ls, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	csv := readers.CSVOptions{ColumnNames: criteoColumns()}
	cfg := training.DefaultConfig()
	cfg.Arch = bundle.Architecture{Kind: bundle.Wide}
	cfg.Epochs, cfg.BatchSize, cfg.LearningRate, cfg.Seed = 3, 256, 0.01, 1
	bu, err := Train(context.Background(), TrainJob{
		Input: store.NewFileBucket(dir), Dir: "dumps", Month: "2013-01", Spec: criteoSpec(t),
		Name: "criteo-test", Config: cfg, BatchSize: 4096, CSV: csv,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := bu.Training.Rows; got != len(trainLines) {
		t.Fatalf("trained on %d rows, the training file has %d", got, len(trainLines))
	}

	got := scoreDir(t, store.NewFileBucket(dir), "dumps/2013-02", bu, csv, "")
	if !slices.Equal(got.labels, valY) {
		t.Fatalf("the readers' validation labels differ from the file's (%d vs %d rows)", len(got.labels), len(valY))
	}
	var clicks float64
	for _, y := range trainY {
		clicks += float64(y)
	}
	rate := float32(clicks / float64(len(trainY)))
	constant := make([]float32, len(valY))
	for i := range constant {
		constant[i] = rate
	}
	model, baseline := metrics.LogLoss(got.scores, valY), metrics.LogLoss(constant, valY)
	t.Logf("held-out %d rows: log loss model %.4f, constant %.4f (training click rate %.4f); AUC model %.4f",
		len(valY), model, baseline, rate, metrics.AUC(got.scores, valY))
	if !(model < baseline) {
		t.Errorf("held-out log loss %.4f, want below the constant predictor's %.4f", model, baseline)
	}
}

func TestParseBadRowLimit(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    BadRowLimit
		wantErr bool
	}{
		{in: "", want: BadRowLimit{}},
		{in: "0", want: BadRowLimit{}},
		{in: "100", want: BadRowLimit{Count: 100}},
		{in: " 7 ", want: BadRowLimit{Count: 7}},
		{in: "1", want: BadRowLimit{Count: 1}},
		{in: "0.5%", want: BadRowLimit{Fraction: 0.005}},
		{in: "12.5 %", want: BadRowLimit{Fraction: 0.125}},
		{in: "0%", want: BadRowLimit{}},
		{in: "0.005", want: BadRowLimit{Fraction: 0.005}},
		{in: ".25", want: BadRowLimit{Fraction: 0.25}},
		{in: "-1", wantErr: true},
		{in: "100%", wantErr: true},
		{in: "-1%", wantErr: true},
		{in: "abc%", wantErr: true},
		{in: "%", wantErr: true},
		{in: "1.0", wantErr: true}, // not a count, and not a fraction below 1
		{in: "1.5", wantErr: true},
		{in: "0.0", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "NaN", wantErr: true},  // would tolerate every bad row: NaN compares false
		{in: "NaN%", wantErr: true}, // the same
		{in: "abc", wantErr: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseBadRowLimit(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseBadRowLimit(%q) = %+v, want an error", tc.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBadRowLimit(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("ParseBadRowLimit(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			// String gives text that parses back to the same limit.
			again, err := ParseBadRowLimit(got.String())
			if err != nil || again != got {
				t.Errorf("ParseBadRowLimit(%q) = %+v, %v; want %+v", got.String(), again, err, got)
			}
			if zero := (tc.want == BadRowLimit{}); got.Zero() != zero {
				t.Errorf("Zero() = %v, want %v", got.Zero(), zero)
			}
		})
	}
}

func TestBadRowLimitExceeded(t *testing.T) {
	for _, tc := range []struct {
		name       string
		limit      BadRowLimit
		bad, total int64
		final      bool
		want       bool
	}{
		{"none tolerated, none bad", BadRowLimit{}, 0, 1000, true, false},
		{"none tolerated, one bad", BadRowLimit{}, 1, 1000, false, true},
		{"none tolerated, one bad at the end", BadRowLimit{}, 1, 1000, true, true},
		{"count, at the limit", BadRowLimit{Count: 100}, 100, 0, false, false},
		{"count, past the limit, while reading", BadRowLimit{Count: 100}, 101, 0, false, true},
		{"count, past the limit, at the end", BadRowLimit{Count: 100}, 101, 1e6, true, true},
		{"count ignores the total", BadRowLimit{Count: 5}, 5, 5, true, false},
		{"fraction, at the limit", BadRowLimit{Fraction: 0.01}, 10, 1000, true, false},
		{"fraction, past the limit", BadRowLimit{Fraction: 0.01}, 11, 1000, true, true},
		{"fraction, checked only at the end", BadRowLimit{Fraction: 0.01}, 1000, 1000, false, false},
		{"fraction, all bad", BadRowLimit{Fraction: 0.5}, 3, 3, true, true},
		{"fraction, no rows", BadRowLimit{Fraction: 0.5}, 0, 0, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.limit.Exceeded(tc.bad, tc.total, tc.final); got != tc.want {
				t.Errorf("%+v.Exceeded(%d, %d, %v) = %v, want %v", tc.limit, tc.bad, tc.total, tc.final, got, tc.want)
			}
		})
	}
}

// TestTrainBadRowFraction: a fractional max_bad_rows is judged at the end of
// training's input too.
func TestTrainBadRowFraction(t *testing.T) {
	dir := t.TempDir()
	var buf bytes.Buffer
	from := time.Date(2020, 8, 1, 0, 0, 0, 0, time.UTC)
	if err := demodata.WriteCSV(&buf, demodata.New(3).Rows("b", 40, from, from.AddDate(0, 1, 0)), false); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	for i := 1; i <= 4; i++ { // 4 of 40 rows: 10%
		f := strings.Split(lines[i], ",")
		f[8] = "not-a-price"
		lines[i] = strings.Join(f, ",")
	}
	if err := os.MkdirAll(filepath.Join(dir, "dumps", "2020-08"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "dumps", "2020-08", "a.csv"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		limit string
		fails bool
	}{{"5%", true}, {"20%", false}} {
		j := demoTrainJob(t, dir, "2020-08")
		j.Config.Epochs = 1
		lim, err := ParseBadRowLimit(tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		j.BadRows = lim
		_, err = Train(context.Background(), j)
		if (tt.fails && !errors.Is(err, ErrBadInput)) || (!tt.fails && err != nil) {
			t.Errorf("max_bad_rows %s with 10%% bad rows: err = %v, want failure %v", tt.limit, err, tt.fails)
		}
	}
}

// splitOrder puts the validation rows last: the latest by time (rows
// without a time first, ties in input order), the last in input order
// without a time column, or a seeded random choice.
func TestSplitOrder(t *testing.T) {
	times := []int64{30, math.MinInt64, 10, 30, 20}
	if got, how := splitOrder(5, SplitTime, "served_at", times, 1); !slices.Equal(got, []int{1, 2, 4, 0, 3}) || how != "time:served_at" {
		t.Errorf("by time: %v (%s)", got, how)
	}
	if got, how := splitOrder(5, "", "", nil, 1); !slices.Equal(got, []int{0, 1, 2, 3, 4}) || how != "order" {
		t.Errorf("input order: %v (%s)", got, how)
	}
	a, how := splitOrder(50, SplitRandom, "served_at", nil, 1)
	b, _ := splitOrder(50, SplitRandom, "", nil, 1)
	if !slices.Equal(a, b) || slices.IsSorted(a) || how != SplitRandom {
		t.Errorf("random: %v, then %v (%s)", a, b, how)
	}
}

// The split, the early stopping record, refit, and logs without NaN, on a
// small demo month.
func TestTrainSplitsAndRefit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeDemoMonth(t, dir, demodata.New(11), "2020-07", "ads", 2, 1500)
	run := func(t *testing.T, set func(*TrainJob)) (*bundle.Bundle, string) {
		t.Helper()
		j := demoTrainJob(t, dir, "2020-07")
		j.Config.Epochs = 3
		var logs bytes.Buffer
		j.Log = slog.New(slog.NewJSONHandler(&logs, nil))
		set(&j)
		bu, err := Train(ctx, j)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range bu.Metrics {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("metric %s = %v", k, v)
			}
		}
		if strings.Contains(logs.String(), "NaN") || strings.Contains(logs.String(), "!ERROR") {
			t.Errorf("logs:\n%s", logs.String())
		}
		return bu, logs.String()
	}
	t.Run("time column", func(t *testing.T) {
		bu, _ := run(t, func(j *TrainJob) { j.TimeColumn = "served_at" })
		if bu.Training.Split != "time:served_at" || bu.Metrics["val_rows"] != 600 || bu.Training.BestEpoch < 1 {
			t.Errorf("split %q, val_rows %v, best epoch %d", bu.Training.Split, bu.Metrics["val_rows"], bu.Training.BestEpoch)
		}
	})
	t.Run("no validation", func(t *testing.T) {
		bu, logs := run(t, func(j *TrainJob) { j.ValidationFraction = 0 })
		if bu.Training.Split != "" || bu.Training.BestEpoch != 0 || bu.Training.Epochs != 3 || !strings.Contains(logs, `"train_loss"`) {
			t.Errorf("training record %+v", bu.Training)
		}
		for k := range bu.Metrics {
			if strings.HasPrefix(k, "val_") && k != "val_rows" {
				t.Errorf("metric %s without a validation split", k)
			}
		}
	})
	t.Run("refit", func(t *testing.T) {
		bu, logs := run(t, func(j *TrainJob) { j.Refit = true })
		tr := bu.Training
		if !tr.Refit || tr.BestEpoch < 1 || tr.Epochs != tr.BestEpoch || bu.Metrics["rows"] != 3000 || !strings.Contains(logs, `"phase":"refit"`) {
			t.Errorf("refit: training %+v, metrics %v", tr, bu.Metrics)
		}
		if _, ok := bu.Metrics["val_logloss"]; !ok {
			t.Errorf("refit lost the validation metrics: %v", bu.Metrics)
		}
	})
	t.Run("bad time column", func(t *testing.T) {
		j := demoTrainJob(t, dir, "2020-07")
		j.TimeColumn = "bid_price" // numeric in the spec
		if _, err := Train(ctx, j); !errors.Is(err, ErrConfig) {
			t.Errorf("time column read as a number: %v, want ErrConfig", err)
		}
		j = demoTrainJob(t, dir, "2020-07")
		j.Config.Arch.Kind = bundle.Wide // hidden layers set: a config error, not a retry
		if _, err := Train(ctx, j); !errors.Is(err, ErrConfig) {
			t.Errorf("wide with hidden layers: %v, want ErrConfig", err)
		}
	})
}
