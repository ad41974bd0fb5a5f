package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/readers/store"
)

// demoConfig is the default configuration on the demo data, with a fresh
// output store.
func demoConfig(t *testing.T) Config {
	t.Helper()
	cfg := Default()
	cfg.Input, cfg.Model, cfg.Output = "../../testdata/store", "../../testdata/models/ctr-demo", t.TempDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// demoMonthBytes is the size of the demo month's dumps.
func demoMonthBytes(t *testing.T) int64 {
	t.Helper()
	files, err := filepath.Glob("../../testdata/store/dumps/2020-09/*")
	if err != nil || len(files) != 2 {
		t.Fatalf("demo month: %v, %v", files, err)
	}
	var n int64
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// backfillRecord backfills a month with a fresh App (as a scorer backfill
// process would) and returns the run's record.
func backfillRecord(t *testing.T, cfg Config, month string) *runlog.Record {
	t.Helper()
	ctx := context.Background()
	a := New(cfg, Options{})
	sum, err := a.Backfill(ctx, BackfillRequest{Month: month})
	var rec *runlog.Record
	switch {
	case err == nil:
		rec, err = a.Run(ctx, sum.RunID)
	case ExitCode(err) == ExitBadInput: // the month's only run
		var recs []*runlog.Record
		recs, _, err = a.History(ctx, HistoryQuery{Job: "backfill.month=" + month})
		if err == nil && len(recs) != 1 {
			err = fmt.Errorf("%d runs of %s", len(recs), month)
		}
		if err == nil {
			rec = recs[0]
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if rec.StoreOps == nil {
		t.Fatalf("run %s (%s) records no store_ops", rec.RunID, rec.Outcome)
	}
	return rec
}

// A run records its store operations: the input's exactly (one listing of
// the month's folder, one read of each file, whole), the output's as far
// as they follow from what was published. Runs after the first make as many
// calls as each other: the calls do not grow with the history.
func TestRunRecordsStoreOps(t *testing.T) {
	cfg := demoConfig(t)
	rec := backfillRecord(t, cfg, "2020-09")
	if rec.Outcome != runlog.Succeeded {
		t.Fatalf("backfill: %s %s", rec.Outcome, rec.Error)
	}
	wantIn := store.OpCounts{List: 1, Listed: 2, Read: 2, ReadBytes: demoMonthBytes(t)}
	if in := rec.StoreOps.Input; in != wantIn {
		t.Errorf("input ops %+v, want %+v", in, wantIn)
	}
	if rec.InputBytes != wantIn.ReadBytes {
		t.Errorf("input bytes %d, store bytes read %d", rec.InputBytes, wantIn.ReadBytes)
	}
	out := rec.StoreOps.Output
	// The run record (its start), the published files and their commit.
	if out.Write < int64(1+len(rec.OutputFiles)) || out.WriteAttempts < out.Write || out.WriteBytes < rec.OutputBytes || out.List == 0 {
		t.Errorf("output ops %+v for %d files (%d bytes) published", out, len(rec.OutputFiles), rec.OutputBytes)
	}

	calls := func(c store.OpCounts) store.OpCounts {
		return store.OpCounts{List: c.List, Stat: c.Stat, Read: c.Read, Write: c.Write, WriteAttempts: c.WriteAttempts, Copy: c.Copy, Delete: c.Delete}
	}
	second, third := backfillRecord(t, cfg, "2020-09"), backfillRecord(t, cfg, "2020-09")
	if second.StoreOps.Input != wantIn || third.StoreOps.Input != wantIn {
		t.Errorf("input ops of later runs %+v, %+v, want %+v", second.StoreOps.Input, third.StoreOps.Input, wantIn)
	}
	if a, b := calls(second.StoreOps.Output), calls(third.StoreOps.Output); a != b {
		t.Errorf("output calls grew with the history: %+v, then %+v", a, b)
	}

	// A run that fails records what it did too.
	bad := backfillRecord(t, cfg, "2020-07")
	if bad.Outcome != runlog.BadInput || bad.StoreOps.Input != (store.OpCounts{List: 1}) || bad.StoreOps.Output.Write == 0 {
		t.Errorf("run of a month without dumps: %s, ops %+v", bad.Outcome, bad.StoreOps)
	}
}

// The daemon's /metrics adds up the store operations of the runs, manual
// ones included.
func TestMetricsCountStoreOps(t *testing.T) {
	ctx := context.Background()
	cfg := demoConfig(t)
	d, err := NewDaemon(ctx, New(cfg, Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.metrics.Baseline(ctx); err != nil {
		t.Fatal(err)
	}
	scrape := func() string {
		t.Helper()
		w := httptest.NewRecorder()
		d.handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, MetricsPath, nil))
		body, _ := io.ReadAll(w.Result().Body)
		if w.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", MetricsPath, w.Code, body)
		}
		return string(body)
	}
	if body := scrape(); !strings.Contains(body, `scorer_store_operations_total{op="read",store="input"} 0`+"\n") {
		t.Errorf("no zero store counters before any run:\n%s", grepLines(body, "scorer_store_"))
	}

	rec := backfillRecord(t, cfg, "2020-09") // by another process
	body := scrape()
	in, out := rec.StoreOps.Input, rec.StoreOps.Output
	for _, want := range []string{
		`scorer_store_operations_total{op="list",store="input"} 1`,
		`scorer_store_operations_total{op="read",store="input"} 2`,
		`scorer_store_operations_total{op="write",store="input"} 0`,
		fmt.Sprintf(`scorer_store_operations_total{op="list",store="output"} %d`, out.List),
		fmt.Sprintf(`scorer_store_operations_total{op="stat",store="output"} %d`, out.Stat),
		fmt.Sprintf(`scorer_store_operations_total{op="read",store="output"} %d`, out.Read),
		fmt.Sprintf(`scorer_store_operations_total{op="write",store="output"} %d`, out.Write),
		fmt.Sprintf(`scorer_store_operations_total{op="copy",store="output"} %d`, out.Copy),
		fmt.Sprintf(`scorer_store_operations_total{op="delete",store="output"} %d`, out.Delete),
		fmt.Sprintf(`scorer_store_bytes_total{direction="read",store="input"} %d`, in.ReadBytes),
		fmt.Sprintf(`scorer_store_bytes_total{direction="write",store="output"} %d`, out.WriteBytes),
		fmt.Sprintf(`scorer_store_objects_listed_total{store="output"} %d`, out.Listed),
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "scorer_store_"))
		}
	}
}

// grepLines keeps the lines of s that start with prefix.
func grepLines(s, prefix string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l)
		}
	}
	return b.String()
}
