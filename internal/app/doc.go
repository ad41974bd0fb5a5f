// Package app is the scorer application, shared by every entry point (the
// scorer command, a server, tests): it owns
//
//   - the configuration: Config, its defaults, loading from a YAML file and
//     SCORER_* environment variables, and Validate;
//   - opening what a run needs: the stores, the model bundle, the gs://
//     store's options (App);
//   - the lifecycle of a scoring run: its run record in the output store,
//     written before the run starts and completed with its outcome, counts
//     and report when it ends, for manual and scheduled runs alike
//     (App.Backfill, App.Queue), dry runs that only read (App.PlanBackfill,
//     App.PlanQueue), the abandoning of a sharded backfill
//     (App.AbandonShards);
//   - training (App.Train), validation (App.Validate) and reading the run
//     records (App.History, App.Run);
//   - the scheduler daemon: its jobs, metrics and HTTP endpoints (Daemon);
//   - the classification of errors into the documented exit codes
//     (ExitCode, docs/exit-codes.md), which run records carry.
//
// It parses no flags and prints nothing: it returns results and errors, and
// logs through the *slog.Logger it is given. Rendering (summaries, tables)
// and the process's exit are the caller's.
package app
