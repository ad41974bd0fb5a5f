package bundle_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
)

// referenceBundle is fullBundle with two reference rows (what the rows
// say is not checked here: that is the skew guard's, in package scoring).
func referenceBundle() *bundle.Bundle {
	bu := fullBundle()
	bu.Reference = []bundle.ReferenceRow{
		{
			DataRow: 0,
			Values:  map[string]json.RawMessage{"price": json.RawMessage(`2.5`), "site": json.RawMessage(`"a.example"`), "age": json.RawMessage(`41`), "device": json.RawMessage(`"ios"`)},
			Dense:   []float32{0.25, 1.2222222}, Cat: []int32{3, 1}, Score: 0.125,
		},
		{
			DataRow: 7,
			Values:  map[string]json.RawMessage{"price": json.RawMessage(`null`), "site": json.RawMessage(`null`), "age": json.RawMessage(`1e-7`), "device": json.RawMessage(`"<tv>"`)},
			Dense:   []float32{-6, -3.3333333}, Cat: []int32{0, 0}, Score: 0.9999999,
		},
	}
	return bu
}

// Reference rows go to reference.json, one row a line, and come back as
// they were; their values become a record of the spec's input schema.
func TestReferenceRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	bu := referenceBundle()
	if err := bu.Save(ctx, b, "m"); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "m", bundle.ReferenceFile))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(data), `"values"`); lines != 2 || strings.Count(string(data), "\n") != 7 || !strings.Contains(string(data), `"<tv>"`) {
		t.Errorf("reference.json is not one row a line:\n%s", data)
	}
	got, err := bundle.Load(ctx, b, "m")
	if err != nil {
		t.Fatal(err)
	}
	for i := range bu.Reference { // json.RawMessage compacts; compare decoded
		for k, v := range bu.Reference[i].Values {
			var want, have any
			_ = json.Unmarshal(v, &want)
			_ = json.Unmarshal(got.Reference[i].Values[k], &have)
			if !reflect.DeepEqual(want, have) {
				t.Errorf("row %d column %s: %s, want %s", i+1, k, got.Reference[i].Values[k], v)
			}
		}
		got.Reference[i].Values = bu.Reference[i].Values
	}
	if !reflect.DeepEqual(got, bu) {
		t.Errorf("loaded bundle differs:\n got %+v\nwant %+v", got.Reference, bu.Reference)
	}

	rec, err := got.ReferenceRecord(memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if rec.NumRows() != 2 || rec.NumCols() != 4 {
		t.Fatalf("record %d×%d, want 2×4", rec.NumRows(), rec.NumCols())
	}
	price := rec.Column(rec.Schema().FieldIndices("price")[0]).(*array.Float64)
	site := rec.Column(rec.Schema().FieldIndices("site")[0]).(*array.String)
	if price.Value(0) != 2.5 || !price.IsNull(1) || site.Value(0) != "a.example" || !site.IsNull(1) {
		t.Errorf("record values: price %v, site %v", price, site)
	}
}

// A bundle made before reference rows (no reference.json) loads, with
// none; Save writes an empty reference.json then, so that a bundle saved
// over another never keeps the other's rows.
func TestReferenceOptional(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	if err := referenceBundle().Save(ctx, b, "m"); err != nil {
		t.Fatal(err)
	}
	if err := fullBundle().Save(ctx, b, "m"); err != nil {
		t.Fatal(err)
	}
	got, err := bundle.Load(ctx, b, "m")
	if err != nil {
		t.Fatal(err)
	}
	if got.Reference != nil {
		t.Errorf("a bundle saved without rows over one with rows loads %d rows", len(got.Reference))
	}
	if err := os.Remove(filepath.Join(dir, "m", bundle.ReferenceFile)); err != nil {
		t.Fatal(err)
	}
	if got, err = bundle.Load(ctx, b, "m"); err != nil || got.Reference != nil {
		t.Fatalf("a bundle without reference.json: %v, %d rows", err, len(got.Reference))
	}
}

