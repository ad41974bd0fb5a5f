package features

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
)

// Pipeline is a spec with the statistics fitted at training: everything
// needed to turn input records into model tensors. It is read-only after
// NewPipeline and safe for concurrent use.
type Pipeline struct {
	dense  []denseOp
	cat    []catOp
	images []ImageInput
}

type denseOp struct {
	name, column string
	fill, lo, hi float64
	log1p        bool
	mean, invStd float64
}

type catOp struct {
	name, column string
	kind         Kind
	card         int
	buckets      divisor // hash % buckets, for hash_buckets
	vocab        map[string]int32
	part         string
	cross        [2]string // input columns of the crossed features
	// A categorical of ids (ids > 0): the id is the index; missingID
	// replaces a missing one, and an id outside [0, ids) unless reject.
	ids       int64
	missingID int32
	reject    bool
}

// ErrOutOfRange marks an id outside its feature's range that
// out_of_range: reject refuses, met by Transform: the readers refuse such
// rows first (Spec.RejectRanges) when they are given the ranges.
var ErrOutOfRange = errors.New("id out of range")

// NewPipeline checks that stats cover the spec and prepares the transform.
func NewPipeline(spec Spec, stats Stats) (*Pipeline, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	p := &Pipeline{images: spec.ImageInputs()}
	byName := map[string]Feature{}
	for _, f := range spec.Features {
		byName[f.Name] = f
		switch f.Kind {
		case Numeric:
			op := denseOp{name: f.Name, column: f.Column, lo: math.Inf(-1), hi: math.Inf(1), log1p: f.Log1p, invStd: 1}
			if f.Fill != nil {
				op.fill = *f.Fill
			}
			if f.Clip != nil {
				op.lo, op.hi = f.Clip[0], f.Clip[1]
			}
			if f.Standardize {
				st, ok := stats.Numeric[f.Name]
				if !ok {
					return nil, fmt.Errorf("%w: feature %q: no training statistics for standardize", ErrSpec, f.Name)
				}
				op.mean = st.Mean
				if st.Std > 0 {
					op.invStd = 1 / st.Std
				}
			}
			p.dense = append(p.dense, op)
		case Categorical:
			op := catOp{name: f.Name, column: f.Column, kind: f.Kind}
			if f.IDs > 0 {
				op.ids, op.missingID, op.card = int64(f.IDs), int32(f.MissingID), f.IDs
				op.reject = f.OutOfRange == OutOfRangeReject
			} else if f.Vocabulary != nil {
				values, ok := stats.Vocab[f.Name]
				if !ok {
					return nil, fmt.Errorf("%w: feature %q: no training vocabulary", ErrSpec, f.Name)
				}
				op.vocab = make(map[string]int32, len(values))
				for i, v := range values {
					op.vocab[v] = int32(i + 1)
				}
				op.card = len(values) + 1
			} else {
				op.buckets = newDivisor(uint64(f.HashBuckets))
				op.card = f.HashBuckets + 1
			}
			p.cat = append(p.cat, op)
		case Cross:
			op := catOp{name: f.Name, kind: f.Kind, buckets: newDivisor(uint64(f.HashBuckets)), card: f.HashBuckets + 1}
			op.cross = [2]string{byName[f.Cross[0]].Column, byName[f.Cross[1]].Column}
			p.cat = append(p.cat, op)
		case Timestamp:
			op := catOp{name: f.Name, column: f.Column, kind: f.Kind, part: f.Part, card: 25}
			if f.Part == DayOfWeek {
				op.card = 8
			}
			p.cat = append(p.cat, op)
		}
	}
	return p, nil
}

// Dense is the number of dense inputs (D).
func (p *Pipeline) Dense() int { return len(p.dense) }

// Cardinalities are the table sizes of the K index inputs, in order.
func (p *Pipeline) Cardinalities() []int {
	out := make([]int, len(p.cat))
	for i, c := range p.cat {
		out[i] = c.card
	}
	return out
}

// Images are the image inputs (Batch.Images' columns), in spec order.
func (p *Pipeline) Images() []ImageInput { return p.images }

// CatNames names the index inputs in order, for diagnostics.
func (p *Pipeline) CatNames() []string {
	out := make([]string, len(p.cat))
	for i, c := range p.cat {
		out[i] = c.name
	}
	return out
}

// column finds a column by name with the expected type.
func column[T arrow.Array](rec arrow.RecordBatch, name string) (T, error) {
	var zero T
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return zero, fmt.Errorf("%w: input has no column %q", ErrSpec, name)
	}
	col, ok := rec.Column(idx[0]).(T)
	if !ok {
		return zero, fmt.Errorf("%w: column %q is %s, not the type the spec needs", ErrSpec, name, rec.Column(idx[0]).DataType())
	}
	return col, nil
}

