package features

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/axiomhq/hyperloglog"
)

// ScoreKind is the kind of a profile's score entry: the model's scores,
// profiled like a numeric feature with fixed bins over [0, 1].
const ScoreKind Kind = "score"

// ScoreFeature names the score entry of a profile.
const ScoreFeature = "score"

// Profile parameters. They are part of the profile format: profiles made
// with other values still merge and compare (bins travel with the profile),
// but their quantiles and distinct counts are computed differently.
const (
	// SketchAccuracy is the relative accuracy of the numeric quantiles: a
	// quantile q is reported as a value within 1% of the true q-quantile.
	SketchAccuracy = 0.01
	// sketchMaxBins bounds a sketch's memory (16 KiB a sign); beyond it the
	// lowest values lose their accuracy (DDSketch collapsing-lowest).
	sketchMaxBins = 2048
	// SketchAll values of a feature go into its sketch, then one in
	// SketchEvery: a quantile's rank is then off by about 1/sqrt(n/32) on
	// top of the sketch's 1% (0.6% of the rows at a million, 1.8% at
	// 100,000), and the sketch costs a 32nd (the counts and extremes see
	// every value). Quantiles are for reading: drift is computed from the
	// bins.
	SketchAll   = 4096
	SketchEvery = 32
	// exactCardinality: categoricals of at most this many indices count
	// every index exactly; larger ones (hash buckets, ids) count which
	// indices were used exactly, their reference bins on every row or on a
	// sample (SampleAbove), and their top values from one known value in
	// TopSampleEvery (Misra-Gries counts, scaled up), which keeps the
	// per-row work in the core's caches.
	exactCardinality = 4096
	TopSampleEvery   = 64
	// MaxUsedCardinality bounds the bitset of the indices used (512 KiB a
	// feature): above it a feature's Used (and collision rate) is not
	// counted.
	MaxUsedCardinality = 1 << 22
	// SampleAbove and SampleEvery: a profiler told to sample (SampleBy)
	// counts the drift bins of large categoricals and numeric features on
	// the rows whose id hashes into one in SampleEvery (by the id, so the
	// sample does not depend on batches, workers or shards), and on every
	// row too while it has seen at most SampleAbove rows. A profile of more
	// than SampleAbove rows then uses the sample (Bins scaled from
	// SampleBins: BinsSampled), one of fewer every row, so a small
	// partition, whose sample's PSI would be noise, stays exact, and parts
	// merge to what one profile of all their rows gives.
	SampleAbove = 1 << 16
	SampleEvery = 16
	// NumericBins is the number of quantile bins a reference profile gives
	// a numeric feature (deciles; fewer when values repeat).
	NumericBins = 10
	// TopValues is how many of its most frequent indices a categorical's
	// profile keeps, and how many bins of its own a reference profile
	// gives it (plus one for every other value).
	TopValues = 20
	// ScoreBins is the number of equal-width score bins over [0, 1].
	ScoreBins = 20
)

// Profile describes the inputs and scores of a set of rows (a partition
// scored, the training data): per feature its counts, missing values and
// distribution, plus the scores. Profiles of disjoint rows merge exactly
// (Merge), except for the top values of categoricals, which are each
// part's own; bins are defined by a reference profile (the training
// profile stored in the model bundle), so drift against it is computed
// exactly (Compare).
type Profile struct {
	Rows     int64            `json:"rows"`
	Features []FeatureProfile `json:"features"`
}

// FeatureProfile is one feature's profile (or the scores', Kind ScoreKind).
// Numeric features are profiled on their raw values (before fill, clip and
// log1p), every other kind on the index the model sees.
type FeatureProfile struct {
	Name   string `json:"name"`
	Kind   Kind   `json:"kind"`
	Column string `json:"column,omitempty"`
	// Count is the rows observed; Missing of them had no value (null, NaN,
	// or for a cross either column missing). Rejected counts the bad rows
	// (not in Count) that the readers refused for this feature's column.
	Count    int64 `json:"count"`
	Missing  int64 `json:"missing"`
	Rejected int64 `json:"rejected,omitempty"`

	// Numeric and score: Min, Max and Sum of the finite values (N of them),
	// and their sketch (DDSketch, relative accuracy SketchAccuracy,
	// encoded with its mapping).
	N      int64   `json:"n,omitempty"`
	Min    float64 `json:"min,omitempty"`
	Max    float64 `json:"max,omitempty"`
	Sum    float64 `json:"sum,omitempty"`
	Sketch []byte  `json:"sketch,omitempty"`
	// Edges (numeric, score) are upper bin edges: Bins[i] counts the present
	// values v with Edges[i-1] < v <= Edges[i], and the last bin those above
	// the last edge (len(Bins) == len(Edges)+1; ±Inf count in the first and
	// last bins), on every row or, when BinsSampled, estimated from a
	// sample (SampleAbove).
	Edges []float64 `json:"edges,omitempty"`
	// SampleBins are the bins' counts on the sampled rows (SampleBy), and
	// BinsSampled says that Bins are scaled from them (to the present,
	// known values) rather than counted on every row.
	SampleBins  []int64 `json:"sample_bins,omitempty"`
	BinsSampled bool    `json:"bins_sampled,omitempty"`

	// Categoricals: Cardinality is the model's table size; OOV counts
	// present values the model does not know (out of vocabulary, or an id
	// out of range); Refs are the indices counted in Bins (len(Bins) ==
	// len(Refs)+1, the last bin every other present, known value).
	Cardinality int     `json:"cardinality,omitempty"`
	OOV         int64   `json:"oov,omitempty"`
	Refs        []int32 `json:"refs,omitempty"`
	Bins        []int64 `json:"bins,omitempty"`
	// Top are the most frequent indices (present, known values), most
	// frequent first: exact counts when TopSample is 1, else Misra-Gries
	// counts of one known value in TopSample, scaled up (large
	// cardinalities). Used is how many distinct indices were seen (0 above
	// MaxUsedCardinality indices).
	Top       []TopValue `json:"top,omitempty"`
	TopSample int        `json:"top_sample,omitempty"`
	Used      int64      `json:"used,omitempty"`
	// Distinct estimates the distinct raw values (HyperLogLog, precision
	// 12: about 1.6% standard error), HLL its registers (4 KiB).
	Distinct uint64 `json:"distinct,omitempty"`
	HLL      []byte `json:"hll,omitempty"`
}

