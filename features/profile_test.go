package features

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// profileSpec has a numeric feature, a hashed categorical with more
// indices than are counted exactly (the bitset path), a small vocabulary
// one and their cross.
func profileSpec(t *testing.T) (Spec, *Pipeline) {
	t.Helper()
	spec := Spec{Features: []Feature{
		{Name: "price", Kind: Numeric, Log1p: true},
		{Name: "site", Kind: Categorical, HashBuckets: 10000},
		{Name: "device", Kind: Categorical, Vocabulary: &VocabSpec{MaxSize: 2}},
		{Name: "site_x_device", Kind: Cross, Cross: []string{"site", "device"}, HashBuckets: 50},
	}}
	spec.SetDefaults()
	p, err := NewPipeline(spec, Stats{Vocab: map[string][]string{"device": {"mobile", "desktop"}}})
	if err != nil {
		t.Fatal(err)
	}
	return spec, p
}

// profileRows are n rows: price log-normal with 10% null and some NaN,
// 3000 sites (Zipf-like) with 5% null, devices with an unknown one.
type profileRow struct {
	id           string
	price        float64 // NaN: null
	site, device string  // "": null
}

func profileRows(n int, seed uint64, shift float64) []profileRow {
	rng := rand.New(rand.NewPCG(seed, 7))
	rows := make([]profileRow, n)
	for i := range rows {
		r := &rows[i]
		r.id = fmt.Sprintf("r%d-%d", seed, i)
		r.price = math.NaN()
		if rng.Float64() >= 0.1 {
			r.price = math.Exp(rng.NormFloat64()+shift) * 10
		}
		if rng.Float64() >= 0.05 {
			r.site = fmt.Sprintf("site%04d.example", int(math.Floor(3000*math.Pow(rng.Float64(), 3))))
		}
		r.device = []string{"mobile", "mobile", "desktop", "tablet"}[rng.IntN(4)]
	}
	return rows
}

func profileRecord(t *testing.T, spec Spec, rows []profileRow) arrow.RecordBatch {
	t.Helper()
	b := array.NewRecordBuilder(memory.DefaultAllocator, spec.InputSchema([]string{"id"}, false))
	defer b.Release()
	for _, r := range rows {
		for i, f := range b.Schema().Fields() {
			switch f.Name {
			case "id":
				b.Field(i).(*array.StringBuilder).Append(r.id)
			case "price":
				if math.IsNaN(r.price) {
					b.Field(i).AppendNull()
				} else {
					b.Field(i).(*array.Float64Builder).Append(r.price)
				}
			case "site", "device":
				v := r.site
				if f.Name == "device" {
					v = r.device
				}
				if v == "" {
					b.Field(i).AppendNull()
				} else {
					b.Field(i).(*array.StringBuilder).Append(v)
				}
			}
		}
	}
	return b.NewRecordBatch()
}

// reference is what a training profile is made of train: the first look
// (which defines the bins, look) and the profile counted in them (ref).
func reference(t *testing.T, spec Spec, p *Pipeline, train []profileRow) (look, ref *Profile) {
	t.Helper()
	look, err := profileOf(t, spec, p, nil, train).Profile()
	if err != nil {
		t.Fatal(err)
	}
	if err := look.SetReferenceBins(); err != nil {
		t.Fatal(err)
	}
	if ref, err = profileOf(t, spec, p, look, train).Profile(); err != nil {
		t.Fatal(err)
	}
	return look, ref
}

// profileOf profiles rows in records of 1000 rows with one profiler.
func profileOf(t *testing.T, spec Spec, p *Pipeline, ref *Profile, rows []profileRow) *Profiler {
	return profileBy(t, spec, p, ref, rows, nil)
}

