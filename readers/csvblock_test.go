package readers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/readers/store"
)

// blockSchema has a column of every type the CSV decoder converts, with
// and without nulls, one with ranges and one the files lack (Optional).
var blockSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.BinaryTypes.String},
	{Name: "cat", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "n", Type: arrow.PrimitiveTypes.Int64},
	{Name: "ts", Type: tsType, Nullable: true},
	{Name: "opt", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "q", Type: arrow.PrimitiveTypes.Float64},
	{Name: "when", Type: tsType},
}, nil)

// decodeTrace reads data as one CSV file with blocks of up to blockRows
// rows (negative: one row at a time) and returns all a caller sees: each
// record's values, each bad row and the error that ended the read. (Bad
// rows are reported by the decoding goroutine, records read by Read: each
// in order, but not in order with each other.)
func decodeTrace(t *testing.T, data []byte, blockRows, batch int, csv CSVOptions) string {
	t.Helper()
	var out, bad strings.Builder
	opts := Options{
		Schema: blockSchema, BatchSize: batch, Mem: newMem(t), CSV: csv,
		Optional:  []string{"opt"},
		IDColumns: []string{"id"},
		Ranges:    []IntRange{{Column: "n", Min: -5, Max: 1000}},
		OnBadRow: func(e RowError) error {
			fmt.Fprintf(&bad, "bad: %v ids=%q raw=%q\n", e, e.IDs(), e.Raw)
			if e.Value == "stop" {
				return errors.New("stopped")
			}
			return nil
		},
		lineLimit: 1 << 10,
		blockRows: blockRows,
	}
	info := store.ObjectInfo{Key: "b.csv", Size: int64(len(data))}
	src, err := Open(context.Background(), memBucket{data: data}, []store.ObjectInfo{info}, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = src.Close() }()
	for {
		rec, err := src.Read(context.Background())
		if err != nil {
			fmt.Fprintf(&out, "end: %v\n", err)
			break
		}
		for i, col := range rec.Columns() {
			fmt.Fprintf(&out, "%s=%v ", rec.ColumnName(i), col)
		}
		out.WriteString("\n")
		rec.Release()
	}
	fmt.Fprintf(&out, "files: %+v\n", src.Files())
	return bad.String() + out.String()
}

// blockInput is rows that take every path of the block decoder: good rows
// of each kind of value, nulls where allowed and not, bad values in each
// column (first, middle and last rows of a block), rows the block stops
// at (quotes, empty lines, CRLF, too few fields, non-ASCII, a line too
// long) and a last line without a line break.
func blockInput() []byte {
	var b strings.Builder
	b.WriteString("id,cat,price,n,ts,q,when,extra\n")
	good := func(i int) string { // cat of 2 to 21 bytes; price with digits only, or not
		return fmt.Sprintf("r%d,c%d%s,%d%s,%d,%d,%d,2020-09-02 10:00:%02d,x\n", i, i%7, strings.Repeat("x", i%20), i, []string{".5", ""}[i%2], i%900, 1599040800+i, -i, i%60)
	}
	bad := []string{
		",c,1,2,3,4,1599040800,x\n",                                  // id missing
		"a,,NA,2,,4,1599040800,x\n",                                  // nulls where allowed
		"a,c,abc,2,3,4,1599040800,x\n",                               // price not a number
		"a,c,1,NA,3,4,1599040800,x\n",                                // n null, not nullable
		"a,c,1,1000,3,4,1599040800,x\n",                              // n out of range
		"a,c,1,2.5,3,4,1599040800,x\n",                               // n not an integer
		"a,c,1,2,yesterday,4,1599040800,x\n",                         // ts not a timestamp
		"a,c,1,2,3,,1599040800,x\n",                                  // q missing
		"a,c,1,2,3,inf,1599040800,x\n",                               // q not finite
		"a,c,1,2,3,4,,x\n",                                           // when missing
		"a,c,1,2,3,4\n",                                              // too few fields
		"\"a\",\"c,d\",1,2,3,4,1599040800,x\n",                       // quoted
		"\n",                                                         // empty line
		"a,c,1,2,3,4,1599040800,x\r\n",                               // CRLF
		"a,caf\u00e9,1,2,3,4,1599040800,x\n",                         // not ASCII
		"a,\xff,1,2,3,4,1599040800,x\n",                              // not UTF-8
		"a,c,1,2,3,4,1599040800,x,y\n",                               // too many fields
		"a,c,\"1\"x,2,3,4,1599040800,x\n",                            // bare quote
		"a,c, 7 ,+3,3,-0,1599040800.5,x\n",                           // spaces, signs
		"a,NA,999,2,3,999,1599040800,x\n",                            // null values (NullValues)
		"NA,c,1,2,3,4,1599040800,x\n",                                // id null
		"a,c,1:5,2,3,4,1599040800,x\n",                               // price not a number
		"a," + strings.Repeat("z", 1100) + ",1,2,3,4,1599040800,x\n", // too long: ends the read
	}
	long := bad[len(bad)-1]
	bad = bad[:len(bad)-1]
	k := 0
	for i := range 700 {
		switch {
		case i%97 == 5, i%131 == 0, i%128 == 127, i%128 == 1:
			b.WriteString(bad[k%len(bad)]) // each at least once
			k++
		default:
			b.WriteString(good(i))
		}
	}
	b.WriteString(long)
	b.WriteString(good(700))
	b.WriteString("a,c,1,2,3,4,1599040800,x") // no line break
	return []byte(b.String())
}

