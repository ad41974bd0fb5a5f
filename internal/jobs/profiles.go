package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/writers"
	"github.com/adtech/scorer/writers/table"
)

// ProfilesTable is the table of the input profiles of table's partitions:
// one row per feature (and one for the scores) per run.
func ProfilesTable(table string) string { return table + "_profiles" }

// DriftTable is the table of the drift of table's partitions: one row per
// feature (and one for the scores) per run.
func DriftTable(table string) string { return table + "_drift" }

// ErrDrift marks a run whose inputs drifted from the training data beyond
// drift.fail_above; it published nothing.
var ErrDrift = errors.New("input drift")

// Drift statuses.
const (
	DriftOK   = "ok"
	DriftWarn = "warn"
	DriftFail = "fail"
)

// DriftLimits are PSI thresholds (vs the training profile); 0 is off.
type DriftLimits struct {
	WarnAbove float64 `yaml:"warn_above" json:"warn_above"`
	FailAbove float64 `yaml:"fail_above" json:"fail_above"`
}

// DriftPolicy says when a feature's drift warns and when it fails the run.
type DriftPolicy struct {
	// WarnAbove and FailAbove apply to every feature without an entry in
	// Features.
	WarnAbove float64 `yaml:"warn_above" json:"warn_above"`
	FailAbove float64 `yaml:"fail_above" json:"fail_above"`
	// MinRows: a run of fewer rows is profiled and its drift computed, but
	// no feature warns or fails (PSI of a few rows is noise).
	MinRows int64 `yaml:"min_rows" json:"min_rows"`
	// Features override the limits per feature (the scores: "score").
	Features map[string]DriftLimits `yaml:"features,omitempty" json:"features,omitempty"`
}

// limits are the thresholds of one feature. A timestamp part has none
// unless Features gives it some: a partition shorter than the training
// data (a day against a month) differs in its weekday or hour by nature.
func (p DriftPolicy) limits(feature string, kind features.Kind) DriftLimits {
	if l, ok := p.Features[feature]; ok {
		return l
	}
	if kind == features.Timestamp {
		return DriftLimits{}
	}
	return DriftLimits{WarnAbove: p.WarnAbove, FailAbove: p.FailAbove}
}

// Check refuses thresholds that are not numbers >= 0 and, given a spec,
// per-feature entries naming no feature of it (nor "score").
func (p DriftPolicy) Check(spec *features.Spec) error {
	var errs []error
	check := func(what string, l DriftLimits) {
		for _, v := range []float64{l.WarnAbove, l.FailAbove} {
			if !(v >= 0) || math.IsInf(v, 0) {
				errs = append(errs, fmt.Errorf("%s: thresholds must be numbers >= 0 (0 is off), got %g", what, v))
				return
			}
		}
	}
	check("drift", DriftLimits{WarnAbove: p.WarnAbove, FailAbove: p.FailAbove})
	if p.MinRows < 0 {
		errs = append(errs, fmt.Errorf("drift.min_rows: must be >= 0, got %d", p.MinRows))
	}
	for _, name := range slices.Sorted(maps.Keys(p.Features)) {
		if spec != nil && name != features.ScoreFeature && !slices.ContainsFunc(spec.Features, func(f features.Feature) bool { return f.Name == name }) {
			errs = append(errs, fmt.Errorf("drift.features: %q is not a feature of the model's spec (nor %q)", name, features.ScoreFeature))
		}
		check("drift.features."+name, p.Features[name])
	}
	return errors.Join(errs...)
}

// FeatureDrift is one feature's drift in a run.
type FeatureDrift struct {
	Feature string `json:"feature"`
	Kind    string `json:"kind"`
	// PSI and JS (Jensen-Shannon distance) against the training profile,
	// and against the previous partition's profile (PrevPartition); NaN
	// when there is none or its bins differ (another model version).
	PSI           float64 `json:"psi"`
	JS            float64 `json:"js"`
	PSIPrev       float64 `json:"psi_prev"`
	JSPrev        float64 `json:"js_prev"`
	PrevPartition string  `json:"prev_partition,omitempty"`
	// Missing rates: this run, training, previous partition (NaN: unknown).
	MissingRate      float64 `json:"missing_rate"`
	TrainMissingRate float64 `json:"train_missing_rate"`
	PrevMissingRate  float64 `json:"prev_missing_rate"`
	DriftLimits
	Status string `json:"status"`
}