// TopValue is one frequent index of a categorical: Value is its vocabulary
// word where the feature has a vocabulary.
type TopValue struct {
	Index int32  `json:"index"`
	Value string `json:"value,omitempty"`
	Count int64  `json:"count"`
}

// MissingRate is Missing / Count (NaN for no rows).
func (f *FeatureProfile) MissingRate() float64 { return ratio(f.Missing, f.Count) }

// RejectedRate is Rejected / (Count + Rejected) (NaN for no rows).
func (f *FeatureProfile) RejectedRate() float64 { return ratio(f.Rejected, f.Count+f.Rejected) }

// OOVRate is OOV / present values (NaN for none).
func (f *FeatureProfile) OOVRate() float64 { return ratio(f.OOV, f.Count-f.Missing) }

// Mean of the finite values (NaN for none).
func (f *FeatureProfile) Mean() float64 {
	if f.N == 0 {
		return math.NaN()
	}
	return f.Sum / float64(f.N)
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

// Quantiles are the values at qs of a numeric or score profile (within
// SketchAccuracy), NaN where it has no finite value.
func (f *FeatureProfile) Quantiles(qs ...float64) ([]float64, error) {
	out := make([]float64, len(qs))
	sk, err := f.sketch()
	if err != nil || sk == nil || sk.IsEmpty() {
		for i := range out {
			out[i] = math.NaN()
		}
		return out, err
	}
	for i, q := range qs {
		v, err := sk.GetValueAtQuantile(q)
		if err != nil {
			return nil, fmt.Errorf("feature %q: quantile %g: %w", f.Name, q, err)
		}
		// The sketch's value is within 1%; the exact extremes are known.
		out[i] = min(max(v, f.Min), f.Max)
	}
	return out, nil
}

// CollisionRate estimates, for a hashed categorical or cross, the share of
// its distinct values that share a bucket with another: 1 - used buckets /
// distinct values (0 when no more values than buckets were used; NaN for
// other kinds or no values).
func (f *FeatureProfile) CollisionRate() float64 {
	if f.Distinct == 0 || f.Used == 0 {
		return math.NaN()
	}
	return max(0, 1-float64(f.Used)/float64(f.Distinct))
}

func (f *FeatureProfile) sketch() (*ddsketch.DDSketch, error) {
	if len(f.Sketch) == 0 {
		return nil, nil
	}
	sk, err := ddsketch.DecodeDDSketch(f.Sketch, store.BufferedPaginatedStoreConstructor, nil)
	if err != nil {
		return nil, fmt.Errorf("feature %q: decode its sketch: %w", f.Name, err)
	}
	return sk, nil
}

// Feature returns the profile of the named feature, or nil.
func (p *Profile) Feature(name string) *FeatureProfile {
	for i := range p.Features {
		if p.Features[i].Name == name {
			return &p.Features[i]
		}
	}
	return nil
}

// ErrProfile marks profiles that cannot be merged or read.
var ErrProfile = errors.New("invalid profile")

// Merge adds q (a profile of other rows, with the same features and bins)
// into p.
func (p *Profile) Merge(q *Profile) error {
	if len(p.Features) != len(q.Features) {
		return fmt.Errorf("%w: merge %d features into %d", ErrProfile, len(q.Features), len(p.Features))
	}
	for i := range p.Features {
		if err := p.Features[i].merge(&q.Features[i]); err != nil {
			return err
		}
	}
	p.Rows += q.Rows
	return nil
}

func (f *FeatureProfile) merge(g *FeatureProfile) error {
	if f.Name != g.Name || f.Kind != g.Kind || !slices.Equal(f.Edges, g.Edges) || !slices.Equal(f.Refs, g.Refs) ||
		len(f.Bins) > 0 && len(g.Bins) > 0 && len(f.Bins) != len(g.Bins) {
		return fmt.Errorf("%w: feature %q (%s): the other profile's feature %q (%s) has other bins", ErrProfile, f.Name, f.Kind, g.Name, g.Kind)
	}
	f.Min, f.Max = mergeExtremes(f.N, f.Min, f.Max, g.N, g.Min, g.Max)
	f.Count += g.Count
	f.Missing += g.Missing
	f.Rejected += g.Rejected
	f.N += g.N
	f.Sum += g.Sum
	f.OOV += g.OOV
	var all []int64 // the bins on every row, where both parts counted them
	if !f.BinsSampled && !g.BinsSampled {
		all = addBins(f.Bins, g.Bins)
	}
	present := f.Count - f.Missing
	if f.Kind != Numeric && f.Kind != ScoreKind {
		present -= f.OOV
	}
	f.setBins(all, addBins(f.SampleBins, g.SampleBins), present)
	if len(g.Sketch) > 0 {
		sk, err := f.sketch()
		if err != nil {
			return err
		}
		if sk == nil {
			f.Sketch = slices.Clone(g.Sketch)
		} else {
			if err := sk.DecodeAndMergeWith(g.Sketch); err != nil {
				return fmt.Errorf("feature %q: merge sketches: %w", f.Name, err)
			}
			f.Sketch = f.Sketch[:0]
			sk.Encode(&f.Sketch, false)
		}
	}
	if len(g.HLL) > 0 {
		if err := f.mergeHLL(g); err != nil {
			return err
		}
	}
	// Top values: each part's own, merged by index; exact only where every
	// part kept the index (documented as approximate).
	top := slices.Clone(f.Top)
	for _, t := range g.Top {
		if i := slices.IndexFunc(top, func(u TopValue) bool { return u.Index == t.Index }); i >= 0 {
			top[i].Count += t.Count
		} else {
			top = append(top, t)
		}
	}
	f.Top = topOf(top)
	f.Used = max(f.Used, g.Used) // a lower bound: the parts' index sets overlap
	return nil
}

// hllPrecision is the precision of the distinct counts: 2^12 registers.
const hllPrecision = 12

func newHLL() *hyperloglog.Sketch {
	sk, err := hyperloglog.NewSketch(hllPrecision, false)
	if err != nil {
		panic(err) // a constant precision in 4..18
	}
	return sk
}

// hllRegisters are a dense HyperLogLog's registers at precision
// hllPrecision, updated as the library's sketch updates its own (register:
// the hash's top bits; value: the position of the first set bit after
// them), in a loop the compiler inlines: the library's InsertHash, a call
// per value, cost 4-5 ns a value, a tenth of the profiled transform of a
// row of 26 categoricals (BenchmarkTransform). sketch hands them to the library, which
// estimates, merges and encodes; TestHLLRegistersAsTheLibrary checks that
// both agree register for register.
type hllRegisters [1 << hllPrecision]uint8

func (r *hllRegisters) insert(x uint64) {
	i := x >> (64 - hllPrecision)
	rho := uint8(bits.LeadingZeros64(x<<hllPrecision|1<<(hllPrecision-1))) + 1
	r[i] = max(r[i], rho)
}

func (r *hllRegisters) merge(o *hllRegisters) {
	for i, v := range o {
		r[i] = max(r[i], v)
	}
}

// sketch is the library's sketch with the same registers: each set
// register is given the one hash that sets it to its value.
func (r *hllRegisters) sketch() *hyperloglog.Sketch {
	sk := newHLL()
	for i, rho := range r {
		if rho == 0 {
			continue
		}
		x := uint64(i) << (64 - hllPrecision)
		if shift := 64 - hllPrecision - int(rho); shift >= 0 {
			x |= 1 << shift
		}
		sk.InsertHash(x)
	}
	return sk
}

func (f *FeatureProfile) mergeHLL(g *FeatureProfile) error {
	b := newHLL()
	if err := b.UnmarshalBinary(g.HLL); err != nil {
		return fmt.Errorf("feature %q: decode its distinct-count sketch: %w", f.Name, err)
	}
	a := newHLL()
	if len(f.HLL) > 0 {
		if err := a.UnmarshalBinary(f.HLL); err != nil {
			return fmt.Errorf("feature %q: decode its distinct-count sketch: %w", f.Name, err)
		}
	}
	if err := a.Merge(b); err != nil {
		return fmt.Errorf("feature %q: merge distinct counts: %w", f.Name, err)
	}
	data, err := a.MarshalBinary()
	if err != nil {
		return fmt.Errorf("feature %q: encode its distinct-count sketch: %w", f.Name, err)
	}
	f.HLL, f.Distinct = data, a.Estimate()
	return nil
}

// topOf keeps the TopValues most frequent of values (reordered).
func topOf(values []TopValue) []TopValue {
	slices.SortFunc(values, func(a, b TopValue) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Index, b.Index))
	})
	return slices.Clip(values[:min(len(values), TopValues)])
}

