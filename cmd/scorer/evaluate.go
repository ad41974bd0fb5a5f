package main

import (
	"fmt"
	"io"
	"math"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/jobs"
)

func (c *cli) evaluateCmd() *cobra.Command {
	var (
		month  monthValue
		date   dateValue
		labels string
		format *formatValue
	)
	cmd := &cobra.Command{
		Use:   "evaluate (--month YYYY-MM | --date YYYY-MM-DD) [flags]",
		Short: "measure every model that scored a partition against its labels",
		Long: `Evaluate the scores of one published partition, the champion's (the score
table) and every challenger's (<table>_challengers), against 0/1 labels: the
score table's own label column (backfill.label_columns, queue.label_columns),
or a labels source joined by the id columns (--labels). Unlabelled rows are
counted, not evaluated.

For each model, on all rows and on each value of evaluate.segment_columns:
AUC, log loss (and the log loss of always predicting the label rate, the
baseline to beat), Brier score, expected calibration error and a
calibration curve over equal-count score bins (evaluate.bins, 10: deciles).
The rows replace the partition's earlier evaluation in the evaluations table
(<output>/<evaluate.table>/table=<score table>/<partition>/) and its curves
in <evaluate.table>_calibration, as one run: all or nothing.
scorer models promote reads them. See docs/evaluation.md.`,
		Example: `  scorer evaluate --month 2020-09
  scorer evaluate --month 2020-09 --labels dumps/2020-09
  scorer evaluate --date 2020-09-02 --labels gs://ads/labels/2020-09-02 -o json`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.Var(&month, "month", "the backfilled month to evaluate")
	fs.Var(&date, "date", "the day of the queue table to evaluate")
	fs.StringVar(&labels, "labels", "", `label files joined to the scores by id: a folder of the input store,
a URI or an absolute path (default: the score table's label column)`)
	format = formatFlag(fs, "the evaluation")
	c.stringFlag(cmd, "input", "", "input store URI, for --labels folders (config: input)", func(c *app.Config) *string { return &c.Input })
	c.stringFlag(cmd, "output", "", "output store URI (config: output)", func(c *app.Config) *string { return &c.Output })
	exitCodes(cmd, codes(0, 1, 2, 3, 4))

	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		a := c.newApp(cfg)
		ev, err := a.Evaluate(cmd.Context(), app.EvaluateRequest{Month: string(month), Date: string(date), Labels: labels})
		if err != nil {
			return err
		}
		if *format == "json" {
			return writeJSON(c.env.stdout, evaluationJSON(ev))
		}
		return printEvaluation(c.env.stdout, ev, cfg.Output+"/"+cfg.Evaluate.Table)
	}
	return cmd
}