// profileBy is profileOf with the profiler sampling by the columns ids
// (Profiler.SampleBy), as a scoring run's does.
func profileBy(t *testing.T, spec Spec, p *Pipeline, ref *Profile, rows []profileRow, ids []string) *Profiler {
	t.Helper()
	pr, err := p.NewProfiler(ref)
	if err != nil {
		t.Fatal(err)
	}
	pr.SampleBy(ids)
	b := Batch{Profile: pr}
	for i := 0; i < len(rows); i += 1000 {
		rec := profileRecord(t, spec, rows[i:min(i+1000, len(rows))])
		if err := p.Transform(rec, &b); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	return pr
}

// The profile of a reference data set, and of data drawn the same way,
// against exact values computed from the rows: counts, missing, min/max,
// quantiles within the sketch's accuracy, the distinct count within the
// HyperLogLog's error, out-of-vocabulary values; and profiles of two halves
// merged (as workers and shards are) equal to the profile of the whole.
func TestProfileAgainstTheRows(t *testing.T) {
	spec, p := profileSpec(t)
	train := profileRows(20000, 1, 0)
	look, ref := reference(t, spec, p, train)

	var prices []float64
	sites := map[string]bool{}
	var missingPrice, missingSite, oov int64
	for _, r := range train {
		if math.IsNaN(r.price) {
			missingPrice++
		} else {
			prices = append(prices, r.price)
		}
		if r.site == "" {
			missingSite++
		} else {
			sites[r.site] = true
		}
		if r.device == "tablet" {
			oov++
		}
	}
	slices.Sort(prices)
	price, site, device := ref.Feature("price"), ref.Feature("site"), ref.Feature("device")
	if price.Count != 20000 || price.Missing != missingPrice || price.N != int64(len(prices)) ||
		price.Min != prices[0] || price.Max != prices[len(prices)-1] {
		t.Errorf("price: count %d missing %d n %d min %g max %g; want 20000, %d, %d, %g, %g",
			price.Count, price.Missing, price.N, price.Min, price.Max, missingPrice, len(prices), prices[0], prices[len(prices)-1])
	}
	qs, err := price.Quantiles(0.1, 0.5, 0.9)
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range []float64{0.1, 0.5, 0.9} {
		// 1% relative accuracy, and the rank error of the sampled sketch.
		lo, hi := prices[int(math.Floor((q-0.01)*float64(len(prices))))], prices[int(math.Ceil((q+0.01)*float64(len(prices))))]
		if qs[i] < lo*0.99 || qs[i] > hi*1.01 {
			t.Errorf("price p%g = %g, want within [%g, %g]", q*100, qs[i], lo*0.99, hi*1.01)
		}
	}
	// Numeric bins: the deciles' counts, exact.
	for i, e := range price.Edges {
		want := int64(0)
		for _, v := range prices {
			if v <= e && (i == 0 || v > price.Edges[i-1]) {
				want++
			}
		}
		if price.Bins[i] != want {
			t.Errorf("price bin %d (<= %g): %d, want %d", i, e, price.Bins[i], want)
		}
	}
	if site.Missing != missingSite || math.Abs(float64(site.Distinct)-float64(len(sites))) > 0.05*float64(len(sites)) {
		t.Errorf("site: missing %d distinct %d, want %d and about %d", site.Missing, site.Distinct, missingSite, len(sites))
	}
	if device.OOV != oov || len(device.Top) != 2 || device.Top[0].Value != "mobile" {
		t.Errorf("device: oov %d top %+v, want %d and mobile first", device.OOV, device.Top, oov)
	}
	// site has more buckets than are counted exactly: its buckets used and
	// its reference bins are still exact, its top values sampled.
	perBucket := map[int32]int64{}
	for _, r := range train {
		if r.site != "" {
			perBucket[int32(1+Hash(r.site)%10000)]++
		}
	}
	if site.Used != int64(len(perBucket)) {
		t.Errorf("site: %d buckets used, want %d", site.Used, len(perBucket))
	}
	var inRefs int64
	for i, r := range site.Refs {
		inRefs += perBucket[r]
		if site.Bins[i] != perBucket[r] {
			t.Errorf("site bin of bucket %d: %d, want %d", r, site.Bins[i], perBucket[r])
		}
	}
	if other := site.Bins[len(site.Refs)]; other != site.Count-site.Missing-inRefs {
		t.Errorf("site's other bin: %d, want %d", other, site.Count-site.Missing-inRefs)
	}
	first := int32(1 + Hash("site0000.example")%10000) // about 7% of the rows
	if site.TopSample != TopSampleEvery || len(site.Top) == 0 || site.Top[0].Index != first ||
		math.Abs(float64(site.Top[0].Count-perBucket[first])) > 0.5*float64(perBucket[first]) {
		t.Errorf("site: top %+v (sample %d), want bucket %d first with about %d", site.Top, site.TopSample, first, perBucket[first])
	}

	// Two halves, merged as profilers and as decoded JSON, equal the whole.
	a, b := profileOf(t, spec, p, look, train[:7000]), profileOf(t, spec, p, look, train[7000:])
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	merged, err := a.Profile()
	if err != nil {
		t.Fatal(err)
	}
	pa, _ := profileOf(t, spec, p, look, train[:7000]).Profile()
	pb, _ := profileOf(t, spec, p, look, train[7000:]).Profile()
	var ja, jb Profile
	for _, x := range []struct {
		from *Profile
		to   *Profile
	}{{pa, &ja}, {pb, &jb}} {
		data, err := json.Marshal(x.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, x.to); err != nil {
			t.Fatal(err)
		}
	}
	if err := ja.Merge(&jb); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*Profile{merged, &ja} {
		for i := range ref.Features {
			w, g := &ref.Features[i], &m.Features[i]
			if g.Count != w.Count || g.Missing != w.Missing || g.OOV != w.OOV || !slices.Equal(g.Bins, w.Bins) ||
				g.Distinct != w.Distinct || g.Min != w.Min || g.Max != w.Max {
				t.Errorf("%s merged: count %d missing %d oov %d bins %v distinct %d; whole: %d %d %d %v %d",
					w.Name, g.Count, g.Missing, g.OOV, g.Bins, g.Distinct, w.Count, w.Missing, w.OOV, w.Bins, w.Distinct)
			}
			if psi, _ := Compare(g, w); psi != 0 {
				t.Errorf("%s merged: PSI %g against the whole, want 0", w.Name, psi)
			}
		}
	}

	// Data drawn the same way is close; prices ten times higher are not.
	same, _ := profileOf(t, spec, p, look, profileRows(20000, 2, 0)).Profile()
	moved, _ := profileOf(t, spec, p, look, profileRows(20000, 3, math.Log(10))).Profile()
	if psi, js := Compare(same.Feature("price"), price); !(psi < 0.01 && js < 0.05) {
		t.Errorf("price, same distribution: PSI %g JS %g", psi, js)
	}
	if psi, js := Compare(moved.Feature("price"), price); !(psi > 1 && js > 0.5) {
		t.Errorf("price ×10: PSI %g JS %g, want far", psi, js)
	}
	if psi, _ := Compare(moved.Feature("site"), site); !(psi < 0.01) {
		t.Errorf("site, unchanged when prices moved: PSI %g", psi)
	}
}

// The profiler keeps its distinct counts' registers itself and hands them
// to the HyperLogLog library at the end: the library's sketch of the same
// hashes must be the same, register for register, at every cardinality
// (sparse ones, where the library's linear counting answers, to many
// values per register).
func TestHLLRegistersAsTheLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, n := range []int{0, 1, 10, 1000, 100_000} {
		var regs hllRegisters
		lib := newHLL()
		for range n {
			h := rng.Uint64()
			if rng.IntN(100) == 0 { // the rarest register values: all low bits zero
				h &^= 1<<(64-hllPrecision) - 1
			}
			regs.insert(h)
			lib.InsertHash(h)
		}
		got, err := regs.sketch().MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want, err := lib.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%d hashes: the registers' sketch differs from the library's", n)
		}
		if g, w := regs.sketch().Estimate(), lib.Estimate(); g != w {
			t.Errorf("%d hashes: estimate %d, the library's %d", n, g, w)
		}
	}
}