// mergeExtremes is the min and max of two sets of n and m values.
func mergeExtremes(n int64, lo, hi float64, m int64, lo2, hi2 float64) (float64, float64) {
	switch {
	case m == 0:
		return lo, hi
	case n == 0:
		return lo2, hi2
	}
	return min(lo, lo2), max(hi, hi2)
}

// SetReferenceBins gives every feature of p the bins a reference profile
// defines: numeric features the deciles of their values (from the sketch,
// repeated edges dropped), categoricals their TopValues most frequent
// indices, the score ScoreBins equal-width bins. It clears the counts of
// any bins p had: a profiler given p as its reference counts them
// (Pipeline.NewProfiler).
func (p *Profile) SetReferenceBins() error {
	for i := range p.Features {
		f := &p.Features[i]
		f.Edges, f.Refs, f.Bins = nil, nil, nil
		switch f.Kind {
		case Numeric:
			qs := make([]float64, NumericBins-1)
			for k := range qs {
				qs[k] = float64(k+1) / NumericBins
			}
			edges, err := f.Quantiles(qs...)
			if err != nil {
				return err
			}
			edges = slices.DeleteFunc(edges, math.IsNaN)
			f.Edges = slices.Compact(edges)
		case ScoreKind:
			f.Edges = scoreEdges()
		default:
			for _, t := range f.Top {
				f.Refs = append(f.Refs, t.Index)
			}
			slices.Sort(f.Refs)
		}
		f.Bins = make([]int64, max(len(f.Edges), len(f.Refs))+1)
		if f.Kind != Numeric && f.Kind != ScoreKind && len(f.Refs) == 0 {
			f.Bins = nil
		}
	}
	return nil
}

