package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/jobs"
)

// errWriter prints until the first write error and keeps it: the commands
// print to stdout, and a closed pipe must fail the command rather than go
// unnoticed.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}

// flush flushes a tabwriter and returns the first error.
func (e *errWriter) flush(tw *tabwriter.Writer) error {
	if err := tw.Flush(); e.err == nil {
		e.err = err
	}
	return e.err
}

// summary is the end-of-run summary, as -o json prints it.
type summary struct {
	RunID           string   `json:"run_id"`
	Job             string   `json:"job"`
	NothingToDo     bool     `json:"nothing_to_do"`
	ModelName       string   `json:"model_name,omitempty"`
	ModelVersion    string   `json:"model_version,omitempty"`
	Challengers     []string `json:"challengers"`
	Kernel          string   `json:"kernel"`
	InputFiles      []string `json:"input_files"`
	InputBytes      int64    `json:"input_bytes"`
	RowsIn          int64    `json:"rows_in"`
	RowsScored      int64    `json:"rows_scored"`
	RowsRejected    int64    `json:"rows_rejected"`
	EmptyFiles      []string `json:"empty_files"`
	Duplicates      int64    `json:"duplicates"`
	DuplicatesTo    string   `json:"duplicates_to,omitempty"`
	DurationSeconds float64  `json:"duration_seconds"`
	RowsPerSecond   float64  `json:"rows_per_second"`
	Table           string   `json:"table"`
	Partition       string   `json:"partition"`
	TableURI        string   `json:"table_uri"`
	OutputFiles     []string `json:"output_files"`
	OutputBytes     int64    `json:"output_bytes"`
	StoreRetries    int64    `json:"store_retries"`
	Recovered       []string `json:"recovered"`
	// DriftStatus is the worst feature's drift status (ok, warn, fail);
	// Drift every feature's drift (NaN as null).
	DriftStatus string              `json:"drift_status,omitempty"`
	Drift       []jobs.FeatureDrift `json:"drift"`
	Report      string              `json:"report,omitempty"`
	// Images: the champion's image cache and bad images (absent without
	// image features).
	Images *imagesSummary `json:"images,omitempty"`
}

type imagesSummary struct {
	CacheHits   int64            `json:"cache_hits"`
	CacheMisses int64            `json:"cache_misses"`
	HitRate     float64          `json:"hit_rate"`
	Bad         int64            `json:"bad"`
	BadByReason map[string]int64 `json:"bad_by_reason"`
}

func newSummary(cfg app.Config, s *jobs.Summary, retries int64) summary {
	out := summary{
		RunID: s.RunID, Job: s.Job, NothingToDo: s.NothingToDo, ModelName: s.ModelName, ModelVersion: s.ModelVersion,
		Challengers: challengers(s), Kernel: kernelName(), InputFiles: s.InputFiles, InputBytes: s.InputBytes,
		RowsIn: s.RowsIn(), RowsScored: s.RowsRead, RowsRejected: s.RowsRejected,
		EmptyFiles: s.EmptyFiles, Duplicates: s.Duplicates, DuplicatesTo: s.DupsTo, DurationSeconds: s.Duration.Seconds(), Table: s.Table, Partition: s.Partition,
		TableURI:    fmt.Sprintf("%s/%s/%s", strings.TrimSuffix(cfg.Output, "/"), s.Table, s.Partition),
		OutputFiles: s.OutputFiles, OutputBytes: s.OutputBytes, StoreRetries: retries, Recovered: s.Recovered,
		DriftStatus: s.DriftStatus, Drift: s.Drift, Report: s.ReportURI,
	}
	if out.Drift == nil {
		out.Drift = []jobs.FeatureDrift{}
	}
	if im := s.Images; im != nil {
		out.Images = &imagesSummary{CacheHits: im.Hits, CacheMisses: im.Misses, HitRate: im.HitRate(), Bad: im.Bad, BadByReason: im.BadByReason}
	}
	if secs := s.Duration.Seconds(); secs > 0 {
		out.RowsPerSecond = float64(s.RowsRead) / secs
	}
	for _, p := range []*[]string{&out.InputFiles, &out.EmptyFiles, &out.OutputFiles, &out.Recovered} {
		if *p == nil {
			*p = []string{}
		}
	}
	return out
}

