package state

import (
	"fmt"
	"strings"
	"time"

	"github.com/adtech/scorer/readers/store"
)

// Dir is the folder of the scorer's own state in an output store. Table
// names may not start with '_', so no table can collide with it.
const Dir = "_scorer"

// Prefixes of the areas under Dir, each with a trailing slash.
const (
	// CommitsPrefix holds the commit log: <run_id>.json and <run_id>.done.
	CommitsPrefix = Dir + "/commits/"
	// StagingPrefix holds the parts of runs not yet published.
	StagingPrefix = Dir + "/staging/"
	// LeasesPrefix holds one lease object per job.
	LeasesPrefix = Dir + "/leases/"
	// RunsPrefix holds the run records, per job.
	RunsPrefix = Dir + "/runs/"
	// ShardsPrefix holds the plans of sharded backfills, per job.
	ShardsPrefix = Dir + "/shards/"
	// SchedulePrefix holds the scheduler's ledger, per schedule job.
	SchedulePrefix = Dir + "/schedule/"
	// CheckpointsPrefix holds the commit log's checkpoints:
	// <seq, 10 digits>.json.
	CheckpointsPrefix = Dir + "/checkpoints/"
	// ArchivePrefix holds the commit records (and done markers) that a
	// checkpoint covers, moved out of CommitsPrefix: archive/commits/.
	ArchivePrefix = Dir + "/archive/"
)

// Suffixes of the objects in the commit log.
const (
	// CommitSuffix ends a commit record's key.
	CommitSuffix = ".json"
	// DoneSuffix ends a done marker's key.
	DoneSuffix = ".done"
)

// RunMarkerName is the base name of the marker a run writes into its
// staging when it begins (_scorer/staging/<run_id>/_run.json).
const RunMarkerName = "_run.json"

// CommitKey is the key of a run's commit record:
// _scorer/commits/<run_id>.json.
func CommitKey(runID string) string { return CommitsPrefix + runID + CommitSuffix }

// DoneKey is the key of a run's done marker: _scorer/commits/<run_id>.done.
func DoneKey(runID string) string { return CommitsPrefix + runID + DoneSuffix }

// CommitLogEntry parses a key listed under CommitsPrefix: the run id and
// whether it is a done marker. ok is false for any other object.
func CommitLogEntry(key string) (runID string, done, ok bool) {
	name, found := strings.CutPrefix(key, CommitsPrefix)
	if !found || strings.Contains(name, "/") {
		return "", false, false
	}
	if id, ok := strings.CutSuffix(name, DoneSuffix); ok {
		return id, true, true
	}
	if id, ok := strings.CutSuffix(name, CommitSuffix); ok {
		return id, false, true
	}
	return "", false, false
}

// CheckpointKey is the key of checkpoint seq of the commit log:
// _scorer/checkpoints/<seq, 10 digits>.json, so that keys sort by seq.
func CheckpointKey(seq int64) string { return fmt.Sprintf("%s%010d.json", CheckpointsPrefix, seq) }

// CheckpointSeq parses a key listed under CheckpointsPrefix; ok is false for
// any other object.
func CheckpointSeq(key string) (seq int64, ok bool) {
	name, found := strings.CutPrefix(key, CheckpointsPrefix)
	if !found {
		return 0, false
	}
	num, found := strings.CutSuffix(name, ".json")
	if !found || len(num) != 10 {
		return 0, false
	}
	_, err := fmt.Sscanf(num, "%d", &seq)
	return seq, err == nil
}

// ArchivedCommitsPrefix holds the archived commit log:
// _scorer/archive/commits/.
const ArchivedCommitsPrefix = ArchivePrefix + "commits/"

// ArchivedKey is where a commit log key (CommitKey or DoneKey) is kept once
// a checkpoint covers it: the same name under ArchivedCommitsPrefix.
func ArchivedKey(commitLogKey string) string {
	return ArchivedCommitsPrefix + strings.TrimPrefix(commitLogKey, CommitsPrefix)
}

// RunStagingPrefix is the prefix under which a run's parts are staged:
// _scorer/staging/<run_id>/.
func RunStagingPrefix(runID string) string { return StagingPrefix + runID + "/" }

// StagedKey is the key of a staged part:
// _scorer/staging/<run_id>/<table>/<partition>/<name>.
func StagedKey(runID, table, partition, name string) string {
	return store.Join(RunStagingPrefix(runID), table, partition, name)
}

// RunMarkerKey is the key of a run's staging marker:
// _scorer/staging/<run_id>/_run.json.
func RunMarkerKey(runID string) string { return RunStagingPrefix(runID) + RunMarkerName }

// StagedRunID returns the run id of a key under StagingPrefix.
func StagedRunID(key string) string {
	id, _, _ := strings.Cut(strings.TrimPrefix(key, StagingPrefix), "/")
	return id
}

// LeaseKey is the key of a job's lease: _scorer/leases/<job>.json.
func LeaseKey(job string) string { return LeasesPrefix + job + ".json" }

