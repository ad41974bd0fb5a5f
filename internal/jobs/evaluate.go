package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/metrics"
	"github.com/adtech/scorer/writers"
	"github.com/adtech/scorer/writers/table"
)

// Roles of the models in an evaluation.
const (
	RoleChampion   = "champion"   // scored into the score table
	RoleChallenger = "challenger" // scored into its challengers table
)

// Segment values with a meaning of their own.
const (
	SegmentNull  = "(null)"  // the row has no value in the segment column
	SegmentOther = "(other)" // the values beyond EvaluateJob.MaxSegmentValues
)

// CalibrationTable is the table that holds the calibration curves of the
// evaluations table.
func CalibrationTable(evaluations string) string { return evaluations + "_calibration" }

// EvaluateJob evaluates the scores of one published partition of a score
// table (and of its challengers table) against labels: the partition's own
// label column, or a labels source joined by the id columns.
type EvaluateJob struct {
	Output    store.Bucket // the store of the score tables and of the evaluations
	Table     string       // the score table, e.g. "ad_scores"
	Partition string       // e.g. "month=2020-09"
	IDColumns []string     // the score table's id columns: the join key
	Label     string       // the label column: 0, 1 or null (unlabelled)
	// Labels, if set, is where the labels come from instead of the score
	// table: files holding the id columns and Label, joined by id.
	Labels *LabelsSource
	// SegmentColumns slice the metrics; values come from the labels source
	// where it has the column, else from the score table.
	SegmentColumns   []string
	MaxSegmentValues int // per segment column; the rest pool as SegmentOther
	Bins             int // calibration bins (equal-count); 0 for none
	// EvalTable is the evaluations table; its calibration curves go to
	// CalibrationTable(EvalTable). Both are partitioned like
	// "table=ad_scores/month=2020-09", replaced at each evaluation.
	EvalTable string

	RowGroupRows, PartRows int64
	LeaseTTL               time.Duration
	RunID                  string
	Now                    func() time.Time
	Log                    *slog.Logger
}

// LabelsSource is a set of input files holding labels.
type LabelsSource struct {
	Bucket store.Bucket
	Dir    string // folder inside Bucket: every readable file under it
	CSV    readers.CSVOptions
}

// Evaluation is what an evaluation found and published.
type Evaluation struct {
	RunID        string
	Table        string
	Partition    string
	LabelsSource string // "" when the labels came from the score table
	Rows         []EvalRow
	OutputFiles  []string
	// Unmatched counts the score rows with no row in the labels source.
	Unmatched int64
}

// EvalRow is one model on one segment of the partition.
type EvalRow struct {
	ModelName, ModelVersion, Role string
	// SegmentColumn and SegmentValue are "" for all rows of the model.
	SegmentColumn, SegmentValue string
	// Scored counts the model's rows in the segment, labelled or not; the
	// metrics are over the labelled ones (Result.Rows).
	Scored int64
	metrics.Result
}

// modelKey identifies a model in the tables.
type modelKey struct{ name, version, role string }

// segKey identifies one accumulator of a model.
type segKey struct {
	col int // index in SegmentColumns; -1 for all rows
	val string
}

type modelAcc struct {
	scored map[segKey]int64
	acc    map[segKey]*metrics.Accumulator
}

