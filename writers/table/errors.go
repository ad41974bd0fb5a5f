package table

import (
	"errors"

	"github.com/adtech/scorer/writers"
)

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrInvalidName: a table, partition, run id or column name is not
	// allowed. It is writers.ErrInvalidName, so one test covers both.
	ErrInvalidName = writers.ErrInvalidName
	// ErrDuplicateOutput: a run opened the same (table, partition) twice.
	ErrDuplicateOutput = errors.New("duplicate output")
	// ErrClosed: the writer or run was already closed, committed or aborted.
	// It is writers.ErrClosed, so one test covers both.
	ErrClosed = writers.ErrClosed
	// ErrRunExists: a commit record for this run id already exists with
	// different content (run ids must be unique).
	ErrRunExists = errors.New("run already committed")
	// ErrCommitted: Abort was called on a run whose commit record exists; the
	// run will be rolled forward, not discarded.
	ErrCommitted = errors.New("run is committed")
	// ErrConflict: a published object is not what the commit record says
	// (another writer touched the table, or the bucket was edited by hand).
	ErrConflict = errors.New("publish conflict")
	// ErrCorrupt: a commit record or manifest cannot be decoded, or a staged
	// part needed for roll forward is gone.
	ErrCorrupt = errors.New("corrupt run state")
)
