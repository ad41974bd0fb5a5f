package writers

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/adtech/scorer/readers/store"
)

func writeParts(t testing.TB, b store.Bucket, prefix string, cfg PartConfig, recs ...arrow.RecordBatch) []PartFile {
	t.Helper()
	ctx := context.Background()
	w, err := NewPartWriter(b, recs[0].Schema(), func(n int) string { return fmt.Sprintf("%s/part-%05d.parquet", prefix, n) }, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Write(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	parts, err := w.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return parts
}

// TestPartWriterRoundTrip writes every supported type, with nulls and
// edge values, and reads it back with DuckDB: types, UTC timestamps, exact
// floats, constants and the Hive partition column.
func TestPartWriterRoundTrip(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	b := store.NewFileBucket(dir)

	rows := []scoreRow{
		{AdID: "a", Campaign: ptr("c1"), Score: 0.1, Score64: ptr(0.1), Impr: ptr(int64(math.MaxInt64)), Event: time.Date(2020, 9, 2, 23, 59, 59, 999999000, time.UTC)},
		{AdID: "b", Score: math.SmallestNonzeroFloat32, Event: time.Date(1970, 1, 1, 0, 0, 0, 1000, time.UTC)},
		{AdID: "c", Campaign: ptr(""), Score: -math.MaxFloat32, Score64: ptr(math.SmallestNonzeroFloat64), Impr: ptr(int64(math.MinInt64)), Event: time.Date(1969, 12, 31, 23, 0, 0, 0, time.UTC)},
		{AdID: "d", Campaign: ptr("ünïcødé ✓"), Score: float32(math.Inf(1)), Score64: ptr(math.Copysign(0, -1)), Impr: ptr(int64(0)), Event: time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)},
		{AdID: "e", Campaign: ptr("c1"), Score: 1, Score64: ptr(math.Inf(-1)), Event: time.Date(2020, 9, 2, 0, 0, 0, 0, time.UTC)},
	}
	rec := scoreRecord(mem, rows)
	defer rec.Release()
	cfg := PartConfig{Constants: []Constant{
		{Name: "model_name", Value: "ctr"},
		{Name: "run_id", Value: "r1"},
		{Name: "scored_at", Value: time.Date(2020, 9, 2, 3, 15, 0, 123456789, time.FixedZone("CEST", 7200))},
		{Name: "threshold", Value: 0.5},
	}}
	writeParts(t, b, "t/month=2020-09", cfg, rec)

	glob := filepath.ToSlash(dir) + "/t/*/*.parquet"
	types := queryRows(t, fmt.Sprintf("SELECT column_name, column_type, \"null\" FROM (DESCRIBE SELECT * FROM read_parquet('%s', hive_partitioning=true))", glob))
	golden(t, "roundtrip_types.golden", joinLines(types))
	got := queryRows(t, fmt.Sprintf("SELECT * FROM read_parquet('%s', hive_partitioning=true) ORDER BY ad_id", glob))
	golden(t, "roundtrip_rows.golden", joinLines(got))

	// Floats exactly, not just as printed.
	var f32 float32
	var f64 float64
	if err := duck(t).QueryRow(fmt.Sprintf("SELECT score, score64 FROM read_parquet('%s') WHERE ad_id = 'a'", glob)).Scan(&f32, &f64); err != nil {
		t.Fatal(err)
	}
	if f32 != 0.1 || f64 != 0.1 {
		t.Errorf("floats: got %v %v, want 0.1 (float32) and 0.1", f32, f64)
	}
	var ts time.Time
	if err := duck(t).QueryRow(fmt.Sprintf("SELECT event_time FROM read_parquet('%s') WHERE ad_id = 'a'", glob)).Scan(&ts); err != nil {
		t.Fatal(err)
	}
	if !ts.Equal(rows[0].Event) || ts.Location() != time.UTC {
		t.Errorf("timestamp: got %v (%v), want %v UTC", ts, ts.Location(), rows[0].Event)
	}
}

func joinLines(l []string) string {
	var b bytes.Buffer
	for _, s := range l {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return b.String()
}

func openParquet(t *testing.T, path string) *parquet.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	return pf
}

// TestPartWriterFileMetadata checks the physical layout: zstd, dictionary
// for strings, statistics on every chunk, the TIMESTAMP annotation, row
// groups and part rolling, column order.
func TestPartWriterFileMetadata(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	rows := genScores(5, 2500)
	r1 := scoreRecord(mem, rows[:1234])
	defer r1.Release()
	r2 := scoreRecord(mem, rows[1234:])
	defer r2.Release()
	cfg := PartConfig{RowGroupRows: 300, PartRows: 1000, Constants: []Constant{{Name: "model_name", Value: "ctr"}}}
	parts := writeParts(t, b, "t/p=1", cfg, r1, r2)

	if got, want := len(parts), 3; got != want {
		t.Fatalf("%d parts, want %d", got, want)
	}
	wantRows := []int64{1000, 1000, 500}
	wantGroups := [][]int64{{300, 300, 300, 100}, {300, 300, 300, 100}, {300, 200}}
	for i, p := range parts {
		if p.Rows != wantRows[i] {
			t.Errorf("part %d: %d rows, want %d", i, p.Rows, wantRows[i])
		}
		path := filepath.Join(dir, filepath.FromSlash(p.Key))
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() != p.Bytes {
			t.Errorf("part %d: %d bytes on disk, PartFile says %d", i, st.Size(), p.Bytes)
		}
		md := openParquet(t, path).Metadata()
		var names []string
		for _, el := range md.Schema[1:] {
			names = append(names, el.Name)
		}
		if want := []string{"ad_id", "campaign_id", "score", "score64", "impressions", "event_time", "model_name"}; !slices.Equal(names, want) {
			t.Errorf("column order %v, want %v", names, want)
		}
		ts := md.Schema[6].LogicalType.Value
		if tt, ok := ts.(*format.TimestampType); !ok || !tt.IsAdjustedToUTC || tt.Unit.Value.String() != "MICROS" {
			t.Errorf("event_time logical type %v, want TIMESTAMP(MICROS, adjustedToUTC)", ts)
		}
		if md.Schema[1].RepetitionType.V != format.Required || md.Schema[2].RepetitionType.V != format.Optional {
			t.Errorf("repetition: ad_id %v, campaign_id %v", md.Schema[1].RepetitionType.V, md.Schema[2].RepetitionType.V)
		}
		var groups []int64
		for _, rg := range md.RowGroups {
			groups = append(groups, rg.NumRows)
			for _, cc := range rg.Columns {
				m := cc.MetaData
				col := m.PathInSchema[0]
				if m.Codec != format.Zstd {
					t.Errorf("%s: codec %v, want ZSTD", col, m.Codec)
				}
				if m.Type == format.ByteArray && !slices.Contains(m.Encoding, format.RLEDictionary) {
					t.Errorf("%s: encodings %v, want RLE_DICTIONARY", col, m.Encoding)
				}
				if m.Type == format.ByteArray && m.DictionaryPageOffset == 0 {
					t.Errorf("%s: no dictionary page", col)
				}
				s := m.Statistics
				if len(s.MinValue) == 0 || len(s.MaxValue) == 0 {
					t.Errorf("%s: no min/max statistics", col)
				}
				if col == "ad_id" && s.NullCount != 0 {
					t.Errorf("ad_id null count %d", s.NullCount)
				}
				if col == "campaign_id" && s.NullCount == 0 {
					t.Errorf("campaign_id: null count 0, want > 0")
				}
			}
		}
		if !slices.Equal(groups, wantGroups[i]) {
			t.Errorf("part %d: row groups %v, want %v", i, groups, wantGroups[i])
		}
	}
	var n int64
	glob := filepath.ToSlash(dir) + "/t/*/*.parquet"
	if err := duck(t).QueryRow(fmt.Sprintf("SELECT count(*) FROM read_parquet('%s')", glob)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2500 {
		t.Errorf("DuckDB counts %d rows, want 2500", n)
	}
}

// A Plain column is written PLAIN, with no dictionary page, keeps its
// statistics, and reads back the same; the other string columns keep their
// dictionary.
func TestPartWriterPlain(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	rows := genScores(7, 2000)
	rec := scoreRecord(mem, rows)
	defer rec.Release()
	cfg := PartConfig{RowGroupRows: 700, Plain: []string{"ad_id"}, Constants: []Constant{{Name: "model_name", Value: "ctr"}}}
	parts := writeParts(t, b, "t/p=1", cfg, rec)
	for _, rg := range openParquet(t, filepath.Join(dir, filepath.FromSlash(parts[0].Key))).Metadata().RowGroups {
		for _, cc := range rg.Columns {
			m := cc.MetaData
			if m.Type != format.ByteArray {
				continue
			}
			col := m.PathInSchema[0]
			dict := slices.Contains(m.Encoding, format.RLEDictionary) || m.DictionaryPageOffset != 0
			if want := col != "ad_id"; dict != want {
				t.Errorf("%s: encodings %v, dictionary page at %d; want a dictionary: %v", col, m.Encoding, m.DictionaryPageOffset, want)
			}
			if len(m.Statistics.MinValue) == 0 || len(m.Statistics.MaxValue) == 0 {
				t.Errorf("%s: no min/max statistics", col)
			}
		}
	}
	glob := filepath.ToSlash(dir) + "/t/*/*.parquet"
	got := queryRows(t, fmt.Sprintf("SELECT ad_id FROM read_parquet('%s')", glob))
	want := []string{"ad_id"} // the header line
	for _, r := range rows {
		want = append(want, strconv.Quote(r.AdID))
	}
	if !slices.Equal(got, want) {
		t.Errorf("DuckDB reads %d lines (%q...), want %d in order (%q...)", len(got), got[:min(3, len(got))], len(want), want[:3])
	}
}

// TestPartWriterEmpty: no rows still gives one readable file with the schema.
func TestPartWriterEmpty(t *testing.T) {
	dir := t.TempDir()
	b := store.NewFileBucket(dir)
	w, err := NewPartWriter(b, rejectSchema, func(n int) string { return fmt.Sprintf("t/p=1/part-%d.parquet", n) }, PartConfig{})
	if err != nil {
		t.Fatal(err)
	}
	parts, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != 1 || parts[0].Rows != 0 {
		t.Fatalf("parts %+v, want one with 0 rows", parts)
	}
	got := queryRows(t, fmt.Sprintf("SELECT count(*) AS n, count(reason) AS r FROM read_parquet('%s/t/*/*.parquet')", filepath.ToSlash(dir)))
	if want := []string{"n | r", "int64(0) | int64(0)"}; !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestPartWriterErrors(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	ctx := context.Background()
	good := scoreRecord(mem, genScores(0, 3))
	defer good.Release()

	nullID := func() arrow.RecordBatch {
		sb := array.NewStringBuilder(mem)
		defer sb.Release()
		sb.AppendNull()
		ids := sb.NewArray()
		defer ids.Release()
		sch := arrow.NewSchema([]arrow.Field{{Name: "ad_id", Type: arrow.BinaryTypes.String}}, nil)
		return array.NewRecordBatch(sch, []arrow.Array{ids}, 1)
	}()
	defer nullID.Release()

	tests := []struct {
		name   string
		schema *arrow.Schema
		cfg    PartConfig
		rec    arrow.RecordBatch // written if the writer was created
		want   error
	}{
		{"int32", arrow.NewSchema([]arrow.Field{{Name: "x", Type: arrow.PrimitiveTypes.Int32}}, nil), PartConfig{}, nil, ErrUnsupportedType},
		{"timestamp ns", arrow.NewSchema([]arrow.Field{{Name: "x", Type: &arrow.TimestampType{Unit: arrow.Nanosecond, TimeZone: "UTC"}}}, nil), PartConfig{}, nil, ErrUnsupportedType},
		{"timestamp no zone", arrow.NewSchema([]arrow.Field{{Name: "x", Type: &arrow.TimestampType{Unit: arrow.Microsecond}}}, nil), PartConfig{}, nil, ErrUnsupportedType},
		{"constant type", scoreSchema, PartConfig{Constants: []Constant{{Name: "k", Value: 3}}}, nil, ErrUnsupportedType},
		{"constant clash", scoreSchema, PartConfig{Constants: []Constant{{Name: "ad_id", Value: "x"}}}, nil, ErrInvalidName},
		{"schema mismatch", rejectSchema, PartConfig{}, good, ErrSchemaMismatch},
		{"null in required", nullID.Schema(), PartConfig{}, nullID, ErrNullInRequired},
		{"plain not a column", scoreSchema, PartConfig{Plain: []string{"nope"}}, nil, ErrInvalidName},
		{"plain not a string", scoreSchema, PartConfig{Plain: []string{"score"}}, nil, ErrUnsupportedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := store.NewFileBucket(t.TempDir())
			w, err := NewPartWriter(b, tt.schema, func(n int) string { return fmt.Sprint("p/", n) }, tt.cfg)
			if err == nil {
				defer w.Abort()
				err = w.Write(ctx, tt.rec)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// A record of more rows than writeChunk is written in several chunks per
// column: every value, null and constant reads back in order, whatever the
// chunk it was in.
func TestPartWriterChunks(t *testing.T) {
	mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
	defer mem.AssertSize(t, 0)
	dir := t.TempDir()
	rows := genScores(9, 2*writeChunk+123)
	rec := scoreRecord(mem, rows)
	defer rec.Release()
	at := time.Date(2020, 9, 2, 3, 15, 0, 0, time.UTC)
	cfg := PartConfig{Constants: []Constant{{Name: "model_name", Value: "ctr"}, {Name: "scored_at", Value: at}}}
	writeParts(t, store.NewFileBucket(dir), "t/p=1", cfg, rec)

	q := fmt.Sprintf("SELECT ad_id, campaign_id, score, score64, impressions, event_time, model_name, scored_at FROM read_parquet('%s/t/*/*.parquet')", filepath.ToSlash(dir))
	res, err := duck(t).Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Close() }()
	i := 0
	for ; res.Next(); i++ {
		var (
			id, model string
			campaign  sql.NullString
			score     float32
			score64   sql.NullFloat64
			impr      sql.NullInt64
			event, ts time.Time
		)
		if err := res.Scan(&id, &campaign, &score, &score64, &impr, &event, &model, &ts); err != nil {
			t.Fatal(err)
		}
		if i >= len(rows) {
			continue
		}
		w := rows[i]
		ok := id == w.AdID && score == w.Score && event.Equal(w.Event) && model == "ctr" && ts.Equal(at) &&
			campaign.Valid == (w.Campaign != nil) && (w.Campaign == nil || campaign.String == *w.Campaign) &&
			score64.Valid == (w.Score64 != nil) && (w.Score64 == nil || score64.Float64 == *w.Score64) &&
			impr.Valid == (w.Impr != nil) && (w.Impr == nil || impr.Int64 == *w.Impr)
		if !ok {
			t.Errorf("row %d reads %q %v %v %v %v %v %q %v, want %+v", i, id, campaign, score, score64, impr, event, model, ts, w)
		}
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(rows) {
		t.Errorf("DuckDB reads %d rows, want %d", i, len(rows))
	}
}
