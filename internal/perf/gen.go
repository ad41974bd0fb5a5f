package perf

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/adtech/scorer/features"
)

// countSigma and countMu shape the integer counts: I_j is
// floor(exp(N(mu_j, sigma²))) - 1, so log1p(I_j) is about N(mu_j, sigma²).
const countSigma = 1.4

func countMu(j int) float64 { return 0.5 + 0.25*float64(j%7) }

// vocabSizes are the distinct values of C1..C26, Criteo-like: a few tiny
// columns, most in the thousands, some far larger than the hash space.
var vocabSizes = [Categoricals]int{
	1460, 580, 1_000_000, 300_000, 300, 24, 12_500, 630, 3, 93_000,
	5_700, 800_000, 3_200, 27, 14_900, 500_000, 10, 5_600, 2_170, 4,
	700_000, 17, 15, 140_000, 105, 100_000,
}

// missingRate is the fraction of empty fields of each column (Criteo-like).
func missingRate(col int) float64 {
	switch {
	case col < Dense:
		return []float64{0.45, 0, 0.2, 0.2, 0.03, 0.22, 0.04, 0, 0.04, 0.45, 0.04, 0.77, 0.2}[col]
	case col-Dense >= 18:
		return 0.4
	default:
		return 0.02
	}
}

// Generator draws rows of Criteo-like ad dumps. It is deterministic for a
// seed: the same seed gives the same rows. Not safe for concurrent use.
type Generator struct {
	rng  *rand.Rand
	zipf [Categoricals]*rand.Zipf
	salt [Categoricals]uint64
	row  int64
}

// NewGenerator returns the generator of a seed.
func NewGenerator(seed uint64) *Generator {
	g := &Generator{rng: rand.New(rand.NewPCG(seed, 0xda7a))}
	for k, v := range vocabSizes {
		g.zipf[k] = rand.NewZipf(g.rng, 1.1, 8, uint64(v-1))
		g.salt[k] = uint64(k+1) * 0x9E3779B97F4A7C15
	}
	return g
}

// Row is one generated row: Dense NaN where missing, Cat "" where missing.
type Row struct {
	ID    int64
	Dense [Dense]float64
	Cat   [Categoricals]uint32 // the value is 8 hex digits of Cat; see CatText
	Miss  [Categoricals]bool
}

// Next fills r with the next row.
func (g *Generator) Next(r *Row) {
	g.row++
	r.ID = g.row
	for j := range r.Dense {
		if g.rng.Float64() < missingRate(j) {
			r.Dense[j] = math.NaN()
			continue
		}
		r.Dense[j] = math.Floor(math.Exp(countMu(j)+countSigma*g.rng.NormFloat64())) - 1
	}
	for k := range r.Cat {
		r.Miss[k] = g.rng.Float64() < missingRate(Dense+k)
		rank := g.zipf[k].Uint64()
		// A fixed pseudo-random 32-bit value per (column, rank), as Criteo's
		// hashed values are.
		h := (rank + 1) * g.salt[k]
		r.Cat[k] = uint32(h>>32) ^ uint32(h)
	}
}

// Columns are the CSV columns, in order: ad_id, I1..I13, C1..C26.
func Columns() []string {
	cols := []string{IDColumn}
	for i := 1; i <= Dense; i++ {
		cols = append(cols, fmt.Sprintf("I%d", i))
	}
	for i := 1; i <= Categoricals; i++ {
		cols = append(cols, fmt.Sprintf("C%d", i))
	}
	return cols
}

// appendHex8 appends v as 8 lowercase hex digits.
func appendHex8(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for s := 28; s >= 0; s -= 4 {
		b = append(b, digits[(v>>uint(s))&0xf])
	}
	return b
}

// WriteCSV writes a header line and n rows drawn from g to w.
func (g *Generator) WriteCSV(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	buf := make([]byte, 0, 512)
	for i, c := range Columns() {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, c...)
	}
	buf = append(buf, '\n')
	var r Row
	for range n {
		if _, err := bw.Write(buf); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
		g.Next(&r)
		buf = appendRow(buf[:0], &r)
	}
	if _, err := bw.Write(buf); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

func appendRow(b []byte, r *Row) []byte {
	b = append(b, "ad"...)
	b = strconv.AppendInt(b, r.ID, 10)
	for _, v := range r.Dense {
		b = append(b, ',')
		if !math.IsNaN(v) {
			b = strconv.AppendInt(b, int64(v), 10)
		}
	}
	for k, v := range r.Cat {
		b = append(b, ',')
		if !r.Miss[k] {
			b = appendHex8(b, v)
		}
	}
	return append(b, '\n')
}

// Record returns n rows drawn from g as an Arrow record of the reference
// spec's input schema (what the readers produce from the CSV). The caller
// releases it.
func (g *Generator) Record(mem memory.Allocator, n int) arrow.RecordBatch {
	schema := Spec().InputSchema([]string{IDColumn}, false)
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	var r Row
	hex := make([]byte, 0, 8)
	for range n {
		g.Next(&r)
		b.Field(0).(*array.StringBuilder).Append("ad" + strconv.FormatInt(r.ID, 10))
		for j, v := range r.Dense {
			fb := b.Field(1 + j).(*array.Float64Builder)
			if math.IsNaN(v) {
				fb.AppendNull()
			} else {
				fb.Append(v)
			}
		}
		for k, v := range r.Cat {
			sb := b.Field(1 + Dense + k).(*array.StringBuilder)
			if r.Miss[k] {
				sb.AppendNull()
			} else {
				sb.Append(string(appendHex8(hex[:0], v)))
			}
		}
	}
	return b.NewRecordBatch()
}

// Batch returns the prepared model inputs of n rows drawn from g: the
// records through the reference feature pipeline.
func (g *Generator) Batch(n int) (*features.Batch, error) {
	fx, err := features.NewPipeline(Spec(), Stats())
	if err != nil {
		return nil, err
	}
	rec := g.Record(memory.DefaultAllocator, n)
	defer rec.Release()
	b := &features.Batch{}
	if err := fx.Transform(rec, b); err != nil {
		return nil, err
	}
	return b, nil
}