// Transform computes the model inputs of every row of rec into dst, reusing
// dst's buffers, and profiles rec into dst.Profile if set. rec must carry
// the spec's InputSchema columns (extra columns are ignored). Each feature
// is computed column by column.
func (p *Pipeline) Transform(rec arrow.RecordBatch, dst *Batch) error {
	n := int(rec.NumRows())
	d, k := len(p.dense), len(p.cat)
	dst.Reset(n, d, k)
	pr := dst.Profile
	var sampled []int32 // the rows in the profile's sample (Profiler.SampleBy)
	if pr != nil {
		if pr.p != p {
			return fmt.Errorf("%w: the batch's profiler is another pipeline's", ErrProfile)
		}
		pr.rows += int64(n)
		pr.scratch(n)
		var err error
		if sampled, err = pr.sample(rec, n); err != nil {
			return err
		}
	}
	dst.filled = slices.Grow(dst.filled[:0], n)[:n] // each numeric column's values in turn (fillValues)
	for j, op := range p.dense {
		var a *numAcc // profiled after the loop that reads the values
		var seen []float64
		if pr != nil {
			a = &pr.num[j]
			a.count += int64(n)
			seen = pr.values[:0]
		}
		if ints, ok := intColumn(rec, op.column); ok { // read as int64 for an ids feature of another model
			values := ints.Int64Values()
			seen = fillValues(dst.filled, values, ints, op.fill, seen, a != nil)
			applyAll(&op, dst.filled, dst.Dense[j:], d)
			if a != nil && a.sbins != nil {
				for _, i := range sampled {
					if ints.IsValid(int(i)) {
						a.sbins[binOf(a.edges, float64(values[i]))]++
					}
				}
			}
		} else {
			col, err := column[*array.Float64](rec, op.column)
			if err != nil {
				return fmt.Errorf("feature %q: %w", op.name, err)
			}
			values := col.Float64Values()
			seen = fillValues(dst.filled, values, col, op.fill, seen, a != nil)
			applyAll(&op, dst.filled, dst.Dense[j:], d)
			if a != nil && a.sbins != nil {
				for _, i := range sampled {
					if v := values[i]; col.IsValid(int(i)) && !math.IsNaN(v) {
						a.sbins[binOf(a.edges, v)]++
					}
				}
			}
		}
		if a != nil {
			a.missing += int64(n - len(seen))
			a.observe(seen)
		}
	}
	if err := p.readImages(rec, dst, pr); err != nil {
		return err
	}
	for j := range p.cat {
		if pr == nil {
			if _, err := p.cat[j].fill(rec, dst.Cat, j, k, n, nil, nil, &dst.hashes); err != nil {
				return fmt.Errorf("feature %q: %w", p.cat[j].name, err)
			}
			continue
		}
		a := &pr.cat[j]
		a.count += int64(n)
		idx, err := p.cat[j].fill(rec, dst.Cat, j, k, n, a, pr.idx[:0], &dst.hashes)
		if err != nil {
			return fmt.Errorf("feature %q: %w", p.cat[j].name, err)
		}
		a.observe(idx)
		if a.sbins != nil {
			if err := p.cat[j].sample(rec, dst.Cat, j, k, sampled, a); err != nil {
				return fmt.Errorf("feature %q: %w", p.cat[j].name, err)
			}
		}
	}
	return nil
}

// readImages copies the image URIs of rec into dst.Images ("" for a null),
// and profiles them into pr if set.
func (p *Pipeline) readImages(rec arrow.RecordBatch, dst *Batch, pr *Profiler) error {
	n, m := dst.N, len(p.images)
	dst.I = m
	dst.Images = slices.Grow(dst.Images[:0], n*m)[:n*m]
	for j, in := range p.images {
		col, err := column[*array.String](rec, in.Column)
		if err != nil {
			return fmt.Errorf("feature %q: %w", in.Name, err)
		}
		for i := range n {
			uri := ""
			if col.IsValid(i) {
				uri = col.Value(i)
			}
			dst.Images[i*m+j] = uri
		}
		if pr != nil {
			a := &pr.img[j]
			a.count += int64(n)
			for i := range n {
				if uri := dst.Images[i*m+j]; uri == "" {
					a.missing++
				} else {
					a.regs.insert(mix64(Hash(uri)))
				}
			}
		}
	}
	return nil
}

