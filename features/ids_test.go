package features

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// idsSpec has two categoricals of integer ids: c1 maps what is missing or
// out of range to id 0, c2 maps a missing id to 3 and rejects ids out of
// range.
const idsSpec = `
label: clicked
features:
  - {name: C1, kind: categorical, ids: 5}
  - {name: C2, column: c2, kind: categorical, ids: 4, missing_id: 3, out_of_range: reject}
  - {name: site, kind: categorical, hash_buckets: 10}
`

func TestIDsSpec(t *testing.T) {
	s, err := ParseSpec([]byte(idsSpec))
	if err != nil {
		t.Fatal(err)
	}
	c1, c2 := s.Features[0], s.Features[1]
	if c1.Column != "C1" || c1.OutOfRange != OutOfRangeMissing || c1.MissingID != 0 {
		t.Errorf("C1 after defaults: %+v", c1)
	}
	if c2.Column != "c2" || c2.OutOfRange != OutOfRangeReject || c2.MissingID != 3 {
		t.Errorf("C2: %+v", c2)
	}
	schema := s.InputSchema([]string{"ad_id"}, true)
	for name, want := range map[string]arrow.DataType{"C1": arrow.PrimitiveTypes.Int64, "c2": arrow.PrimitiveTypes.Int64, "site": arrow.BinaryTypes.String} {
		if i := schema.FieldIndices(name); len(i) != 1 || !arrow.TypeEqual(schema.Field(i[0]).Type, want) || !schema.Field(i[0]).Nullable {
			t.Errorf("InputSchema field %q: %v, want nullable %s", name, schema, want)
		}
	}
	if got, want := s.RejectRanges(), []IDRange{{Feature: "C2", Column: "c2", IDs: 4}}; !slices.Equal(got, want) {
		t.Errorf("RejectRanges() = %v, want %v", got, want)
	}

	for _, tt := range []struct{ name, yaml, wantErr string }{
		{"ids and hash", "features:\n  - {name: a, kind: categorical, ids: 3, hash_buckets: 3}\n", "exactly one of hash_buckets, vocabulary or ids"},
		{"ids and vocabulary", "features:\n  - {name: a, kind: categorical, ids: 3, vocabulary: {max_size: 3}}\n", "exactly one"},
		{"negative ids", "features:\n  - {name: a, kind: categorical, ids: -3}\n", `feature "a": ids must be in [1, 2147483647], not -3`},
		{"too many ids", "features:\n  - {name: a, kind: categorical, ids: 3000000000}\n", "ids must be in"},
		{"missing_id too large", "features:\n  - {name: a, kind: categorical, ids: 3, missing_id: 3}\n", `feature "a": missing_id 3 is not an id in [0, 3)`},
		{"negative missing_id", "features:\n  - {name: a, kind: categorical, ids: 3, missing_id: -1}\n", "missing_id -1 is not an id"},
		{"bad out_of_range", "features:\n  - {name: a, kind: categorical, ids: 3, out_of_range: clamp}\n", `out_of_range must be missing or reject, not "clamp"`},
		{"missing_id of a hash", "features:\n  - {name: a, kind: categorical, hash_buckets: 3, missing_id: 1}\n", "missing_id and out_of_range are for categoricals of ids only"},
		{"out_of_range of a numeric", "features:\n  - {name: a, kind: numeric, out_of_range: reject}\n", "for categoricals of ids only"},
		{"ids of a numeric", "features:\n  - {name: a, kind: numeric, ids: 3}\n", `feature "a": ids is for categoricals only`},
		{"cross of ids", "features:\n  - {name: a, kind: categorical, ids: 3}\n  - {name: b, kind: categorical, hash_buckets: 3}\n  - {name: x, kind: cross, cross: [a, b], hash_buckets: 5}\n", `"a" is a categorical of ids`},
		{"column as ids and as a string", "features:\n  - {name: a, kind: categorical, ids: 3}\n  - {name: b, column: a, kind: categorical, hash_buckets: 3}\n", `feature "b" reads column "a" as utf8, feature "a" as int64`},
		{"label read as ids", "label: a\nfeatures:\n  - {name: a, kind: categorical, ids: 3}\n", `label "a" is a column that feature "a" reads as int64`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.yaml))
			if !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want ErrSpec containing %q", err, tt.wantErr)
			}
		})
	}
}

// idsRecord builds a record of idsSpec's input columns; nil is a null.
func idsRecord(t *testing.T, mem memory.Allocator, s Spec, c1, c2 []*int64) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, s.InputSchema([]string{"ad_id"}, true))
	defer b.Release()
	for i := range c1 {
		b.Field(0).(*array.StringBuilder).Append("r")
		for k, v := range []*int64{c1[i], c2[i]} {
			if v == nil {
				b.Field(1 + k).AppendNull()
			} else {
				b.Field(1 + k).(*array.Int64Builder).Append(*v)
			}
		}
		b.Field(3).(*array.StringBuilder).Append("x.com")
		b.Field(4).(*array.Float64Builder).Append(1)
	}
	return b.NewRecordBatch()
}