// printSummary prints the end-of-run summary: one screen of text, or JSON.
func printSummary(w io.Writer, format formatValue, cfg app.Config, s *jobs.Summary, retries int64) error {
	if format == "json" {
		return writeJSON(w, newSummary(cfg, s, retries))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ew := &errWriter{w: tw}
	row := func(k string, v any) { ew.printf("  %s\t%v\n", k, v) }
	ew.printf("scorer %s: run %s\n", s.Job, s.RunID)
	if s.NothingToDo {
		row("result", "nothing to score (every queued file was already scored)")
		return ew.flush(tw)
	}
	row("model", s.ModelName+" "+s.ModelVersion)
	row("kernel", kernelName())
	if len(s.Challengers) > 0 {
		row("challengers", strings.Join(challengers(s), ", ")+" (-> "+jobs.ChallengersTable(s.Table)+")")
	}
	row("input files", fmt.Sprintf("%d (%s)", len(s.InputFiles), humanBytes(s.InputBytes)))
	row("rows in", s.RowsIn())
	row("rows scored", s.RowsRead)
	row("rows rejected", s.RowsRejected)
	if s.Duplicates > 0 {
		row("duplicate ids", fmt.Sprintf("%d (%s)", s.Duplicates, s.DupsTo))
	}
	if len(s.EmptyFiles) > 0 {
		row("empty files", fmt.Sprintf("%d (%s)", len(s.EmptyFiles), strings.Join(s.EmptyFiles, ", ")))
	}
	secs := s.Duration.Seconds()
	if secs > 0 {
		row("throughput", fmt.Sprintf("%.0f rows/s (%s)", float64(s.RowsRead)/secs, s.Duration.Round(time.Millisecond)))
	}
	row("table", fmt.Sprintf("%s/%s/%s", strings.TrimSuffix(cfg.Output, "/"), s.Table, s.Partition))
	row("files written", len(s.OutputFiles))
	row("store retries", retries)
	if len(s.Recovered) > 0 {
		row("recovered", strings.Join(s.Recovered, ", "))
	}
	if im := s.Images; im != nil {
		line := fmt.Sprintf("cache hit rate %.1f%% (%d hits, %d computed), %d bad", 100*im.HitRate(), im.Hits, im.Misses, im.Bad)
		if im.Bad > 0 {
			var parts []string
			for _, r := range slices.Sorted(maps.Keys(im.BadByReason)) {
				parts = append(parts, fmt.Sprintf("%s %d", r, im.BadByReason[r]))
			}
			line += " (" + strings.Join(parts, ", ") + "; scored with the missing-image embedding)"
		}
		row("images", line)
	}
	if s.DriftStatus != "" {
		row("drift", driftLine(s))
	}
	if s.ReportURI != "" {
		row("report", s.ReportURI)
	}
	if err := ew.flush(tw); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nQuery it with DuckDB:\n  SELECT * FROM read_parquet('%s/%s/*/*.parquet', hive_partitioning = true) LIMIT 10;\n",
		strings.TrimSuffix(cfg.Output, "/"), s.Table)
	return err
}

// driftLine is the drift verdict in one line: the status and the features
// that warned or failed, worst first.
func driftLine(s *jobs.Summary) string {
	var flagged []string
	for _, st := range []string{jobs.DriftFail, jobs.DriftWarn} {
		for _, d := range s.Drift {
			if d.Status == st {
				flagged = append(flagged, fmt.Sprintf("%s PSI %.3f (%s)", d.Feature, d.PSI, st))
			}
		}
	}
	if len(flagged) == 0 {
		n := 0
		for _, d := range s.Drift {
			if d.Kind != string(features.ScoreKind) {
				n++
			}
		}
		return s.DriftStatus + fmt.Sprintf(" (%d features and the scores; tables %s, %s)", n, jobs.ProfilesTable(s.Table), jobs.DriftTable(s.Table))
	}
	return s.DriftStatus + ": " + strings.Join(flagged, ", ")
}

// printPlan prints what a dry run found.
func printPlan(w io.Writer, format formatValue, p *app.Plan) error {
	if format == "json" {
		return writeJSON(w, struct {
			DryRun bool `json:"dry_run"`
			*app.Plan
		}{true, p})
	}
	ew := &errWriter{w: w}
	ew.printf("dry run of job %s: nothing was written\n", p.Job)
	ew.printf("  model: %s\n", p.Model)
	if p.Shard != "" {
		ew.printf("  shard: %s (%d of the month's files are other shards')\n", p.Shard, len(p.OtherShards))
	}
	var size int64
	for _, f := range p.Read {
		size += f.Size
	}
	ew.printf("  would read %d file(s) (%s):\n", len(p.Read), humanBytes(size))
	for _, f := range p.Read {
		ew.printf("    %s (%s)\n", f.URI, humanBytes(f.Size))
	}
	if len(p.AlreadyScored) > 0 || p.Mode == "append" {
		ew.printf("  would skip %d file(s) already scored (in the ledger of committed runs):\n", len(p.AlreadyScored))
		for _, f := range p.AlreadyScored {
			ew.printf("    %s\n", f.URI)
		}
	}
	for _, k := range p.Ignored {
		ew.printf("  would ignore %s (hidden, or not a known format)\n", k)
	}
	switch {
	case p.NothingToDo():
		ew.printf("  nothing to score: %s would stay as it is\n", p.PartitionURI)
	case p.Mode == "replace":
		ew.printf("  would replace partition %s (%d file(s) now)\n", p.PartitionURI, len(p.Existing))
	default:
		ew.printf("  would append to partition %s (%d file(s) now)\n", p.PartitionURI, len(p.Existing))
	}
	return ew.err
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// challengers names a run's challengers, "name version" each.
func challengers(s *jobs.Summary) []string {
	out := []string{}
	for _, c := range s.Challengers {
		out = append(out, c.Name+" "+c.Version)
	}
	return out
}
