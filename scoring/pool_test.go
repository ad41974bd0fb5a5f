package scoring

import (
	"context"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// collect keeps every record a Run writes.
type collect struct{ recs []arrow.RecordBatch }

func (c *collect) Write(_ context.Context, rec arrow.RecordBatch) error {
	rec.Retain()
	c.recs = append(c.recs, rec)
	return nil
}

func (c *collect) release() {
	for _, r := range c.recs {
		r.Release()
	}
}

// TestRunChallengers scores the demo month with the demo bundle as the
// main model and two challengers, one sharing the main pipeline and one
// with a pipeline of its own: each score column must equal what its model
// alone gives the same rows (the float64 reference forward pass), and the
// id and pass-through columns must be the input's.
func TestRunChallengers(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()

	bu, fx := loadDemo(t)
	// A wide challenger of the same inputs with other weights, on the
	// shared pipeline, and a deep one on a pipeline of its own (the same
	// spec: what matters is that it is another *Pipeline).
	wide := modeltest.RandomBundle(bundle.Wide, bu.Inputs.Dense, bu.Inputs.Cardinalities, 0, nil, 3)
	wide.Name, wide.Version = "wide", "w1"
	deep := modeltest.RandomBundle(bundle.Deep, bu.Inputs.Dense, bu.Inputs.Cardinalities, 4, []int{8}, 4)
	deep.Name, deep.Version = "deep", "d1"
	ownFx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		t.Fatal(err)
	}

	in := store.NewFileBucket(demoStoreDir)
	files, err := in.List(ctx, demoMonthDir+"/")
	if err != nil {
		t.Fatal(err)
	}
	schema := bu.Features.InputSchema([]string{"ad_id"}, false)
	fields := append(schema.Fields(), arrow.Field{Name: "clicked", Type: arrow.PrimitiveTypes.Float64, Nullable: true})
	src, err := readers.Open(ctx, in, files, readers.Options{Schema: arrow.NewSchema(fields, nil), Mem: mem, BatchSize: 3000})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()

	var out collect
	defer out.release()
	if _, err := Run(ctx, src, bu, fx, &out, PoolOptions{
		Workers: 2, BatchSize: 3000, IDColumns: []string{"ad_id"}, PassColumns: []string{"clicked"}, Mem: mem,
		Challengers: []Challenger{
			{Bundle: wide, Features: fx, Column: "score_wide"},
			{Bundle: deep, Features: ownFx, Column: "score_deep"},
		},
	}); err != nil {
		t.Fatal(err)
	}

	wantNames := []string{"ad_id", "clicked", ScoreColumn, "score_wide", "score_deep"}
	models := map[string]*bundle.Bundle{ScoreColumn: bu, "score_wide": wide, "score_deep": deep}
	rows := 0
	for _, rec := range out.recs {
		for i, f := range rec.Schema().Fields() {
			if i >= len(wantNames) || f.Name != wantNames[i] {
				t.Fatalf("output schema %v, want columns %v", rec.Schema(), wantNames)
			}
		}
		rows += int(rec.NumRows())
	}
	if rows != 40000 {
		t.Fatalf("%d rows scored, want 40000", rows)
	}

	// The reference: every row's model inputs, keyed by ad_id, and the
	// label as read from the files.
	ref := readInputsByID(t, bu, fx)
	for col, m := range models {
		bad := 0
		for _, rec := range out.recs {
			ids := rec.Column(0).(*array.String)
			labels := rec.Column(1).(*array.Float64)
			scores := rec.Column(rec.Schema().FieldIndices(col)[0]).(*array.Float32)
			for r := range int(rec.NumRows()) {
				row, ok := ref[ids.Value(r)]
				if !ok {
					t.Fatalf("output row %q is not an input row", ids.Value(r))
				}
				if labels.IsNull(r) || labels.Value(r) != row.label {
					t.Fatalf("row %q: clicked %v, input has %v", ids.Value(r), labels.ValueStr(r), row.label)
				}
				want := referenceScores(m, row.batch)[0]
				if d := math.Abs(float64(scores.Value(r)) - want); !(d <= 1e-5) && bad < 3 {
					t.Errorf("%s row %q: score %.8g, reference %.8g", col, ids.Value(r), scores.Value(r), want)
					bad++
				}
			}
		}
	}
}

type refRow struct {
	batch *features.Batch
	label float64
}

// readInputsByID reads the demo month one record at a time and keeps each
// row's model inputs and label under its ad_id.
func readInputsByID(t *testing.T, bu *bundle.Bundle, fx *features.Pipeline) map[string]refRow {
	t.Helper()
	ctx := context.Background()
	in := store.NewFileBucket(demoStoreDir)
	files, err := in.List(ctx, demoMonthDir+"/")
	if err != nil {
		t.Fatal(err)
	}
	schema := bu.Features.InputSchema([]string{"ad_id"}, true)
	src, err := readers.Open(ctx, in, files, readers.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	out := map[string]refRow{}
	var b features.Batch
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := fx.Transform(rec, &b); err != nil {
			t.Fatal(err)
		}
		ids := rec.Column(0).(*array.String)
		labels := rec.Column(rec.Schema().FieldIndices(bu.Features.Label)[0]).(*array.Float64)
		for r := range b.N {
			one := &features.Batch{
				N: 1, D: b.D, K: b.K,
				Dense: append([]float32(nil), b.Dense[r*b.D:(r+1)*b.D]...),
				Cat:   append([]int32(nil), b.Cat[r*b.K:(r+1)*b.K]...),
			}
			out[ids.Value(r)] = refRow{batch: one, label: labels.Value(r)}
		}
		rec.Release()
	}
	return out
}