func TestIDsTransform(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	s, err := ParseSpec([]byte(idsSpec))
	if err != nil {
		t.Fatal(err)
	}
	// Nothing to fit for ids: the fitter passes them by.
	fit, err := NewFitter(s)
	if err != nil {
		t.Fatal(err)
	}
	in := func(v int64) *int64 { return &v }
	rec := idsRecord(t, mem, s, []*int64{in(2), nil, in(4), in(0)}, []*int64{in(1), in(0), nil, in(3)})
	defer rec.Release()
	if err := fit.Observe(rec); err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(s, fit.Stats())
	if err != nil {
		t.Fatal(err)
	}
	// The cardinality is N: every id 0..N-1 is an index of its own.
	if got := p.Cardinalities(); !slices.Equal(got, []int{5, 4, 11}) {
		t.Fatalf("Cardinalities() = %v, want [5 4 11]", got)
	}

	t.Run("in range and missing", func(t *testing.T) {
		var b Batch
		if err := p.Transform(rec, &b); err != nil {
			t.Fatal(err)
		}
		site := int32(1 + Hash("x.com")%10)
		want := []int32{2, 1, site, 0, 0, site, 4, 3, site, 0, 3, site} // a missing C1 is 0, a missing C2 is 3
		if !slices.Equal(b.Cat, want) {
			t.Errorf("Cat = %v, want %v", b.Cat, want)
		}
	})

	t.Run("out of range becomes missing_id", func(t *testing.T) {
		out := idsRecord(t, mem, s, []*int64{in(5), in(-1), in(1 << 40), in(4)}, []*int64{in(0), in(1), in(2), in(3)})
		defer out.Release()
		var b Batch
		if err := p.Transform(out, &b); err != nil {
			t.Fatal(err)
		}
		if got := []int32{b.Cat[0], b.Cat[3], b.Cat[6], b.Cat[9]}; !slices.Equal(got, []int32{0, 0, 0, 4}) {
			t.Errorf("C1 = %v, want [0 0 0 4]", got)
		}
	})

	t.Run("out of range rejected", func(t *testing.T) {
		for _, bad := range []int64{4, -1} {
			out := idsRecord(t, mem, s, []*int64{in(0), in(0)}, []*int64{in(0), in(bad)})
			var b Batch
			err := p.Transform(out, &b)
			out.Release()
			if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), `feature "C2": id out of range: row 2 of the record`) {
				t.Errorf("id %d: error %v, want ErrOutOfRange naming feature C2 and row 2", bad, err)
			}
		}
	})

	t.Run("a column that is not int64", func(t *testing.T) {
		// The readers convert the column to int64, refusing a value that is
		// not an integer ("12.5", "abc") as a bad row; a record of text
		// never reaches Transform.
		bld := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{
			{Name: "C1", Type: arrow.BinaryTypes.String}, {Name: "c2", Type: arrow.PrimitiveTypes.Int64}, {Name: "site", Type: arrow.BinaryTypes.String},
		}, nil))
		defer bld.Release()
		bld.Field(0).(*array.StringBuilder).Append("12.5")
		bld.Field(1).(*array.Int64Builder).Append(1)
		bld.Field(2).(*array.StringBuilder).Append("x.com")
		text := bld.NewRecordBatch()
		defer text.Release()
		var b Batch
		if err := p.Transform(text, &b); !errors.Is(err, ErrSpec) || !strings.Contains(err.Error(), `feature "C1": invalid feature spec: column "C1" is utf8`) {
			t.Errorf("error %v, want the column's type named", err)
		}
	})
}

// A spec in a bundle is decoded by the bundle's YAML decoder, not
// ParseSpec: SetDefaults gives it the same meaning.
func TestSetDefaults(t *testing.T) {
	s := Spec{Features: []Feature{
		{Name: "a", Kind: Numeric},
		{Name: "b", Kind: Categorical, IDs: 3},
		{Name: "c", Kind: Categorical, Column: "col_c", HashBuckets: 3},
		{Name: "x", Kind: Cross, Cross: []string{"c", "c"}, HashBuckets: 3},
	}}
	s.SetDefaults()
	var got []string
	for _, f := range s.Features {
		got = append(got, f.Name+":"+f.Column+":"+f.OutOfRange)
	}
	if want := []string{"a:a:", "b:b:missing", "c:col_c:", "x::"}; !slices.Equal(got, want) {
		t.Errorf("after SetDefaults: %q, want %q", got, want)
	}
	if err := s.Validate(); err != nil {
		t.Error(err)
	}
}