// Evaluate computes the metrics of every model that scored the partition
// and publishes them (complete or not at all) under the job's lease.
func Evaluate(ctx context.Context, j EvaluateJob) (*Evaluation, error) {
	if j.Now == nil {
		j.Now = time.Now
	}
	if j.Log == nil {
		j.Log = slog.New(slog.DiscardHandler)
	}
	if j.RunID == "" {
		j.RunID = table.NewRunID(j.Now().UTC())
	}
	ev := &Evaluation{RunID: j.RunID, Table: j.Table, Partition: j.Partition}
	if j.Labels != nil {
		ev.LabelsSource = j.Labels.Bucket.URI(DirPrefix(j.Labels.Dir))
	}
	// The lease and publish plumbing of a scoring run, for this job.
	sj := &ScoreJob{
		Job: EvaluateJobName(j.Table, j.Partition), Output: j.Output, LeaseTTL: j.LeaseTTL,
		RunID: j.RunID, Now: j.Now, Log: j.Log, guard: &leaseGuard{},
	}
	pub, err := table.NewPublisher(j.Output, table.Options{
		RowGroupRows: j.RowGroupRows, PartRows: j.PartRows, Now: j.Now, Guard: sj.guard.check,
	})
	if err != nil {
		return ev, err
	}
	h, ctx, err := sj.hold(ctx, pub, sj.Job, false)
	if err != nil {
		return ev, err
	}
	defer h.release(ctx)
	if _, err := pub.RecoverJob(ctx, sj.Job); err != nil {
		return ev, h.explain(err)
	}

	var labels map[string]labelRow
	var labelCols []string // the segment columns the labels source has
	if j.Labels != nil {
		if labels, labelCols, err = j.readLabels(ctx); err != nil {
			return ev, h.explain(err)
		}
	}
	accs := map[modelKey]*modelAcc{}
	var inputs []table.InputFile
	for _, src := range []struct{ table, role string }{{j.Table, RoleChampion}, {ChallengersTable(j.Table), RoleChallenger}} {
		files, err := j.partitionFiles(ctx, pub, src.table, src.role == RoleChampion)
		if err != nil {
			return ev, h.explain(err)
		}
		stats, err := j.readScores(ctx, files, src.role, labels, labelCols, accs, &ev.Unmatched)
		if err != nil {
			return ev, h.explain(err)
		}
		for _, f := range stats {
			inputs = append(inputs, table.InputFile{Key: f.Key, Generation: f.Generation, Size: f.Size, CRC32C: f.CRC32C, Rows: f.Rows})
		}
	}
	ev.Rows = j.results(accs)
	labelled := false
	for _, r := range ev.Rows {
		labelled = labelled || (r.SegmentColumn == "" && r.Rows > 0)
	}
	if !labelled {
		where := fmt.Sprintf("column %q of %s/%s", j.Label, j.Table, j.Partition)
		if j.Labels != nil {
			where = fmt.Sprintf("column %q of %s (joined by %s; %d score rows had no match)", j.Label, ev.LabelsSource, strings.Join(j.IDColumns, ", "), ev.Unmatched)
		}
		return ev, fmt.Errorf("%w: no labelled rows to evaluate: %s is null in every row", ErrBadInput, where)
	}
	if ev.Unmatched > 0 {
		j.Log.Warn("score rows without a row in the labels source", "rows", ev.Unmatched, "labels", ev.LabelsSource)
	}

	rec, err := j.publish(ctx, pub, h, ev, inputs)
	if err != nil {
		return ev, h.explain(err)
	}
	sj.checkpoint(ctx, pub)
	for _, o := range rec.Outputs {
		for _, f := range o.Files {
			ev.OutputFiles = append(ev.OutputFiles, o.Table+"/"+o.Partition+"/"+f.Name)
		}
	}
	return ev, nil
}

// EvaluateJobName names the lease and ledger of the evaluations of one
// scored partition.
func EvaluateJobName(table, partition string) string {
	return "evaluate." + table + "." + strings.ReplaceAll(partition, "/", ".")
}

