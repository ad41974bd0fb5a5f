package app

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
)

// EvaluateRequest asks for the evaluation of one scored partition: a
// backfilled month or a day of the queue.
type EvaluateRequest struct {
	Month string // YYYY-MM: the backfill table's partition
	Date  string // YYYY-MM-DD: the queue table's partition
	// Labels is a folder of label files (any input format: the id columns
	// and the label column) joined to the scores by id; a URI, or a folder
	// of the input store. Empty: the score table's own label column.
	Labels string
}

// Evaluate evaluates a scored partition and publishes the evaluations
// (docs/evaluation.md).
func (a *App) Evaluate(ctx context.Context, r EvaluateRequest) (*jobs.Evaluation, error) {
	var tc TableConfig
	var part string
	switch {
	case (r.Month == "") == (r.Date == ""):
		return nil, UsageError{errors.New("evaluate: one of --month (the backfill table) or --date (the queue table) is required")}
	case r.Month != "":
		if _, _, err := jobs.ParseMonth(r.Month); err != nil {
			return nil, UsageError{err}
		}
		tc, part = a.cfg.Backfill, "month="+r.Month
	default:
		if _, err := jobs.ParseDate(r.Date); err != nil {
			return nil, UsageError{err}
		}
		tc, part = a.cfg.Queue, "date="+r.Date
	}
	ec := a.cfg.Evaluate
	label := ec.Label
	if label == "" {
		if len(tc.LabelColumns) == 0 {
			return nil, UsageError{errors.New("evaluate: no label column: set evaluate.label, or the job's label_columns")}
		}
		label = tc.LabelColumns[0]
	}
	out, err := a.openOutput(ctx)
	if err != nil {
		return nil, err
	}
	j := jobs.EvaluateJob{
		Output: out, Table: tc.Table, Partition: part, IDColumns: tc.IDColumns, Label: label,
		SegmentColumns: ec.SegmentColumns, MaxSegmentValues: ec.MaxSegmentValues, Bins: ec.Bins, EvalTable: ec.Table,
		RowGroupRows: int64(a.cfg.Parquet.RowGroupRows), PartRows: int64(a.cfg.Parquet.PartRows),
		LeaseTTL: a.cfg.LeaseTTL, Now: a.now, Log: a.log,
	}
	if r.Labels != "" {
		b, dir, err := a.labelsStore(ctx, r.Labels)
		if err != nil {
			return nil, err
		}
		j.Labels = &jobs.LabelsSource{Bucket: b, Dir: dir, CSV: a.cfg.CSV.CSVOptions()}
	}
	a.runs.RLock() // never while the daemon heals
	defer a.runs.RUnlock()
	ev, err := jobs.Evaluate(ctx, j)
	if err != nil {
		return ev, fmt.Errorf("evaluate %s/%s: %w", tc.Table, part, err)
	}
	a.log.Info("evaluated", "table", tc.Table, "partition", part, "run_id", ev.RunID, "rows", len(ev.Rows), "files", ev.OutputFiles)
	// The partition's report shows the evaluation: write it again. A
	// partition scored without profiles has no report.
	if uri, err := a.writeReport(ctx, out, tc.Table, part); err != nil {
		a.log.Warn("write the partition's report (scorer report writes it again)", "err", err)
	} else {
		a.log.Info("report", "uri", uri)
	}
	return ev, nil
}

// labelsStore opens the labels source: a URI with a scheme or an absolute
// path (the folder itself), or else a folder of the input store.
func (a *App) labelsStore(ctx context.Context, labels string) (store.Bucket, string, error) {
	uri, dir := labels, ""
	if !strings.Contains(labels, "://") && !path.IsAbs(labels) {
		uri, dir = a.cfg.Input, strings.TrimSuffix(labels, "/")
		if err := store.CheckKey(dir); err != nil {
			return nil, "", UsageError{fmt.Errorf("--labels: a folder of the input store, a URI or an absolute path: %w", err)}
		}
	}
	b, err := store.Open(ctx, uri)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("--labels: %w", err)}
	}
	return b, dir, nil
}