// LeaseName parses a key listed under LeasesPrefix: the name of the lease
// (a job, or a job's shard: "<job>.shard-<i>-of-<n>"); ok is false for
// other keys.
func LeaseName(key string) (name string, ok bool) {
	rest, found := strings.CutPrefix(key, LeasesPrefix)
	if !found {
		return "", false
	}
	name, ok = strings.CutSuffix(rest, ".json")
	return name, ok && name != "" && !strings.Contains(name, "/")
}

// ShardLeasesPrefix is the prefix of the leases of a job's shards
// (_scorer/leases/<job>.shard-<i>-of-<n>.json).
func ShardLeasesPrefix(job string) string { return LeasesPrefix + job + ".shard-" }

// RunKey is the key of a run record: _scorer/runs/<job>/<run_id>.json.
func RunKey(job, runID string) string { return RunsPrefix + job + "/" + runID + ".json" }

// ShardPlanPrefix is the folder of a job's sharded backfill:
// _scorer/shards/<job>/.
func ShardPlanPrefix(job string) string { return ShardsPrefix + job + "/" }

// ShardPlanKey is the key of a job's shard plan: _scorer/shards/<job>/plan.json.
func ShardPlanKey(job string) string { return ShardPlanPrefix(job) + "plan.json" }

// ShardRecordsPrefix is the folder of a plan's shard records:
// _scorer/shards/<job>/<plan_id>/.
func ShardRecordsPrefix(job, planID string) string { return ShardPlanPrefix(job) + planID + "/" }

// ShardRecordKey is the key of shard i's record:
// _scorer/shards/<job>/<plan_id>/shard-<iiiii>.json.
func ShardRecordKey(job, planID string, i int) string {
	return fmt.Sprintf("%sshard-%05d.json", ShardRecordsPrefix(job, planID), i)
}

// WatermarkKey is the key of a schedule job's watermark:
// _scorer/schedule/<job>/watermark.json.
func WatermarkKey(job string) string { return SchedulePrefix + job + "/watermark.json" }

// SlotsPrefix is the folder of a schedule job's settled slots:
// _scorer/schedule/<job>/slots/.
func SlotsPrefix(job string) string { return SchedulePrefix + job + "/slots/" }

// SlotLayout is how a slot time (UTC) is written in its key.
const SlotLayout = "20060102T150405Z"

// SlotKey is the key of a settled slot's record:
// _scorer/schedule/<job>/slots/<slot, UTC, SlotLayout>.json.
func SlotKey(job string, slot time.Time) string {
	return SlotsPrefix(job) + slot.UTC().Format(SlotLayout) + ".json"
}

// SlotOf parses the slot time of a key under SlotsPrefix; ok is false for
// any other object.
func SlotOf(key string) (time.Time, bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	t, err := time.Parse(SlotLayout, strings.TrimSuffix(name, ".json"))
	return t, err == nil
}

// RunRecordEntry parses a key listed under RunsPrefix: the job and run id
// of a run record (_scorer/runs/<job>/<run_id>.json); ok is false for any
// other object.
func RunRecordEntry(key string) (job, runID string, ok bool) {
	rest, found := strings.CutPrefix(key, RunsPrefix)
	if !found {
		return "", "", false
	}
	job, name, found := strings.Cut(rest, "/")
	runID, isJSON := strings.CutSuffix(name, ".json")
	if !found || !isJSON || job == "" || runID == "" || strings.Contains(name, "/") {
		return "", "", false
	}
	return job, runID, true
}

// SlotEntry parses a key listed under SchedulePrefix: the schedule job and
// slot time of a settled slot's record
// (_scorer/schedule/<job>/slots/<slot>.json); ok is false for any other
// object (a watermark among them).
func SlotEntry(key string) (job string, slot time.Time, ok bool) {
	rest, found := strings.CutPrefix(key, SchedulePrefix)
	if !found {
		return "", time.Time{}, false
	}
	job, name, found := strings.Cut(rest, "/slots/")
	if !found || job == "" || strings.Contains(job, "/") || strings.Contains(name, "/") || !strings.HasSuffix(name, ".json") {
		return "", time.Time{}, false
	}
	slot, ok = SlotOf(key)
	return job, slot, ok
}

// ArchivedCommitEntry parses a key listed under ArchivedCommitsPrefix, as
// CommitLogEntry parses the log's: the run id and whether it is a done
// marker; ok is false for any other object.
func ArchivedCommitEntry(key string) (runID string, done, ok bool) {
	name, found := strings.CutPrefix(key, ArchivedCommitsPrefix)
	if !found {
		return "", false, false
	}
	return CommitLogEntry(CommitsPrefix + name)
}

// ShardPlanJob parses a key listed under ShardsPrefix: the job of a shard
// plan (_scorer/shards/<job>/plan.json); ok is false for any other object
// (the shard records among them).
func ShardPlanJob(key string) (job string, ok bool) {
	rest, found := strings.CutPrefix(key, ShardsPrefix)
	if !found {
		return "", false
	}
	job, found = strings.CutSuffix(rest, "/plan.json")
	return job, found && job != "" && !strings.Contains(job, "/")
}
