package readers

import (
	"math/rand"
	"os"
	"runtime"
	"testing"
	"time"
	"fmt"

	"github.com/parquet-go/parquet-go"
)

func TestZZHunt(t *testing.T) {
	rows := makeRows("", 20)
	seeds := [][]byte{parquetBytes(t, rows, parquet.PageBufferSize(128), parquet.MaxRowsPerRowGroup(7)), parquetBytes(t, rows[:3], parquet.Compression(&parquet.Snappy))}
	rng := rand.New(rand.NewSource(1))
	for it := 0; it < 30000; it++ {
		s := seeds[rng.Intn(len(seeds))]
		d := append([]byte(nil), s...)
		for k := 0; k < 1+rng.Intn(4); k++ {
			switch rng.Intn(3) {
			case 0:
				d[rng.Intn(len(d))] = byte(rng.Intn(256))
			case 1:
				i := rng.Intn(len(d)); d[i] ^= 1 << rng.Intn(8)
			case 2:
				i := rng.Intn(len(d)-4); d[i], d[i+1] = 0xff, 0xff
			}
		}
		done := make(chan struct{})
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				os.WriteFile("/tmp/hang.bin", d, 0o644)
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				fmt.Println(string(buf[:n]))
				os.Exit(3)
			}
		}()
		fuzzRead(t, "f.parquet", d, adSchema, CSVOptions{})
		close(done)
	}
}