// MarshalJSON writes NaN as null.
func (d FeatureDrift) MarshalJSON() ([]byte, error) {
	type plain FeatureDrift
	return json.Marshal(struct {
		plain
		PSI              *float64 `json:"psi"`
		JS               *float64 `json:"js"`
		PSIPrev          *float64 `json:"psi_prev"`
		JSPrev           *float64 `json:"js_prev"`
		MissingRate      *float64 `json:"missing_rate"`
		TrainMissingRate *float64 `json:"train_missing_rate"`
		PrevMissingRate  *float64 `json:"prev_missing_rate"`
	}{plain(d), finite(d.PSI), finite(d.JS), finite(d.PSIPrev), finite(d.JSPrev), finite(d.MissingRate), finite(d.TrainMissingRate), finite(d.PrevMissingRate)})
}

// finite is v for JSON: nil (null) when NaN or infinite.
func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return &v
}

// judge computes each feature's drift against the training profile and
// the previous partition's, and its status under the policy. Status is
// the worst feature's.
func (p DriftPolicy) judge(cur, train, prev *features.Profile, prevPartition string) (out []FeatureDrift, status string) {
	status = DriftOK
	for i := range cur.Features {
		f := &cur.Features[i]
		d := FeatureDrift{
			Feature: f.Name, Kind: string(f.Kind), MissingRate: f.MissingRate(),
			PSI: math.NaN(), JS: math.NaN(), PSIPrev: math.NaN(), JSPrev: math.NaN(),
			TrainMissingRate: math.NaN(), PrevMissingRate: math.NaN(),
			DriftLimits: p.limits(f.Name, f.Kind), Status: DriftOK,
		}
		if train != nil {
			if t := train.Feature(f.Name); t != nil {
				d.PSI, d.JS = features.Compare(f, t)
				d.TrainMissingRate = t.MissingRate()
			}
		}
		if prev != nil {
			if q := prev.Feature(f.Name); q != nil {
				d.PSIPrev, d.JSPrev = features.Compare(f, q)
				d.PrevMissingRate, d.PrevPartition = q.MissingRate(), prevPartition
			}
		}
		if f.Count >= p.MinRows && !math.IsNaN(d.PSI) {
			switch {
			case d.FailAbove > 0 && d.PSI > d.FailAbove:
				d.Status = DriftFail
			case d.WarnAbove > 0 && d.PSI > d.WarnAbove:
				d.Status = DriftWarn
			}
		}
		if severity(d.Status) > severity(status) {
			status = d.Status
		}
		out = append(out, d)
	}
	return out, status
}

func severity(status string) int {
	return slices.Index([]string{DriftOK, DriftWarn, DriftFail}, status)
}

// DriftRecord is the run's drift verdict as its run record keeps it (nil
// for a run that profiled nothing): every feature's PSI (null when not
// computed), missing rate and status, with the threshold it crossed.
func (s *Summary) DriftRecord() *runlog.Drift {
	if s.DriftStatus == "" {
		return nil
	}
	rec := &runlog.Drift{Status: s.DriftStatus}
	for _, d := range s.Drift {
		f := runlog.DriftFeature{Feature: d.Feature, Status: d.Status, PSI: finite(d.PSI), MissingRate: finite(d.MissingRate)}
		switch d.Status {
		case DriftFail:
			f.Threshold = d.FailAbove
		case DriftWarn:
			f.Threshold = d.WarnAbove
		}
		rec.Features = append(rec.Features, f)
	}
	return rec
}

// driftError says which features failed the run.
func driftError(drift []FeatureDrift, partition string) error {
	var parts []string
	for _, d := range drift {
		if d.Status == DriftFail {
			parts = append(parts, fmt.Sprintf("%s (PSI %.3f > fail_above %g)", d.Feature, d.PSI, d.FailAbove))
		}
	}
	return fmt.Errorf("%w: %s: %s drifted from the training data; nothing published (drift.fail_above; see the log and the run record)",
		ErrDrift, partition, strings.Join(parts, ", "))
}

// profiler collects the per-worker profilers of a scoring run
// (scoring.PoolOptions.Profile) and the bad rows per column.
type profiler struct {
	fx  *features.Pipeline
	ref *features.Profile
	ids []string // the id columns: the profiles' sample is by them

	mu       sync.Mutex
	err      error
	workers  []*features.Profiler
	rejected map[string]int64 // bad rows by column
}

// worker makes one worker's profiler (scoring.PoolOptions.Profile).
func (p *profiler) worker() *features.Profiler {
	pr, err := p.fx.NewProfiler(p.ref)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.err = cmp.Or(p.err, err)
		return nil // the worker profiles nothing; profile() returns the error
	}
	pr.SampleBy(p.ids)
	p.workers = append(p.workers, pr)
	return pr
}

