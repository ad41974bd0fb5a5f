package images_test

import (
	"fmt"
	"testing"

	"github.com/adtech/scorer/internal/demodata"
	"github.com/adtech/scorer/readers/images"
	"github.com/adtech/scorer/readers/store"
)

// BenchmarkLoad reads, decodes, resizes and normalises demo banners (300 ×
// 250, the medium rectangle) into 64 × 64 tensors from the local store, on
// one worker: images/s per core (make bench).
func BenchmarkLoad(b *testing.B) {
	in := store.NewFileBucket(b.TempDir())
	const n = 64
	for _, format := range []string{"png", "jpeg"} {
		uris := make([]string, n)
		for i := range uris {
			uris[i] = fmt.Sprintf("banners/%d.%s", i, format)
			put(b, in, uris[i], encode(b, format, demodata.CreativeOf(fmt.Sprint(i)).Draw(300, 250)))
		}
		b.Run("format="+format, func(b *testing.B) {
			l := images.NewLoader(in, nil, images.Options{Width: 64, Height: 64, Workers: 1})
			dst := make([]float32, n*l.Options().Size())
			b.ReportAllocs()
			for b.Loop() {
				res, err := l.Load(b.Context(), uris, dst)
				if err != nil || res[0].Err != nil {
					b.Fatal(err, res[0].Err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