func scoreEdges() []float64 {
	e := make([]float64, ScoreBins-1)
	for i := range e {
		e[i] = float64(i+1) / ScoreBins
	}
	return e
}

// Profiler accumulates the profile of the records a Pipeline transforms
// into a Batch whose Profile it is: Transform profiles each value in the
// loop that computes the feature from it, where the value (and a
// categorical's hash and index) are at hand. It is not
// safe for concurrent use: a scoring run keeps one per worker and merges
// them (Profiler.Merge).
type Profiler struct {
	p     *Pipeline
	rows  int64
	num   []numAcc
	cat   []catAcc
	img   []imgAcc
	score numAcc
	vocab [][]string // the words of each cat op's vocabulary, by index-1
	// One column's values, collected by Transform's loop that computes the
	// feature and profiled after it in a loop of their own (observe), where
	// the profile's work is inlined and its state stays in registers.
	values []float64
	idx    []int32
	// Sampling (SampleBy): the id columns, whether every row is still
	// counted (full), and the rows of the batch in the sample.
	sampleBy []string
	full     bool
	sampled  []int32
	rowHash  []uint64
}

// SampleBy makes the profiler count the drift bins of large categoricals
// and numeric features on a sample of the rows, by a hash of their id
// columns (SampleAbove). Call it before the first Transform; the columns
// must be in every record transformed.
func (pr *Profiler) SampleBy(columns []string) {
	if len(columns) == 0 {
		return
	}
	pr.sampleBy = slices.Clone(columns)
	for j := range pr.num {
		if a := &pr.num[j]; a.bins != nil {
			a.sbins = make([]int64, len(a.bins))
		}
	}
	for j := range pr.cat {
		if a := &pr.cat[j]; a.tab != nil {
			a.sbins = make([]int64, len(a.bins))
		}
	}
}

// sample finds the rows of rec in the sample, and stops counting every row
// once the profiler has seen more than SampleAbove (pr.rows counts rec
// already). Nil without sampling.
func (pr *Profiler) sample(rec arrow.RecordBatch, n int) ([]int32, error) {
	if pr.sampleBy == nil {
		return nil, nil
	}
	if pr.full && pr.rows > SampleAbove {
		pr.full = false
		for j := range pr.num {
			pr.num[j].bins = nil
		}
		for j := range pr.cat {
			if pr.cat[j].tab != nil {
				pr.cat[j].bins = nil
			}
		}
	}
	hashes := pr.hashes(n)
	for _, name := range pr.sampleBy {
		idx := rec.Schema().FieldIndices(name)
		if len(idx) == 0 {
			return nil, fmt.Errorf("%w: the sample's id column %q is not in the record", ErrProfile, name)
		}
		switch col := rec.Column(idx[0]).(type) {
		case *array.String:
			for i := range n {
				if col.IsValid(i) {
					hashes[i] = hashes[i]*0x100000001b3 ^ Hash(col.Value(i))
				}
			}
		case *array.Int64:
			for i, v := range col.Int64Values()[:n] {
				if col.IsValid(i) {
					hashes[i] = hashes[i]*0x100000001b3 ^ uint64(v)
				}
			}
		default: // any other type, by its text
			for i := range n {
				if col.IsValid(i) {
					hashes[i] = hashes[i]*0x100000001b3 ^ Hash(col.ValueStr(i))
				}
			}
		}
	}
	rows := pr.sampled[:0]
	for i, h := range hashes {
		if inSample(h) {
			rows = append(rows, int32(i))
		}
	}
	pr.sampled = rows
	return rows, nil
}

// inSample says whether a row whose id columns hash to h is in the sample:
// one in SampleEvery.
func inSample(h uint64) bool { return mix64(h)%SampleEvery == 0 }

// hashes is a buffer of n row hashes, each the FNV offset basis.
func (pr *Profiler) hashes(n int) []uint64 {
	if cap(pr.rowHash) < n {
		pr.rowHash = make([]uint64, n)
	}
	h := pr.rowHash[:n]
	for i := range h {
		h[i] = 0xcbf29ce484222325
	}
	return h
}

// scratch readies the profiler's buffers for a column of n rows.
func (pr *Profiler) scratch(n int) {
	if cap(pr.idx) < n {
		pr.values, pr.idx = make([]float64, n), make([]int32, n)
	}
}