// reject counts a bad row against its column.
func (p *profiler) reject(e readers.RowError) {
	if e.Column == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.rejected == nil {
		p.rejected = map[string]int64{}
	}
	p.rejected[e.Column]++
}

// profile merges the workers' profiles.
func (p *profiler) profile() (*features.Profile, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return nil, p.err
	}
	if len(p.workers) == 0 { // no worker started
		pr, err := p.fx.NewProfiler(p.ref)
		if err != nil {
			return nil, err
		}
		p.workers = append(p.workers, pr)
	}
	all := p.workers[0] // the workers are done: merge into the first
	for _, w := range p.workers[1:] {
		if err := all.Merge(w); err != nil {
			return nil, err
		}
	}
	p.workers = p.workers[:1] // merged: a second call counts nothing twice
	for col, n := range p.rejected {
		all.Reject(col, n)
	}
	p.rejected = nil
	return all.Profile()
}

// profileQuantiles are the quantiles of the profiles table's columns.
var profileQuantiles = []float64{0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99}

// Profile sources: a profiles table row describes the rows the run scored,
// or (for comparison in SQL and in the report) the model's training data.
const (
	SourcePartition = "partition"
	SourceTraining  = "training"
)

// profilesSchema is the profiles table's schema; the table's writer adds
// run_id and profiled_at.
func profilesSchema() *arrow.Schema {
	f64 := func(name string) arrow.Field {
		return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	fields := []arrow.Field{
		{Name: "source", Type: arrow.BinaryTypes.String},
		{Name: "feature", Type: arrow.BinaryTypes.String},
		{Name: "kind", Type: arrow.BinaryTypes.String},
		{Name: "column", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "rows", Type: arrow.PrimitiveTypes.Int64},
		{Name: "missing", Type: arrow.PrimitiveTypes.Int64},
		{Name: "rejected", Type: arrow.PrimitiveTypes.Int64},
		f64("missing_rate"), f64("rejected_rate"), f64("oov_rate"),
		{Name: "distinct", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		f64("collision_rate"), f64("min"), f64("max"), f64("mean"),
	}
	for _, q := range profileQuantiles {
		fields = append(fields, f64(quantileColumn(q)))
	}
	return arrow.NewSchema(append(fields,
		arrow.Field{Name: "top_values", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "model_name", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "model_version", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "profile", Type: arrow.BinaryTypes.String},
	), nil)
}

func quantileColumn(q float64) string { return fmt.Sprintf("p%02.0f", q*100) }

// driftSchema is the drift table's schema; the table's writer adds run_id
// and profiled_at.
func driftSchema() *arrow.Schema {
	f64 := func(name string) arrow.Field {
		return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: "feature", Type: arrow.BinaryTypes.String},
		{Name: "kind", Type: arrow.BinaryTypes.String},
		f64("psi"), f64("js"), f64("psi_prev"), f64("js_prev"),
		{Name: "prev_partition", Type: arrow.BinaryTypes.String, Nullable: true},
		f64("missing_rate"), f64("train_missing_rate"), f64("prev_missing_rate"),
		f64("warn_above"), f64("fail_above"),
		{Name: "status", Type: arrow.BinaryTypes.String},
		{Name: "model_name", Type: arrow.BinaryTypes.String},
		{Name: "model_version", Type: arrow.BinaryTypes.String},
	}, nil)
}

// appendFloat appends v, or null when it is not finite.
func appendFloat(b array.Builder, v float64) {
	fb := b.(*array.Float64Builder)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		fb.AppendNull()
		return
	}
	fb.Append(v)
}

func appendString(b array.Builder, v string) {
	sb := b.(*array.StringBuilder)
	if v == "" {
		sb.AppendNull()
		return
	}
	sb.Append(v)
}

