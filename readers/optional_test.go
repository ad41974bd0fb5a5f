package readers

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/parquet-go/parquet-go"

	"github.com/adtech/scorer/readers/store"
)

// labelSchema has a label, clicked, that only some inputs carry (monthly
// dumps do, queued requests do not). It sits between other fields, so that
// a missing one cannot pass unnoticed by shifting the others.
var labelSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.BinaryTypes.String, Nullable: false},
	{Name: "clicked", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "price", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "cat", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// delimited writes a CSV or TSV file: a header line unless header is nil,
// then the rows.
func delimited(delim string, header []string, rows [][]string) []byte {
	var b strings.Builder
	if header != nil {
		b.WriteString(strings.Join(header, delim) + "\n")
	}
	for _, r := range rows {
		b.WriteString(strings.Join(r, delim) + "\n")
	}
	return []byte(b.String())
}

// Parquet files with and without the label.
type (
	pqNoLabel struct {
		Cat   *string  `parquet:"cat,optional"`
		ID    string   `parquet:"id"`
		Price *float64 `parquet:"price,optional"`
	}
	pqLabel struct {
		Clicked *float64 `parquet:"clicked,optional"`
		Cat     *string  `parquet:"cat,optional"`
		ID      string   `parquet:"id"`
		Price   *float64 `parquet:"price,optional"`
	}
	pqIDPrice struct {
		ID    string   `parquet:"id"`
		Price *float64 `parquet:"price,optional"`
	}
	pqIDCat struct {
		ID  string  `parquet:"id"`
		Cat *string `parquet:"cat,optional"`
	}
)

// cellRows reads src to the end (or its first error) and returns its rows
// as "id|clicked|price|cat", nulls as <nil>.
func cellRows(t *testing.T, src Source) ([]string, error) {
	t.Helper()
	var rows []string
	for {
		rec, err := src.Read(context.Background())
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		for i := range int(rec.NumRows()) {
			cells := make([]string, rec.NumCols())
			for c := range cells {
				if col := rec.Column(c); col.IsNull(i) {
					cells[c] = "<nil>"
				} else {
					cells[c] = col.ValueStr(i)
				}
			}
			rows = append(rows, strings.Join(cells, "|"))
		}
		rec.Release()
	}
}

// optionalCase is one file read with Options.Optional: its good rows and
// its one bad row.
type optionalCase struct {
	name, key string
	data      []byte
	csv       CSVOptions
	optional  []string // nil means clicked
	want      []string // good rows, "id|clicked|price|cat"
	bad       RowError // File is the key
}

func TestOptionalColumnAbsent(t *testing.T) {
	// Every file lacks clicked; row 3 has a bad price.
	header := []string{"cat", "id", "price"}
	rows := [][]string{{"x", "a", "1.5"}, {"", "b", "NA"}, {"y", "c", "abc"}, {"z", "d", "-2"}}
	want := []string{"a|<nil>|1.5|x", "b|<nil>|<nil>|<nil>", "d|<nil>|-2|z"}
	badText := RowError{Row: 3, Line: 4, Column: "price", Value: "abc", Reason: "not a number"}
	badHeaderless := RowError{Row: 3, Line: 3, Column: "price", Value: "abc", Reason: "not a number"}
	badParquet := RowError{Row: 3, Column: "price", Value: "NaN", Reason: "not a finite number"}
	pq := []pqNoLabel{
		{Cat: ptr("x"), ID: "a", Price: ptr(1.5)},
		{ID: "b"},
		{Cat: ptr("y"), ID: "c", Price: ptr(math.NaN())},
		{Cat: ptr("z"), ID: "d", Price: ptr(-2.0)},
	}
	runOptionalCases(t, []optionalCase{
		{name: "csv with header", key: "q/a.csv", data: delimited(",", header, rows), want: want, bad: badText},
		{
			name: "csv without header", key: "q/a.csv", data: delimited(",", nil, rows),
			csv: CSVOptions{ColumnNames: header}, want: want, bad: badHeaderless,
		},
		{
			name: "tsv without header", key: "q/a.tsv", data: delimited("\t", nil, rows),
			csv: CSVOptions{ColumnNames: header}, want: want, bad: badHeaderless,
		},
		{name: "tsv with header", key: "q/a.tsv", data: delimited("\t", header, rows), want: want, bad: badText},
		{name: "gzip csv", key: "q/a.csv.gz", data: gzipBytes(delimited(",", header, rows)), want: want, bad: badText},
		{
			name: "jsonl", key: "q/a.jsonl",
			data: []byte(`{"id":"a","price":1.5,"cat":"x"}` + "\n" + `{"id":"b","price":null}` + "\n" +
				`{"id":"c","price":"abc","cat":"y"}` + "\n" + `{"cat":"z","id":"d","price":-2}` + "\n"),
			want: want, bad: RowError{Row: 3, Line: 3, Column: "price", Value: "abc", Reason: "not a number"},
		},
		{name: "parquet", key: "q/a.parquet", data: writeParquet(t, pq), want: want, bad: badParquet},
		{
			name: "parquet in row groups of 3", key: "q/a.parquet",
			data: writeParquet(t, pq, parquet.MaxRowsPerRowGroup(3)), want: want, bad: badParquet,
		},
		{
			name: "csv lacking two optional columns", key: "q/a.csv",
			data:     delimited(",", []string{"id", "price"}, [][]string{{"a", "1.5"}, {"b", ""}, {"c", "abc"}, {"d", "-2"}}),
			optional: []string{"cat", "clicked"},
			want:     []string{"a|<nil>|1.5|<nil>", "b|<nil>|<nil>|<nil>", "d|<nil>|-2|<nil>"}, bad: badText,
		},
		{
			name: "parquet lacking two optional columns", key: "q/a.parquet",
			data: writeParquet(t, []pqIDPrice{
				{ID: "a", Price: ptr(1.5)}, {ID: "b"}, {ID: "c", Price: ptr(math.Inf(1))}, {ID: "d", Price: ptr(-2.0)},
			}),
			optional: []string{"cat", "clicked"},
			want:     []string{"a|<nil>|1.5|<nil>", "b|<nil>|<nil>|<nil>", "d|<nil>|-2|<nil>"},
			bad:      RowError{Row: 3, Column: "price", Value: "+Inf", Reason: "not a finite number"},
		},
	})
}

func TestOptionalColumnPresent(t *testing.T) {
	// Every file has clicked, with nulls; row 4 has a bad one.
	header := []string{"clicked", "cat", "id", "price"}
	rows := [][]string{{"1", "x", "a", "1.5"}, {"NA", "", "b", ""}, {"", "y", "c", "2"}, {"yes", "z", "d", "3"}, {"0", "w", "e", "-1"}}
	want := []string{"a|1|1.5|x", "b|<nil>|<nil>|<nil>", "c|<nil>|2|y", "e|0|-1|w"}
	badText := RowError{Row: 4, Line: 5, Column: "clicked", Value: "yes", Reason: "not a number"}
	badHeaderless := RowError{Row: 4, Line: 4, Column: "clicked", Value: "yes", Reason: "not a number"}
	pq := []pqLabel{
		{Clicked: ptr(1.0), Cat: ptr("x"), ID: "a", Price: ptr(1.5)},
		{ID: "b"},
		{Cat: ptr("y"), ID: "c", Price: ptr(2.0)},
		{Clicked: ptr(math.NaN()), Cat: ptr("z"), ID: "d", Price: ptr(3.0)},
		{Clicked: ptr(0.0), Cat: ptr("w"), ID: "e", Price: ptr(-1.0)},
	}
	runOptionalCases(t, []optionalCase{
		{name: "csv with header", key: "d/a.csv", data: delimited(",", header, rows), want: want, bad: badText},
		{
			name: "csv without header", key: "d/a.csv", data: delimited(",", nil, rows),
			csv: CSVOptions{ColumnNames: header}, want: want, bad: badHeaderless,
		},
		{
			name: "tsv without header", key: "d/a.tsv", data: delimited("\t", nil, rows),
			csv: CSVOptions{ColumnNames: header}, want: want, bad: badHeaderless,
		},
		{name: "tsv with header", key: "d/a.tsv", data: delimited("\t", header, rows), want: want, bad: badText},
		{name: "gzip tsv", key: "d/a.tsv.gz", data: gzipBytes(delimited("\t", header, rows)), want: want, bad: badText},
		{
			name: "jsonl", key: "d/a.jsonl",
			data: []byte(`{"clicked":1,"id":"a","price":1.5,"cat":"x"}` + "\n" + `{"id":"b","clicked":null}` + "\n" +
				`{"id":"c","price":2,"cat":"y"}` + "\n" + `{"clicked":"yes","cat":"z","id":"d","price":3}` + "\n" +
				`{"clicked":"0","cat":"w","id":"e","price":-1}` + "\n"),
			want: want, bad: RowError{Row: 4, Line: 4, Column: "clicked", Value: "yes", Reason: "not a number"},
		},
		{
			name: "parquet", key: "d/a.parquet", data: writeParquet(t, pq), want: want,
			bad: RowError{Row: 4, Column: "clicked", Value: "NaN", Reason: "not a finite number"},
		},
	})
}

func runOptionalCases(t *testing.T, cases []optionalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			files := []store.ObjectInfo{f.put(tc.key, tc.data)}
			optional := tc.optional
			if optional == nil {
				optional = []string{"clicked"}
			}
			bad := tc.bad
			bad.File = tc.key

			t.Run("dropped", func(t *testing.T) {
				var got []RowError
				src := mustOpen(t, f.b, files, Options{
					Schema: labelSchema, Optional: optional, CSV: tc.csv, BatchSize: 2, Mem: newMem(t), RawMaxBytes: -1,
					OnBadRow: func(e RowError) error { got = append(got, e); return nil },
				})
				rows, err := cellRows(t, src)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(rows, tc.want) {
					t.Errorf("rows\n got  %q\n want %q", rows, tc.want)
				}
				if len(got) != 1 || got[0] != bad {
					t.Errorf("OnBadRow got %#v, want %#v", got, bad)
				}
				if st := src.Files()[0]; st.Rows != int64(len(tc.want)) || st.BadRows != 1 {
					t.Errorf("Files() = %+v, want %d rows and 1 bad", st, len(tc.want))
				}
			})

			t.Run("fatal", func(t *testing.T) {
				src := mustOpen(t, f.b, files, Options{
					Schema: labelSchema, Optional: optional, CSV: tc.csv, BatchSize: 2, Mem: newMem(t), RawMaxBytes: -1,
				})
				_, err := cellRows(t, src)
				var re RowError
				if !errors.As(err, &re) || !errors.Is(err, ErrBadInput) {
					t.Fatalf("error %v, want a RowError", err)
				}
				if re != bad {
					t.Errorf("RowError\n got  %#v\n want %#v", re, bad)
				}
			})
		})
	}
}