// numAcc.observe's path for batches without bins or infinite values gives
// what observing each value does, bit for bit, whatever the batches' sizes
// (around SketchAll and SketchEvery) and with infinite values and an
// overflowing sum among them.
func TestNumAccObserveFinite(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for round := range 20 {
		var fast, each numAcc
		for _, a := range []*numAcc{&fast, &each} {
			a.name, a.kind = "x", Numeric
			if err := a.init(nil); err != nil {
				t.Fatal(err)
			}
		}
		for batch := range 40 {
			values := make([]float64, rng.IntN(700))
			for i := range values {
				values[i] = rng.NormFloat64() * 1e3
				switch rng.IntN(2000) {
				case 0:
					values[i] = math.Inf(1)
				case 1:
					values[i] = math.Inf(-1)
				case 2:
					values[i] = math.MaxFloat64
				}
			}
			fast.observe(values)
			each.observeEach(values)
			if math.Float64bits(fast.min) != math.Float64bits(each.min) || math.Float64bits(fast.max) != math.Float64bits(each.max) ||
				math.Float64bits(fast.sum) != math.Float64bits(each.sum) || fast.n != each.n {
				t.Fatalf("round %d batch %d: min %v max %v sum %v n %d; value by value %v %v %v %d",
					round, batch, fast.min, fast.max, fast.sum, fast.n, each.min, each.max, each.sum, each.n)
			}
		}
		var a, b []byte
		fast.sk.Encode(&a, false)
		each.sk.Encode(&b, false)
		if !slices.Equal(a, b) || fast.sk.GetCount() != each.sk.GetCount() {
			t.Fatalf("round %d: the sketches differ (%v values, value by value %v)", round, fast.sk.GetCount(), each.sk.GetCount())
		}
	}
}

