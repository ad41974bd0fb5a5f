// Package table is the transactional table format of the output store: it
// publishes each run's Parquet output (encoded by package writers) into
// Hive-partitioned tables atomically, and keeps the commit log that makes
// the input queue exactly-once. It owns the tables' layout and the run
// protocol: run lifecycle (Begin, Output, Seal, Commit, Abort), the commit
// log and sharded commits, roll forward, manifests and _SUCCESS markers,
// recovery and garbage collection of staging, and the input ledger
// (Consumed). The keys it uses under _scorer/ are made by internal/state,
// which owns that namespace; docs/store.md lists every key.
//
// The files follow the phases: stage.go (Begin, outputs), commit.go
// (Commit, Seal, CommitSharded), rollforward.go (publishing a committed
// run, manifests), recover.go (Recover), ledger.go (the commit log:
// Commits, Consumed, Done), checkpoint.go and checkpointed.go (checkpoints
// of the commit log and its archive), gc.go (Abort, deleting staging),
// collect.go (what retention may delete: old staging, the old archive).
//
// # Layout
//
//	<table>/<partition>/part-<run_id>-<nnnnn>.parquet  published data
//	<table>/<partition>/_manifest.json                 the partition's file list (Manifest)
//	<table>/<partition>/_manifest.txt                  the same files as full URIs, one a line
//	<table>/<partition>/_SUCCESS                       folder == manifest (Success)
//	_scorer/staging/<run_id>/<table>/<partition>/...   a run's parts before publishing
//	_scorer/commits/<run_id>.json                      commit record: the commit point (CommitRecord)
//	_scorer/commits/<run_id>.done                      the run is fully published (Done)
//	_scorer/checkpoints/<seq>.json                     the ledger up to a point (CheckpointRecord)
//	_scorer/archive/commits/<run_id>.json, .done       commit log objects a checkpoint covers
//
// Partitions are Hive style (month=2020-09, date=2020-09-02/hour=07). Staging
// lives outside the table folders, so globs such as
// read_parquet('<root>/<table>/*/*.parquet', hive_partitioning=true) never
// see unpublished parts. Readers should glob *.parquet: _manifest.json and
// _SUCCESS sit beside the data (Spark and Hive skip names starting with '_').
//
// # Protocol
//
// The store has no rename and no multi-object transaction; objects appear
// whole when written and writes can be conditional (IfAbsent,
// IfGeneration). The protocol uses nothing else, so it holds on GCS as on a
// local folder.
//
//  1. Stage. Publisher.Begin starts a run; Run.Output opens a Writer per
//     (table, partition, mode); parts go to _scorer/staging/<run_id>/.
//  2. Commit. Run.Commit closes the outputs and writes ONE object,
//     _scorer/commits/<run_id>.json, IfAbsent: every output (table,
//     partition, mode, files with rows, bytes and sha256), the run's input
//     files (key, generation, size, crc32c, rows), model, job and time. This
//     write is the commit point. If it fails ambiguously (the store applied
//     it but the reply was lost), a retry finding identical bytes counts as
//     success; Abort checks for the record and refuses to discard a run that
//     has one (ErrCommitted).
//  3. Roll forward: steps a to f below. Commit does it at once, Recover after
//     a crash. Each step runs over all of the run's outputs before the next
//     starts, and each is idempotent, so roll forward can be repeated from
//     any crash point.
//  4. Order. Runs are applied in commit order: the store's timestamp of the
//     commit record, then run id. Commit and Recover roll forward every
//     committed run that is not done, oldest first, so a later REPLACE can
//     never be overtaken by an earlier run's replay.
//
// Roll forward of one run:
//
//   - a. Delete each partition's _SUCCESS.
//   - b. Copy each staged part to <table>/<partition>/<name>, IfAbsent. A
//     precondition failure (or a vanished staged part) is accepted only if
//     the existing object has the recorded size and sha256 (our own earlier
//     attempt), and is ErrConflict otherwise.
//   - c. Write each _manifest.json, conditional on the generation of the
//     manifest read just before (IfAbsent if none): REPLACE lists exactly the
//     run's files, APPEND the previous manifest's files plus the run's. A
//     manifest already naming this run is left as it is. Then, if the
//     manifest is this run's, write _manifest.txt from it: each file's full
//     URI, one a line (BigQuery's newline-delimited manifest).
//   - d. REPLACE only: delete every object directly in the partition folder
//     that the manifest does not list (deeper folders are not touched).
//   - e. Write each _SUCCESS.
//   - f. Write _scorer/commits/<run_id>.done, then delete the run's staging.
//     A done run is never rolled forward again, so repeating roll forward on
//     a published bucket writes nothing.
//
// Publisher.RollForwardJob rolls forward one job's committed runs that are
// not done (internal/jobs.Heal calls it under the job's lease from every
// process that opens the store, so a glob reader's mixed view lasts only
// until then); Publisher.Pending lists them.
//
// Publisher.Recover rolls forward committed runs that are not done and
// deletes the staging of runs that never committed (and leftover staging of
// done runs). It and Commit assume at most one run is active per bucket at
// a time; the caller guarantees it until a lease exists.
//
// # What readers see
//
// Nothing of a run is visible in any table before its commit record exists.
// After it, partitions change one at a time, in the order above:
//
//   - A glob reader (DuckDB, BigQuery external tables, Spark without a
//     catalog) sees, for an APPEND partition, the old files and then old plus
//     new files, appearing one by one while the parts are copied. For a
//     REPLACE partition it sees the old files, then old AND new files from
//     the first copy until the last stale file is deleted in step d, then only
//     the new ones. A query in that window can count rows twice.
//   - _manifest.json (and _manifest.txt, rewritten from it before step d)
//     is the consistent view: at every instant it lists a
//     complete set of files (the old one until step c, the new one after),
//     and every file it lists exists — except that a reader holding the old
//     REPLACE manifest can find its files deleted in step d (a read error,
//     never wrong rows). Read the manifest, then read exactly its files.
//   - _SUCCESS exists only while the folder's files equal the manifest's
//     (it is deleted in step a, rewritten in step e). A reader that checks
//     it before and after globbing knows the glob was consistent.
//   - Different partitions and tables of one run are published one after
//     another; there is no cross-partition snapshot. The commit record says
//     what the run will publish; its .done marker says all of it is visible.
//
// # Crash guarantees
//
// A crash (or error) before the commit record is written leaves every
// published table, manifest and _SUCCESS byte-identical; Recover deletes the
// staged parts and the run did not consume its inputs. A crash at any point
// after it leaves a committed run: its inputs are consumed (Consumed lists
// them) and Recover, or the next Commit, finishes publishing it exactly as a
// run without a crash would. A published part is never overwritten: parts
// are copied IfAbsent under names unique to the run, and an existing object
// with other content is an ErrConflict. Manifests are replaced only
// conditionally (IfGeneration on the one that was read), so an unexpected
// concurrent writer fails instead of losing files.
//
// Everything under _scorer/ is protocol state: deleting a .done marker
// makes the next Recover replay that run over later ones, and deleting a
// commit record un-consumes its inputs. Do not edit it by hand.
//
// # Ledger
//
// Publisher.Consumed(ctx, job) returns every input file a committed run of
// that job consumed, by key (the latest commit's entry if a key was consumed
// more than once). The queue skips inputs whose key and generation are in
// it; since inputs are recorded in the same object that commits the outputs,
// an input is consumed if and only if its outputs are (or will be, after
// roll forward) published. Commits lists every commit record, archived ones
// included, for history and audit.
//
// The ledger is read from the latest checkpoint plus the commit records
// since (Publisher.Checkpoint, which runs call after their commit): a
// snapshot of the ledger over a prefix of the commit order made of done
// runs stored more than CheckpointLag ago, written create-if-absent under
// the next sequence number every DefaultCheckpointEvery commits. The records
// it covers move to _scorer/archive/commits/ (copy both, delete the record,
// delete its done marker), so the log, and every listing and read of it,
// holds only the commits since. Readers list the log before reading the
// checkpoint, and read a record they listed from the archive if it moved
// meanwhile; a crash anywhere in Checkpoint is finished by the next one.
// Reading the ledger therefore costs one list of the log, one list and one
// read of the checkpoints and one read per commit since the checkpoint,
// whatever the project's age; Done is two lookups.
//
// # Failpoints
//
// Options.Failpoint is called at each Point* constant; returning an error
// stops there as a crash would. The package tests use it to crash at every
// occurrence of every point; the CLI wires it to internal/failpoint, which
// kills the process.
package table
