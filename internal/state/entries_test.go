package state_test

import (
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
)

// The parsers of listed keys take back what the key functions make, and
// nothing else.
func TestEntries(t *testing.T) {
	if job, id, ok := state.RunRecordEntry(state.RunKey("backfill.month=2020-09", "r1")); !ok || job != "backfill.month=2020-09" || id != "r1" {
		t.Errorf("RunRecordEntry = %q, %q, %v", job, id, ok)
	}
	for _, key := range []string{"_scorer/runs/queue/r1.tmp", "_scorer/runs/queue/x/r1.json", "_scorer/runs/r1.json", "_scorer/runs//r1.json", "_scorer/commits/r1.json"} {
		if _, _, ok := state.RunRecordEntry(key); ok {
			t.Errorf("RunRecordEntry(%q) accepted", key)
		}
	}
	slot := time.Date(2020, 9, 2, 3, 0, 0, 0, time.UTC)
	if job, got, ok := state.SlotEntry(state.SlotKey("nightly", slot)); !ok || job != "nightly" || !got.Equal(slot) {
		t.Errorf("SlotEntry = %q, %v, %v", job, got, ok)
	}
	for _, key := range []string{state.WatermarkKey("nightly"), "_scorer/schedule/nightly/slots/x.json", "_scorer/schedule/a/b/slots/20200902T030000Z.json", "_scorer/runs/nightly/slots/20200902T030000Z.json"} {
		if _, _, ok := state.SlotEntry(key); ok {
			t.Errorf("SlotEntry(%q) accepted", key)
		}
	}
	for key, want := range map[string]struct {
		id       string
		done, ok bool
	}{
		state.ArchivedKey(state.CommitKey("r1")): {"r1", false, true},
		state.ArchivedKey(state.DoneKey("r1")):   {"r1", true, true},
		"_scorer/archive/commits/x/r1.json":      {"", false, false},
		state.CommitKey("r1"):                    {"", false, false},
	} {
		id, done, ok := state.ArchivedCommitEntry(key)
		if id != want.id || done != want.done || ok != want.ok {
			t.Errorf("ArchivedCommitEntry(%q) = %q, %v, %v", key, id, done, ok)
		}
	}
	if job, ok := state.ShardPlanJob(state.ShardPlanKey("backfill.month=2020-09")); !ok || job != "backfill.month=2020-09" {
		t.Errorf("ShardPlanJob = %q, %v", job, ok)
	}
	for _, key := range []string{state.ShardRecordKey("j", "p1", 0), "_scorer/shards/plan.json", "_scorer/shards/a/b/plan.json"} {
		if _, ok := state.ShardPlanJob(key); ok {
			t.Errorf("ShardPlanJob(%q) accepted", key)
		}
	}
}
