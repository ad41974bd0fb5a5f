package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
)

// ReferenceRows is how many reference rows a bundle gets (fewer if the
// data has fewer usable rows): at most half of them for missing values,
// the rest spread across the data.
const ReferenceRows = 16

// referencePicker chooses a bundle's reference rows from data streaming
// past, in one pass and deterministically (the same rows for the same
// data), keeping a few candidates and never the data:
//
//   - for each input column in schema order, the first row in which it is
//     missing (null), so that the rows exercise each feature's fill, its
//     missing index or missing id; at most half of the rows;
//   - the rest spread evenly across the data: a systematic sample with a
//     stride that doubles whenever 2·want candidates are kept (rows 0, s,
//     2s, ...), from which as many as needed are taken evenly at the end.
//     Spread rows meet the data's common and less common categories.
//
// A row whose dense features are not all finite (a value beyond float32's
// range with no clip) has no score to record and is never a candidate.
type referencePicker struct {
	want   int
	schema *arrow.Schema // the columns recorded: ReferenceSchema
	seen   int64         // rows observed
	step   int64         // the stride of the spread candidates
	spread []bundle.ReferenceRow
	// missing has, per schema column, the first row where it is null
	// (nil until one is seen).
	missing []*bundle.ReferenceRow
}

func newReferencePicker(schema *arrow.Schema, want int) *referencePicker {
	return &referencePicker{want: want, schema: schema, step: 1, missing: make([]*bundle.ReferenceRow, schema.NumFields())}
}

// observe offers the rows of rec, whose model inputs are b (computed from
// rec by the bundle's feature pipeline).
func (p *referencePicker) observe(rec arrow.RecordBatch, b *features.Batch) error {
	first := p.seen
	p.seen += rec.NumRows()
	// The columns still without a missing value that have one here.
	nulls := make([]arrow.Array, len(p.missing))
	for c, f := range p.schema.Fields() {
		if col := rec.Column(rec.Schema().FieldIndices(f.Name)[0]); p.missing[c] == nil && col.NullN() > 0 {
			nulls[c] = col
		}
	}
	for i := range int(rec.NumRows()) {
		row := first + int64(i)
		dense := b.Dense[i*b.D : (i+1)*b.D]
		if slices.ContainsFunc(dense, func(v float32) bool { return math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) }) {
			continue
		}
		var candidate *bundle.ReferenceRow
		take := func() (*bundle.ReferenceRow, error) {
			if candidate != nil {
				return candidate, nil
			}
			values, err := bundle.ReferenceValues(rec, p.schema, i)
			if err != nil {
				return nil, fmt.Errorf("row %d: %w", row, err)
			}
			candidate = &bundle.ReferenceRow{
				DataRow: row, Values: values,
				Dense: slices.Clone(dense), Cat: slices.Clone(b.Cat[i*b.K : (i+1)*b.K]),
			}
			return candidate, nil
		}
		for c, col := range nulls {
			if col == nil || p.missing[c] != nil || !col.IsNull(i) {
				continue
			}
			r, err := take()
			if err != nil {
				return err
			}
			p.missing[c] = r
		}
		if row%p.step != 0 {
			continue
		}
		r, err := take()
		if err != nil {
			return err
		}
		p.spread = append(p.spread, *r)
		if len(p.spread) == 2*p.want {
			p.step *= 2
			kept := p.spread[:0]
			for _, r := range p.spread {
				if r.DataRow%p.step == 0 {
					kept = append(kept, r)
				}
			}
			p.spread = kept
		}
	}
	return nil
}