// TestOptionalColumnMixedFiles reads, in one Open, files that have the
// label and files that do not: each file's columns are its own.
func TestOptionalColumnMixedFiles(t *testing.T) {
	f := newFixture(t)
	files := []store.ObjectInfo{
		f.put("d/a.csv.gz", gzipBytes(delimited(",", []string{"id", "clicked", "price", "cat"}, [][]string{{"a1", "1", "2", "x"}, {"a2", "0", "3", "y"}}))),
		f.put("q/b.csv", delimited(",", []string{"price", "cat", "id"}, [][]string{{"4", "z", "b1"}, {"5", "w", "b2"}})),
		f.put("d/c.parquet", writeParquet(t, []pqLabel{{Clicked: ptr(1.0), ID: "c1", Price: ptr(6.0)}})),
		f.put("q/d.parquet", writeParquet(t, []pqNoLabel{{ID: "d1", Price: ptr(7.0), Cat: ptr("v")}})),
		f.put("q/e.jsonl", []byte(`{"id":"e1","price":8}`+"\n")),
	}
	src := mustOpen(t, f.b, files, Options{Schema: labelSchema, Optional: []string{"clicked"}, BatchSize: 1, Concurrency: 3, Mem: newMem(t)})
	rows, err := cellRows(t, src)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rows)
	want := []string{
		"a1|1|2|x", "a2|0|3|y", "b1|<nil>|4|z", "b2|<nil>|5|w", "c1|1|6|<nil>", "d1|<nil>|7|v", "e1|<nil>|8|<nil>",
	}
	if !slices.Equal(rows, want) {
		t.Errorf("rows\n got  %q\n want %q", rows, want)
	}
	// Files() says which files lack the column (JSON Lines has no
	// file-wide columns: never missing).
	wantMissing := map[string][]string{"q/b.csv": {"clicked"}, "q/d.parquet": {"clicked"}}
	for _, st := range src.Files() {
		if !slices.Equal(st.Missing, wantMissing[st.Key]) {
			t.Errorf("%s: Missing = %q, want %q", st.Key, st.Missing, wantMissing[st.Key])
		}
	}
}