type numAcc struct {
	name, column   string
	kind           Kind
	count, missing int64
	rejected       int64
	n              int64 // finite values; the sketch has the first SketchAll and one in SketchEvery after
	min, max, sum  float64
	sk             *ddsketch.DDSketch
	edges          []float64
	bins           []int64 // every row's, while the profiler counts every row
	sbins          []int64 // the sampled rows', when sampling
}

// imgAcc profiles an image feature: its rows, those without a URI, and
// the distinct URIs (images are not binned: no drift of their own, but
// their missing rate is watched like any feature's).
type imgAcc struct {
	count, missing, rejected int64
	regs                     hllRegisters
}

type catAcc struct {
	count, missing, oov int64
	rejected            int64
	// counts per index, for at most exactCardinality indices.
	counts []int64
	// Above exactCardinality: a bit per index (used; none above
	// MaxUsedCardinality), the reference bins' counts (bins and sbins, the
	// last for every other index), found through tab, and the top values
	// from one known value in TopSampleEvery (untilTop counts down to the
	// next). All of it stays in the core's caches, which a count per index
	// (hundreds of KiB a feature) does not.
	used     []uint64
	tab      *refTable
	bins     []int64 // every row's, while the profiler counts every row
	sbins    []int64 // the sampled rows', when sampling
	top      heavyHitters
	untilTop int
	refs     []int32
	// The distinct count's registers, updated here (hllRegisters.insert)
	// and handed to a HyperLogLog sketch when the profile is made.
	regs hllRegisters
}

// heavyHitters finds the most frequent indices of a stream in bounded
// memory (Misra and Gries, with the merge of Agarwal et al., "Mergeable
// summaries", 2012): it keeps at most heavyCounters counts, and each is
// the index's true count less at most (values added) / (heavyCounters+1).
// The counts live in an open-addressing table of twice as many slots (6
// KiB).
type heavyHitters struct {
	key   [2 * heavyCounters]int32 // index + 1; 0: empty
	count [2 * heavyCounters]int64
	n     int
}

// heavyCounters is how many indices heavyHitters keeps: enough that the
// TopValues most frequent are found where each holds a share of at least
// 1/heavyCounters of the values.
const heavyCounters = 256

func heavySlot(idx int32) int { return int(uint32(idx) * 2654435761 >> 23) } // 9 bits: 512 slots

func (h *heavyHitters) add(idx int32) { h.addCount(idx, 1) }

// addCount adds c to idx's count; when idx is not kept and the table is
// full, c of idx and c of every kept index cancel out (c is 1, or at most
// the smallest kept count).
func (h *heavyHitters) addCount(idx int32, c int64) {
	const mask = 2*heavyCounters - 1
	for i := heavySlot(idx); ; i = (i + 1) & mask {
		switch h.key[i] {
		case idx + 1:
			h.count[i] += c
			return
		case 0:
			if h.n < heavyCounters {
				h.key[i], h.count[i] = idx+1, c
				h.n++
				return
			}
			h.subtract(c)
			return
		}
	}
}

// subtract takes c from every count, drops those left at zero or less and
// rebuilds the table.
func (h *heavyHitters) subtract(c int64) {
	var keys [heavyCounters]int32
	var counts [heavyCounters]int64
	m := 0
	for i, k := range h.key {
		if k != 0 && h.count[i] > c {
			keys[m], counts[m] = k-1, h.count[i]-c
			m++
		}
	}
	*h = heavyHitters{}
	for i := range m {
		h.addCount(keys[i], counts[i])
	}
}

// each calls f with every kept index and its count.
func (h *heavyHitters) each(f func(idx int32, c int64)) {
	for i, k := range h.key {
		if k != 0 {
			f(k-1, h.count[i])
		}
	}
}

func (h *heavyHitters) merge(o *heavyHitters) {
	sum := make(map[int32]int64, h.n+o.n)
	h.each(func(idx int32, c int64) { sum[idx] += c })
	o.each(func(idx int32, c int64) { sum[idx] += c })
	// Keep the heavyCounters largest, less the next largest count.
	var cut int64
	if len(sum) > heavyCounters {
		cs := make([]int64, 0, len(sum))
		for _, c := range sum {
			cs = append(cs, c)
		}
		slices.SortFunc(cs, func(a, b int64) int { return cmp.Compare(b, a) })
		cut = cs[heavyCounters]
	}
	*h = heavyHitters{}
	for idx, c := range sum {
		if c > cut {
			h.addCount(idx, c-cut)
		}
	}
}

// refTable finds the reference bin of an index through a perfect hash of
// the reference indices: slot (idx·mul) >> shift holds at most one
// reference, so a lookup is a multiply, two loads and a compare, and no
// branch to mispredict (the references are the most frequent values: a
// lookup finds one about as often as not).
type refTable struct {
	mul, shift uint32
	key        []int32 // the reference in the slot, or -1
	bin        []uint8 // its bin
	other      int     // the bin of every other index: len(refs)
}

const maxRefs = 128

func newRefTable(refs []int32) *refTable {
	rng := rand.New(rand.NewPCG(1, 2)) // deterministic: the same refs, the same table
	for bits := uint32(8); ; bits++ {
		size := 1 << bits
		if size < 8*len(refs) {
			continue
		}
		t := &refTable{shift: 32 - bits, key: make([]int32, size), bin: make([]uint8, size), other: len(refs)}
		for range 64 {
			t.mul = rng.Uint32() | 1
			if t.place(refs) {
				return t
			}
		}
	}
}

