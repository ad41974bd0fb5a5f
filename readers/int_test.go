package readers

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/adtech/scorer/readers/store"
)

func TestParseInt(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  string
	}{
		{in: "12", want: 12},
		{in: " -3 ", want: -3},
		{in: "+7", want: 7},
		{in: "0", want: 0},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "-9223372036854775808", want: math.MinInt64},
		{in: "12.0", want: 12},
		{in: "1e3", want: 1000},
		{in: "-0.0", want: 0},
		{in: "12.5", bad: reasonNotInteger},
		{in: "abc", bad: reasonNotInteger},
		{in: "", bad: reasonNotInteger},
		{in: "1,5", bad: reasonNotInteger},
		{in: "0x10", bad: reasonNotInteger},
		{in: "NaN", bad: reasonNotInteger},
		{in: "Inf", bad: reasonNotInteger},
		{in: "9223372036854775808", bad: reasonIntRange},
		{in: "1e30", bad: reasonIntRange},
		{in: "1e400", bad: reasonIntRange},
	}
	for _, tc := range tests {
		got, reason := parseInt(tc.in)
		if reason != tc.bad || (tc.bad == "" && got != tc.want) {
			t.Errorf("parseInt(%q) = %d, %q; want %d, %q", tc.in, got, reason, tc.want, tc.bad)
		}
	}
}

// idSchema is an id and an int64 column of embedding ids, bounded to
// [0, 50) by idRanges.
var (
	idSchema = arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "c1", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	}, nil)
	idRanges = []IntRange{{Column: "c1", Min: 0, Max: 50, Name: `feature "C1" id`}}
)

// Parquet layouts of idSchema: the ids as integers, doubles or text.
type (
	pqIDInt struct {
		ID string `parquet:"id"`
		C1 *int64 `parquet:"c1,optional"`
	}
	pqIDDouble struct {
		ID string   `parquet:"id"`
		C1 *float64 `parquet:"c1,optional"`
	}
	pqIDText struct {
		ID string  `parquet:"id"`
		C1 *string `parquet:"c1,optional"`
	}
	pqIDDecimal struct {
		ID string `parquet:"id"`
		C1 int32  `parquet:"c1,decimal(2:9)"`
	}
)

