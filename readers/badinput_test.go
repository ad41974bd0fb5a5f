package readers

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/adtech/scorer/readers/store"
)

// storedGzip gzips data in stored (uncompressed) blocks, so that a byte
// changed in the compressed file changes the same byte of the decoded text
// and the stream only fails its checksum at the end.
func storedGzip(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A gzip file damaged mid-stream decodes to wrong text before its checksum
// fails: the error must name the corrupt stream, not the first row that
// the damage happened to break.
func TestCorruptGzipMidStream(t *testing.T) {
	rows := makeRows("", 300)
	for _, tc := range []struct {
		key  string
		text []byte
		bad  byte // put into row 150's id
	}{
		{"q/a.csv.gz", csvBytes(rows, ","), ','},
		{"q/a.jsonl.gz", jsonlBytes(rows), '"'},
	} {
		for _, tolerate := range []bool{false, true} {
			name := tc.key
			if tolerate {
				name += "/tolerated"
			}
			t.Run(name, func(t *testing.T) {
				z := storedGzip(t, tc.text)
				// Break row 150: a stray comma or quote in its text.
				at := bytes.Index(z, []byte(rows[150].ID))
				if at < 0 {
					t.Fatal("row not found in the stored gzip")
				}
				z[at] = tc.bad
				f := newFixture(t)
				opts := Options{Schema: adSchema, Mem: newMem(t)}
				if tolerate {
					opts.OnBadRow = func(RowError) error { return nil }
				}
				res := drain(t, mustOpen(t, f.b, []store.ObjectInfo{f.put(tc.key, z)}, opts))
				if !errors.Is(res.err, ErrBadInput) {
					t.Fatalf("error %v, want ErrBadInput", res.err)
				}
				msg := res.err.Error()
				for _, want := range []string{tc.key, "corrupt gzip", "compressed byte"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not say %q", msg, want)
					}
				}
			})
		}
	}
}

// A bad row carries the row's ids when they can be read, and its raw text
// shortened to RawMaxBytes.
func TestRowErrorIDsAndRaw(t *testing.T) {
	tests := []struct {
		name, key, data string
		raw             int
		wantIDs         []string
		wantRaw         string
	}{
		{"csv bad value", "a.csv", "id,cat,price,ts\nr1,x,1,\nr2,x,abc,\n", 0, []string{"r2"}, "r2,x,abc,"},
		{"csv ragged", "a.csv", "id,cat,price,ts\nr1,x,1,\nr2,x,1,,9\n", 0, nil, "r2,x,1,,9"},
		{"csv quoted over lines", "a.csv", "id,cat,price,ts\n\"r\n1\",\"a\nb\",zz,\n", 0, []string{"r\n1"}, "\"r\n1\",\"a\nb\",zz,"},
		{"csv crlf shortened", "a.csv", "id,cat,price,ts\r\nr2,xxxxxxxx,abc,\r\n", 8, []string{"r2"}, "r2,xxxxx"},
		{"csv no raw", "a.csv", "id,cat,price,ts\nr2,x,abc,\n", -1, []string{"r2"}, ""},
		{"csv missing id", "a.csv", "id,cat,price,ts\n,x,1,\n", 0, nil, ",x,1,"},
		{"jsonl bad value", "a.jsonl", "{\"id\":\"r1\"}\n{\"id\": 7, \"price\": \"abc\"}\n", 0, []string{"7"}, "{\"id\": 7, \"price\": \"abc\"}"},
		{"jsonl malformed", "a.jsonl", "{\"id\":\"r1\"}\n{\"id\": \"r2\", \n", 0, nil, "{\"id\": \"r2\","},
		{"gzip csv", "a.csv.gz", "id,cat,price,ts\nr1,x,1,\nr2,x,abc,\n", 0, []string{"r2"}, "r2,x,abc,"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			data := []byte(tc.data)
			if strings.HasSuffix(tc.key, ".gz") {
				data = gzipBytes(data)
			}
			var got []RowError
			opts := Options{
				Schema: adSchema, Mem: newMem(t), IDColumns: []string{"id"}, RawMaxBytes: tc.raw,
				OnBadRow: func(e RowError) error { got = append(got, e); return nil },
			}
			res := drain(t, mustOpen(t, f.b, []store.ObjectInfo{f.put(tc.key, data)}, opts))
			if res.err != nil {
				t.Fatal(res.err)
			}
			if len(got) != 1 {
				t.Fatalf("%d bad rows, want 1: %v", len(got), got)
			}
			if !slices.Equal(got[0].IDs(), tc.wantIDs) || got[0].Raw != tc.wantRaw {
				t.Errorf("ids %q raw %q, want %q %q", got[0].IDs(), got[0].Raw, tc.wantIDs, tc.wantRaw)
			}
		})
	}
}

func TestIDColumnsMustBeInSchema(t *testing.T) {
	f := newFixture(t)
	_, err := Open(t.Context(), f.b, nil, Options{Schema: adSchema, IDColumns: []string{"nope"}})
	if !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("error %v, want ErrInvalidOptions", err)
	}
}