// rows are the chosen rows, in data order, with their scores by bu (whose
// feature spec computed the features observed), compiled as scoring
// compiles it; st computes the image embeddings of a model with image
// inputs (recorded with the rows).
func (p *referencePicker) rows(ctx context.Context, bu *bundle.Bundle, st *scoring.ImageStage) ([]bundle.ReferenceRow, error) {
	var out []bundle.ReferenceRow
	chosen := map[int64]bool{}
	for _, r := range p.missing {
		if r != nil && !chosen[r.DataRow] && len(out) < p.want/2 {
			chosen[r.DataRow] = true
			out = append(out, *r)
		}
	}
	var spread []bundle.ReferenceRow
	for _, r := range p.spread {
		if !chosen[r.DataRow] {
			spread = append(spread, r)
		}
	}
	m := min(p.want-len(out), len(spread))
	for i := range m {
		out = append(out, spread[i*len(spread)/m])
	}
	if len(out) == 0 {
		return nil, nil
	}
	slices.SortFunc(out, func(a, b bundle.ReferenceRow) int { return cmp.Compare(a.DataRow, b.DataRow) })

	var b features.Batch
	b.Reset(len(out), bu.Inputs.Dense, bu.Inputs.K())
	for i, r := range out {
		copy(b.Dense[i*b.D:], r.Dense)
		copy(b.Cat[i*b.K:], r.Cat)
	}
	if ins := bu.Features.ImageInputs(); len(ins) > 0 {
		if st == nil {
			return nil, fmt.Errorf("reference rows: model %s %s has image inputs and no image stage", bu.Name, bu.Version)
		}
		b.I = len(ins)
		for _, r := range out {
			for _, in := range ins {
				var uri string
				if v := r.Values[in.Column]; string(v) != "null" && len(v) > 0 {
					if err := json.Unmarshal(v, &uri); err != nil {
						return nil, fmt.Errorf("reference rows: column %q: %w", in.Column, err)
					}
				}
				b.Images = append(b.Images, uri)
			}
		}
		if err := st.Embed(ctx, &b); err != nil {
			return nil, fmt.Errorf("reference rows: %w", err)
		}
		w := bu.Arch.ImageWidth(bu.Inputs)
		for i := range out {
			out[i].ImageEmb = slices.Clone(b.ImageEmb[i*w : (i+1)*w])
		}
	}
	model, err := scoring.NewModel(bu, len(out))
	if err != nil {
		return nil, fmt.Errorf("reference rows: %w", err)
	}
	defer func() { _ = model.Close() }() // never fails
	scores := make([]float32, len(out))
	if err := model.Score(&b, scores); err != nil {
		return nil, fmt.Errorf("reference rows: %w", err)
	}
	for i := range out {
		out[i].Score = scores[i]
	}
	return out, nil
}

// ReferenceJob asks for reference rows of a bundle from a sample of its
// input data (scorer import onnx --data).
type ReferenceJob struct {
	Input  store.Bucket
	Files  []store.ObjectInfo // read in this order
	Bundle *bundle.Bundle
	CSV    readers.CSVOptions
}

// Reference picks ReferenceRows rows of the data (as training does: see
// referencePicker), computes their features with the bundle's pipeline and
// their scores with its model, and returns them; the bundle is not
// changed. Rows the readers refuse are skipped. It ends with the skew
// guard (scoring.CheckReference) on the rows, so that rows it returns
// reproduce from their recorded values.
func Reference(ctx context.Context, j ReferenceJob) ([]bundle.ReferenceRow, error) {
	fx, err := features.NewPipeline(j.Bundle.Features, j.Bundle.Stats)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	schema := j.Bundle.ReferenceSchema()
	pick := newReferencePicker(schema, ReferenceRows)
	open := func() (*readers.Reader, *badRows, error) {
		src, err := readers.Open(ctx, j.Input, j.Files, readers.Options{
			Schema: schema, Ranges: RejectRanges(j.Bundle.Features), BatchSize: 1024, Concurrency: 1, CSV: j.CSV,
			OnBadRow: func(readers.RowError) error { return nil }, // not a candidate
		})
		return src, nil, err
	}
	var b features.Batch
	if _, err := eachRecord(ctx, open, func(rec arrow.RecordBatch) error {
		if err := fx.Transform(rec, &b); err != nil {
			return fmt.Errorf("compute features: %w", err)
		}
		return pick.observe(rec, &b)
	}); err != nil {
		return nil, fmt.Errorf("pick rows: %w", err)
	}
	return checkedReference(ctx, j.Bundle, pick, nil)
}

// checkedReference are the picker's rows for bu, checked by the skew guard
// as every load will check them.
func checkedReference(ctx context.Context, bu *bundle.Bundle, pick *referencePicker, st *scoring.ImageStage) ([]bundle.ReferenceRow, error) {
	rows, err := pick.rows(ctx, bu, st)
	if err != nil {
		return nil, err
	}
	check := *bu
	check.Reference = rows
	if _, err := scoring.CheckReference(&check); err != nil {
		return nil, fmt.Errorf("reference rows do not reproduce from their values: %w", err)
	}
	return rows, nil
}