// partitionFiles lists the published files of a partition, as its
// manifest names them. A challengers table without the partition is no
// error (no challenger scored it); a score table without it is.
func (j *EvaluateJob) partitionFiles(ctx context.Context, pub *table.Publisher, tbl string, required bool) ([]store.ObjectInfo, error) {
	m, err := pub.Manifest(ctx, tbl, j.Partition)
	if errors.Is(err, store.ErrNotExist) {
		if required {
			return nil, fmt.Errorf("%w: %s/%s is not published (score it first, or check the table and the partition): %w", ErrBadInput, tbl, j.Partition, err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prefix := table.PartitionPrefix(tbl, j.Partition)
	listed, err := j.Output.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	return manifestFiles(j.Output, byKey(listed), prefix, m)
}

// byKey indexes a listing by key.
func byKey(objs []store.ObjectInfo) map[string]store.ObjectInfo {
	m := make(map[string]store.ObjectInfo, len(objs))
	for _, o := range objs {
		m[o.Key] = o
	}
	return m
}

// manifestFiles are the objects a partition's manifest lists (and no
// others: a replaced partition's old files may linger), looked up in a
// listing that covers the partition (prefix: the partition's folder).
func manifestFiles(b store.Bucket, listed map[string]store.ObjectInfo, prefix string, m *table.Manifest) ([]store.ObjectInfo, error) {
	files := make([]store.ObjectInfo, 0, len(m.Files))
	for _, f := range m.Files {
		info, ok := listed[prefix+f.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %s lists %s, which is missing", table.ErrCorrupt, b.URI(prefix+table.ManifestName), f.Name)
		}
		files = append(files, info)
	}
	return files, nil
}

// labelRow is a row of the labels source.
type labelRow struct {
	label    float64 // NaN when null
	segments []string
}

// readLabels reads the labels source into a map keyed by the id columns.
func (j *EvaluateJob) readLabels(ctx context.Context) (map[string]labelRow, []string, error) {
	ls := j.Labels
	files, skipped, err := ListInputs(ctx, ls.Bucket, ls.Dir)
	if err != nil {
		return nil, nil, err
	}
	for _, k := range skipped {
		j.Log.Debug("labels: skipping file of unknown format", "key", k)
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("%w: no input files under %s", ErrBadInput, ls.Bucket.URI(DirPrefix(ls.Dir)))
	}
	fields := make([]arrow.Field, 0, len(j.IDColumns)+1+len(j.SegmentColumns))
	for _, id := range j.IDColumns {
		fields = append(fields, arrow.Field{Name: id, Type: arrow.BinaryTypes.String})
	}
	fields = append(fields, labelField(j.Label))
	for _, c := range j.SegmentColumns {
		fields = append(fields, arrow.Field{Name: c, Type: arrow.BinaryTypes.String, Nullable: true})
	}
	src, err := readers.Open(ctx, ls.Bucket, files, readers.Options{
		Schema: arrow.NewSchema(fields, nil), CSV: ls.CSV, IDColumns: j.IDColumns, Optional: j.SegmentColumns,
	})
	if err != nil {
		return nil, nil, err
	}
	defer func() { _ = src.Close() }()
	out := map[string]labelRow{}
	nid := len(j.IDColumns)
	var dup string
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%w: labels: %w", ErrBadInput, err)
		}
		lab := rec.Column(nid).(*array.Float64)
		for r := range int(rec.NumRows()) {
			k := rowKey(rec, nid, r)
			row := labelRow{label: math.NaN()}
			if lab.IsValid(r) {
				row.label = lab.Value(r)
			}
			for c := range j.SegmentColumns {
				row.segments = append(row.segments, segmentValue(rec.Column(nid+1+c), r))
			}
			if _, seen := out[k]; seen && dup == "" {
				dup = k
			}
			out[k] = row
		}
		rec.Release()
	}
	if dup != "" {
		return nil, nil, fmt.Errorf("%w: labels under %s hold one id more than once (e.g. %s): which label counts is unclear",
			ErrBadInput, ls.Bucket.URI(DirPrefix(ls.Dir)), strings.ReplaceAll(dup, "\x00", ", "))
	}
	// The segment columns the source has: those absent from none of its
	// files.
	var has []string
	for _, c := range j.SegmentColumns {
		if !slices.ContainsFunc(src.Files(), func(f readers.FileStat) bool { return slices.Contains(f.Missing, c) }) {
			has = append(has, c)
		}
	}
	return out, has, nil
}

// rowKey is idKey of a row's id columns (the first nid of rec).
func rowKey(rec arrow.RecordBatch, nid, r int) string {
	if nid == 1 {
		return rec.Column(0).(*array.String).Value(r)
	}
	parts := make([]string, nid)
	for i := range nid {
		parts[i] = rec.Column(i).(*array.String).Value(r)
	}
	return idKey(parts)
}

func segmentValue(col arrow.Array, r int) string {
	if col.IsNull(r) {
		return SegmentNull
	}
	return col.(*array.String).Value(r)
}

// readScores reads a score (or challengers) table's files and adds every
// row to its model's accumulators.
func (j *EvaluateJob) readScores(ctx context.Context, files []store.ObjectInfo, role string, labels map[string]labelRow,
	labelCols []string, accs map[modelKey]*modelAcc, unmatched *int64,
) ([]readers.FileStat, error) {
	if len(files) == 0 {
		return nil, nil
	}
	nid := len(j.IDColumns)
	fields := make([]arrow.Field, 0, nid+4+len(j.SegmentColumns))
	for _, id := range j.IDColumns {
		fields = append(fields, arrow.Field{Name: id, Type: arrow.BinaryTypes.String})
	}
	fields = append(fields,
		labelField(j.Label),
		arrow.Field{Name: "model_name", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "model_version", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: scoring.ScoreColumn, Type: arrow.PrimitiveTypes.Float64})
	// Segment columns the labels source has come from there (column -1);
	// the others are read from the table, at colOf[c] of each record.
	var tableSegs []string
	colOf := make([]int, len(j.SegmentColumns))
	for c, name := range j.SegmentColumns {
		colOf[c] = -1
		if !slices.Contains(labelCols, name) {
			colOf[c] = len(fields)
			tableSegs = append(tableSegs, name)
			fields = append(fields, arrow.Field{Name: name, Type: arrow.BinaryTypes.String, Nullable: true})
		}
	}
	src, err := readers.Open(ctx, j.Output, files, readers.Options{
		Schema: arrow.NewSchema(fields, nil), IDColumns: j.IDColumns, Optional: append([]string{j.Label}, tableSegs...),
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = src.Close() }()
	segs := make([]string, len(j.SegmentColumns))
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the scores: %w", err)
		}
		lab := rec.Column(nid).(*array.Float64)
		names := rec.Column(nid + 1).(*array.String)
		versions := rec.Column(nid + 2).(*array.String)
		scores := rec.Column(nid + 3).(*array.Float64)
		for r := range int(rec.NumRows()) {
			label := math.NaN()
			if lab.IsValid(r) {
				label = lab.Value(r)
			}
			var lr labelRow
			matched := true
			if labels != nil {
				lr, matched = labels[rowKey(rec, nid, r)]
				label = math.NaN()
				if matched {
					label = lr.label
				} else if role == RoleChampion {
					*unmatched++
				}
			}
			for c, col := range colOf {
				switch {
				case col >= 0:
					segs[c] = segmentValue(rec.Column(col), r)
				case matched:
					segs[c] = lr.segments[c]
				default:
					segs[c] = SegmentNull
				}
			}
			mk := modelKey{names.Value(r), versions.Value(r), role}
			ma := accs[mk]
			if ma == nil {
				ma = &modelAcc{scored: map[segKey]int64{}, acc: map[segKey]*metrics.Accumulator{}}
				accs[mk] = ma
			}
			if err := ma.add(segKey{-1, ""}, scores.Value(r), label); err != nil {
				return nil, j.rowError(rec, r, err)
			}
			for c, v := range segs {
				_ = ma.add(segKey{c, v}, scores.Value(r), label) // checked above
			}
		}
		rec.Release()
	}
	stats := src.Files()
	for _, c := range tableSegs {
		if !slices.ContainsFunc(stats, func(f readers.FileStat) bool { return !slices.Contains(f.Missing, c) }) {
			how := "no labels source (--labels) was given"
			if labels != nil {
				how = "the labels source has no such column either"
			}
			return nil, fmt.Errorf("%w: segment column %q (evaluate.segment_columns) is not a column of %s/%s, and %s",
				ErrConfig, c, path.Dir(path.Dir(files[0].Key)), j.Partition, how)
		}
	}
	return stats, nil
}

