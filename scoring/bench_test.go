package scoring

import (
	"testing"

	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/internal/modeltest"
)

// benchInputs is a demo-sized model input: 6 dense and 14 categorical
// features, a few thousand categorical values in all.
var benchInputs = bundle.Inputs{Dense: 6, Cardinalities: []int{25, 8, 1000, 500, 24, 8, 300, 50, 100, 20, 1000, 200, 60, 12}}

func BenchmarkScore(b *testing.B) {
	for _, bs := range []int{256, 4096} {
		b.Run(map[int]string{256: "batch=256", 4096: "batch=4096"}[bs], func(b *testing.B) {
			bu := modeltest.RandomBundle(bundle.WideDeep, benchInputs.Dense, benchInputs.Cardinalities, 8, []int{32, 16}, 1)
			m, err := NewModel(bu, bs)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = m.Close() }()
			batch := modeltest.RandomBatch(bs, bu.Inputs, 2)
			out := make([]float32, bs)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if err := m.Score(batch, out); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*bs)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
