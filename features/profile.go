package features

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"
	"unsafe"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
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
	// SketchEvery: a quantile's rank is then off by about 1/sqrt(n/8) on
	// top of the sketch's 1% (0.3% of the rows at a million), and the
	// sketch costs an eighth (the counts, bins and extremes see every
	// value).
	SketchAll   = 4096
	SketchEvery = 8
	// exactCardinality: categoricals of at most this many indices count
	// every index exactly; larger ones (hash buckets) count their
	// reference bins and which indices were used exactly, and their top
	// values from one row in TopSampleEvery (scaled up), which keeps the
	// per-row work in cache.
	exactCardinality = 4096
	TopSampleEvery   = 64
	// NumericBins is the number of quantile bins a reference profile gives
	// a numeric feature (deciles; fewer when values repeat).
	NumericBins = 10
	// TopValues is how many of its most frequent indices a categorical's
	// profile keeps, and how many bins of its own a reference profile
	// gives it (plus one for every other value).
	TopValues = 20
	// ScoreBins is the number of equal-width score bins over [0, 1].
	ScoreBins = 20
	// MaxCountedCardinality bounds the per-index counts of a categorical:
	// above it the feature has no top values and no bins (its drift is not
	// computed), only counts, missing, out-of-vocabulary and distinct.
	MaxCountedCardinality = 1 << 22
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
	// last bins).
	Edges []float64 `json:"edges,omitempty"`

	// Categoricals: Cardinality is the model's table size; OOV counts
	// present values the model does not know (out of vocabulary, or an id
	// out of range); Refs are the indices counted in Bins (len(Bins) ==
	// len(Refs)+1, the last bin every other present, known value).
	Cardinality int     `json:"cardinality,omitempty"`
	OOV         int64   `json:"oov,omitempty"`
	Refs        []int32 `json:"refs,omitempty"`
	Bins        []int64 `json:"bins,omitempty"`
	// Top are the most frequent indices (present, known values), most
	// frequent first, counted in one known value in TopSample (and scaled
	// up) for large cardinalities; Used is how many distinct indices were
	// seen.
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
	if f.Name != g.Name || f.Kind != g.Kind || !slices.Equal(f.Edges, g.Edges) || !slices.Equal(f.Refs, g.Refs) || len(f.Bins) != len(g.Bins) {
		return fmt.Errorf("%w: feature %q (%s): the other profile's feature %q (%s) has other bins", ErrProfile, f.Name, f.Kind, g.Name, g.Kind)
	}
	f.Min, f.Max = mergeExtremes(f.N, f.Min, f.Max, g.N, g.Min, g.Max)
	f.Count += g.Count
	f.Missing += g.Missing
	f.Rejected += g.Rejected
	f.N += g.N
	f.Sum += g.Sum
	f.OOV += g.OOV
	for i := range f.Bins {
		f.Bins[i] += g.Bins[i]
	}
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
			if f.Cardinality > MaxCountedCardinality {
				continue
			}
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
	score numAcc
	vocab [][]string // the words of each cat op's vocabulary, by index-1
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
	bins           []int64
}

type catAcc struct {
	count, missing, oov int64
	rejected            int64
	// counts per index: exact up to exactCardinality indices, else of one
	// known value in TopSampleEvery (sampled counts them); nil above
	// MaxCountedCardinality.
	counts  []int64
	sampled int64 // known values seen, for the sampling
	// Above exactCardinality: a bit per index (used), the reference bins
	// found through refTab, and the bins' counts (the last: every other
	// known value). All of it stays in the core's caches, which a count
	// per index (hundreds of KiB a feature) does not.
	used []uint64
	tab  *refTable
	bins []int64
	refs []int32
	hll  *hyperloglog.Sketch
}

// refTable finds the reference bin of an index: open addressing over 256
// slots for at most maxRefs indices.
type refTable struct {
	key [256]int32 // index + 1; 0: empty
	bin [256]int32
}

const maxRefs = 128

func newRefTable(refs []int32) *refTable {
	t := &refTable{}
	for k, r := range refs {
		i := refSlot(r)
		for t.key[i] != 0 {
			i = (i + 1) & 255
		}
		t.key[i], t.bin[i] = r+1, int32(k)
	}
	return t
}

func refSlot(idx int32) uint32 { return uint32(idx) * 2654435761 >> 24 }

// find is idx's reference bin, or -1.
func (t *refTable) find(idx int32) int32 {
	for i := refSlot(idx); ; i = (i + 1) & 255 {
		switch t.key[i] {
		case idx + 1:
			return t.bin[i]
		case 0:
			return -1
		}
	}
}

// knownOrOOV counts a present vocabulary value: index 0 is out of
// vocabulary.
func (a *catAcc) knownOrOOV(idx int32) {
	if idx == 0 {
		a.oov++
		return
	}
	a.known(idx)
}

// known counts a present value the model knows, of index idx.
func (a *catAcc) known(idx int32) {
	if a.used == nil {
		if a.counts != nil {
			a.counts[idx]++
		}
		return
	}
	a.used[idx>>6] |= 1 << (idx & 63)
	if b := a.tab.find(idx); b >= 0 {
		a.bins[b]++
	} else {
		a.bins[len(a.bins)-1]++
	}
	a.sampled++
	if a.sampled%TopSampleEvery == 0 {
		a.counts[idx]++
	}
}