// rowError names the row whose score or label cannot be evaluated.
func (j *EvaluateJob) rowError(rec arrow.RecordBatch, r int, err error) error {
	var ids []string
	for i, id := range j.IDColumns {
		ids = append(ids, fmt.Sprintf("%s=%q", id, rec.Column(i).(*array.String).Value(r)))
	}
	return fmt.Errorf("%w: %s/%s row %s: %w", ErrBadInput, j.Table, j.Partition, strings.Join(ids, " "), err)
}

// add counts a row in one accumulator of the model: every row is scored,
// labelled ones are evaluated.
func (m *modelAcc) add(k segKey, score float64, label float64) error {
	m.scored[k]++
	if math.IsNaN(label) {
		return nil
	}
	a := m.acc[k]
	if a == nil {
		a = &metrics.Accumulator{}
		m.acc[k] = a
	}
	return a.Add(float32(score), label)
}

// results turns the accumulators into rows: per model (champions first,
// then by name and version) all rows, then each segment column's values by
// rows scored (the MaxSegmentValues most frequent, then SegmentOther).
func (j *EvaluateJob) results(accs map[modelKey]*modelAcc) []EvalRow {
	keys := make([]modelKey, 0, len(accs))
	for k := range accs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b modelKey) int {
		return cmp.Or(cmp.Compare(roleOrder(a.role), roleOrder(b.role)), strings.Compare(a.name, b.name), strings.Compare(a.version, b.version))
	})
	var rows []EvalRow
	for _, mk := range keys {
		ma := accs[mk]
		row := func(col, val string, scored int64, a *metrics.Accumulator) EvalRow {
			if a == nil {
				a = &metrics.Accumulator{}
			}
			return EvalRow{
				ModelName: mk.name, ModelVersion: mk.version, Role: mk.role, SegmentColumn: col, SegmentValue: val,
				Scored: scored, Result: a.Result(j.Bins),
			}
		}
		all := segKey{-1, ""}
		rows = append(rows, row("", "", ma.scored[all], ma.acc[all]))
		for c, name := range j.SegmentColumns {
			var vals []segKey
			for k := range ma.scored {
				if k.col == c {
					vals = append(vals, k)
				}
			}
			slices.SortFunc(vals, func(a, b segKey) int {
				return cmp.Or(cmp.Compare(ma.scored[b], ma.scored[a]), strings.Compare(a.val, b.val))
			})
			var other *metrics.Accumulator
			var otherScored int64
			for i, k := range vals {
				if i < j.MaxSegmentValues {
					rows = append(rows, row(name, k.val, ma.scored[k], ma.acc[k]))
					continue
				}
				otherScored += ma.scored[k]
				if a := ma.acc[k]; a != nil {
					if other == nil {
						other = &metrics.Accumulator{}
					}
					other.Merge(a)
				}
			}
			if otherScored > 0 {
				rows = append(rows, row(name, SegmentOther, otherScored, other))
			}
		}
	}
	return rows
}