// sample counts the reference bins of the sampled rows' values that the
// model knows, from the index matrix out (index 0: missing or out of
// vocabulary; for ids, the column says which are missing or out of range).
func (op *catOp) sample(rec arrow.RecordBatch, out []int32, j, k int, sampled []int32, a *catAcc) error {
	if op.ids == 0 {
		for _, i := range sampled {
			if id := out[int(i)*k+j]; id != 0 {
				a.sbins[a.tab.find(id)]++
			}
		}
		return nil
	}
	col, err := column[*array.Int64](rec, op.column)
	if err != nil {
		return err
	}
	values := col.Int64Values()
	for _, i := range sampled {
		if v := values[i]; col.IsValid(int(i)) && v >= 0 && v < op.ids {
			a.sbins[a.tab.find(int32(v))]++
		}
	}
	return nil
}

// intColumn is column name if the record holds it as int64: a run that
// scores models whose specs read one column as a number (float64) and as
// integer ids (int64) reads it as int64, the stricter, and its numeric
// features take the integers as they are.
func intColumn(rec arrow.RecordBatch, name string) (*array.Int64, bool) {
	idx := rec.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, false
	}
	col, ok := rec.Column(idx[0]).(*array.Int64)
	return col, ok
}

// fillValues writes the values of col (values: its int64 or float64
// values) to filled as float64s, one per row, fill where a value is null
// or NaN, and appends the others to seen if collect is set. Its loop calls
// nothing (seen has room first; the validity bits are read only if col has
// nulls), so the compiler keeps its variables in registers; Transform then
// applies the feature's ops to filled in a loop of its own (applyAll).
func fillValues[T int64 | float64](filled []float64, values []T, col arrow.Array, fill float64, seen []float64, collect bool) []float64 {
	values = values[:len(filled)]
	nulls := col.NullN() > 0
	bits, off := col.NullBitmapBytes(), col.Data().Offset()
	m := len(seen)
	if collect {
		seen = slices.Grow(seen, len(values))[:m+len(values)]
	}
	for i, x := range values {
		v := float64(x)
		if v != v || (nulls && !bitutil.BitIsSet(bits, off+i)) {
			filled[i] = fill
			continue
		}
		filled[i] = v
		if collect {
			seen[m] = v
			m++
		}
	}
	return seen[:m]
}

// applyAll runs op's clip, log1p and standardize on every filled value,
// writing value i to out[i*d]: float32 into a batch (Transform), float64
// for fit's statistics (apply). The loop keeps the op's fields in
// registers and calls nothing but math.Log1p, for a log1p outside
// log1pTable.
func applyAll[T float32 | float64](op *denseOp, filled []float64, out []T, d int) {
	lo, hi, mean, inv, log1p := op.lo, op.hi, op.mean, op.invStd, op.log1p
	clip := lo != math.Inf(-1) || hi != math.Inf(1) // without, min and max give v itself, NaN and -0 too
	for i, v := range filled {
		if clip {
			v = min(max(v, lo), hi)
		}
		if log1p {
			if r, ok := signedLog1pTable(v); ok {
				v = r
			} else {
				v = signedLog1pCall(v)
			}
		}
		out[i*d] = T((v - mean) * inv)
	}
}

// apply is applyAll on one filled value, in float64.
func (op *denseOp) apply(v float64) float64 {
	var out [1]float64
	applyAll(op, []float64{v}, out[:], 1)
	return out[0]
}

// log1pTable holds math.Log1p of the integers below its length.
var log1pTable = func() (t [1024]float64) {
	for i := range t {
		t[i] = math.Log1p(float64(i))
	}
	return t
}()

// The spec's log1p is sign(v)·log1p(|v|): math.Log1p(v) for v >= 0 (±0
// stay ±0), -math.Log1p(-v) below, bit for bit (applyAll). The integers
// of magnitude below 1024, which count features mostly hold, come from
// log1pTable without a branch on their sign or on zero (signedLog1pTable;
// math.Log1p was a fifth of the transform's time, and those branches, on
// counts that are -1, 0 or more as often as not, mispredicted); others
// from math.Log1p (signedLog1pCall).

// signedLog1pTable is sign(v)·log1p(|v|) of an integer of magnitude below
// 1024, from log1pTable, and true; false for any other v. Small enough to
// be inlined where it is called.
func signedLog1pTable(v float64) (float64, bool) {
	i := int(v) // any value when v is not an int's: then float64(i) != v, or |i| is out of the table
	m := i >> 63
	if a := uint((i ^ m) - m); float64(i) == v && a < uint(len(log1pTable)) {
		return math.Copysign(log1pTable[a], v), true // -0 too: Copysign(+0, -0)
	}
	return 0, false
}

// signedLog1pCall is sign(v)·log1p(|v|) by math.Log1p.
func signedLog1pCall(v float64) float64 {
	if v >= 0 {
		return math.Log1p(v)
	}
	return -math.Log1p(-v)
}

