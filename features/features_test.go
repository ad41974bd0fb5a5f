package features

import (
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

const testSpec = `
label: clicked
features:
  - {name: price, kind: numeric, fill: 1, clip: [0, 100], log1p: true, standardize: true}
  - {name: age, kind: numeric}
  - {name: site, kind: categorical, hash_buckets: 50}
  - {name: device, kind: categorical, vocabulary: {max_size: 2, min_count: 2}}
  - {name: site_x_device, kind: cross, cross: [site, device], hash_buckets: 7}
  - {name: hour, kind: timestamp, column: served_at, part: hour_of_day}
  - {name: dow, kind: timestamp, column: served_at, part: day_of_week}
`

type row struct {
	id      string
	price   *float64
	age     *float64
	site    *string
	device  *string
	served  *time.Time
	clicked float64
}

func ptr[T any](v T) *T { return &v }

func buildRecord(t *testing.T, mem memory.Allocator, spec Spec, rows []row) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(mem, spec.InputSchema([]string{"ad_id"}, true))
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.id)
		appendF := func(i int, v *float64) {
			if v == nil {
				b.Field(i).AppendNull()
			} else {
				b.Field(i).(*array.Float64Builder).Append(*v)
			}
		}
		appendS := func(i int, v *string) {
			if v == nil {
				b.Field(i).AppendNull()
			} else {
				b.Field(i).(*array.StringBuilder).Append(*v)
			}
		}
		appendF(1, r.price)
		appendF(2, r.age)
		appendS(3, r.site)
		appendS(4, r.device)
		if r.served == nil {
			b.Field(5).AppendNull()
		} else {
			b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(r.served.UnixMicro()))
		}
		b.Field(6).(*array.Float64Builder).Append(r.clicked)
	}
	return b.NewRecordBatch()
}

func TestHashIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "a", "example.com", "ünïcode", strings.Repeat("x", 1000)} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := Hash(s), h.Sum64(); got != want {
			t.Errorf("Hash(%q) = %d, want FNV-1a %d", s, got, want)
		}
		h.Reset()
		h.Write([]byte(s + "\x1f" + "tail"))
		if got, want := hashCross(s, "tail"), h.Sum64(); got != want {
			t.Errorf("hashCross(%q, tail) = %d, want %d", s, got, want)
		}
	}
}

