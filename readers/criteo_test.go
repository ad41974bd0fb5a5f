package readers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/adtech/scorer/readers/store"
)

// The Criteo samples live outside the repository (their licence forbids
// redistribution); these tests skip when they are absent and never copy
// rows into the repository.
const criteoData = "/work/shared/data"

// criteoColumns are label, I1..I13, C1..C26.
func criteoColumns() []string {
	names := []string{"label"}
	for i := 1; i <= 13; i++ {
		names = append(names, fmt.Sprintf("I%d", i))
	}
	for i := 1; i <= 26; i++ {
		names = append(names, fmt.Sprintf("C%d", i))
	}
	return names
}

func criteoSchema() *arrow.Schema {
	var fields []arrow.Field
	for i, n := range criteoColumns() {
		switch {
		case i == 0:
			fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64})
		case i <= 13:
			fields = append(fields, arrow.Field{Name: n, Type: arrow.PrimitiveTypes.Float64, Nullable: true})
		default:
			fields = append(fields, arrow.Field{Name: n, Type: arrow.BinaryTypes.String, Nullable: true})
		}
	}
	return arrow.NewSchema(fields, nil)
}

// linkSample makes a sample file visible in a temporary bucket under key.
func linkSample(t *testing.T, path, key string) (store.Bucket, store.ObjectInfo) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Skipf("sample not available: %v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(path, filepath.Join(dir, key)); err != nil {
		t.Fatal(err)
	}
	b := store.NewFileBucket(dir)
	info, err := b.Stat(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return b, info
}

// criteoSummary is what the tests check of a sample.
type criteoSummary struct {
	rows, clicks int64
	first        []string // ValueStr of the first row's cells, "<nil>" for null
	nullI1       int64
	minI2        float64
}

func readCriteo(t *testing.T, b store.Bucket, info store.ObjectInfo, csvOpts CSVOptions) (criteoSummary, FileStat) {
	t.Helper()
	src := mustOpen(t, b, []store.ObjectInfo{info}, Options{Schema: criteoSchema(), BatchSize: 1024, CSV: csvOpts, Mem: newMem(t)})
	var s criteoSummary
	for {
		rec, err := src.Read(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		label := rec.Column(0).(*array.Float64)
		i1 := rec.Column(1).(*array.Float64)
		i2 := rec.Column(2).(*array.Float64)
		for i := range int(rec.NumRows()) {
			if s.rows == 0 && i == 0 {
				for c := range int(rec.NumCols()) {
					if rec.Column(c).IsNull(0) {
						s.first = append(s.first, "<nil>")
					} else {
						s.first = append(s.first, rec.Column(c).ValueStr(0))
					}
				}
			}
			s.clicks += int64(label.Value(i))
			if i1.IsNull(i) {
				s.nullI1++
			}
			if i2.IsValid(i) {
				s.minI2 = min(s.minI2, i2.Value(i))
			}
		}
		s.rows += rec.NumRows()
		rec.Release()
	}
	return s, src.Files()[0]
}

func TestCriteoTSV(t *testing.T) {
	b, info := linkSample(t, filepath.Join(criteoData, "criteo_train_head10k/criteo_train_sample10k.tsv"), "criteo_train_sample10k.tsv")
	s, st := readCriteo(t, b, info, CSVOptions{ColumnNames: criteoColumns()})
	if s.rows != 10000 || s.clicks != 2182 || st.Rows != 10000 || st.BadRows != 0 || st.Size != 2422799 {
		t.Errorf("rows %d, clicks %d, stat %+v; want 10000 rows, 2182 clicks, 2422799 bytes", s.rows, s.clicks, st)
	}
	// The well-known first line of train.txt: 0 1 1 5 0 1382 4 15 2 181 1 2 _ 2 68fd1e64 ...
	want := []string{"0", "1", "1", "5", "0", "1382", "4", "15", "2", "181", "1", "2", "<nil>", "2", "68fd1e64"}
	if fmt.Sprint(s.first[:len(want)]) != fmt.Sprint(want) || s.first[39] != "9727dd16" {
		t.Errorf("first row %v", s.first)
	}
	if s.minI2 >= 0 { // the README: negative values occur, e.g. -1 in I2
		t.Errorf("min I2 = %v, want a negative value", s.minI2)
	}
}

func TestCriteoCSV(t *testing.T) {
	b, info := linkSample(t, filepath.Join(criteoData, "criteo_deepctr_sample/criteo_sample.txt"), "criteo_sample.csv")
	s, st := readCriteo(t, b, info, CSVOptions{})
	if s.rows != 200 || s.clicks != 49 || st.Rows != 200 || st.Size != 52518 {
		t.Errorf("rows %d, clicks %d, stat %+v; want 200 rows, 49 clicks, 52518 bytes", s.rows, s.clicks, st)
	}
	// First row: 0,,3,260.0,,17668.0,... C1 05db9164, C26 empty.
	want := []string{"0", "<nil>", "3", "260", "<nil>", "17668"}
	if fmt.Sprint(s.first[:len(want)]) != fmt.Sprint(want) || s.first[14] != "05db9164" || s.first[39] != "<nil>" {
		t.Errorf("first row %v", s.first)
	}
	if s.nullI1 == 0 {
		t.Error("no null I1")
	}
}