func roleOrder(role string) int {
	if role == RoleChampion {
		return 0
	}
	return 1
}

// evalKeys are the first columns of both evaluation tables: what was
// evaluated, which model, which segment.
var evalKeys = []arrow.Field{
	{Name: "scored_table", Type: arrow.BinaryTypes.String},
	{Name: "scored_partition", Type: arrow.BinaryTypes.String},
	{Name: "model_name", Type: arrow.BinaryTypes.String},
	{Name: "model_version", Type: arrow.BinaryTypes.String},
	{Name: "role", Type: arrow.BinaryTypes.String},
	{Name: "segment_column", Type: arrow.BinaryTypes.String},
	{Name: "segment_value", Type: arrow.BinaryTypes.String},
}

// evalSchema is the evaluations table's schema (before its constant
// columns evaluated_at and run_id).
var evalSchema = arrow.NewSchema(slices.Concat(evalKeys, []arrow.Field{
	{Name: "scored_rows", Type: arrow.PrimitiveTypes.Int64},
	{Name: "labelled_rows", Type: arrow.PrimitiveTypes.Int64},
	{Name: "positives", Type: arrow.PrimitiveTypes.Int64},
	{Name: "label_rate", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "mean_score", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "auc", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "log_loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "constant_log_loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "brier", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "ece", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "labels_source", Type: arrow.BinaryTypes.String},
}), nil)