// An int64 column reads integers in every format; a value that is not an
// integer, or is outside the column's range, is a bad row naming the file,
// the row, the column and the value.
func TestIntColumn(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e", "f", "g"}
	// Rows b..f are bad in every format; a is 3, g is null.
	want := []string{"a|3", "g|<nil>"}
	bad := []RowError{
		{Row: 2, Column: "c1", Value: "12.5", Reason: "not an integer"},
		{Row: 3, Column: "c1", Value: "abc", Reason: "not an integer"},
		{Row: 4, Column: "c1", Value: "57", Reason: `feature "C1" id 57 out of range [0, 50)`},
		{Row: 5, Column: "c1", Value: "-1", Reason: `feature "C1" id -1 out of range [0, 50)`},
		{Row: 6, Column: "c1", Value: "99999999999999999999", Reason: "integer out of the int64 range"},
	}
	text := []string{"3", "12.5", "abc", "57", "-1", "99999999999999999999", ""}
	var csvRows, jsonRows [][]string
	pqText := make([]pqIDText, len(ids))
	for i, id := range ids {
		csvRows = append(csvRows, []string{text[i], id})
		v := text[i]
		switch {
		case v == "":
			v = "null"
		case v == "abc" || i%2 == 1:
			v = `"` + v + `"` // a JSON string holding a number is read too
		}
		jsonRows = append(jsonRows, []string{`{"id":"` + id + `","c1":` + v + `}`})
		pqText[i] = pqIDText{ID: id}
		if text[i] != "" {
			pqText[i].C1 = ptr(text[i])
		}
	}
	// Parquet integers and doubles cannot hold "abc" or 20 digits: other
	// bad rows there.
	pqInts := []pqIDInt{{"a", ptr(int64(3))}, {"b", ptr(int64(50))}, {"c", nil}}
	pqDoubles := []pqIDDouble{{"a", ptr(3.0)}, {"b", ptr(12.5)}, {"c", ptr(-1.0)}, {"d", nil}}
	pqDecimals := []pqIDDecimal{{"a", 300}, {"b", 1250}} // 3.00, 12.50

	for _, tc := range []struct {
		key  string
		data []byte
		want []string
		bad  []RowError
	}{
		{"a.csv", delimited(",", []string{"c1", "id"}, csvRows), want, withLines(bad, 1)},
		{"a.jsonl", delimited("", nil, jsonRows), want, withLines(bad, 0)},
		{"a.parquet", writeParquet(t, pqText), want, bad},
		{"ints.parquet", writeParquet(t, pqInts), []string{"a|3", "c|<nil>"}, []RowError{
			{Row: 2, Column: "c1", Value: "50", Reason: `feature "C1" id 50 out of range [0, 50)`},
		}},
		{"doubles.parquet", writeParquet(t, pqDoubles), []string{"a|3", "d|<nil>"}, []RowError{
			{Row: 2, Column: "c1", Value: "12.5", Reason: "not an integer"},
			{Row: 3, Column: "c1", Value: "-1", Reason: `feature "C1" id -1 out of range [0, 50)`},
		}},
		{"decimals.parquet", writeParquet(t, pqDecimals), []string{"a|3"}, []RowError{
			{Row: 2, Column: "c1", Value: "12.5", Reason: "not an integer"},
		}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			f := newFixture(t)
			var got []RowError
			src := mustOpen(t, f.b, []store.ObjectInfo{f.put(tc.key, tc.data)}, Options{
				Schema: idSchema, Ranges: idRanges, Mem: newMem(t), RawMaxBytes: -1,
				OnBadRow: func(e RowError) error { e.ids = nil; got = append(got, e); return nil },
			})
			rows, err := cellRows(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rows, tc.want) {
				t.Errorf("rows %q, want %q", rows, tc.want)
			}
			wantBad := slices.Clone(tc.bad)
			for i := range wantBad {
				wantBad[i].File = tc.key
			}
			if !slices.Equal(got, wantBad) {
				t.Errorf("bad rows\n got  %+v\n want %+v", got, wantBad)
			}
		})
	}
}

// withLines sets each error's line: its row after skip header lines.
func withLines(errs []RowError, skip int64) []RowError {
	out := slices.Clone(errs)
	for i := range out {
		out[i].Line = out[i].Row + skip
	}
	return out
}

// Without OnBadRow, an id out of range stops the read with an error that
// says where.
func TestIntRangeFatal(t *testing.T) {
	f := newFixture(t)
	src := mustOpen(t, f.b, []store.ObjectInfo{f.put("d/a.csv", []byte("id,c1\na,1\nb,70\n"))}, Options{Schema: idSchema, Ranges: idRanges, Mem: newMem(t)})
	res := drain(t, src)
	if !errors.Is(res.err, ErrBadInput) {
		t.Fatalf("error %v, want ErrBadInput", res.err)
	}
	if want := `d/a.csv: row 2 (line 3): column "c1": feature "C1" id 70 out of range [0, 50) ("70")`; !strings.Contains(res.err.Error(), want) {
		t.Errorf("error %q does not say %q", res.err, want)
	}
}

func TestIntRangeOptions(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name   string
		ranges []IntRange
	}{
		{"no such field", []IntRange{{Column: "nope", Max: 1}}},
		{"not an int64 field", []IntRange{{Column: "id", Max: 1}}},
		{"empty range", []IntRange{{Column: "c1", Min: 5, Max: 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Open(t.Context(), f.b, nil, Options{Schema: idSchema, Ranges: tc.ranges}); !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("Open: %v, want ErrInvalidOptions", err)
			}
		})
	}
}
