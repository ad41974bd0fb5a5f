package jobs

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/bundle"
)

// pickerBundle is a wide model of one numeric and one hashed feature.
func pickerBundle() *bundle.Bundle {
	bu := &bundle.Bundle{
		Name: "picker", Version: "1", Arch: bundle.Architecture{Kind: bundle.Wide},
		Inputs: bundle.Inputs{Dense: 1, Cardinalities: []int{5}},
		Features: features.Spec{Features: []features.Feature{
			{Name: "x", Column: "x", Kind: features.Numeric},
			{Name: "s", Column: "s", Kind: features.Categorical, HashBuckets: 4},
		}},
		Weights: map[string]*bundle.Param{
			"wide.emb":   {Shape: []int{5, 1}, Data: []float32{0, 0.5, -0.25, 1, -1}},
			"wide.dense": {Shape: []int{1, 1}, Data: []float32{0.001}},
			"wide.bias":  {Shape: []int{1}, Data: []float32{-0.5}},
		},
	}
	return bu
}

// The picker keeps the first row missing each column and spreads the rest
// across the data, never a row whose features are not finite, and scores
// them with the model; the same data gives the same rows.
func TestReferencePicker(t *testing.T) {
	bu := pickerBundle()
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		t.Fatal(err)
	}
	schema := bu.ReferenceSchema()
	pick := func() []bundle.ReferenceRow {
		p := newReferencePicker(schema, ReferenceRows)
		for start := 0; start < 1000; start += 100 {
			b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
			for i := start; i < start+100; i++ {
				switch i {
				case 37, 600:
					b.Field(0).AppendNull()
				case 5:
					b.Field(0).(*array.Float64Builder).Append(1e300) // beyond float32: +Inf
				default:
					b.Field(0).(*array.Float64Builder).Append(float64(i))
				}
				if i == 900 {
					b.Field(1).AppendNull()
				} else {
					b.Field(1).(*array.StringBuilder).Append(fmt.Sprint("v", i%7))
				}
			}
			rec := b.NewRecordBatch()
			b.Release()
			var fb features.Batch
			if err := fx.Transform(rec, &fb); err != nil {
				t.Fatal(err)
			}
			if err := p.observe(rec, &fb); err != nil {
				t.Fatal(err)
			}
			rec.Release()
		}
		rows, err := p.rows(t.Context(), bu, nil)
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	rows := pick()
	var got []int64
	for _, r := range rows {
		got = append(got, r.DataRow)
	}
	if len(rows) != ReferenceRows {
		t.Fatalf("%d rows %v, want %d", len(rows), got, ReferenceRows)
	}
	if !slices.IsSorted(got) || !slices.Contains(got, 37) || !slices.Contains(got, 900) || slices.Contains(got, 600) || slices.Contains(got, 5) {
		t.Errorf("rows %v: want sorted, with 37 and 900 (the first missing x and s), without 600 (x missing again) and 5 (not finite)", got)
	}
	if got[0] != 0 || got[len(got)-1] < 900 {
		t.Errorf("rows %v are not spread across rows 0-999", got)
	}
	if again := pick(); !slices.EqualFunc(rows, again, func(a, b bundle.ReferenceRow) bool { return a.DataRow == b.DataRow && a.Score == b.Score }) {
		t.Errorf("a second pick differs")
	}
	check := *bu
	check.Reference = rows
	if n, err := scoring.CheckReference(&check); n != ReferenceRows || err != nil {
		t.Errorf("the picked rows do not pass the skew guard: %d, %v", n, err)
	}
	if string(rows[1].Values["x"]) != "null" || rows[1].Dense[0] != 0 {
		t.Errorf("row 37: values %s, dense %v; want x null and filled with 0", rows[1].Values, rows[1].Dense)
	}
}

// Train gives the bundle reference rows from its month (the first row
// missing bid_price among them) that pass the skew guard after a save and
// a load.
func TestTrainReferenceRows(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeDemoMonth(t, dir, demodata.New(2020), "2020-08", "ads", 2, 600)
	j := demoTrainJob(t, dir, "2020-08")
	j.Config.Epochs = 1
	bu, err := Train(ctx, j)
	if err != nil {
		t.Fatal(err)
	}
	if len(bu.Reference) != ReferenceRows {
		t.Fatalf("%d reference rows, want %d", len(bu.Reference), ReferenceRows)
	}
	missing := false
	for _, r := range bu.Reference {
		missing = missing || string(r.Values["bid_price"]) == "null"
	}
	if !missing {
		t.Errorf("no reference row is missing bid_price")
	}
	b := store.NewFileBucket(filepath.Join(dir, "model"))
	if err := bu.Save(ctx, b, ""); err != nil {
		t.Fatal(err)
	}
	loaded, err := bundle.Load(ctx, b, "")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := scoring.CheckReference(loaded); n != ReferenceRows || err != nil {
		t.Fatalf("skew guard on the saved bundle: %d rows, %v", n, err)
	}

	// The same rows from the same data through Reference (import --data).
	files, _, err := ListInputs(ctx, store.NewFileBucket(dir), "dumps/2020-08")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := Reference(ctx, ReferenceJob{Input: store.NewFileBucket(dir), Files: files, Bundle: loaded, CSV: readers.CSVOptions{Header: true}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if rows[i].DataRow != loaded.Reference[i].DataRow || rows[i].Score != loaded.Reference[i].Score ||
			!slices.Equal(rows[i].Cat, loaded.Reference[i].Cat) {
			t.Fatalf("Reference row %d: %+v, Train's %+v", i+1, rows[i], loaded.Reference[i])
		}
	}

	// Training data the reader refuses in part: bad rows are no candidates.
	bad := filepath.Join(dir, "bad")
	if err := os.MkdirAll(bad, 0o755); err != nil {
		t.Fatal(err)
	}
	csv := "ad_id,bid_price,position,ad_width,ad_height,site_domain,ad_category,device,country,served_at\n" +
		"a,abc,1,300,250,s,c,mobile,US,2020-08-01T00:00:00Z\n" +
		"b,1.5,1,300,250,s,c,mobile,US,2020-08-01T00:00:00Z\n"
	if err := os.WriteFile(filepath.Join(bad, "x.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := store.NewFileBucket(bad).Stat(ctx, "x.csv")
	if err != nil {
		t.Fatal(err)
	}
	rows, err = Reference(ctx, ReferenceJob{Input: store.NewFileBucket(bad), Files: []store.ObjectInfo{info}, Bundle: loaded, CSV: readers.CSVOptions{Header: true}})
	if err != nil || len(rows) != 1 || !strings.Contains(string(rows[0].Values["bid_price"]), "1.5") || math.IsNaN(float64(rows[0].Score)) {
		t.Fatalf("Reference of one good and one bad row: %v, %+v", err, rows)
	}
}