// TestCSVBlocksMatchRows: decoding rows a block at a time, column by
// column, gives what decoding them one at a time gives: the same records
// (values, nulls, batch boundaries), the same bad rows in the same order
// (row, line, column, value, raw text, ids) and the same end, for blocks
// of every size and batches that end inside blocks.
func TestCSVBlocksMatchRows(t *testing.T) {
	data := blockInput()
	stop := []byte(strings.Replace(string(data), ",-300,", ",stop,", 1)) // row 301's q: OnBadRow stops
	inputs := map[string][]byte{
		"all":          data,
		"without long": []byte(strings.ReplaceAll(string(data), "a,"+strings.Repeat("z", 1100)+",1,2,3,4,1599040800,x\n", "")),
		"stopped":      stop,
	}
	for name, in := range inputs {
		for _, batch := range []int{1, 7, 100, 4096} {
			for _, csv := range []CSVOptions{{}, {NullValues: []string{"NA", "999", "?"}}} {
				want := decodeTrace(t, in, -1, batch, csv)
				for _, s := range []string{"bad: ", "end: ", `ids=["a"]`} {
					if !strings.Contains(want, s) {
						t.Fatalf("%s: no %q in\n%s", name, s, want)
					}
				}
				if name == "stopped" && !strings.Contains(want, "end: stopped") {
					t.Fatalf("stopped: OnBadRow's error did not end the read:\n%s", want)
				}
				for _, blockRows := range []int{1, 2, 3, 64, csvBlockRows, 1000} {
					if got := decodeTrace(t, in, blockRows, batch, csv); got != want {
						t.Errorf("%s, batch %d, nulls %q, blocks of %d rows:\n%s\nrow at a time:\n%s", name, batch, csv.NullValues, blockRows, firstDiff(got, want), firstDiff(want, got))
					}
				}
			}
		}
	}
}

// firstDiff is a from the line where it differs from b on.
func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range al {
		if i >= len(bl) || al[i] != bl[i] {
			return fmt.Sprintf("line %d: %.600s", i+1, al[i])
		}
	}
	return "(a prefix)"
}

func FuzzCSVBlocks(f *testing.F) {
	f.Add(blockInput(), uint8(3), uint8(2))
	f.Add([]byte("id,cat,price,n,ts,q,when\n1,x,1,2,3,4,5\n2,,NA,,,,\n"), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, batch, blockRows uint8) {
		b, n := int(batch)%16+1, int(blockRows)%8+1
		for _, csv := range []CSVOptions{{}, {Delimiter: ';'}} {
			want := decodeTrace(t, data, -1, b, csv)
			if got := decodeTrace(t, data, n, b, csv); got != want {
				t.Fatalf("batch %d, blocks of %d rows:\n%s\nrow at a time:\n%s", b, n, firstDiff(got, want), firstDiff(want, got))
			}
		}
	})
}