// TestOptionalRequiredColumnMissing: a column that Optional does not name
// is still required, whatever Optional names.
func TestOptionalRequiredColumnMissing(t *testing.T) {
	// The files lack clicked (optional) and price (required).
	header := []string{"id", "cat"}
	rows := [][]string{{"a", "x"}}
	tests := []struct {
		name, key string
		data      []byte
		csv       CSVOptions
		want      string // in the message, besides the key
	}{
		{name: "csv with header", key: "q/a.csv", data: delimited(",", header, rows), want: `column "price" missing from header`},
		{
			name: "csv without header", key: "q/a.csv", data: delimited(",", nil, rows),
			csv: CSVOptions{ColumnNames: header}, want: `column "price" missing from column names`,
		},
		{name: "tsv with header", key: "q/a.tsv", data: delimited("\t", header, rows), want: `column "price" missing from header`},
		{
			name: "tsv header replaced by names", key: "q/a.tsv", data: delimited("\t", []string{"id", "price"}, rows),
			csv: CSVOptions{Header: true, ColumnNames: header}, want: `column "price" missing from column names`,
		},
		{name: "gzip csv", key: "q/a.csv.gz", data: gzipBytes(delimited(",", header, rows)), want: `column "price" missing from header`},
		{
			name: "parquet", key: "q/a.parquet", data: writeParquet(t, []pqIDCat{{ID: "a", Cat: ptr("x")}}),
			want: `column "price" missing from parquet schema`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			files := []store.ObjectInfo{f.put(tc.key, tc.data)}
			src := mustOpen(t, f.b, files, Options{
				Schema: labelSchema, Optional: []string{"clicked"}, CSV: tc.csv, Mem: newMem(t),
				OnBadRow: func(RowError) error { return nil },
			})
			_, err := cellRows(t, src)
			if !errors.Is(err, ErrBadInput) {
				t.Fatalf("error %v, want ErrBadInput", err)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.key) || !strings.Contains(msg, tc.want) {
				t.Errorf("error %q should name %q and say %q", msg, tc.key, tc.want)
			}
		})
	}
}

