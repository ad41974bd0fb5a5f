package jobs

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/writers/table"
)

// ChallengersTable is the table that holds the challengers' scores of
// table: one row per input row and challenger (a long format, so that the
// score table keeps one row per input row and its schema does not change
// with the set of challengers).
func ChallengersTable(table string) string { return table + "_challengers" }

// ScoreTableColumn reports whether name is a column every score table has
// (besides its id and label columns), or one of the challengers table.
func ScoreTableColumn(name string) bool {
	switch name {
	case scoring.ScoreColumn, "model_name", "model_version", "scored_at", "run_id":
		return true
	}
	return false
}

// challengerColumn names challenger i's score column inside a run (never
// written to a table as such).
func challengerColumn(i int) string { return fmt.Sprintf("_challenger_%d", i) }

// challengers are the models a run scores beside its champion.
func (j *ScoreJob) challengers(fx *features.Pipeline) ([]scoring.Challenger, error) {
	var cs []scoring.Challenger
	for i, bu := range j.Challengers {
		if bu.Name == j.Bundle.Name && bu.Version == j.Bundle.Version {
			return nil, fmt.Errorf("%w: challenger %s %s is the champion itself", ErrConfig, bu.Name, bu.Version)
		}
		for _, other := range j.Challengers[:i] {
			if bu.Name == other.Name && bu.Version == other.Version {
				return nil, fmt.Errorf("%w: challenger %s %s is listed twice", ErrConfig, bu.Name, bu.Version)
			}
		}
		cfx := fx
		// Features are computed once when the specs and their fitted
		// statistics agree; otherwise the challenger gets its own pipeline.
		if !reflect.DeepEqual(bu.Features, j.Bundle.Features) || !reflect.DeepEqual(bu.Stats, j.Bundle.Stats) {
			var err error
			if cfx, err = features.NewPipeline(bu.Features, bu.Stats); err != nil {
				return nil, fmt.Errorf("%w: challenger %s %s: %w", ErrConfig, bu.Name, bu.Version, err)
			}
		}
		cs = append(cs, scoring.Challenger{Bundle: bu, Features: cfx, Column: challengerColumn(i)})
	}
	return cs, nil
}

// inputSchema is what the run reads: the id columns, every column a model's
// features read, and the label columns (float64, null where missing or
// where a file has no such column).
func (j *ScoreJob) inputSchema() (*arrow.Schema, error) {
	fields := slices.Clone(j.Bundle.Features.InputSchema(j.IDColumns, false).Fields())
	add := func(f arrow.Field, whose string) error {
		for i, g := range fields {
			if g.Name != f.Name {
				continue
			}
			// A number for one model and integer ids for another: read
			// as int64, which holds the integers to be integers for the
			// ids feature and gives the numeric feature the same values.
			if g.Type.ID() == arrow.FLOAT64 && f.Type.ID() == arrow.INT64 && !slices.Contains(j.IDColumns, f.Name) && !slices.Contains(j.LabelColumns, f.Name) {
				fields[i].Type = f.Type
				return nil
			}
			if g.Type.ID() == arrow.INT64 && f.Type.ID() == arrow.FLOAT64 && !slices.Contains(j.LabelColumns, f.Name) {
				return nil
			}
			if !arrow.TypeEqual(g.Type, f.Type) {
				return fmt.Errorf("%w: column %q is read as %s by %s but as %s by the champion %s %s (or is an id column)",
					ErrConfig, f.Name, f.Type, whose, g.Type, j.Bundle.Name, j.Bundle.Version)
			}
			return nil
		}
		fields = append(fields, f)
		return nil
	}
	for _, bu := range j.Challengers {
		for _, f := range bu.Features.InputSchema(nil, false).Fields() {
			if err := add(f, fmt.Sprintf("challenger %s %s", bu.Name, bu.Version)); err != nil {
				return nil, err
			}
		}
	}
	for _, l := range j.LabelColumns {
		if err := add(labelField(l), "label_columns"); err != nil {
			return nil, err
		}
	}
	return arrow.NewSchema(fields, nil), nil
}

// inputRanges are the ranges the readers hold the run's int64 columns to
// (readers.Options.Ranges): those of the ids features with out_of_range:
// reject of the champion and of every challenger. A row outside one is a
// bad row of the run, scored by no model.
func (j *ScoreJob) inputRanges() []readers.IntRange {
	specs := []features.Spec{j.Bundle.Features}
	for _, bu := range j.Challengers {
		specs = append(specs, bu.Features)
	}
	return RejectRanges(specs...)
}