// writeProfiles stages the run's profile and drift rows.
func (j *ScoreJob) writeProfiles(ctx context.Context, run *table.Run, prof *features.Profile, drift []FeatureDrift, at time.Time) error {
	constants := []writers.Constant{{Name: "run_id", Value: j.RunID}, {Name: "profiled_at", Value: at}}
	pb := array.NewRecordBuilder(memory.DefaultAllocator, profilesSchema())
	defer pb.Release()
	if err := j.appendProfile(pb, SourcePartition, prof); err != nil {
		return err
	}
	if j.Bundle.Profile != nil {
		if err := j.appendProfile(pb, SourceTraining, j.Bundle.Profile); err != nil {
			return err
		}
	}
	if err := writeRecord(ctx, run, table.OutputSpec{
		Table: ProfilesTable(j.Table), Partition: j.Partition, Mode: j.Mode, Schema: profilesSchema(), Constants: constants,
	}, pb); err != nil {
		return err
	}

	db := array.NewRecordBuilder(memory.DefaultAllocator, driftSchema())
	defer db.Release()
	for _, d := range drift {
		col := 0
		next := func() array.Builder { col++; return db.Field(col - 1) }
		next().(*array.StringBuilder).Append(d.Feature)
		next().(*array.StringBuilder).Append(d.Kind)
		for _, v := range []float64{d.PSI, d.JS, d.PSIPrev, d.JSPrev} {
			appendFloat(next(), v)
		}
		appendString(next(), d.PrevPartition)
		for _, v := range []float64{d.MissingRate, d.TrainMissingRate, d.PrevMissingRate} {
			appendFloat(next(), v)
		}
		for _, v := range []float64{d.WarnAbove, d.FailAbove} {
			if v == 0 {
				v = math.NaN() // off
			}
			appendFloat(next(), v)
		}
		next().(*array.StringBuilder).Append(d.Status)
		next().(*array.StringBuilder).Append(j.Bundle.Name)
		next().(*array.StringBuilder).Append(j.Bundle.Version)
	}
	return writeRecord(ctx, run, table.OutputSpec{
		Table: DriftTable(j.Table), Partition: j.Partition, Mode: j.Mode, Schema: driftSchema(), Constants: constants,
	}, db)
}

// appendProfile appends one row per feature of prof to b.
func (j *ScoreJob) appendProfile(pb *array.RecordBuilder, source string, prof *features.Profile) error {
	for i := range prof.Features {
		f := &prof.Features[i]
		col := 0
		next := func() array.Builder { col++; return pb.Field(col - 1) }
		next().(*array.StringBuilder).Append(source)
		next().(*array.StringBuilder).Append(f.Name)
		next().(*array.StringBuilder).Append(string(f.Kind))
		appendString(next(), f.Column)
		next().(*array.Int64Builder).Append(f.Count)
		next().(*array.Int64Builder).Append(f.Missing)
		next().(*array.Int64Builder).Append(f.Rejected)
		appendFloat(next(), f.MissingRate())
		appendFloat(next(), f.RejectedRate())
		numeric := f.Kind == features.Numeric || f.Kind == features.ScoreKind
		if numeric {
			appendFloat(next(), math.NaN())
			next().(*array.Int64Builder).AppendNull()
		} else {
			appendFloat(next(), f.OOVRate())
			next().(*array.Int64Builder).Append(int64(f.Distinct))
		}
		appendFloat(next(), f.CollisionRate())
		if numeric && f.N > 0 {
			appendFloat(next(), f.Min)
			appendFloat(next(), f.Max)
		} else {
			appendFloat(next(), math.NaN())
			appendFloat(next(), math.NaN())
		}
		appendFloat(next(), f.Mean())
		qs, err := f.Quantiles(profileQuantiles...)
		if err != nil {
			return err
		}
		for _, q := range qs {
			appendFloat(next(), q)
		}
		top := ""
		if len(f.Top) > 0 {
			data, err := json.Marshal(f.Top)
			if err != nil {
				return fmt.Errorf("encode the top values of %q: %w", f.Name, err)
			}
			top = string(data)
		}
		appendString(next(), top)
		next().(*array.StringBuilder).Append(j.Bundle.Name)
		next().(*array.StringBuilder).Append(j.Bundle.Version)
		data, err := json.Marshal(f)
		if err != nil {
			return fmt.Errorf("encode the profile of %q: %w", f.Name, err)
		}
		next().(*array.StringBuilder).Append(string(data))
	}
	return nil
}