// printEvaluation prints the models side by side on all rows, then each
// segment.
func printEvaluation(w io.Writer, ev *jobs.Evaluation, evalTable string) error {
	ew := &errWriter{w: w}
	src := "the score table's label column"
	if ev.LabelsSource != "" {
		src = ev.LabelsSource
	}
	ew.printf("evaluated %s/%s (labels: %s), run %s\n\n", ev.Table, ev.Partition, src, ev.RunID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	tew := &errWriter{w: tw}
	tew.printf("MODEL\tVERSION\tROLE\tSEGMENT\tSCORED\tLABELLED\tLABEL RATE\tAUC\tLOG LOSS\tCONSTANT LL\tBRIER\tECE\t\n")
	for _, r := range ev.Rows {
		seg := "all"
		if r.SegmentColumn != "" {
			seg = r.SegmentColumn + "=" + r.SegmentValue
		}
		tew.printf("%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.ModelName, r.ModelVersion, r.Role, seg,
			r.Scored, r.Rows, num(r.LabelRate), num(r.AUC), num(r.LogLoss), num(r.ConstantLogLoss), num(r.Brier), num(r.ECE))
	}
	if tew.err == nil {
		tew.err = tw.Flush()
	}
	if tew.err != nil {
		return tew.err
	}
	// Each challenger against the champion, on all rows: what a promotion
	// would gain or lose.
	var champ *jobs.EvalRow
	for i, r := range ev.Rows {
		if r.Role == jobs.RoleChampion && r.SegmentColumn == "" {
			champ = &ev.Rows[i]
		}
	}
	for _, r := range ev.Rows {
		if champ != nil && r.Role != jobs.RoleChampion && r.SegmentColumn == "" {
			ew.printf("\n%s %s vs champion %s %s: AUC %+.4f, log loss %+.4f\n", r.ModelName, r.ModelVersion, champ.ModelName, champ.ModelVersion,
				r.AUC-champ.AUC, r.LogLoss-champ.LogLoss)
		}
	}
	if ev.Unmatched > 0 {
		ew.printf("\n%d score rows had no row in the labels source (not evaluated)\n", ev.Unmatched)
	}
	ew.printf("\nwritten to %s/ (%d files), e.g.\n", evalTable, len(ev.OutputFiles))
	ew.printf("  duckdb -c \"SELECT model_version, scored_partition, auc, log_loss FROM read_parquet('%s/*/*/*.parquet') WHERE segment_column = ''\"\n", evalTable)
	return ew.err
}

// num prints a metric; "-" where it is undefined (NaN).
func num(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.4f", v)
}

// jsonNum is a metric in JSON: null where undefined.
func jsonNum(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

type evalRowJSON struct {
	ModelName     string    `json:"model_name"`
	ModelVersion  string    `json:"model_version"`
	Role          string    `json:"role"`
	SegmentColumn string    `json:"segment_column"`
	SegmentValue  string    `json:"segment_value"`
	ScoredRows    int64     `json:"scored_rows"`
	LabelledRows  int64     `json:"labelled_rows"`
	Positives     int64     `json:"positives"`
	LabelRate     *float64  `json:"label_rate"`
	MeanScore     *float64  `json:"mean_score"`
	AUC           *float64  `json:"auc"`
	LogLoss       *float64  `json:"log_loss"`
	ConstantLL    *float64  `json:"constant_log_loss"`
	Brier         *float64  `json:"brier"`
	ECE           *float64  `json:"ece"`
	Calibration   []binJSON `json:"calibration"`
}

type binJSON struct {
	Rows      int64   `json:"rows"`
	ScoreMin  float64 `json:"score_min"`
	ScoreMax  float64 `json:"score_max"`
	MeanScore float64 `json:"mean_score"`
	LabelRate float64 `json:"label_rate"`
}

// evaluationJSON is the evaluation as -o json prints it: the columns of the
// evaluations table, with each row's calibration curve.
func evaluationJSON(ev *jobs.Evaluation) any {
	rows := make([]evalRowJSON, 0, len(ev.Rows))
	for _, r := range ev.Rows {
		j := evalRowJSON{
			ModelName: r.ModelName, ModelVersion: r.ModelVersion, Role: r.Role,
			SegmentColumn: r.SegmentColumn, SegmentValue: r.SegmentValue,
			ScoredRows: r.Scored, LabelledRows: r.Rows, Positives: r.Positives,
			LabelRate: jsonNum(r.LabelRate), MeanScore: jsonNum(r.MeanScore), AUC: jsonNum(r.AUC), LogLoss: jsonNum(r.LogLoss),
			ConstantLL: jsonNum(r.ConstantLogLoss), Brier: jsonNum(r.Brier), ECE: jsonNum(r.ECE), Calibration: []binJSON{},
		}
		for _, b := range r.Bins {
			j.Calibration = append(j.Calibration, binJSON{Rows: b.Rows, ScoreMin: b.ScoreMin, ScoreMax: b.ScoreMax, MeanScore: b.MeanScore, LabelRate: b.LabelRate})
		}
		rows = append(rows, j)
	}
	return struct {
		RunID        string        `json:"run_id"`
		Table        string        `json:"table"`
		Partition    string        `json:"partition"`
		LabelsSource string        `json:"labels_source"`
		Unmatched    int64         `json:"unmatched_rows"`
		Rows         []evalRowJSON `json:"rows"`
		OutputFiles  []string      `json:"output_files"`
	}{ev.RunID, ev.Table, ev.Partition, ev.LabelsSource, ev.Unmatched, rows, ev.OutputFiles}
}
