package app

import (
	"context"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/runlog"
	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// The daemon applies the retention section (what scorer gc does): an old
// run record goes, the newest of its job stays.
func TestDaemonAppliesRetention(t *testing.T) {
	ctx := context.Background()
	cfg := demoConfig(t)
	cfg.Retention.RunRecordsDays = 30
	now := time.Now().UTC()
	out, err := store.Open(ctx, cfg.Output)
	if err != nil {
		t.Fatal(err)
	}
	l := runlog.New(out)
	recs := map[string]time.Time{
		"20200101T000000Z-00000001": now.AddDate(0, 0, -90),
		"20200201T000000Z-00000002": now.AddDate(0, 0, -60),
		"20260101T000000Z-00000003": now.AddDate(0, 0, -1),
	}
	for id, started := range recs {
		r := &runlog.Record{RunID: id, Job: "queue", Kind: KindQueue, Trigger: runlog.Manual, StartedAt: started}
		if err := l.Start(ctx, r); err != nil {
			t.Fatal(err)
		}
		r.Outcome, r.FinishedAt = runlog.Succeeded, started.Add(time.Minute)
		if err := l.Finish(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	d, err := NewDaemon(ctx, New(cfg, Options{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	d.collect(ctx)
	for id, started := range recs {
		ok, err := state.Exists(ctx, out, state.RunKey("queue", id))
		if err != nil {
			t.Fatal(err)
		}
		if want := now.Sub(started) < 30*24*time.Hour; ok != want {
			t.Errorf("run record %s (started %s ago): exists %v, want %v", id, now.Sub(started).Round(time.Hour), ok, want)
		}
	}
}