// place puts every reference in its slot, and reports whether none shared
// one.
func (t *refTable) place(refs []int32) bool {
	for i := range t.key {
		t.key[i] = -1
	}
	for k, r := range refs {
		s := uint32(r) * t.mul >> t.shift
		if t.key[s] >= 0 {
			return false
		}
		t.key[s], t.bin[s] = r, uint8(k)
	}
	return true
}

// find is idx's bin: its reference's, or other.
func (t *refTable) find(idx int32) int {
	s := uint32(idx) * t.mul >> t.shift
	b := int(t.bin[s])
	if t.key[s] != idx {
		b = t.other
	}
	return b
}

// observe profiles the indices of a column's values that the model knows.
func (a *catAcc) observe(idx []int32) {
	if a.counts != nil {
		for _, i := range idx {
			a.counts[i]++
		}
		return
	}
	// The bins on every row: nil without a reference, or once the profiler
	// counts them on its sample only (SampleBy).
	switch used, tab, bins := a.used, a.tab, a.bins; {
	case used != nil && bins != nil: // one pass
		for _, i := range idx {
			used[i>>6] |= 1 << (i & 63)
			bins[tab.find(i)]++
		}
	case used != nil:
		for _, i := range idx {
			used[i>>6] |= 1 << (i & 63)
		}
	case bins != nil:
		for _, i := range idx {
			bins[tab.find(i)]++
		}
	}
	// One known value in TopSampleEvery is counted for the top values: the
	// next is untilTop values on.
	t := a.untilTop
	for ; t < len(idx); t += TopSampleEvery {
		a.top.add(idx[t])
	}
	a.untilTop = t - len(idx)
}

// NewProfiler starts a profile of the records transformed by p, with the
// bins of ref (the training profile; nil: no bins, as for the first look
// at training data whose bins are not known yet).
func (p *Pipeline) NewProfiler(ref *Profile) (*Profiler, error) {
	pr := &Profiler{
		p: p, num: make([]numAcc, len(p.dense)), cat: make([]catAcc, len(p.cat)), img: make([]imgAcc, len(p.images)),
		vocab: make([][]string, len(p.cat)), full: true,
	}
	for j, op := range p.dense {
		a := &pr.num[j]
		a.name, a.column, a.kind = op.name, op.column, Numeric
		if err := a.init(ref); err != nil {
			return nil, err
		}
	}
	for j, op := range p.cat {
		a := &pr.cat[j]
		if ref != nil {
			if rf := ref.Feature(op.name); rf != nil && rf.Kind == op.kind && len(rf.Bins) > 0 {
				a.refs = rf.Refs
			}
		}
		if op.card <= exactCardinality {
			a.counts = make([]int64, op.card)
		} else {
			if len(a.refs) > maxRefs {
				return nil, fmt.Errorf("%w: feature %q: %d reference bins, at most %d", ErrProfile, op.name, len(a.refs), maxRefs)
			}
			if op.card <= MaxUsedCardinality {
				a.used = make([]uint64, (op.card+63)/64)
			}
			if len(a.refs) > 0 {
				a.tab = newRefTable(a.refs)
				a.bins = make([]int64, len(a.refs)+1)
			}
		}
		if op.vocab != nil {
			words := make([]string, len(op.vocab))
			for w, i := range op.vocab {
				words[i-1] = w
			}
			pr.vocab[j] = words
		}
	}
	pr.score.name, pr.score.kind = ScoreFeature, ScoreKind
	if err := pr.score.init(ref); err != nil {
		return nil, err
	}
	return pr, nil
}

func (a *numAcc) init(ref *Profile) error {
	m, err := mapping.NewCubicallyInterpolatedMapping(SketchAccuracy)
	if err != nil {
		return fmt.Errorf("profile %q: %w", a.name, err)
	}
	a.sk = ddsketch.NewDDSketch(m, store.NewCollapsingLowestDenseStore(sketchMaxBins), store.NewCollapsingLowestDenseStore(sketchMaxBins))
	a.min, a.max = math.Inf(1), math.Inf(-1) // no finite value yet (Profile writes 0)
	if a.kind == ScoreKind {                 // fixed bins: every score profile compares
		a.edges = scoreEdges()
		a.bins = make([]int64, len(a.edges)+1)
		return nil
	}
	if ref != nil {
		if rf := ref.Feature(a.name); rf != nil && rf.Kind == a.kind && len(rf.Bins) > 0 {
			a.edges = rf.Edges
			a.bins = make([]int64, len(rf.Edges)+1)
		}
	}
	return nil
}

// observe profiles a column's present values (±Inf included: they count
// in the first and last bins, not in the extremes, sum or sketch).
func (a *numAcc) observe(values []float64) {
	// A score's bins are scoreEdges' (init), which uniformBin finds.
	if (a.bins == nil || a.kind == ScoreKind) && a.observeFinite(values) {
		if a.bins != nil {
			for _, v := range values {
				a.bins[uniformBin(a.edges, v)]++
			}
		}
		return
	}
	a.observeEach(values)
}