// calibrationSchema is the calibration table's schema: one row per bin.
var calibrationSchema = arrow.NewSchema(slices.Concat(evalKeys, []arrow.Field{
	{Name: "bin", Type: arrow.PrimitiveTypes.Int64},
	{Name: "rows", Type: arrow.PrimitiveTypes.Int64},
	{Name: "score_min", Type: arrow.PrimitiveTypes.Float64},
	{Name: "score_max", Type: arrow.PrimitiveTypes.Float64},
	{Name: "mean_score", Type: arrow.PrimitiveTypes.Float64},
	{Name: "label_rate", Type: arrow.PrimitiveTypes.Float64},
}), nil)

// EvalPartition is the partition of the evaluations of a scored partition.
func EvalPartition(scoredTable, partition string) string {
	return "table=" + scoredTable + "/" + partition
}

// publish writes the evaluation and its calibration curves as one run.
func (j *EvaluateJob) publish(ctx context.Context, pub *table.Publisher, h *held, ev *Evaluation, inputs []table.InputFile) (*table.CommitRecord, error) {
	run, err := pub.Begin(ctx, table.RunSpec{RunID: j.RunID, Job: h.name, Fence: h.fence(state.CommitKey(j.RunID))})
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			if aerr := run.Abort(context.WithoutCancel(ctx)); aerr != nil && !errors.Is(aerr, table.ErrCommitted) {
				j.Log.Warn("discard staged output", "run_id", j.RunID, "err", aerr)
			}
		}
	}()
	part := EvalPartition(j.Table, j.Partition)
	constants := []writers.Constant{{Name: "evaluated_at", Value: j.Now().UTC()}, {Name: "run_id", Value: j.RunID}}
	evOut, err := run.Output(table.OutputSpec{Table: j.EvalTable, Partition: part, Mode: table.Replace, Schema: evalSchema, Constants: constants})
	if err != nil {
		return nil, err
	}
	calOut, err := run.Output(table.OutputSpec{Table: CalibrationTable(j.EvalTable), Partition: part, Mode: table.Replace, Schema: calibrationSchema, Constants: constants})
	if err != nil {
		return nil, err
	}
	evRec, calRec := j.records(ev)
	defer evRec.Release()
	defer calRec.Release()
	if err := evOut.Write(ctx, evRec); err != nil {
		return nil, err
	}
	if err := calOut.Write(ctx, calRec); err != nil {
		return nil, err
	}
	run.AddInputs(inputs...)
	rec, err := run.Commit(ctx)
	if rec != nil {
		committed, h.committed = true, true
	}
	return rec, err
}

