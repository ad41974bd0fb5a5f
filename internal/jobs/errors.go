package jobs

import (
	"errors"

	"github.com/adtech/scorer/internal/lease"
	"github.com/adtech/scorer/readers"
)

// Error classes that decide a run's exit code (docs/exit-codes.md). Any
// other error is a failure that is safe to retry.
var (
	// ErrConfig: the configuration, feature spec or model bundle is wrong.
	ErrConfig = errors.New("configuration error")
	// ErrBadInput: the input data breaks the spec. It is the readers'
	// sentinel, so a reader's error needs no rewrapping.
	ErrBadInput = readers.ErrBadInput
	// ErrBusy: another run of the same job holds its lease; this run did
	// nothing. Retry later.
	ErrBusy = lease.ErrHeld
)
