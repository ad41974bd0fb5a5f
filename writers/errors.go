package writers

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrUnsupportedType: an Arrow column type has no Parquet mapping here.
	ErrUnsupportedType = errors.New("unsupported column type")
	// ErrSchemaMismatch: a record's schema differs from the writer's.
	ErrSchemaMismatch = errors.New("schema mismatch")
	// ErrNullInRequired: a non-nullable Arrow field holds a null.
	ErrNullInRequired = errors.New("null in non-nullable column")
	// ErrInvalidName: a column name is empty or repeated. writers/table
	// uses the same error for table, partition and run id names.
	ErrInvalidName = errors.New("invalid name")
	// ErrClosed: the writer was already closed or aborted. writers/table
	// uses the same error for its table writers and runs.
	ErrClosed = errors.New("already closed")
)
