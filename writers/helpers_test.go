package writers

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

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

var (
	tsUTC = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}

	scoreSchema = arrow.NewSchema([]arrow.Field{
		{Name: "ad_id", Type: arrow.BinaryTypes.String},
		{Name: "campaign_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "score", Type: arrow.PrimitiveTypes.Float32},
		{Name: "score64", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
		{Name: "impressions", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "event_time", Type: tsUTC},
	}, nil)

	rejectSchema = arrow.NewSchema([]arrow.Field{
		{Name: "input_key", Type: arrow.BinaryTypes.String},
		{Name: "line", Type: arrow.PrimitiveTypes.Int64},
		{Name: "reason", Type: arrow.BinaryTypes.String},
	}, nil)
)

type scoreRow struct {
	AdID     string
	Campaign *string
	Score    float32
	Score64  *float64
	Impr     *int64
	Event    time.Time
}

func ptr[T any](v T) *T { return &v }

func scoreRecord(mem memory.Allocator, rows []scoreRow) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, scoreSchema)
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

// genScores makes n deterministic rows; seed varies the content.
func genScores(seed, n int) []scoreRow {
	rows := make([]scoreRow, n)
	for i := range rows {
		r := scoreRow{
			AdID:  fmt.Sprintf("ad-%d-%04d", seed, i),
			Score: float32(i%7)/7 + 0.1,
			Event: time.Date(2020, 9, 1+i%28, i%24, i%60, 0, 123456000+i*1000, time.UTC),
		}
		if i%3 != 0 {
			r.Campaign = ptr(fmt.Sprintf("camp-%d", i%4))
			r.Score64 = ptr(float64(i) / 3)
		}
		if i%5 != 0 {
			r.Impr = ptr(int64(i * 1000))
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

func duck(t *testing.T) *sql.DB {
	t.Helper()
	duckOnce.Do(func() { duckDB, duckErr = sql.Open("duckdb", "") })
	if duckErr != nil {
		t.Fatal(duckErr)
	}
	return duckDB
}

// queryRows runs a query and renders each row as one line, columns joined
// by " | ", with a header line of column names. Timestamps must come back
// in UTC and are printed as RFC 3339; floats print their shortest exact
// form at their own precision.
func queryRows(t *testing.T, q string) []string {
	t.Helper()
	rows, err := duck(t).Query(q)
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
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		cells := make([]string, len(vals))
		for i, v := range vals {
			cells[i] = render(t, v)
		}
		out = append(out, strings.Join(cells, " | "))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func render(t *testing.T, v any) string {
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

// golden compares got with testdata/<name>, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
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
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