// writeRecord stages what b holds as spec's output.
func writeRecord(ctx context.Context, run *table.Run, spec table.OutputSpec, b *array.RecordBuilder) error {
	out, err := run.Output(spec)
	if err != nil {
		return err
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	if rec.NumRows() == 0 {
		return nil
	}
	return out.Write(ctx, rec)
}

// PartitionProfile is a published partition's profile: its profiles
// table rows merged.
type PartitionProfile struct {
	Partition    string
	RunID        string // the latest run that profiled it
	ModelName    string
	ModelVersion string
	Profile      *features.Profile
	// Training is the model's training profile as the latest run wrote
	// it (nil: the model has none).
	Training *features.Profile
}

// published is what a listing of a table's folder says is published.
type published struct {
	tbl    string
	parts  []string // partitions with a manifest, sorted
	listed map[string]store.ObjectInfo
	pub    *table.Publisher
}

// listPublished lists a table's published partitions (one listing).
func listPublished(ctx context.Context, out store.Bucket, tbl string) (*published, error) {
	objs, err := out.List(ctx, tbl+"/")
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", out.URI(tbl+"/"), err)
	}
	pub, err := table.NewPublisher(out, table.DefaultOptions())
	if err != nil {
		return nil, err
	}
	p := &published{tbl: tbl, listed: byKey(objs), pub: pub}
	for _, o := range objs {
		dir, name := path.Split(o.Key)
		if name == table.ManifestName {
			p.parts = append(p.parts, strings.TrimSuffix(strings.TrimPrefix(dir, tbl+"/"), "/"))
		}
	}
	slices.Sort(p.parts)
	return p, nil
}

// before is the last n published partitions before partition (string
// order; all when partition is "").
func (p *published) before(partition string, n int) []string {
	i := len(p.parts)
	if partition != "" {
		i, _ = slices.BinarySearch(p.parts, partition)
	}
	return p.parts[max(0, i-n):i]
}

// files are the objects a published partition's manifest lists.
func (p *published) files(ctx context.Context, out store.Bucket, part string) ([]store.ObjectInfo, error) {
	m, err := p.pub.Manifest(ctx, p.tbl, part)
	if err != nil {
		return nil, err
	}
	return manifestFiles(out, p.listed, table.PartitionPrefix(p.tbl, part), m)
}

// readRows calls row for each row of a published partition read with
// schema.
func (p *published) readRows(ctx context.Context, out store.Bucket, part string, schema *arrow.Schema, row func(rec arrow.RecordBatch, r int) error) error {
	files, err := p.files(ctx, out, part)
	if err != nil || len(files) == 0 {
		return err
	}
	src, err := readers.Open(ctx, out, files, readers.Options{Schema: schema})
	if err != nil {
		return err
	}
	defer func() { _ = src.Close() }()
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", out.URI(table.PartitionPrefix(p.tbl, part)), err)
		}
		for r := range int(rec.NumRows()) {
			if err := row(rec, r); err != nil {
				rec.Release()
				return fmt.Errorf("%s row %d: %w", out.URI(table.PartitionPrefix(p.tbl, part)), r+1, err)
			}
		}
		rec.Release()
	}
}

// PreviousProfile reads the profile of the last published partition of
// table before partition (string order), with one listing; nil if none.
func PreviousProfile(ctx context.Context, out store.Bucket, tbl, partition string) (*PartitionProfile, error) {
	pubd, err := listPublished(ctx, out, ProfilesTable(tbl))
	if err != nil {
		return nil, err
	}
	prevs, err := readProfiles(ctx, out, pubd, pubd.before(partition, 1))
	if err != nil || len(prevs) == 0 {
		return nil, err
	}
	return &prevs[0], nil
}

// ReadProfiles reads the given published partitions of table's profiles
// table (those not published are left out). A partition's rows of several
// runs (a queue's day, a sharded month) are merged where they share the
// model version of its latest run; rows of other versions are left out
// (their bins differ). Training is the latest run's training rows.
func ReadProfiles(ctx context.Context, out store.Bucket, tbl string, partitions ...string) ([]PartitionProfile, error) {
	pubd, err := listPublished(ctx, out, ProfilesTable(tbl))
	if err != nil {
		return nil, err
	}
	return readProfiles(ctx, out, pubd, partitions)
}