// uniformBin gives binOf's bin for the score edges, at the edges, next to
// them and anywhere else, and the score profile counts the same bins value
// by value and in bulk.
func TestUniformBin(t *testing.T) {
	edges := scoreEdges()
	values := []float64{0, -0.5, 1, 1.5, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64}
	for _, e := range edges {
		values = append(values, e, math.Nextafter(e, 0), math.Nextafter(e, 2), float64(float32(e)))
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for range 100_000 {
		values = append(values, rng.Float64(), float64(rng.Float32()))
	}
	for _, v := range values {
		if got, want := uniformBin(edges, v), binOf(edges, v); got != want {
			t.Fatalf("uniformBin(%v) = %d, binOf %d", v, got, want)
		}
	}
	var fast, each numAcc
	for _, a := range []*numAcc{&fast, &each} {
		a.name, a.kind = ScoreFeature, ScoreKind
		if err := a.init(nil); err != nil {
			t.Fatal(err)
		}
	}
	fast.observe(values)
	each.observeEach(values)
	if !slices.Equal(fast.bins, each.bins) || fast.n != each.n {
		t.Errorf("bins %v, value by value %v", fast.bins, each.bins)
	}
}

// heavyHitters keeps Misra and Gries' guarantee, alone and merged: every
// index's count is its true count less at most n/(heavyCounters+1), never
// more, where n values were added.
func TestHeavyHittersBound(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var parts [2]heavyHitters
	truth, half := map[int32]int64{}, map[int32]int64{}
	const n = 200_000
	for i := range n {
		idx := int32(1 + rng.IntN(100_000)) // a long tail...
		if rng.IntN(4) == 0 {
			idx = int32(1 + rng.IntN(10)) // ...and ten values with 2.5% each
		}
		truth[idx]++
		if i%2 == 0 {
			half[idx]++
		}
		parts[i%2].add(idx)
	}
	check := func(name string, h *heavyHitters, n int64, want map[int32]int64) {
		t.Helper()
		kept := map[int32]int64{}
		h.each(func(idx int32, c int64) { kept[idx] = c })
		if len(kept) > heavyCounters || len(kept) != h.n {
			t.Errorf("%s: %d counters (n %d), at most %d", name, len(kept), h.n, heavyCounters)
		}
		slack := n / (heavyCounters + 1)
		for idx, c := range want {
			if got := kept[idx]; got > c || got < c-slack {
				t.Fatalf("%s: index %d counted %d, true %d (slack %d)", name, idx, got, c, slack)
			}
		}
		for idx := int32(1); idx <= 10; idx++ {
			if kept[idx] == 0 {
				t.Errorf("%s: the frequent index %d is not kept", name, idx)
			}
		}
	}
	check("half", &parts[0], n/2, half)
	parts[0].merge(&parts[1])
	check("merged", &parts[0], n, truth)
}

// A profiler sampling by the row id counts the drift bins of numeric and
// large categorical features on the rows whose id hashes into one in
// SampleEvery, and uses them once it has seen more than SampleAbove rows:
// the sampled counts equal counts made here from the rows by that rule,
// the PSI stays next to the exact one, parts (some small enough to be
// exact, some not) merge to what one profiler of every row gives, and a
// small profile is exact.
func TestSampledProfile(t *testing.T) {
	spec, p := profileSpec(t)
	look, ref := reference(t, spec, p, profileRows(20000, 1, 0))
	ids := []string{"id"}
	rows := profileRows(200_000, 4, 0.2) // a little drift in price
	whole, err := profileBy(t, spec, p, look, rows, ids).Profile()
	if err != nil {
		t.Fatal(err)
	}
	exact, err := profileOf(t, spec, p, look, rows).Profile()
	if err != nil {
		t.Fatal(err)
	}

	// The sample by the documented rule: one row in SampleEvery by the
	// hash of its id.
	price, site := ref.Feature("price"), ref.Feature("site")
	wantPrice, wantSite := make([]int64, len(price.Bins)), make([]int64, len(site.Bins))
	sampled := 0
	basis := uint64(0xcbf29ce484222325) // FNV's offset basis, times its prime
	basis *= 0x100000001b3
	for _, r := range rows {
		if mix64(basis^Hash(r.id))%SampleEvery != 0 {
			continue
		}
		sampled++
		if !math.IsNaN(r.price) {
			k := 0
			for k < len(price.Edges) && price.Edges[k] < r.price {
				k++
			}
			wantPrice[k]++
		}
		if r.site != "" {
			bucket := int32(1 + Hash(r.site)%10000)
			k := slices.Index(site.Refs, bucket)
			if k < 0 {
				k = len(site.Refs)
			}
			wantSite[k]++
		}
	}
	if sampled < len(rows)/SampleEvery*95/100 || sampled > len(rows)/SampleEvery*105/100 {
		t.Errorf("%d rows of %d sampled, want about 1 in %d", sampled, len(rows), SampleEvery)
	}
	for _, c := range []struct {
		name string
		want []int64
	}{{"price", wantPrice}, {"site", wantSite}} {
		f := whole.Feature(c.name)
		if !f.BinsSampled || !slices.Equal(f.SampleBins, c.want) {
			t.Errorf("%s: sampled %v, sample bins %v, want %v", c.name, f.BinsSampled, f.SampleBins, c.want)
		}
		present := f.Count - f.Missing - f.OOV
		var n int64
		for _, v := range c.want {
			n += v
		}
		for i, v := range c.want {
			if want := int64(math.Round(float64(v) * float64(present) / float64(n))); f.Bins[i] != want {
				t.Errorf("%s bin %d: %d, want %d scaled from the sample", c.name, i, f.Bins[i], want)
			}
		}
		psi, _ := Compare(f, ref.Feature(c.name))
		exactPSI, _ := Compare(exact.Feature(c.name), ref.Feature(c.name))
		if exact.Feature(c.name).BinsSampled || math.Abs(psi-exactPSI) > 0.01 {
			t.Errorf("%s: PSI %g from the sample, %g exact", c.name, psi, exactPSI)
		}
	}
	if whole.Feature("device").BinsSampled || !slices.Equal(whole.Feature("device").Bins, exact.Feature("device").Bins) {
		t.Error("device (a small vocabulary, counted exactly) was sampled")
	}

	// Parts of 30k (exact on their own), 50k and 120k rows, merged as
	// profilers and as stored profiles.
	cuts := []int{0, 30_000, 80_000, 200_000}
	var parts []*Profiler
	var stored []*Profile
	for i := range 3 {
		part := profileBy(t, spec, p, look, rows[cuts[i]:cuts[i+1]], ids)
		prof, err := part.Profile()
		if err != nil {
			t.Fatal(err)
		}
		if got := prof.Feature("price").BinsSampled; got != (cuts[i+1]-cuts[i] > SampleAbove) {
			t.Errorf("part of %d rows: sampled %v", cuts[i+1]-cuts[i], got)
		}
		data, _ := json.Marshal(prof)
		var back Profile
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		parts, stored = append(parts, part), append(stored, &back)
	}
	for _, q := range parts[1:] {
		if err := parts[0].Merge(q); err != nil {
			t.Fatal(err)
		}
	}
	merged, err := parts[0].Profile()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range stored[1:] {
		if err := stored[0].Merge(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []*Profile{merged, stored[0]} {
		for _, name := range []string{"price", "site", "device"} {
			g, w := m.Feature(name), whole.Feature(name)
			if !slices.Equal(g.Bins, w.Bins) || !slices.Equal(g.SampleBins, w.SampleBins) || g.BinsSampled != w.BinsSampled {
				t.Errorf("%s merged: bins %v sample %v; whole: %v %v", name, g.Bins, g.SampleBins, w.Bins, w.SampleBins)
			}
		}
	}

	// Few rows: every row counted.
	small, err := profileBy(t, spec, p, look, rows[:20_000], ids).Profile()
	if err != nil {
		t.Fatal(err)
	}
	smallExact, err := profileOf(t, spec, p, look, rows[:20_000]).Profile()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"price", "site"} {
		if g, w := small.Feature(name), smallExact.Feature(name); g.BinsSampled || !slices.Equal(g.Bins, w.Bins) {
			t.Errorf("%s of 20,000 rows: sampled %v, bins %v, want every row's %v", name, g.BinsSampled, g.Bins, w.Bins)
		}
	}
}