// TestOptionalJSONLMissingMembers: in JSON Lines a missing member is a null
// in a nullable field and a bad row in a required one, with or without
// Optional.
func TestOptionalJSONLMissingMembers(t *testing.T) {
	f := newFixture(t)
	files := []store.ObjectInfo{f.put("q/a.jsonl", []byte(`{"id":"a","cat":"x"}`+"\n"+`{"cat":"y","price":1}`+"\n"+`{"id":"c"}`+"\n"))}
	for _, optional := range [][]string{nil, {"clicked"}, {"clicked", "price", "cat"}} {
		t.Run(strings.Join(optional, ","), func(t *testing.T) {
			var bad []RowError
			src := mustOpen(t, f.b, files, Options{
				Schema: labelSchema, Optional: optional, Mem: newMem(t), RawMaxBytes: -1,
				OnBadRow: func(e RowError) error { bad = append(bad, e); return nil },
			})
			rows, err := cellRows(t, src)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"a|<nil>|<nil>|x", "c|<nil>|<nil>|<nil>"}; !slices.Equal(rows, want) {
				t.Errorf("rows\n got  %q\n want %q", rows, want)
			}
			want := RowError{File: "q/a.jsonl", Row: 2, Line: 2, Column: "id", Reason: "missing required value"}
			if len(bad) != 1 || bad[0] != want {
				t.Errorf("OnBadRow got %#v, want %#v", bad, want)
			}
		})
	}
}

func TestOptionalValidation(t *testing.T) {
	withNullableID := arrow.NewSchema([]arrow.Field{
		{Name: "ad", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "clicked", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	tests := []struct {
		name string
		opts Options
		want string // in the message
	}{
		{"not a field", Options{Schema: labelSchema, Optional: []string{"clicked", "label"}}, `optional column "label" is not a field of the schema`},
		{"not nullable", Options{Schema: labelSchema, Optional: []string{"id"}}, `optional column "id" is not nullable`},
		{
			"an id column",
			Options{Schema: withNullableID, IDColumns: []string{"ad"}, Optional: []string{"clicked", "ad"}},
			`optional column "ad" is an id column`,
		},
		{"empty name", Options{Schema: labelSchema, Optional: []string{""}}, `optional column "" is not a field`},
	}
	f := newFixture(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), f.b, nil, tc.opts)
			if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open: %v, want ErrInvalidOptions saying %q", err, tc.want)
			}
		})
	}
	t.Run("valid", func(t *testing.T) {
		opts := Options{Schema: withNullableID, IDColumns: []string{"ad"}, Optional: []string{"clicked", "clicked"}, Mem: newMem(t)}
		if _, err := cellRows(t, mustOpen(t, f.b, nil, opts)); err != nil {
			t.Errorf("Open with a valid Optional: %v", err)
		}
	})
}