// readProfiles is ReadProfiles on a listing of the profiles table.
func readProfiles(ctx context.Context, out store.Bucket, pubd *published, partitions []string) ([]PartitionProfile, error) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "source", Type: arrow.BinaryTypes.String},
		{Name: "model_name", Type: arrow.BinaryTypes.String},
		{Name: "model_version", Type: arrow.BinaryTypes.String},
		{Name: "profile", Type: arrow.BinaryTypes.String},
		{Name: "run_id", Type: arrow.BinaryTypes.String},
	}, nil)
	var res []PartitionProfile
	for _, part := range partitions {
		if _, ok := slices.BinarySearch(pubd.parts, part); !ok {
			continue
		}
		type row struct {
			source, runID, model, version string
			feature                       features.FeatureProfile
		}
		var rows []row
		err := pubd.readRows(ctx, out, part, schema, func(rec arrow.RecordBatch, r int) error {
			s := func(i int) *array.String { return rec.Column(i).(*array.String) }
			x := row{source: s(0).Value(r), model: s(1).Value(r), version: s(2).Value(r), runID: s(4).Value(r)}
			if err := json.Unmarshal([]byte(s(3).Value(r)), &x.feature); err != nil {
				return fmt.Errorf("%w: profile: %w", table.ErrCorrupt, err)
			}
			rows = append(rows, x)
			return nil
		})
		if err != nil {
			return nil, err
		}
		if len(rows) == 0 {
			continue
		}
		// Run ids begin with their start time: the latest run sorts last.
		slices.SortStableFunc(rows, func(a, b row) int { return strings.Compare(a.runID, b.runID) })
		last := rows[len(rows)-1]
		pp := PartitionProfile{Partition: part, RunID: last.runID, ModelName: last.model, ModelVersion: last.version}
		byRun := map[string]*features.Profile{}
		var runs []string
		for _, r := range rows {
			if r.version != last.version {
				continue
			}
			if r.source == SourceTraining {
				if r.runID == last.runID {
					if pp.Training == nil {
						pp.Training = &features.Profile{}
					}
					pp.Training.Features = append(pp.Training.Features, r.feature)
				}
				continue
			}
			p, ok := byRun[r.runID]
			if !ok {
				p = &features.Profile{}
				byRun[r.runID] = p
				runs = append(runs, r.runID)
			}
			p.Features = append(p.Features, r.feature)
			p.Rows = r.feature.Count
		}
		if len(runs) == 0 {
			continue
		}
		pp.Profile = byRun[runs[0]]
		for _, id := range runs[1:] {
			if err := pp.Profile.Merge(byRun[id]); err != nil {
				return nil, fmt.Errorf("%s/%s: merge the profiles of its runs: %w", pubd.tbl, part, err)
			}
		}
		res = append(res, pp)
	}
	return res, nil
}

// ReadDriftHistory reads, with one listing of table's drift table, the
// last n published partitions up to and including through (string order;
// through itself if published), oldest first, and their drift rows: per
// partition, the rows of its latest run.
func ReadDriftHistory(ctx context.Context, out store.Bucket, tbl, through string, n int) ([]string, map[string][]FeatureDrift, error) {
	pubd, err := listPublished(ctx, out, DriftTable(tbl))
	if err != nil {
		return nil, nil, err
	}
	parts := pubd.before(through, n-1)
	if _, ok := slices.BinarySearch(pubd.parts, through); ok {
		parts = append(slices.Clip(parts), through)
	}
	drift, err := readDrift(ctx, out, pubd, parts)
	return parts, drift, err
}

// readDrift reads the drift rows of published partitions of a listed drift
// table: per partition, the rows of its latest run.
func readDrift(ctx context.Context, out store.Bucket, pubd *published, partitions []string) (map[string][]FeatureDrift, error) {
	schema := arrow.NewSchema(append(driftSchema().Fields(), arrow.Field{Name: "run_id", Type: arrow.BinaryTypes.String}), nil)
	res := map[string][]FeatureDrift{}
	for _, part := range partitions {
		if _, ok := slices.BinarySearch(pubd.parts, part); !ok {
			continue
		}
		latest := ""
		err := pubd.readRows(ctx, out, part, schema, func(rec arrow.RecordBatch, r int) error {
			s := func(i int) string {
				c := rec.Column(i).(*array.String)
				if c.IsNull(r) {
					return ""
				}
				return c.Value(r)
			}
			f := func(i int) float64 {
				c := rec.Column(i).(*array.Float64)
				if c.IsNull(r) {
					return math.NaN()
				}
				return c.Value(r)
			}
			off := func(v float64) float64 { // null thresholds are off (0)
				if math.IsNaN(v) {
					return 0
				}
				return v
			}
			run := s(15)
			switch {
			case run < latest:
				return nil
			case run > latest:
				latest, res[part] = run, nil
			}
			res[part] = append(res[part], FeatureDrift{
				Feature: s(0), Kind: s(1), PSI: f(2), JS: f(3), PSIPrev: f(4), JSPrev: f(5), PrevPartition: s(6),
				MissingRate: f(7), TrainMissingRate: f(8), PrevMissingRate: f(9),
				DriftLimits: DriftLimits{WarnAbove: off(f(10)), FailAbove: off(f(11))}, Status: s(12),
			})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}