// RejectRanges turns the specs' features.IDRange into the readers' ranges
// (once each), so that an id out of range is a bad row with its file, row
// and column, counted against max_bad_rows and sent to the rejects table.
func RejectRanges(specs ...features.Spec) []readers.IntRange {
	var out []readers.IntRange
	for _, s := range specs {
		for _, r := range s.RejectRanges() {
			ir := readers.IntRange{Column: r.Column, Min: 0, Max: r.IDs, Name: fmt.Sprintf("feature %q id", r.Feature)}
			if !slices.Contains(out, ir) {
				out = append(out, ir)
			}
		}
	}
	return out
}

func labelField(name string) arrow.Field {
	return arrow.Field{Name: name, Type: arrow.PrimitiveTypes.Float64, Nullable: true}
}

// scoreSchema is the score table's schema (before the constant columns the
// table's writer adds): the ids, the labels, the score.
func scoreSchema(ids, labels []string) *arrow.Schema {
	fields := make([]arrow.Field, 0, len(ids)+len(labels)+1)
	for _, id := range ids {
		fields = append(fields, arrow.Field{Name: id, Type: arrow.BinaryTypes.String})
	}
	for _, l := range labels {
		fields = append(fields, labelField(l))
	}
	fields = append(fields, arrow.Field{Name: scoring.ScoreColumn, Type: arrow.PrimitiveTypes.Float32})
	return arrow.NewSchema(fields, nil)
}

// challengersSchema is the challengers table's schema (before its constant
// columns): the ids, the labels, the model, the score.
func challengersSchema(ids, labels []string) *arrow.Schema {
	fields := slices.Clone(scoreSchema(ids, labels).Fields())
	last := fields[len(fields)-1]
	fields = append(fields[:len(fields)-1],
		arrow.Field{Name: "model_name", Type: arrow.BinaryTypes.String},
		arrow.Field{Name: "model_version", Type: arrow.BinaryTypes.String},
		last)
	return arrow.NewSchema(fields, nil)
}

// splitSink sends the champion's columns of each scored record to the
// score table and each challenger's to the challengers table.
type splitSink struct {
	scores, challengers *table.Writer // challengers nil without challengers
	models              []*bundle.Bundle
	scoreSchema         *arrow.Schema
	chSchema            *arrow.Schema
	mem                 memory.Allocator
	// consts are each challenger's name and version columns, as long as
	// the longest record so far: a record takes a slice of them.
	consts [][2]arrow.Array
}

func (s *splitSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	npass := s.scoreSchema.NumFields() - 1 // ids and labels
	cols := make([]arrow.Array, 0, npass+1)
	for i := range npass + 1 {
		cols = append(cols, rec.Column(i))
	}
	main := array.NewRecordBatch(s.scoreSchema, cols, rec.NumRows())
	err := s.scores.Write(ctx, main)
	main.Release()
	if err != nil || s.challengers == nil {
		return err
	}
	n := rec.NumRows()
	if s.consts == nil {
		s.consts = make([][2]arrow.Array, len(s.models))
	}
	for i, bu := range s.models {
		c := &s.consts[i]
		if c[0] == nil || int64(c[0].Len()) < n {
			s.releaseConst(c)
			c[0], c[1] = constString(s.mem, bu.Name, int(n)), constString(s.mem, bu.Version, int(n))
		}
		name, version := array.NewSlice(c[0], 0, n), array.NewSlice(c[1], 0, n)
		chCols := append(cols[:npass:npass], name, version, rec.Column(npass+1+i))
		ch := array.NewRecordBatch(s.chSchema, chCols, n)
		name.Release()
		version.Release()
		err := s.challengers.Write(ctx, ch)
		ch.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// release frees the cached constant columns.
func (s *splitSink) release() {
	for i := range s.consts {
		s.releaseConst(&s.consts[i])
	}
}

func (s *splitSink) releaseConst(c *[2]arrow.Array) {
	for k, a := range c {
		if a != nil {
			a.Release()
			c[k] = nil
		}
	}
}

// constString is a column of n copies of v, dictionary-free: Parquet's
// dictionary encoding makes it a few bytes on disk.
func constString(mem memory.Allocator, v string, n int) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(n)
	b.ReserveData(len(v) * n)
	for range n {
		b.Append(v)
	}
	return b.NewArray()
}