// observeEach is observe, value by value.
func (a *numAcc) observeEach(values []float64) {
	lo, hi, sum, n := a.min, a.max, a.sum, a.n // in registers, not a's memory
	bins, edges := a.bins, a.edges
	for _, v := range values {
		if bins != nil {
			bins[binOf(edges, v)]++
		}
		if math.IsInf(v, 0) {
			continue
		}
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
		sum += v
		n++
		if n <= SketchAll || n%SketchEvery == 0 {
			_ = a.sk.Add(v) // fails only for values beyond ±1.8e308/γ, already left out as ±Inf
		}
	}
	a.min, a.max, a.sum, a.n = lo, hi, sum, n
}

// observeFinite is observe, bins aside, for values that are all finite,
// which it finds out from their sum (an infinite value makes it infinite or
// NaN): it returns false, having changed nothing, if they are not (or the
// sum overflows). The same operations in the same order as observeEach's
// loop, without its per-value tests: the extremes and sum in one loop,
// then the sketch's values.
func (a *numAcc) observeFinite(values []float64) bool {
	lo, hi, sum := a.min, a.max, a.sum
	for _, v := range values {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
		sum += v
	}
	if math.IsInf(sum, 0) || math.IsNaN(sum) {
		return false
	}
	// Value i is the (a.n+i+1)-th finite value: the sketch takes it while
	// that is at most SketchAll, then when it is a multiple of SketchEvery.
	i := 0
	for ; i < len(values) && a.n+int64(i)+1 <= SketchAll; i++ {
		_ = a.sk.Add(values[i])
	}
	if i < len(values) {
		next := a.n + int64(i) + 1 // the count of values[i]
		i += int((SketchEvery - next%SketchEvery) % SketchEvery)
		for ; i < len(values); i += SketchEvery {
			_ = a.sk.Add(values[i])
		}
	}
	a.min, a.max, a.sum, a.n = lo, hi, sum, a.n+int64(len(values))
	return true
}

// uniformBin is binOf for finite values and the edges of equal-width
// bins over [0, 1] (scoreEdges): a guess from v, then moved to where
// binOf's count is, exactly, whatever the rounding of the guess or of the
// edges; about twice faster than binOf's pass over 19 score edges, which
// was most of the score profile's cost.
func uniformBin(edges []float64, v float64) int {
	n := len(edges)
	x := min(max(v*float64(n+1), 0), float64(n))
	g := int(x)
	for g > 0 && !(edges[g-1] < v) {
		g--
	}
	for g < n && edges[g] < v {
		g++
	}
	return g
}

// binOf is v's bin among the upper edges: how many edges are below v. The
// edges are few (deciles, score bins), and a count without branches costs
// less than a binary search's mispredicted ones.
func binOf(edges []float64, v float64) int {
	n := 0
	for _, e := range edges {
		var below int
		if e < v {
			below = 1
		}
		n += below
	}
	return n
}

// mix64 spreads a 64-bit hash's entropy over every bit (MurmurHash3's
// finalizer): HyperLogLog reads its top bits, which FNV-1a leaves weak for
// short strings.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// ObserveScores profiles the model's scores of the rows transformed.
func (pr *Profiler) ObserveScores(scores []float32) {
	a := &pr.score
	a.count += int64(len(scores))
	pr.scratch(len(scores))
	values := pr.values[:0]
	for _, s := range scores {
		if s != s {
			a.missing++
			continue
		}
		values = append(values, float64(s))
	}
	a.observe(values)
}

// Reject counts n bad rows that the readers refused for column (not
// observed otherwise): they are charged to every feature reading the
// column.
func (pr *Profiler) Reject(column string, n int64) {
	for j := range pr.num {
		if pr.num[j].column == column {
			pr.num[j].rejected += n
		}
	}
	for j, op := range pr.p.cat {
		if op.column == column || op.kind == Cross && (op.cross[0] == column || op.cross[1] == column) {
			pr.cat[j].rejected += n
		}
	}
	for j, in := range pr.p.images {
		if in.Column == column {
			pr.img[j].rejected += n
		}
	}
}

// Merge adds the counts of other (a profiler of the same pipeline and
// reference, over other rows) into pr.
func (pr *Profiler) Merge(other *Profiler) error {
	if other.p != pr.p {
		return fmt.Errorf("%w: merge profilers of different pipelines", ErrProfile)
	}
	pr.rows += other.rows
	pr.full = pr.full && other.full
	for j := range pr.num {
		if err := pr.num[j].merge(&other.num[j]); err != nil {
			return err
		}
	}
	if err := pr.score.merge(&other.score); err != nil {
		return err
	}
	for j := range pr.cat {
		a, b := &pr.cat[j], &other.cat[j]
		a.count += b.count
		a.missing += b.missing
		a.oov += b.oov
		a.rejected += b.rejected
		for i := range a.counts {
			a.counts[i] += b.counts[i]
		}
		for i := range a.used {
			a.used[i] |= b.used[i]
		}
		a.top.merge(&b.top)
		a.bins = addBins(a.bins, b.bins)
		a.sbins = addBins(a.sbins, b.sbins)
		a.regs.merge(&b.regs)
	}
	for j := range pr.img {
		a, b := &pr.img[j], &other.img[j]
		a.count += b.count
		a.missing += b.missing
		a.rejected += b.rejected
		a.regs.merge(&b.regs)
	}
	return nil
}

