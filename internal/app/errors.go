package app

import (
	"errors"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scheduler"
	"github.com/adtech/scorer/writers/table"
)

// Exit codes (docs/exit-codes.md). Run records carry them, so they are the
// application's, not only the command's.
const (
	ExitOK       = 0 // the run published complete output, or had nothing to do
	ExitRetry    = 1 // failed, nothing partial published: safe to rerun as is
	ExitUsage    = 2 // bad flags, config, feature spec or model bundle: fix before rerunning
	ExitBadInput = 3 // input data breaks the spec: fix the data (or max_bad_rows) before rerunning
	ExitBusy     = 4 // another run of the job holds its lease: nothing done, retry later
	ExitAborted  = 5 // scorer schedule only: stopped by a signal, cancelling a run at the shutdown deadline
	ExitRefused  = 6 // scorer models promote only: the evaluation gate refused the version
	ExitDrift    = 7 // the inputs drifted beyond drift.fail_above: nothing published
)

// UsageError marks errors in the command line and the configuration: exit
// code 2.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// ExitCode is the documented exit code of an error (nil: 0).
func ExitCode(err error) int {
	var ue UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue), errors.Is(err, jobs.ErrConfig), errors.Is(err, store.ErrAccess),
		errors.Is(err, table.ErrCorrupt), errors.Is(err, table.ErrConflict):
		// Retrying cannot help: the configuration, the credentials or the
		// damaged run state in the output store need a person.
		return ExitUsage
	case errors.Is(err, jobs.ErrBadInput):
		return ExitBadInput
	case errors.Is(err, jobs.ErrBusy):
		return ExitBusy
	case errors.Is(err, scheduler.ErrAborted):
		return ExitAborted
	case errors.Is(err, ErrRefused):
		return ExitRefused
	case errors.Is(err, jobs.ErrDrift):
		return ExitDrift
	default:
		return ExitRetry
	}
}

// Retryable says whether a failed run is worth retrying as is: exit codes 1
// (failed, safe to rerun) and 4 (busy), not 2 (configuration) or 3 (bad
// input).
func Retryable(err error) bool {
	c := ExitCode(err)
	return c == ExitRetry || c == ExitBusy
}
