package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/internal/report"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers/table"
)

// ReportsDir is the folder of the output store that holds the run reports:
// reports/<table>/<partition>.html.
const ReportsDir = "reports"

// reportHistory is how many partitions a report's sparklines show.
const reportHistory = 12

// ReportKey is the key of a partition's report in the output store.
func ReportKey(tbl, partition string) string {
	return ReportsDir + "/" + tbl + "/" + partition + ".html"
}

// ReportRequest names the partition to report on: a backfilled month or a
// day of the queue.
type ReportRequest struct {
	Month string // YYYY-MM: the backfill table's partition
	Date  string // YYYY-MM-DD: the queue table's partition
}

// Report writes the HTML report of a published partition into the output
// store (ReportKey) and returns its URI. A partition without profiles (not
// published, or scored by a version that wrote none) is bad input (exit 3).
func (a *App) Report(ctx context.Context, r ReportRequest) (string, error) {
	var tbl, part string
	switch {
	case (r.Month == "") == (r.Date == ""):
		return "", UsageError{errors.New("report: one of --month (the backfill table) or --date (the queue table) is required")}
	case r.Month != "":
		if _, _, err := jobs.ParseMonth(r.Month); err != nil {
			return "", UsageError{err}
		}
		tbl, part = a.cfg.Backfill.Table, "month="+r.Month
	default:
		if _, err := jobs.ParseDate(r.Date); err != nil {
			return "", UsageError{err}
		}
		tbl, part = a.cfg.Queue.Table, "date="+r.Date
	}
	out, err := a.openOutput(ctx)
	if err != nil {
		return "", err
	}
	return a.writeReport(ctx, out, tbl, part)
}

// writeReport builds, renders and writes the report of one partition.
func (a *App) writeReport(ctx context.Context, out store.Bucket, tbl, part string) (string, error) {
	rep, err := a.buildReport(ctx, out, tbl, part)
	if err != nil {
		return "", fmt.Errorf("report %s/%s: %w", tbl, part, err)
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, rep); err != nil {
		return "", fmt.Errorf("report %s/%s: %w", tbl, part, err)
	}
	key := ReportKey(tbl, part)
	if err := store.WriteAll(ctx, out, key, buf.Bytes(), store.WriteOptions{ContentType: "text/html; charset=utf-8"}); err != nil {
		return "", fmt.Errorf("report %s/%s: %w", tbl, part, err)
	}
	return out.URI(key), nil
}

// buildReport reads what the report shows from the published tables: the
// partition's profiles and drift, the drift of the partitions before it,
// the rejects table's count and the champion's evaluation, if any.
func (a *App) buildReport(ctx context.Context, out store.Bucket, tbl, part string) (*report.Report, error) {
	profs, err := jobs.ReadProfiles(ctx, out, tbl, part)
	if err != nil {
		return nil, err
	}
	if len(profs) == 0 {
		return nil, fmt.Errorf("%w: %s has no published profile of %s (not scored, or scored by a version of scorer without profiles)",
			jobs.ErrBadInput, out.URI(jobs.ProfilesTable(tbl)+"/"), part)
	}
	pp := profs[0]
	rep := &report.Report{
		Title: tbl + " " + part, Table: tbl, Partition: part, RunID: pp.RunID,
		ModelName: pp.ModelName, ModelVersion: pp.ModelVersion, GeneratedAt: a.now().UTC(), Status: jobs.DriftOK,
	}
	if s := pp.Profile.Feature(features.ScoreFeature); s != nil {
		rep.Rows = s.Count
		if rep.Scores, err = scoreDist(s); err != nil {
			return nil, err
		}
	}
	if pp.Training != nil {
		if s := pp.Training.Feature(features.ScoreFeature); s != nil {
			d, err := scoreDist(s)
			if err != nil {
				return nil, err
			}
			rep.Training = &d
		}
	}
	pub, err := table.NewPublisher(out, table.DefaultOptions())
	if err != nil {
		return nil, err
	}
	if m, err := pub.Manifest(ctx, jobs.RejectsTable(tbl), part); err == nil {
		rep.Rejected = m.TotalRows
	} else if !errors.Is(err, store.ErrNotExist) {
		return nil, err
	}

	parts, drift, err := jobs.ReadDriftHistory(ctx, out, tbl, part, reportHistory)
	if err != nil {
		return nil, err
	}
	for _, d := range drift[part] {
		fd := report.FeatureDrift{
			Feature: d.Feature, Kind: d.Kind, PSI: d.PSI, JS: d.JS, PSIPrev: d.PSIPrev, JSPrev: d.JSPrev,
			WarnAbove: d.WarnAbove, FailAbove: d.FailAbove, Status: d.Status,
			MissingRate: d.MissingRate, TrainMissingRate: d.TrainMissingRate, PrevMissingRate: d.PrevMissingRate,
		}
		for _, p := range parts {
			v := math.NaN()
			for _, h := range drift[p] {
				if h.Feature == d.Feature {
					v = h.PSI
				}
			}
			fd.History = append(fd.History, report.Point{Partition: p, Value: v})
		}
		if d.Status == jobs.DriftWarn && rep.Status == jobs.DriftOK || d.Status == jobs.DriftFail {
			rep.Status = d.Status
		}
		rep.Drift = append(rep.Drift, fd)
	}

	ev, err := jobs.ReadPartitionEvaluation(ctx, out, a.cfg.Evaluate.Table, tbl, part, pp.ModelName, pp.ModelVersion)
	if err != nil {
		return nil, err
	}
	if ev != nil {
		re := &report.Evaluation{Rows: ev.LabelledRows, Positives: ev.Positives, AUC: ev.AUC, LogLoss: ev.LogLoss, ECE: ev.ECE}
		for _, b := range ev.Calibration {
			re.Calibration = append(re.Calibration, report.CalBin{Lo: b.ScoreMin, Hi: b.ScoreMax, MeanScore: b.MeanScore, Rate: b.LabelRate, Rows: b.Rows})
		}
		rep.Evaluation = re
	}
	return rep, nil
}

// reportQuantiles are the score quantiles a report lists.
var reportQuantiles = []float64{0.05, 0.25, 0.5, 0.75, 0.95}

// scoreDist is a score profile as the report draws it: the shares of its
// equal-width bins, its mean and quantiles.
func scoreDist(s *features.FeatureProfile) (report.ScoreDist, error) {
	d := report.ScoreDist{Mean: s.Mean()}
	var n int64
	for _, c := range s.Bins {
		n += c
	}
	for _, c := range s.Bins {
		share := 0.0
		if n > 0 {
			share = float64(c) / float64(n)
		}
		d.Bins = append(d.Bins, share)
	}
	qs, err := s.Quantiles(reportQuantiles...)
	if err != nil {
		return d, err
	}
	for i, q := range reportQuantiles {
		d.Quantiles = append(d.Quantiles, report.Quantile{Q: q, Value: qs[i]})
	}
	return d, nil
}