func TestSpecValidation(t *testing.T) {
	tests := []struct {
		name, yaml, wantErr string
	}{
		{"ok", testSpec, ""},
		{"unknown key", "features:\n  - {name: a, kind: numeric, bukets: 3}\n", "bukets"},
		{"unknown kind", "features:\n  - {name: a, kind: text}\n", `unknown kind "text"`},
		{"no features", "label: x\n", "no features"},
		{"both hash and vocab", "features:\n  - {name: a, kind: categorical, hash_buckets: 3, vocabulary: {max_size: 3}}\n", "exactly one"},
		{"cross of unknown", "features:\n  - {name: a, kind: cross, cross: [b, c], hash_buckets: 3}\n", `"b" is not a categorical`},
		{"bad part", "features:\n  - {name: a, kind: timestamp, part: minute}\n", "part must be"},
		{"duplicate", "features:\n  - {name: a, kind: numeric}\n  - {name: a, kind: numeric}\n", "declared twice"},
		{"bad clip", "features:\n  - {name: a, kind: numeric, clip: [3, 1]}\n", "clip min"},
		{"NaN fill", "features:\n  - {name: a, kind: numeric, fill: .nan}\n", `feature "a": fill NaN is not finite`},
		{"infinite fill", "features:\n  - {name: a, kind: numeric, fill: -.inf}\n", `feature "a": fill -Inf is not finite`},
		{"NaN clip", "features:\n  - {name: a, kind: numeric, clip: [.nan, 1]}\n", `feature "a": clip [NaN 1] has a NaN bound`},
		{"one-sided clip", "features:\n  - {name: a, kind: numeric, clip: [-.inf, 1]}\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.yaml))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestFitAndTransform(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	spec, err := ParseSpec([]byte(testSpec))
	if err != nil {
		t.Fatal(err)
	}
	mon := time.Date(2020, 9, 7, 13, 30, 0, 0, time.UTC) // a Monday
	rows := []row{
		{id: "a", price: ptr(3.0), age: ptr(30.0), site: ptr("x.com"), device: ptr("mobile"), served: &mon},
		{id: "b", price: nil, age: nil, site: nil, device: ptr("mobile"), served: ptr(mon.Add(-14 * time.Hour))},
		{id: "c", price: ptr(500.0), age: ptr(-2.0), site: ptr("y.com"), device: ptr("desktop"), served: nil},
		{id: "d", price: ptr(-5.0), age: ptr(40.0), site: ptr("x.com"), device: ptr("desktop"), served: ptr(time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC))},
		{id: "e", price: ptr(math.NaN()), age: ptr(1.0), site: ptr("z.com"), device: ptr("tablet"), served: &mon},
	}
	rec := buildRecord(t, mem, spec, rows)
	defer rec.Release()

	fit, err := NewFitter(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := fit.Observe(rec); err != nil {
		t.Fatal(err)
	}
	stats := fit.Stats()

	// Independent reference for price: fill 1 (missing and NaN), clip [0,100], log1p.
	raw := []float64{3, 1, 100, 0, 1}
	var sum, sq float64
	for i := range raw {
		raw[i] = math.Log1p(raw[i])
		sum += raw[i]
	}
	mean := sum / 5
	for _, v := range raw {
		sq += (v - mean) * (v - mean)
	}
	std := math.Sqrt(sq / 5)
	if got := stats.Numeric["price"]; math.Abs(got.Mean-mean) > 1e-12 || math.Abs(got.Std-std) > 1e-12 {
		t.Fatalf("price stats = %+v, want mean %g std %g", got, mean, std)
	}
	// mobile and desktop seen twice, tablet once (below min_count).
	if got := strings.Join(stats.Vocab["device"], ","); got != "desktop,mobile" {
		t.Fatalf("device vocab = %q, want desktop,mobile (ties by value)", got)
	}

	p, err := NewPipeline(spec, stats)
	if err != nil {
		t.Fatal(err)
	}
	if p.Dense() != 2 {
		t.Fatalf("Dense() = %d", p.Dense())
	}
	wantCards := []int{51, 3, 8, 25, 8}
	for i, c := range p.Cardinalities() {
		if c != wantCards[i] {
			t.Fatalf("Cardinalities() = %v, want %v", p.Cardinalities(), wantCards)
		}
	}
	var b Batch
	if err := p.Transform(rec, &b); err != nil {
		t.Fatal(err)
	}
	if b.N != 5 || b.D != 2 || b.K != 5 {
		t.Fatalf("batch shape N=%d D=%d K=%d", b.N, b.D, b.K)
	}
	site := func(s string) int32 { return int32(1 + Hash(s)%50) }
	cross := func(a, d string) int32 { return int32(1 + hashCross(a, d)%7) }
	wantDense := [][2]float64{
		{(raw[0] - mean) / std, 30},
		{(raw[1] - mean) / std, 0},
		{(raw[2] - mean) / std, -2},
		{(raw[3] - mean) / std, 40},
		{(raw[4] - mean) / std, 1},
	}
	wantCat := [][5]int32{
		{site("x.com"), 2, cross("x.com", "mobile"), 14, 1},
		{0, 2, 0, 24, 7}, // 23:30 on Sunday
		{site("y.com"), 1, cross("y.com", "desktop"), 0, 0},
		{site("x.com"), 1, cross("x.com", "desktop"), 24, 3}, // 1969-12-31 was a Wednesday
		{site("z.com"), 0, cross("z.com", "tablet"), 14, 1},
	}
	for i := range rows {
		for j := 0; j < 2; j++ {
			if got := float64(b.Dense[i*2+j]); math.Abs(got-wantDense[i][j]) > 1e-6 {
				t.Errorf("row %d dense %d = %g, want %g", i, j, got, wantDense[i][j])
			}
		}
		for j := 0; j < 5; j++ {
			if got := b.Cat[i*5+j]; got != wantCat[i][j] {
				t.Errorf("row %d %s = %d, want %d", i, p.CatNames()[j], got, wantCat[i][j])
			}
		}
	}
}

func TestTimePartMatchesTimePackage(t *testing.T) {
	start := time.Date(1969, 12, 25, 0, 0, 0, 0, time.UTC)
	for h := 0; h < 24*30; h += 5 {
		ts := start.Add(time.Duration(h)*time.Hour + 17*time.Minute)
		if got, want := timePart(ts.UnixMicro(), HourOfDay), int32(1+ts.Hour()); got != want {
			t.Fatalf("%v hour index = %d, want %d", ts, got, want)
		}
		wd := int32(ts.Weekday()) // Sunday = 0
		if wd == 0 {
			wd = 7
		}
		if got := timePart(ts.UnixMicro(), DayOfWeek); got != wd {
			t.Fatalf("%v weekday index = %d, want %d", ts, got, wd)
		}
	}
}

func TestTransformMissingColumn(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	spec, err := ParseSpec([]byte("features:\n  - {name: a, kind: numeric}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(spec, Stats{})
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(mem, arrow.NewSchema([]arrow.Field{{Name: "b", Type: arrow.PrimitiveTypes.Float64}}, nil))
	defer b.Release()
	b.Field(0).(*array.Float64Builder).Append(1)
	rec := b.NewRecordBatch()
	defer rec.Release()
	var batch Batch
	err = p.Transform(rec, &batch)
	if err == nil || !strings.Contains(err.Error(), `no column "a"`) {
		t.Fatalf("error = %v, want missing column a", err)
	}
}

func TestDemoSpecParses(t *testing.T) {
	s, err := LoadSpec("../testdata/features.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if s.Label != "clicked" || len(s.Features) != 11 {
		t.Fatalf("demo spec: label %q, %d features", s.Label, len(s.Features))
	}
}

// A numeric feature whose column a run reads as int64 (another model reads
// it as ids) computes what it computes from the same values as float64.
func TestNumericFromIntColumn(t *testing.T) {
	spec, err := ParseSpec([]byte("features:\n  - {name: position, kind: numeric, fill: 2.5, log1p: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(spec, Stats{})
	if err != nil {
		t.Fatal(err)
	}
	mem := memory.NewGoAllocator()
	ib, fb := array.NewInt64Builder(mem), array.NewFloat64Builder(mem)
	for _, v := range []int64{0, 3, -7, 1 << 40} {
		ib.Append(v)
		fb.Append(float64(v))
	}
	ib.AppendNull()
	fb.AppendNull()
	schema := func(t arrow.DataType) *arrow.Schema {
		return arrow.NewSchema([]arrow.Field{{Name: "position", Type: t, Nullable: true}}, nil)
	}
	ints := array.NewRecordBatch(schema(arrow.PrimitiveTypes.Int64), []arrow.Array{ib.NewArray()}, 5)
	floats := array.NewRecordBatch(schema(arrow.PrimitiveTypes.Float64), []arrow.Array{fb.NewArray()}, 5)
	var a, b Batch
	if err := p.Transform(ints, &a); err != nil {
		t.Fatal(err)
	}
	if err := p.Transform(floats, &b); err != nil {
		t.Fatal(err)
	}
	for i := range b.Dense {
		if a.Dense[i] != b.Dense[i] {
			t.Errorf("row %d: %g from int64, %g from float64", i, a.Dense[i], b.Dense[i])
		}
	}
	if want := float32(math.Log1p(2.5)); b.Dense[4] != want {
		t.Errorf("missing value: %g, want the fill's %g", b.Dense[4], want)
	}
}

// An image feature reads a utf8 column of URIs into Batch.Images (null:
// ""), computes no model input of its own, and takes its tensor's size,
// mean and std from the spec (default 32 px, [0, 1]); every image feature
// of a spec must read images the same way.
func TestImageFeature(t *testing.T) {
	spec, err := ParseSpec([]byte(`features:
  - {name: a, kind: numeric}
  - {name: banner, column: image_uri, kind: image}
  - {name: logo, kind: image, image: {size: 32, std: [1, 1, 1]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ins := spec.ImageInputs()
	if len(ins) != 2 || ins[0].Column != "image_uri" || ins[0].Size != DefaultImageSize || ins[0].Std != [3]float32{1, 1, 1} || ins[1].Column != "logo" {
		t.Fatalf("image inputs %+v", ins)
	}
	schema := spec.InputSchema(nil, false)
	if f, ok := schema.FieldsByName("image_uri"); !ok || f[0].Type.ID() != arrow.STRING {
		t.Fatalf("schema %v has no utf8 image_uri", schema)
	}
	p, err := NewPipeline(spec, Stats{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Dense() != 1 || len(p.Cardinalities()) != 0 || len(p.Images()) != 2 {
		t.Fatalf("pipeline: %d dense, %d index, %d image inputs", p.Dense(), len(p.Cardinalities()), len(p.Images()))
	}
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	b.Field(0).(*array.Float64Builder).AppendValues([]float64{1, 2}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"gs://b/x.png", ""}, []bool{true, false})
	b.Field(2).(*array.StringBuilder).AppendValues([]string{"logos/1.png", "logos/2.png"}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	pr, err := p.NewProfiler(nil)
	if err != nil {
		t.Fatal(err)
	}
	batch := Batch{Profile: pr}
	if err := p.Transform(rec, &batch); err != nil {
		t.Fatal(err)
	}
	if batch.I != 2 || strings.Join(batch.Images, ",") != "gs://b/x.png,logos/1.png,,logos/2.png" {
		t.Fatalf("images %d %q", batch.I, batch.Images)
	}
	// Profiled: rows, those without a URI, distinct URIs; twice the
	// record, merged, counts twice the rows and the same URIs.
	other, err := p.NewProfiler(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Transform(rec, &Batch{Profile: other}); err != nil {
		t.Fatal(err)
	}
	if err := pr.Merge(other); err != nil {
		t.Fatal(err)
	}
	prof, err := pr.Profile()
	if err != nil {
		t.Fatal(err)
	}
	banner, logo := prof.Feature("banner"), prof.Feature("logo")
	if banner == nil || banner.Kind != Image || banner.Count != 4 || banner.Missing != 2 || banner.Distinct != 1 ||
		logo == nil || logo.Count != 4 || logo.Missing != 0 || logo.Distinct != 2 || banner.MissingRate() != 0.5 {
		t.Fatalf("image profiles %+v %+v", banner, logo)
	}
	if err := prof.SetReferenceBins(); err != nil || len(prof.Feature("banner").Bins) != 0 {
		t.Fatalf("reference bins of an image feature: %v, %v", prof.Feature("banner").Bins, err)
	}

	for _, bad := range []string{
		"features:\n  - {name: a, kind: image, image: {size: 0}}\n  - {name: b, kind: image, image: {size: 64}}\n",
		"features:\n  - {name: a, kind: image, image: {std: [1, 0, 1]}}\n",
		"features:\n  - {name: a, kind: image, hash_buckets: 3}\n",
		"features:\n  - {name: a, kind: numeric, image: {size: 32}}\n",
		"features:\n  - {name: a, kind: image, image: {size: 4096}}\n",
	} {
		if _, err := ParseSpec([]byte(bad)); err == nil {
			t.Errorf("spec accepted:\n%s", bad)
		}
	}
}

// A log1p feature's value is math.Log1p's, bit for bit, on the table's
// integers, around and past its end, on fractions, and on zeros and
// infinity; NaN stays NaN.
func TestSignedLog1pNonNegative(t *testing.T) {
	vals := []float64{0, math.Copysign(0, -1), 0.5, 1e-300, 1023.5, 1024, 1025, 1e18, 1 << 63, math.MaxFloat64, math.Inf(1), math.Nextafter(1, 2), math.Nextafter(3, 0)}
	for i := range 1100 {
		vals = append(vals, float64(i))
	}
	op := denseOp{lo: math.Inf(-1), hi: math.Inf(1), log1p: true, invStd: 1}
	for _, v := range vals {
		if got, want := op.apply(v), math.Log1p(v); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("log1p(%g) = %g (%#x), math.Log1p gives %g (%#x)", v, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
	if got := op.apply(math.NaN()); !math.IsNaN(got) {
		t.Errorf("log1p(NaN) = %g", got)
	}
}

// A clip bounds the value before log1p and standardize, on one side or
// both (an infinite bound is no bound), and no clip leaves every value as
// it is, -0 included.
func TestApplyClip(t *testing.T) {
	inf := math.Inf(1)
	negZero := math.Copysign(0, -1)
	vals := []float64{-5, -1, negZero, 0, 3, 10, 15, inf, -inf}
	for _, c := range [][2]float64{{0, 10}, {0, inf}, {-inf, 10}, {-1, -1}, {-inf, inf}} {
		op := denseOp{lo: c[0], hi: c[1], invStd: 1}
		for _, v := range vals {
			want := v
			if want < c[0] {
				want = c[0]
			}
			if want > c[1] {
				want = c[1]
			}
			if want == 0 && c[0] == 0 { // Go's max(-0, +0) is +0
				want = 0
			}
			if got := op.apply(v); math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("clip %v: apply(%g) = %g, want %g", c, v, got, want)
			}
		}
	}
}

// applyAll, Transform's loop over a column, gives the op as the spec
// states it (clip, sign(v)·math.Log1p(|v|), standardize), bit for bit, for
// every kind of op (clips, log1p or not, a mean and scale), on values in
// and out of log1pTable, ±0, infinities and NaN; it writes every d-th
// float only.
func TestApplyAllMatchesSpec(t *testing.T) {
	inf := math.Inf(1)
	vals := []float64{-1e18, -1025, -1024, -1023.5, -3, -1, -0.5, math.Copysign(0, -1), 0, 0.5, 1, 2, 7, 1023, 1024, 1025, 1e18, inf, -inf, math.NaN()}
	for i := range 1030 {
		vals = append(vals, float64(i), -float64(i))
	}
	ops := []denseOp{
		{lo: -inf, hi: inf, invStd: 1},
		{lo: -inf, hi: inf, log1p: true, mean: 1.5, invStd: 0.25},
		{lo: 0, hi: 1000, log1p: true, mean: -2, invStd: 3},
		{lo: -5, hi: inf, mean: 0.1, invStd: 10},
		{lo: -inf, hi: 10, log1p: true, invStd: 1},
	}
	// The op as the spec states it, log1p from math.Log1p.
	ref := func(op denseOp, v float64) float64 {
		if op.lo != -inf || op.hi != inf {
			v = min(max(v, op.lo), op.hi)
		}
		if op.log1p {
			if v >= 0 {
				v = math.Log1p(v)
			} else {
				v = -math.Log1p(-v)
			}
		}
		return (v - op.mean) * op.invStd
	}
	const d = 3
	for _, op := range ops {
		out := make([]float32, len(vals)*d)
		for i := range out {
			out[i] = -7
		}
		applyAll(&op, vals, out[1:], d)
		for i, v := range vals {
			want := float32(ref(op, v))
			if got := out[i*d+1]; math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
				t.Errorf("%+v: applyAll gives %g for %g, want %g", op, got, v, want)
			}
			if out[i*d] != -7 || out[i*d+2] != -7 {
				t.Fatalf("%+v: applyAll wrote outside every %d-th float", op, d)
			}
		}
	}
}

// fillValues fills nulls and NaNs, keeps every other value (±0, infinities
// included) and collects exactly those, in order, from a sliced array with
// nulls, from one without, and from an int64 array.
func TestFillValues(t *testing.T) {
	b := array.NewFloat64Builder(memory.DefaultAllocator)
	defer b.Release()
	raw := []float64{9, 9, 9, 1, math.NaN(), -2, 0, math.Copysign(0, -1), math.Inf(1), 5, 6, 7, 8, 10, 11, 12, 13, 14}
	for i, v := range raw {
		if i%5 == 2 {
			b.AppendNull()
			continue
		}
		b.Append(v)
	}
	full := b.NewFloat64Array()
	defer full.Release()
	sliced := array.NewSlice(full, 3, int64(len(raw))).(*array.Float64)
	defer sliced.Release()
	b.AppendValues([]float64{1, math.NaN(), 3}, nil)
	dense := b.NewFloat64Array()
	defer dense.Release()
	ib := array.NewInt64Builder(memory.DefaultAllocator)
	defer ib.Release()
	ib.AppendValues([]int64{7, 0, -3, 1 << 62, 5}, []bool{true, true, false, true, true})
	ints := ib.NewInt64Array()
	defer ints.Release()
	for _, col := range []arrow.Array{full, sliced, dense, ints} {
		n := col.Len()
		var wantFilled, wantSeen []float64
		for i := range n {
			var v float64
			switch c := col.(type) {
			case *array.Float64:
				v = c.Value(i)
			case *array.Int64:
				v = float64(c.Value(i))
			}
			if col.IsNull(i) || math.IsNaN(v) {
				wantFilled = append(wantFilled, -1)
				continue
			}
			wantFilled = append(wantFilled, v)
			wantSeen = append(wantSeen, v)
		}
		for _, collect := range []bool{true, false} {
			filled := make([]float64, n)
			var seen []float64
			switch c := col.(type) {
			case *array.Float64:
				seen = fillValues(filled, c.Float64Values(), c, -1, []float64{42}, collect)
			case *array.Int64:
				seen = fillValues(filled, c.Int64Values(), c, -1, []float64{42}, collect)
			}
			if !slices.EqualFunc(filled, wantFilled, sameFloat) {
				t.Errorf("%s, offset %d, nulls %d: filled %v, want %v", col.DataType(), col.Data().Offset(), col.NullN(), filled, wantFilled)
			}
			want := []float64{42}
			if collect {
				want = append(want, wantSeen...)
			}
			if !slices.EqualFunc(seen, want, sameFloat) {
				t.Errorf("%s, offset %d, collect %v: seen %v, want %v", col.DataType(), col.Data().Offset(), collect, seen, want)
			}
		}
	}
}

func sameFloat(a, b float64) bool { return math.Float64bits(a) == math.Float64bits(b) }

// A log1p feature maps a negative value v to -log1p(-v) (the spec's
// sign(v)·log1p(|v|)), bit for bit what math.Log1p gives, on the table's
// negative integers, around its end and on fractions.
func TestApplyLog1pNegative(t *testing.T) {
	op := denseOp{lo: math.Inf(-1), hi: math.Inf(1), log1p: true, invStd: 1}
	vals := []float64{-0.5, -1e-300, -1023.5, -1024, -1025, -1e18, -(1 << 63), -math.MaxFloat64, math.Inf(-1)}
	for i := 1; i < 1100; i++ {
		vals = append(vals, -float64(i))
	}
	for _, v := range vals {
		if got, want := op.apply(v), -math.Log1p(-v); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("apply(%g) = %g (%#x), -math.Log1p(%g) gives %g (%#x)", v, got, math.Float64bits(got), -v, want, math.Float64bits(want))
		}
	}
}