func (a *numAcc) merge(b *numAcc) error {
	a.min, a.max = mergeExtremes(a.n, a.min, a.max, b.n, b.min, b.max)
	a.count += b.count
	a.missing += b.missing
	a.rejected += b.rejected
	a.n += b.n
	a.sum += b.sum
	a.bins = addBins(a.bins, b.bins)
	a.sbins = addBins(a.sbins, b.sbins)
	if err := a.sk.MergeWith(b.sk); err != nil {
		return fmt.Errorf("profile feature %q: merge sketches: %w", a.name, err)
	}
	return nil
}

// Profile is what the profiler has seen so far; scores are included when
// some were observed.
func (pr *Profiler) Profile() (*Profile, error) {
	out := &Profile{Rows: pr.rows}
	for j := range pr.num {
		out.Features = append(out.Features, pr.num[j].profile())
	}
	for j, op := range pr.p.cat {
		a := &pr.cat[j]
		f := FeatureProfile{
			Name: op.name, Kind: op.kind, Column: op.column,
			Count: a.count, Missing: a.missing, Rejected: a.rejected, OOV: a.oov, Cardinality: op.card,
		}
		if a.counts != nil { // exact
			var top []TopValue
			var known int64
			for i, c := range a.counts {
				if c == 0 {
					continue
				}
				known += c
				f.Used++
				top = append(top, TopValue{Index: int32(i), Count: c})
			}
			f.Top, f.TopSample = topOf(top), 1
			if a.refs != nil {
				f.Refs = a.refs
				f.Bins = make([]int64, len(a.refs)+1)
				var in int64
				for i, r := range a.refs {
					if int(r) < len(a.counts) {
						f.Bins[i] = a.counts[r]
						in += a.counts[r]
					}
				}
				f.Bins[len(a.refs)] = known - in
			}
		} else {
			top := make([]TopValue, 0, a.top.n)
			a.top.each(func(idx int32, c int64) {
				top = append(top, TopValue{Index: idx, Count: c * TopSampleEvery})
			})
			f.Top, f.TopSample = topOf(top), TopSampleEvery
			for _, w := range a.used {
				f.Used += int64(bits.OnesCount64(w))
			}
			if a.tab != nil {
				f.Refs = a.refs
				f.setBins(a.bins, a.sbins, a.count-a.missing-a.oov)
			}
		}
		if w := pr.vocab[j]; w != nil {
			for i := range f.Top {
				if k := int(f.Top[i].Index); k > 0 && k <= len(w) {
					f.Top[i].Value = w[k-1]
				}
			}
		}
		hll := a.regs.sketch()
		data, err := hll.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("profile feature %q: encode its distinct-count sketch: %w", op.name, err)
		}
		f.HLL, f.Distinct = data, hll.Estimate()
		out.Features = append(out.Features, f)
	}
	for j, in := range pr.p.images {
		a := &pr.img[j]
		f := FeatureProfile{Name: in.Name, Kind: Image, Column: in.Column, Count: a.count, Missing: a.missing, Rejected: a.rejected}
		hll := a.regs.sketch()
		data, err := hll.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("profile feature %q: encode its distinct-count sketch: %w", in.Name, err)
		}
		f.HLL, f.Distinct = data, hll.Estimate()
		out.Features = append(out.Features, f)
	}
	if pr.score.count > 0 {
		out.Features = append(out.Features, pr.score.profile())
	}
	return out, nil
}

// addBins is a + b (into a), or nil if either is nil (a part that did not
// count them).
func addBins(a, b []int64) []int64 {
	if a == nil || b == nil || len(a) != len(b) {
		return nil
	}
	for i := range a {
		a[i] += b[i]
	}
	return a
}

// setBins sets f's bins from the counts on every row (all, nil when not
// counted) and on the sampled rows (sample, nil without sampling), of the
// present values that fall in a bin: the sample's, scaled to present, where
// f's rows are more than SampleAbove or not all were counted.
func (f *FeatureProfile) setBins(all, sample []int64, present int64) {
	f.Bins, f.SampleBins, f.BinsSampled = nil, slices.Clone(sample), false
	switch {
	case all != nil && (sample == nil || f.Count <= SampleAbove):
		f.Bins = slices.Clone(all)
	case sample != nil:
		var n int64
		for _, c := range sample {
			n += c
		}
		if n == 0 {
			return // nothing sampled: no drift
		}
		f.Bins, f.BinsSampled = make([]int64, len(sample)), true
		for i, c := range sample {
			f.Bins[i] = int64(math.Round(float64(c) * float64(present) / float64(n)))
		}
	}
}

func (a *numAcc) profile() FeatureProfile {
	lo, hi := a.min, a.max
	if a.n == 0 {
		lo, hi = 0, 0
	}
	f := FeatureProfile{
		Name: a.name, Kind: a.kind, Column: a.column,
		Count: a.count, Missing: a.missing, Rejected: a.rejected, N: a.n, Min: lo, Max: hi, Sum: a.sum,
		Edges: a.edges,
	}
	f.setBins(a.bins, a.sbins, a.count-a.missing)
	if !a.sk.IsEmpty() {
		a.sk.Encode(&f.Sketch, false)
	}
	return f
}
