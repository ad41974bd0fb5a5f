// Command scorer is the batch click-prediction engine: it scores monthly ad
// dumps (backfill) and queued prediction requests (run) with a model bundle,
// trains bundles (train) and checks a set-up without scoring (validate).
//
// Each subcommand lives in its own file; this one dispatches, sets up logging
// and signals, and turns errors into the documented exit codes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"golang.org/x/term"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scheduler"
	"github.com/adtech/scorer/writers/table"
)

// Exit codes (docs/exit-codes.md).
const (
	exitOK       = 0 // the run published complete output, or had nothing to do
	exitRetry    = 1 // failed, nothing partial published: safe to rerun as is
	exitUsage    = 2 // bad flags, config, feature spec or model bundle: fix before rerunning
	exitBadInput = 3 // input data breaks the spec: fix the data (or max_bad_rows) before rerunning
	exitBusy     = 4 // another run of the job holds its lease: nothing done, retry later
	exitAborted  = 5 // scorer schedule only: stopped by a signal, cancelling a run at the shutdown deadline
)

type command struct {
	name, summary string
	run           func(ctx context.Context, env *environment, args []string) error
}

var commands = []command{
	{"backfill", "score one month of ad dumps and replace that month's partition", runBackfill},
	{"run", "score every queued request not yet scored, exactly once", runQueue},
	{"train", "train a model bundle from a labelled month of dumps", runTrain},
	{"schedule", "run the scheduler daemon: the configured jobs, catch-up, /metrics", runSchedule},
	{"history", "print the recent runs from the run records", runHistory},
	{"validate", "check config, feature spec and model bundle without scoring", runValidate},
	{"version", "print the version", runVersion},
}

// environment is what a subcommand gets from the process.
type environment struct {
	stdout, stderr io.Writer
	getenv         func(string) (string, bool)
	isTerminal     bool
	log            *slog.Logger
	retries        atomic.Int64   // store calls retried in this process
	sched          *scheduleHooks // tests only: drive scorer schedule in-process
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &environment{
		stdout: os.Stdout, stderr: os.Stderr, getenv: os.LookupEnv,
		isTerminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
	code := run(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

func usage(w io.Writer) {
	fmt.Fprint(w, `scorer: batch click-prediction engine.

Usage:
  scorer <command> [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Run "scorer <command> --help" for a command's flags. Every command reads the
config file named by --config or $SCORER_CONFIG (defaults run the demo from
the repository root). Exit codes: 0 ok, 1 failed and safe to rerun, 2 usage or
configuration error, 3 bad input data, 4 another run of the job is active,
5 (schedule) a run was cancelled at the shutdown deadline.
See README.md and docs/.
`)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, env *environment, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(env.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		if env.log == nil {
			env.log = slog.New(slog.NewTextHandler(env.stderr, nil))
		}
		err := c.run(ctx, env, args[1:])
		code := exitCode(err)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case err != nil:
			env.log.Error(c.name+" failed", "err", err, "exit_code", code)
		}
		return code
	}
	fmt.Fprintf(env.stderr, "scorer: unknown command %q\n\n", args[0])
	usage(env.stderr)
	return exitUsage
}

// usageError marks errors in flags and configuration.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func exitCode(err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue), errors.Is(err, jobs.ErrConfig), errors.Is(err, store.ErrAccess),
		errors.Is(err, table.ErrCorrupt), errors.Is(err, table.ErrConflict):
		// Retrying cannot help: the configuration, the credentials or the
		// damaged run state in the output store need a person.
		return exitUsage
	case errors.Is(err, jobs.ErrBadInput):
		return exitBadInput
	case errors.Is(err, jobs.ErrBusy):
		return exitBusy
	case errors.Is(err, scheduler.ErrAborted):
		return exitAborted
	default:
		return exitRetry
	}
}

// newLogger builds the structured logger: text on a terminal, JSON otherwise.
func newLogger(w io.Writer, cfg LogConfig, isTerminal bool) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "json" || (cfg.Format == "auto" && !isTerminal) {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
