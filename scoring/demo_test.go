package scoring

import (
	"context"
	"errors"
	"io"
	"math"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
)

// The committed demo bundle and the demo month it scores in `make demo`.
const (
	demoBundleDir = "../testdata/models/ctr-demo"
	demoStoreDir  = "../testdata/store"
	demoMonthDir  = "dumps/2020-09"
)

// loadDemo loads the demo bundle and its feature pipeline.
func loadDemo(tb testing.TB) (*bundle.Bundle, *features.Pipeline) {
	tb.Helper()
	bu, err := bundle.Load(context.Background(), store.NewFileBucket(demoBundleDir), "")
	if err != nil {
		tb.Fatal(err)
	}
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		tb.Fatal(err)
	}
	return bu, fx
}

// readDemoMonth reads the demo month through the readers and returns the
// model inputs of all its rows, in read order.
func readDemoMonth(tb testing.TB, bu *bundle.Bundle, fx *features.Pipeline, mem memory.Allocator) *features.Batch {
	tb.Helper()
	ctx := context.Background()
	in := store.NewFileBucket(demoStoreDir)
	files, err := in.List(ctx, demoMonthDir+"/")
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) == 0 {
		tb.Fatalf("no files under %s/%s", demoStoreDir, demoMonthDir)
	}
	src, err := readers.Open(ctx, in, files, readers.Options{
		Schema: bu.Features.InputSchema([]string{"ad_id"}, false),
		Mem:    mem,
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	all := &features.Batch{D: fx.Dense(), K: len(fx.Cardinalities())}
	var b features.Batch
	for {
		rec, err := src.Read(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
		err = fx.Transform(rec, &b)
		rec.Release()
		if err != nil {
			tb.Fatal(err)
		}
		all.Dense = append(all.Dense, b.Dense...)
		all.Cat = append(all.Cat, b.Cat...)
		all.N += b.N
	}
	var rows int64
	for _, f := range src.Files() {
		rows += f.Rows
		if f.BadRows != 0 {
			tb.Fatalf("%s: %d bad rows", f.Key, f.BadRows)
		}
	}
	if rows != int64(all.N) {
		tb.Fatalf("readers counted %d rows, transformed %d", rows, all.N)
	}
	return all
}

// TestDemoBundleMatchesReference scores the demo month with the committed
// demo bundle, end to end from the stored files, and checks every score
// against the float64 reference forward pass.
func TestDemoBundleMatchesReference(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)

	bu, fx := loadDemo(t)
	if got, want := fx.Dense(), bu.Inputs.Dense; got != want {
		t.Fatalf("pipeline has %d dense features, bundle %d", got, want)
	}
	batch := readDemoMonth(t, bu, fx, mem)
	if batch.N != 40000 {
		t.Errorf("demo month has %d rows, want 40000 (2 files × 20000)", batch.N)
	}

	m, err := NewModel(bu, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	got := make([]float32, batch.N)
	if err := m.Score(batch, got); err != nil {
		t.Fatal(err)
	}
	want := referenceScores(bu, batch)

	const tol = 1e-5
	var worst float64
	bad := 0
	for i := range want {
		diff := math.Abs(float64(got[i]) - want[i])
		if !(diff <= tol) { // NaN fails too
			if bad < 5 {
				t.Errorf("row %d: score %.8g, reference %.8g (|diff| %.3g > %g)", i, got[i], want[i], diff, tol)
			}
			bad++
		}
		worst = max(worst, diff)
	}
	if bad > 0 {
		t.Errorf("%d of %d rows differ from the reference by more than %g", bad, batch.N, tol)
	}
	t.Logf("%d rows, max |score - reference| = %.3g", batch.N, worst)
}

// BenchmarkDemoModel scores the demo month's prepared model inputs with the
// demo bundle, batch 4096: the model alone, without reading or features.
func BenchmarkDemoModel(b *testing.B) {
	const bs = 4096
	bu, fx := loadDemo(b)
	all := readDemoMonth(b, bu, fx, memory.DefaultAllocator)
	m, err := NewModel(bu, bs)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = m.Close() }()
	// The batches of the month, each bs rows (the last one padded by Score).
	var batches []*features.Batch
	for lo := 0; lo < all.N; lo += bs {
		hi := min(lo+bs, all.N)
		batches = append(batches, &features.Batch{
			N: hi - lo, D: all.D, K: all.K,
			Dense: all.Dense[lo*all.D : hi*all.D],
			Cat:   all.Cat[lo*all.K : hi*all.K],
		})
	}
	out := make([]float32, bs)
	rows := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		batch := batches[i%len(batches)]
		if err := m.Score(batch, out[:batch.N]); err != nil {
			b.Fatal(err)
		}
		rows += batch.N
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