// NewProfiler starts a profile of the records transformed by p, with the
// bins of ref (the training profile; nil: no bins, as for the first look
// at training data whose bins are not known yet).
func (p *Pipeline) NewProfiler(ref *Profile) (*Profiler, error) {
	pr := &Profiler{p: p, num: make([]numAcc, len(p.dense)), cat: make([]catAcc, len(p.cat)), vocab: make([][]string, len(p.cat))}
	for j, op := range p.dense {
		a := &pr.num[j]
		a.name, a.column, a.kind = op.name, op.column, Numeric
		if err := a.init(ref); err != nil {
			return nil, err
		}
	}
	for j, op := range p.cat {
		a := &pr.cat[j]
		if op.card <= MaxCountedCardinality {
			a.counts = make([]int64, op.card)
		}
		if ref != nil {
			if rf := ref.Feature(op.name); rf != nil && rf.Kind == op.kind && len(rf.Bins) > 0 {
				a.refs = rf.Refs
			}
		}
		if op.card > exactCardinality && a.counts != nil {
			if len(a.refs) > maxRefs {
				return nil, fmt.Errorf("%w: feature %q: %d reference bins, at most %d", ErrProfile, op.name, len(a.refs), maxRefs)
			}
			a.used = make([]uint64, (op.card+63)/64)
			a.tab = newRefTable(a.refs)
			a.bins = make([]int64, len(a.refs)+1)
		}
		a.hll = newHLL()
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
	if a.kind == ScoreKind { // fixed bins: every score profile compares
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

// add counts one present value.
func (a *numAcc) add(v float64) {
	if a.bins != nil {
		a.bins[sort.SearchFloat64s(a.edges, v)]++
	}
	if math.IsInf(v, 0) {
		return
	}
	if a.n == 0 || v < a.min {
		a.min = v
	}
	if a.n == 0 || v > a.max {
		a.max = v
	}
	a.n++
	a.sum += v
	if a.n <= SketchAll || a.n%SketchEvery == 0 {
		_ = a.sk.Add(v) // fails only for values beyond ±1.8e308/γ, already left out as ±Inf
	}
}

// bytesOf is s's bytes, not copied: for hashing only.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

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
	for _, s := range scores {
		if s != s {
			a.missing++
			continue
		}
		a.add(float64(s))
	}
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
}

// Merge adds the counts of other (a profiler of the same pipeline and
// reference, over other rows) into pr.
func (pr *Profiler) Merge(other *Profiler) error {
	if other.p != pr.p {
		return fmt.Errorf("%w: merge profilers of different pipelines", ErrProfile)
	}
	pr.rows += other.rows
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
		a.sampled += b.sampled
		for i := range a.counts {
			a.counts[i] += b.counts[i]
		}
		for i := range a.used {
			a.used[i] |= b.used[i]
		}
		for i := range a.bins {
			a.bins[i] += b.bins[i]
		}
		if err := a.hll.Merge(b.hll); err != nil {
			return fmt.Errorf("profile feature %q: merge distinct counts: %w", pr.p.cat[j].name, err)
		}
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
	for i := range a.bins {
		a.bins[i] += b.bins[i]
	}
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
		if a.counts != nil {
			scale := int64(1)
			if a.used != nil {
				scale = TopSampleEvery
			}
			var top []TopValue
			var known int64
			for i, c := range a.counts {
				if a.used == nil && c > 0 {
					known += c
					f.Used++
				}
				if c == 0 {
					continue
				}
				t := TopValue{Index: int32(i), Count: c * scale}
				if w := pr.vocab[j]; w != nil && i > 0 && i <= len(w) {
					t.Value = w[i-1]
				}
				top = append(top, t)
			}
			f.Top, f.TopSample = topOf(top), int(scale)
			switch {
			case a.used != nil:
				for _, w := range a.used {
					f.Used += int64(bits.OnesCount64(w))
				}
				if a.refs != nil {
					f.Refs, f.Bins = a.refs, slices.Clone(a.bins)
				}
			case a.refs != nil:
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
		}
		data, err := a.hll.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("profile feature %q: encode its distinct-count sketch: %w", op.name, err)
		}
		f.HLL, f.Distinct = data, a.hll.Estimate()
		out.Features = append(out.Features, f)
	}
	if pr.score.count > 0 {
		out.Features = append(out.Features, pr.score.profile())
	}
	return out, nil
}

func (a *numAcc) profile() FeatureProfile {
	f := FeatureProfile{
		Name: a.name, Kind: a.kind, Column: a.column,
		Count: a.count, Missing: a.missing, Rejected: a.rejected, N: a.n, Min: a.min, Max: a.max, Sum: a.sum,
		Edges: a.edges, Bins: slices.Clone(a.bins),
	}
	if !a.sk.IsEmpty() {
		a.sk.Encode(&f.Sketch, false)
	}
	return f
}