// fill writes column j of the N×K index matrix out; hashes is scratch for
// a hashed column's hashes. When a profile is being made (a set), it
// counts the missing and out-of-vocabulary values and the distinct values
// (a hash of each present raw value) into a, and returns the indices of
// the values the model knows, appended to idx, for the profile's own loop
// (catAcc.observe).
func (op *catOp) fill(rec arrow.RecordBatch, out []int32, j, k, n int, a *catAcc, idx []int32, hashes *[]uint64) ([]int32, error) {
	switch {
	case op.ids > 0:
		return op.fillIDs(rec, out, j, k, n, a, idx)
	case op.kind == Categorical:
		col, err := column[*array.String](rec, op.column)
		if err != nil {
			return nil, err
		}
		if op.vocab == nil {
			*hashes = hashValues(*hashes, col)
			return op.fillHashed(col, *hashes, out, j, k, a, idx), nil
		}
		for i := 0; i < n; i++ {
			var id int32
			if col.IsValid(i) {
				v := col.Value(i)
				id = op.vocab[v] // 0 when out of vocabulary
				if a != nil {
					a.regs.insert(mix64(Hash(v)))
					if id == 0 {
						a.oov++
					} else {
						idx = append(idx, id)
					}
				}
			} else if a != nil {
				a.missing++
			}
			out[i*k+j] = id
		}
	case op.kind == Cross:
		x, err := column[*array.String](rec, op.cross[0])
		if err != nil {
			return nil, err
		}
		y, err := column[*array.String](rec, op.cross[1])
		if err != nil {
			return nil, err
		}
		for i := 0; i < n; i++ {
			var id int32
			if x.IsValid(i) && y.IsValid(i) {
				h := hashCross(x.Value(i), y.Value(i))
				id = int32(1 + op.buckets.mod(h))
				if a != nil {
					a.regs.insert(mix64(h))
					idx = append(idx, id)
				}
			} else if a != nil {
				a.missing++
			}
			out[i*k+j] = id
		}
	case op.kind == Timestamp:
		col, err := column[*array.Timestamp](rec, op.column)
		if err != nil {
			return nil, err
		}
		values := col.TimestampValues()
		for i := 0; i < n; i++ {
			var id int32
			if col.IsValid(i) {
				id = timePart(int64(values[i]), op.part)
				if a != nil {
					a.regs.insert(mix64(uint64(id)))
					idx = append(idx, id)
				}
			} else if a != nil {
				a.missing++
			}
			out[i*k+j] = id
		}
	}
	return idx, nil
}

// fillHashed is fill for a hashed categorical, given the hash of every
// value of col (hashValues).
func (op *catOp) fillHashed(col *array.String, hashes []uint64, out []int32, j, k int, a *catAcc, idx []int32) []int32 {
	for i, h := range hashes {
		var id int32
		if col.IsValid(i) {
			id = int32(1 + op.buckets.mod(h))
			if a != nil {
				a.regs.insert(mix64(h))
				idx = append(idx, id)
			}
		} else if a != nil {
			a.missing++
		}
		out[i*k+j] = id
	}
	return idx
}

// fillIDs writes the ids of a categorical of ids, as they are: a missing
// one, or one out of range unless the feature rejects it, becomes
// missingID. It profiles them as fill does.
func (op *catOp) fillIDs(rec arrow.RecordBatch, out []int32, j, k, n int, a *catAcc, idx []int32) ([]int32, error) {
	col, err := column[*array.Int64](rec, op.column)
	if err != nil {
		return nil, err
	}
	values := col.Int64Values()
	for i := 0; i < n; i++ {
		id := op.missingID
		if col.IsValid(i) {
			switch v := values[i]; {
			case v >= 0 && v < op.ids:
				id = int32(v)
				if a != nil {
					a.regs.insert(mix64(uint64(v)))
					idx = append(idx, id)
				}
			case op.reject:
				return nil, fmt.Errorf("%w: row %d of the record: id %d not in [0, %d) (out_of_range: %s)", ErrOutOfRange, i+1, v, op.ids, OutOfRangeReject)
			case a != nil:
				a.regs.insert(mix64(uint64(v)))
				a.oov++
			}
		} else if a != nil {
			a.missing++
		}
		out[i*k+j] = id
	}
	return idx, nil
}

// timePart maps a UTC timestamp in microseconds to 1 + hour (0..23) or
// 1 + ISO weekday index (Monday = 1 ... Sunday = 7).
func timePart(us int64, part string) int32 {
	const usPerHour, usPerDay = int64(3_600_000_000), int64(86_400_000_000)
	if part == HourOfDay {
		h := us % usPerDay
		if h < 0 {
			h += usPerDay
		}
		return int32(1 + h/usPerHour)
	}
	days := us / usPerDay
	if us%usPerDay < 0 {
		days--
	}
	dow := (days + 3) % 7 // 1970-01-01 was a Thursday (Monday = 0)
	if dow < 0 {
		dow += 7
	}
	return int32(1 + dow)
}
