// Package writertest holds the test helpers that writers and writers/table
// share: a score table with every column type the encoder maps, its record
// builder and generator, DuckDB queries rendered as text, and golden files
// refreshed with -update. Only tests import it.
package writertest

import (
	"database/sql"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	_ "github.com/duckdb/duckdb-go/v2"
)

// Update rewrites golden files instead of comparing with them (-update).
var Update = flag.Bool("Update", false, "rewrite golden files in testdata/")

var (
	// TsUTC is the timestamp type of the test tables.
	TsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

	// ScoreSchema is a score table with every column type the encoder maps.
	ScoreSchema = arrow.NewSchema([]arrow.Field{
		{Name: "ad_id", Type: arrow.BinaryTypes.String},
		{Name: "campaign_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float32},
		{Name: "score64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "impressions", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "event_time", Type: TsUTC},
	}, nil)

	// RejectSchema is a small rejects table.
	RejectSchema = arrow.NewSchema([]arrow.Field{
		{Name: "input_key", Type: arrow.BinaryTypes.String},
		{Name: "line", Type: arrow.PrimitiveTypes.Int64},
		{Name: "reason", Type: arrow.BinaryTypes.String},
	}, nil)
)

// ScoreRow is one row of ScoreSchema; nil pointers are NULLs.
type ScoreRow struct {
	AdID     string
	Campaign *string
	Score    float32
	Score64  *float64
	Impr     *int64
	Event    time.Time
}

// Ptr returns a pointer to a copy of v.
func Ptr[T any](v T) *T { return &v }

// ScoreRecord builds a record batch of ScoreSchema from rows.
func ScoreRecord(mem memory.Allocator, rows []ScoreRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, ScoreSchema)
	defer b.Release()
	for _, r := range rows {
		b.Field(0).(*array.StringBuilder).Append(r.AdID)
		if r.Campaign == nil {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.StringBuilder).Append(*r.Campaign)
		}
		b.Field(2).(*array.Float32Builder).Append(r.Score)
		if r.Score64 == nil {
			b.Field(3).AppendNull()
		} else {
			b.Field(3).(*array.Float64Builder).Append(*r.Score64)
		}
		if r.Impr == nil {
			b.Field(4).AppendNull()
		} else {
			b.Field(4).(*array.Int64Builder).Append(*r.Impr)
		}
		b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(r.Event.UnixMicro()))
	}
	return b.NewRecordBatch()
}

// GenScores makes n deterministic rows; seed varies the content.
func GenScores(seed, n int) []ScoreRow {
	rows := make([]ScoreRow, n)
	for i := range rows {
		r := ScoreRow{
			AdID:  fmt.Sprintf("ad-%d-%04d", seed, i),
			Score: float32(i%7)/7 + 0.1,
			Event: time.Date(2020, 9, 1+i%28, i%24, i%60, 0, 123456000+i*1000, time.UTC),
		}
		if i%3 != 0 {
			r.Campaign = Ptr(fmt.Sprintf("camp-%d", i%4))
			r.Score64 = Ptr(float64(i) / 3)
		}
		if i%5 != 0 {
			r.Impr = Ptr(int64(i * 1000))
		}
		rows[i] = r
	}
	return rows
}

var (
	duckOnce sync.Once
	duckDB   *sql.DB
	duckErr  error
)

// Duck is one in-memory DuckDB shared by the tests of a package.
func Duck(t *testing.T) *sql.DB {
	t.Helper()
	duckOnce.Do(func() { duckDB, duckErr = sql.Open("duckdb", "") })
	if duckErr != nil {
		t.Fatal(duckErr)
	}
	return duckDB
}

// QueryRows runs a query and renders each row as one line, columns joined
// by " | ", with a header line of column names. Timestamps must come back
// in UTC and are printed as RFC 3339; floats print their shortest exact
// form at their own precision.
func QueryRows(t *testing.T, q string) []string {
	t.Helper()
	rows, err := Duck(t).Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer func() { _ = rows.Close() }()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{strings.Join(cols, " | ")}
	for rows.Next() {
		vals := make([]any, len(cols))
		Ptrs := make([]any, len(cols))
		for i := range vals {
			Ptrs[i] = &vals[i]
		}
		if err := rows.Scan(Ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = Render(t, v)
		}
		out = append(out, strings.Join(cells, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Render prints one DuckDB value: strings quoted, floats at their own
// precision (float32 with an f), timestamps in RFC 3339 (and UTC, or the
// test fails), NULL as NULL.
func Render(t *testing.T, v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(v)
	case float32:
		return strconv.FormatFloat(float64(v), 'g', -1, 32) + "f"
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case time.Time:
		if v.Location() != time.UTC {
			t.Errorf("timestamp %v is in %v, want UTC", v, v.Location())
		}
		return v.Format(time.RFC3339Nano)
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

// Golden compares got with testdata/<name>, or rewrites it with -Update.
func Golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *Update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -Update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
