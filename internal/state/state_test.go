package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/adtech/scorer/internal/state"
	"github.com/adtech/scorer/readers/store"
)

// TestKeys pins every key: they are an on-store format, and a store
// written by an earlier build must keep working.
func TestKeys(t *testing.T) {
	slot := time.Date(2020, 9, 2, 5, 0, 0, 0, time.FixedZone("CEST", 2*3600))
	tests := []struct{ got, want string }{
		{state.CommitKey("r1"), "_scorer/commits/r1.json"},
		{state.DoneKey("r1"), "_scorer/commits/r1.done"},
		{state.RunStagingPrefix("r1"), "_scorer/staging/r1/"},
		{state.StagedKey("r1", "ad_scores", "month=2020-09", "part-r1-00000.parquet"), "_scorer/staging/r1/ad_scores/month=2020-09/part-r1-00000.parquet"},
		{state.RunMarkerKey("r1"), "_scorer/staging/r1/_run.json"},
		{state.LeaseKey("backfill.month=2020-09"), "_scorer/leases/backfill.month=2020-09.json"},
		{state.ShardLeasesPrefix("backfill.month=2020-09"), "_scorer/leases/backfill.month=2020-09.shard-"},
		{state.RunKey("queue", "r1"), "_scorer/runs/queue/r1.json"},
		{state.ShardPlanPrefix("j"), "_scorer/shards/j/"},
		{state.ShardPlanKey("j"), "_scorer/shards/j/plan.json"},
		{state.ShardRecordsPrefix("j", "p1"), "_scorer/shards/j/p1/"},
		{state.ShardRecordKey("j", "p1", 7), "_scorer/shards/j/p1/shard-00007.json"},
		{state.WatermarkKey("nightly"), "_scorer/schedule/nightly/watermark.json"},
		{state.SlotsPrefix("nightly"), "_scorer/schedule/nightly/slots/"},
		{state.SlotKey("nightly", slot), "_scorer/schedule/nightly/slots/20200902T030000Z.json"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	if got, ok := state.SlotOf(state.SlotKey("nightly", slot)); !ok || !got.Equal(slot) {
		t.Errorf("SlotOf = %v, %v", got, ok)
	}
	if _, ok := state.SlotOf("_scorer/schedule/nightly/slots/x.json"); ok {
		t.Error("SlotOf accepted a bad name")
	}
	if got := state.StagedRunID("_scorer/staging/r1/ad_scores/x"); got != "r1" {
		t.Errorf("StagedRunID = %q", got)
	}
	for key, want := range map[string]struct {
		id       string
		done, ok bool
	}{
		"_scorer/commits/r1.json":   {"r1", false, true},
		"_scorer/commits/r1.done":   {"r1", true, true},
		"_scorer/commits/r1.tmp":    {"", false, false},
		"_scorer/commits/x/r1.json": {"", false, false},
	} {
		id, done, ok := state.CommitLogEntry(key)
		if id != want.id || done != want.done || ok != want.ok {
			t.Errorf("CommitLogEntry(%q) = %q, %v, %v", key, id, done, ok)
		}
	}
}

func TestConditionalWrites(t *testing.T) {
	ctx := context.Background()
	b := store.NewFileBucket(t.TempDir())
	const key = "_scorer/x.json"

	data, gen, err := state.ReadGen(ctx, b, key)
	if err != nil || data != nil || gen != 0 {
		t.Fatalf("ReadGen of absent = %q, %d, %v", data, gen, err)
	}
	g1, err := state.Swap(ctx, b, key, []byte(`1`), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.Swap(ctx, b, key, []byte(`2`), 0); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("swap over existing with gen 0: %v", err)
	}
	if _, err := state.Create(ctx, b, key, []byte(`2`)); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("create over existing: %v", err)
	}
	data, gen, err = state.ReadGen(ctx, b, key)
	if err != nil || string(data) != "1" || gen != g1 {
		t.Fatalf("ReadGen = %q, %d, %v; want 1, %d", data, gen, err, g1)
	}
	g2, err := state.Swap(ctx, b, key, []byte(`2`), g1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := state.Swap(ctx, b, key, []byte(`3`), g1); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("swap with a stale generation: %v", err)
	}
	if g2 == g1 {
		t.Error("generation did not change")
	}
	if err := state.CreateOrSame(ctx, b, key, []byte(`2`)); err != nil {
		t.Errorf("create-or-same with the same bytes: %v", err)
	}
	if err := state.CreateOrSame(ctx, b, key, []byte(`4`)); !errors.Is(err, store.ErrPrecondition) {
		t.Errorf("create-or-same with other bytes: %v", err)
	}
	if ok, err := state.Exists(ctx, b, key); !ok || err != nil {
		t.Errorf("Exists = %v, %v", ok, err)
	}
	if err := state.DeleteIfExists(ctx, b, key); err != nil {
		t.Fatal(err)
	}
	if err := state.DeleteIfExists(ctx, b, key); err != nil {
		t.Errorf("delete of absent: %v", err)
	}
	if _, err := state.Read(ctx, b, key); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("read of absent: %v", err)
	}
}

func TestCodec(t *testing.T) {
	type rec struct {
		FormatVersion int    `json:"format_version"`
		Name          string `json:"name"`
	}
	data, err := state.Encode(rec{FormatVersion: 1, Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"format_version\": 1,\n  \"name\": \"a\"\n}"; string(data) != want {
		t.Errorf("Encode = %q, want %q", data, want)
	}
	compact, _ := state.EncodeCompact(rec{FormatVersion: 1, Name: "a"})
	if want := `{"format_version":1,"name":"a"}`; string(compact) != want {
		t.Errorf("EncodeCompact = %q, want %q", compact, want)
	}
	var r rec
	if v, err := state.DecodeVersioned(data, &r, 1); err != nil || v != 1 || r.Name != "a" {
		t.Errorf("DecodeVersioned = %d, %v, %+v", v, err, r)
	}
	if _, err := state.DecodeVersioned([]byte(`{"format_version":2}`), &r, 1); !errors.Is(err, state.ErrNewerFormat) {
		t.Errorf("newer version: %v", err)
	}
	if err := state.Decode([]byte(`{`), &r); err == nil {
		t.Error("Decode accepted bad JSON")
	}
}