// Admit turns the rows it refuses into bad rows, in every format, with the
// row's place, ids and text.
func TestAdmit(t *testing.T) {
	rows := makeRows("", 6)
	for _, tc := range everyFormat(t, rows) {
		t.Run(tc.key, func(t *testing.T) {
			f := newFixture(t)
			var got []RowError
			opts := Options{
				Schema: adSchema, Mem: newMem(t), IDColumns: []string{"id"},
				Admit: func(ids []string) string {
					if ids[0] == rows[3].ID {
						return "duplicate request id"
					}
					return ""
				},
				OnBadRow: func(e RowError) error { got = append(got, e); return nil },
			}
			res := drain(t, mustOpen(t, f.b, []store.ObjectInfo{f.put(tc.key, tc.data)}, opts))
			if res.err != nil || len(res.rows) != 5 {
				t.Fatalf("%d rows, error %v; want 5 rows", len(res.rows), res.err)
			}
			if len(got) != 1 || got[0].Row != 4 || got[0].Reason != "duplicate request id" || got[0].Column != "id" ||
				got[0].Value != rows[3].ID || !slices.Equal(got[0].IDs(), []string{rows[3].ID}) {
				t.Fatalf("bad rows %+v", got)
			}
			if tc.key != "a.parquet" && !strings.Contains(got[0].Raw, rows[3].ID) {
				t.Errorf("raw %q does not hold the row", got[0].Raw)
			}
			// The refused row leaves nothing behind in the rows after it.
			diffRows(t, sortRows(res.rows), sortRows(slices.Delete(slices.Clone(rows), 3, 4)))
		})
	}
}

// Checks turn the rows they refuse into bad rows, in every format, with
// the row's place, ids, the field and its value (a null seen as ""); a
// check's error stops reading.
func TestChecks(t *testing.T) {
	rows := makeRows("", 6) // cat: null in rows 0 and 5
	for _, tc := range everyFormat(t, rows) {
		t.Run(tc.key, func(t *testing.T) {
			f := newFixture(t)
			var got []RowError
			var mu sync.Mutex
			seen := map[string]int{}
			opts := Options{
				Schema: adSchema, Mem: newMem(t), IDColumns: []string{"id"},
				Checks: []StringCheck{{Column: "cat", Check: func(_ context.Context, v string) (string, error) {
					mu.Lock()
					seen[v]++
					mu.Unlock()
					if v == *rows[2].Cat || v == "" {
						return "not a known category", nil
					}
					return "", nil
				}}},
				OnBadRow: func(e RowError) error { got = append(got, e); return nil },
			}
			res := drain(t, mustOpen(t, f.b, []store.ObjectInfo{f.put(tc.key, tc.data)}, opts))
			if res.err != nil || len(res.rows) != 3 {
				t.Fatalf("%d rows, error %v; want 3 rows (1, 3, 4)", len(res.rows), res.err)
			}
			if len(got) != 3 || got[0].Row != 1 || got[0].Value != "" || got[1].Row != 3 || got[1].Value != *rows[2].Cat ||
				got[1].Column != "cat" || got[1].Reason != "not a known category" || !slices.Equal(got[1].IDs(), []string{rows[2].ID}) || got[2].Row != 6 {
				t.Fatalf("bad rows %+v", got)
			}
			if seen[""] != 2 {
				t.Errorf("the check saw the nulls %d times, want 2", seen[""])
			}

			stop := errors.New("the image store is down")
			opts.Checks[0].Check = func(context.Context, string) (string, error) { return "", stop }
			res = drain(t, mustOpen(t, f.b, []store.ObjectInfo{f.put(tc.key, tc.data)}, opts))
			if !errors.Is(res.err, stop) || !strings.Contains(res.err.Error(), `column "cat"`) {
				t.Fatalf("a failing check: error %v", res.err)
			}
		})
	}
	f := newFixture(t)
	if _, err := Open(t.Context(), f.b, nil, Options{Schema: adSchema, Checks: []StringCheck{{Column: "price", Check: func(context.Context, string) (string, error) { return "", nil }}}}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("a check of a float64 field: %v, want ErrInvalidOptions", err)
	}
}

// An empty field of a required string column is a missing value when ""
// is not a null token, in a row of ASCII and in one that is not (the
// decoder's shortcut for ASCII rows must not take it as a string); a
// nullable column keeps it as "".
func TestCSVEmptyRequiredString(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "id", Type: arrow.BinaryTypes.String},
		{Name: "note", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	f := newFixture(t)
	data := "id,note\nr1,\n,ascii\n,é\nr4,x\n"
	var bad []RowError
	opts := Options{
		Schema: schema, Mem: newMem(t), CSV: CSVOptions{NullValues: []string{"NA"}},
		OnBadRow: func(e RowError) error { bad = append(bad, e); return nil },
	}
	src := mustOpen(t, f.b, []store.ObjectInfo{f.put("a.csv", []byte(data))}, opts)
	var got []string // good rows as id|note, a null note as <nil>
	for {
		rec, err := src.Read(t.Context())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids, notes := rec.Column(0).(*array.String), rec.Column(1).(*array.String)
		for i := range ids.Len() {
			note := notes.Value(i)
			if notes.IsNull(i) {
				note = "<nil>"
			}
			got = append(got, ids.Value(i)+"|"+note)
		}
		rec.Release()
	}
	if len(bad) != 2 {
		t.Fatalf("%d bad rows, want rows 2 and 3: %v", len(bad), bad)
	}
	for k, e := range bad {
		if e.Row != int64(k+2) || e.Column != "id" || e.Reason != reasonMissing {
			t.Errorf("bad row %+v, want row %d, column id, %q", e, k+2, reasonMissing)
		}
	}
	if g := strings.Join(got, " "); g != "r1| r4|x" {
		t.Errorf("good rows %q, want %q", g, "r1| r4|x")
	}
}