// ReferenceValues writes every input type so that ReferenceRecord reads
// back the same values: timestamps as RFC 3339 with microseconds, ids as
// integers beyond float64's exact range, nulls.
func TestReferenceValuesRoundTrip(t *testing.T) {
	bu := &bundle.Bundle{Features: features.Spec{Features: []features.Feature{
		{Name: "price", Kind: features.Numeric},
		{Name: "user", Kind: features.Categorical, IDs: 10},
		{Name: "hour", Column: "at", Kind: features.Timestamp, Part: features.HourOfDay},
		{Name: "site", Kind: features.Categorical, HashBuckets: 5},
	}}}
	schema := bu.ReferenceSchema()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	at := time.Date(2020, 8, 30, 13, 27, 42, 123456000, time.UTC).UnixMicro()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{0.1 + 0.2, math.Copysign(0, -1)}, nil)
	b.Field(1).(*array.Int64Builder).AppendValues([]int64{1<<62 + 1, 0}, []bool{true, false})
	b.Field(2).(*array.TimestampBuilder).AppendValues([]arrow.Timestamp{arrow.Timestamp(at), 0}, []bool{true, false})
	b.Field(3).(*array.StringBuilder).AppendValues([]string{`quote " and \ and é`, ""}, nil)
	want := b.NewRecordBatch()
	defer want.Release()
	for i := range 2 {
		values, err := bundle.ReferenceValues(want, schema, i)
		if err != nil {
			t.Fatal(err)
		}
		bu.Reference = append(bu.Reference, bundle.ReferenceRow{Values: values})
	}
	if got := string(bu.Reference[0].Values["at"]); got != `"2020-08-30T13:27:42.123456Z"` {
		t.Errorf("timestamp written as %s", got)
	}
	got, err := bu.ReferenceRecord(mem)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Release()
	if !array.RecordEqual(got, want) {
		t.Errorf("values do not round-trip:\n got %v\nwant %v", got, want)
	}
}

// A reference.json that does not fit the bundle makes it invalid, naming
// the row and what is wrong.
func TestReferenceInvalid(t *testing.T) {
	tests := []struct {
		name string
		edit func(bu *bundle.Bundle)
		want string
	}{
		{"dense width", func(bu *bundle.Bundle) { bu.Reference[1].Dense = bu.Reference[1].Dense[:1] }, "reference row 2: 1 dense and 2 categorical inputs, the model has 2 and 2"},
		{"missing column", func(bu *bundle.Bundle) { delete(bu.Reference[0].Values, "age") }, `reference row 1: no value for column "age"`},
		{"unknown column", func(bu *bundle.Bundle) { bu.Reference[1].Values["agee"] = json.RawMessage(`1`) }, `reference row 2: column "agee" is not an input`},
		{"string for number", func(bu *bundle.Bundle) { bu.Reference[0].Values["age"] = json.RawMessage(`"41"`) }, `reference row 1: column "age": "41" is not a number`},
		{"score", func(bu *bundle.Bundle) { bu.Reference[0].Score = 2 }, "reference row 1: score 2, want a probability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			b := store.NewFileBucket(t.TempDir())
			bu := referenceBundle()
			tt.edit(bu)
			if err := bu.Save(ctx, b, ""); err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, bundle.ErrInvalid) {
				t.Errorf("Save: %v, want ErrInvalid and %q", err, tt.want)
			}
			// Written by hand, past Save's check: Load refuses it the same.
			ok := referenceBundle()
			if err := ok.Save(ctx, b, ""); err != nil {
				t.Fatal(err)
			}
			bu.Reference, ok.Reference = ok.Reference, bu.Reference
			if err := writeReference(ctx, b, ok.Reference); err != nil {
				t.Fatal(err)
			}
			if _, err := bundle.Load(ctx, b, ""); err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, bundle.ErrInvalid) {
				t.Errorf("Load: %v, want ErrInvalid and %q", err, tt.want)
			}
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		ctx := context.Background()
		b := store.NewFileBucket(t.TempDir())
		if err := referenceBundle().Save(ctx, b, ""); err != nil {
			t.Fatal(err)
		}
		if err := store.WriteAll(ctx, b, bundle.ReferenceFile, []byte(`{"format": 1, "rows": [], "comment": "x"}`), store.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := bundle.Load(ctx, b, ""); err == nil || !strings.Contains(err.Error(), `unknown field "comment"`) || !errors.Is(err, bundle.ErrInvalid) {
			t.Errorf("Load: %v, want ErrInvalid naming the unknown key", err)
		}
	})
}

// writeReference writes rows as reference.json without any check.
func writeReference(ctx context.Context, b store.Bucket, rows []bundle.ReferenceRow) error {
	data, err := json.Marshal(map[string]any{"format": 1, "rows": rows})
	if err != nil {
		return err
	}
	return store.WriteAll(ctx, b, bundle.ReferenceFile, data, store.WriteOptions{})
}