// records are the evaluation's rows as records of the two tables.
func (j *EvaluateJob) records(ev *Evaluation) (arrow.RecordBatch, arrow.RecordBatch) {
	mem := memory.DefaultAllocator
	eb := array.NewRecordBuilder(mem, evalSchema)
	defer eb.Release()
	cb := array.NewRecordBuilder(mem, calibrationSchema)
	defer cb.Release()
	str := func(b *array.RecordBuilder, i int, v string) { b.Field(i).(*array.StringBuilder).Append(v) }
	i64 := func(b *array.RecordBuilder, i int, v int64) { b.Field(i).(*array.Int64Builder).Append(v) }
	f64 := func(b *array.RecordBuilder, i int, v float64) {
		fb := b.Field(i).(*array.Float64Builder)
		if math.IsNaN(v) {
			fb.AppendNull()
		} else {
			fb.Append(v)
		}
	}
	keys := func(b *array.RecordBuilder, r EvalRow) {
		for i, v := range []string{ev.Table, ev.Partition, r.ModelName, r.ModelVersion, r.Role, r.SegmentColumn, r.SegmentValue} {
			str(b, i, v)
		}
	}
	for _, r := range ev.Rows {
		keys(eb, r)
		i64(eb, 7, r.Scored)
		i64(eb, 8, r.Rows)
		i64(eb, 9, r.Positives)
		for i, v := range []float64{r.LabelRate, r.MeanScore, r.AUC, r.LogLoss, r.ConstantLogLoss, r.Brier, r.ECE} {
			f64(eb, 10+i, v)
		}
		str(eb, 17, ev.LabelsSource)
		for bi, bin := range r.Bins {
			keys(cb, r)
			i64(cb, 7, int64(bi+1))
			i64(cb, 8, bin.Rows)
			cb.Field(9).(*array.Float64Builder).Append(bin.ScoreMin)
			cb.Field(10).(*array.Float64Builder).Append(bin.ScoreMax)
			cb.Field(11).(*array.Float64Builder).Append(bin.MeanScore)
			cb.Field(12).(*array.Float64Builder).Append(bin.LabelRate)
		}
	}
	return eb.NewRecordBatch(), cb.NewRecordBatch()
}

// EvalSummary is one model's evaluation on all rows of a scored partition,
// as the evaluations table holds it.
type EvalSummary struct {
	Table        string    `json:"scored_table"`
	Partition    string    `json:"scored_partition"`
	ModelName    string    `json:"model_name"`
	ModelVersion string    `json:"model_version"`
	Role         string    `json:"role"`
	LabelledRows int64     `json:"labelled_rows"`
	AUC          float64   `json:"auc"`
	LogLoss      float64   `json:"log_loss"`
	EvaluatedAt  time.Time `json:"evaluated_at"`
	RunID        string    `json:"run_id"`
}

// MarshalJSON writes undefined metrics (NaN) as null.
func (e EvalSummary) MarshalJSON() ([]byte, error) {
	type plain EvalSummary
	return json.Marshal(struct {
		plain
		AUC     *float64 `json:"auc"`
		LogLoss *float64 `json:"log_loss"`
	}{plain(e), finite(e.AUC), finite(e.LogLoss)})
}

// ReadEvaluations reads the rows on all rows (segment_column "") of every
// published partition of the evaluations table; none if it does not exist.
func ReadEvaluations(ctx context.Context, out store.Bucket, evalTable string) ([]EvalSummary, error) {
	// A partition is published when its manifest is: read the files it
	// lists.
	pubd, err := listPublished(ctx, out, evalTable)
	if err != nil {
		return nil, err
	}
	var files []store.ObjectInfo
	for _, part := range pubd.parts {
		pf, err := pubd.files(ctx, out, part)
		if err != nil {
			return nil, err
		}
		files = append(files, pf...)
	}
	if len(files) == 0 {
		return nil, nil
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "scored_table", Type: arrow.BinaryTypes.String},
		{Name: "scored_partition", Type: arrow.BinaryTypes.String},
		{Name: "model_name", Type: arrow.BinaryTypes.String},
		{Name: "model_version", Type: arrow.BinaryTypes.String},
		{Name: "role", Type: arrow.BinaryTypes.String},
		{Name: "segment_column", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "labelled_rows", Type: arrow.PrimitiveTypes.Float64},
		{Name: "auc", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "log_loss", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "evaluated_at", Type: arrow.FixedWidthTypes.Timestamp_us},
		{Name: "run_id", Type: arrow.BinaryTypes.String},
	}, nil)
	src, err := readers.Open(ctx, out, files, readers.Options{Schema: schema})
	if err != nil {
		return nil, err
	}
	defer func() { _ = src.Close() }()
	var res []EvalSummary
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the evaluations: %w", err)
		}
		s := func(i int) *array.String { return rec.Column(i).(*array.String) }
		f := func(i, r int) float64 {
			c := rec.Column(i).(*array.Float64)
			if c.IsNull(r) {
				return math.NaN()
			}
			return c.Value(r)
		}
		at := rec.Column(9).(*array.Timestamp)
		for r := range int(rec.NumRows()) {
			if seg := s(5); seg.IsValid(r) && seg.Value(r) != "" {
				continue
			}
			res = append(res, EvalSummary{
				Table: s(0).Value(r), Partition: s(1).Value(r), ModelName: s(2).Value(r), ModelVersion: s(3).Value(r),
				Role: s(4).Value(r), LabelledRows: int64(f(6, r)), AUC: f(7, r), LogLoss: f(8, r),
				EvaluatedAt: time.UnixMicro(int64(at.Value(r))).UTC(), RunID: s(10).Value(r),
			})
		}
		rec.Release()
	}
	return res, nil
}

// PartitionEvaluation is a model's latest evaluation of a scored partition
// on all its rows, with its calibration curve.
type PartitionEvaluation struct {
	LabelledRows, Positives int64
	AUC, LogLoss, ECE       float64 // NaN where undefined
	Calibration             []CalibrationBin
}

// CalibrationBin is one bin of a calibration curve.
type CalibrationBin struct {
	Rows                 int64
	ScoreMin, ScoreMax   float64
	MeanScore, LabelRate float64
}

// ReadPartitionEvaluation reads the evaluation of scoredTable's partition
// by the model (name, version) as champion or challenger, on all rows
// (no segment), from the evaluations table and its calibration table; nil
// when it was not evaluated.
func ReadPartitionEvaluation(ctx context.Context, out store.Bucket, evalTable, scoredTable, partition, name, version string) (*PartitionEvaluation, error) {
	part := EvalPartition(scoredTable, partition)
	mine := func(rec arrow.RecordBatch, r int) bool {
		s := func(i int) string { return rec.Column(i).(*array.String).Value(r) } // "" when null
		return s(2) == name && s(3) == version && s(5) == ""
	}
	f := func(rec arrow.RecordBatch, i, r int) float64 {
		c := rec.Column(i).(*array.Float64)
		if c.IsNull(r) {
			return math.NaN()
		}
		return c.Value(r)
	}
	evals, err := listPublished(ctx, out, evalTable)
	if err != nil {
		return nil, err
	}
	if _, ok := slices.BinarySearch(evals.parts, part); !ok {
		return nil, nil
	}
	var ev *PartitionEvaluation
	if err := evals.readRows(ctx, out, part, nullable(evalSchema), func(rec arrow.RecordBatch, r int) error {
		if mine(rec, r) {
			n := func(i int) int64 { return rec.Column(i).(*array.Int64).Value(r) }
			ev = &PartitionEvaluation{LabelledRows: n(8), Positives: n(9), AUC: f(rec, 12, r), LogLoss: f(rec, 13, r), ECE: f(rec, 16, r)}
		}
		return nil
	}); err != nil || ev == nil {
		return nil, err
	}
	cal, err := listPublished(ctx, out, CalibrationTable(evalTable))
	if err != nil {
		return nil, err
	}
	type bin struct {
		i int64
		b CalibrationBin
	}
	var bins []bin
	if err := cal.readRows(ctx, out, part, nullable(calibrationSchema), func(rec arrow.RecordBatch, r int) error {
		if mine(rec, r) {
			n := func(i int) int64 { return rec.Column(i).(*array.Int64).Value(r) }
			bins = append(bins, bin{n(7), CalibrationBin{Rows: n(8), ScoreMin: f(rec, 9, r), ScoreMax: f(rec, 10, r), MeanScore: f(rec, 11, r), LabelRate: f(rec, 12, r)}})
		}
		return nil
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(bins, func(a, b bin) int { return cmp.Compare(a.i, b.i) })
	for _, b := range bins {
		ev.Calibration = append(ev.Calibration, b.b)
	}
	return ev, nil
}

// nullable is schema with every field nullable: what a reader of the
// table asks for (the all-rows segment is null).
func nullable(schema *arrow.Schema) *arrow.Schema {
	fields := schema.Fields()
	for i := range fields {
		fields[i].Nullable = true
	}
	return arrow.NewSchema(fields, nil)
}
