package state

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/adtech/scorer/readers/store"
)

// contentType is recorded with every record, where the store keeps it.
const contentType = "application/json"

// ErrReplaced means an object was replaced between reading its generation and
// reading its bytes. It wraps store.ErrNotExist (the pinned read finds the
// generation gone); callers that loop on a compare-and-swap read again.
var ErrReplaced = fmt.Errorf("object replaced while reading: %w", store.ErrNotExist)

// Put writes a record unconditionally and returns its new generation.
func Put(ctx context.Context, b store.Bucket, key string, data []byte) (int64, error) {
	info, err := store.Put(ctx, b, key, data, store.WriteOptions{ContentType: contentType})
	return info.Generation, err
}

// Create writes a record only if key is absent (create-if-absent) and
// returns its generation. An existing object is an error wrapping
// store.ErrPrecondition.
func Create(ctx context.Context, b store.Bucket, key string, data []byte) (int64, error) {
	info, err := store.Put(ctx, b, key, data, store.WriteOptions{IfAbsent: true, ContentType: contentType})
	return info.Generation, err
}

// CreateOrSame writes a record only if key is absent; an existing object
// with exactly these bytes (a retried or repeated write of the same record,
// or one whose reply was lost) is success, anything else an error wrapping
// store.ErrPrecondition.
func CreateOrSame(ctx context.Context, b store.Bucket, key string, data []byte) error {
	return store.CreateOrSame(ctx, b, key, data)
}

// Swap is compare-and-swap by generation: it writes a record only if the
// object still has generation gen, as read by ReadGen; gen 0 means the
// object must be absent. It returns the new generation. A changed (or, for
// gen 0, existing) object is an error wrapping store.ErrPrecondition; a
// deleted one, depending on the store, ErrPrecondition or ErrNotExist.
func Swap(ctx context.Context, b store.Bucket, key string, data []byte, gen int64) (int64, error) {
	opts := store.WriteOptions{IfGeneration: gen, ContentType: contentType}
	if gen == 0 {
		opts = store.WriteOptions{IfAbsent: true, ContentType: contentType}
	}
	info, err := store.Put(ctx, b, key, data, opts)
	return info.Generation, err
}

// Read reads a whole record (any generation). A missing object is an error
// wrapping store.ErrNotExist.
func Read(ctx context.Context, b store.Bucket, key string) ([]byte, error) {
	return store.ReadAll(ctx, b, key)
}

// ReadGen reads a record with its generation, for a later Swap. An absent
// object is not an error: it returns nil, 0, nil. An object replaced
// between the two round trips is an error wrapping ErrReplaced (and so
// store.ErrNotExist).
func ReadGen(ctx context.Context, b store.Bucket, key string) ([]byte, int64, error) {
	info, err := b.Stat(ctx, key)
	if errors.Is(err, store.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	r, err := b.NewReader(ctx, key, info.Generation)
	if errors.Is(err, store.ErrNotExist) {
		return nil, 0, fmt.Errorf("read %s: %w: %w", b.URI(key), ErrReplaced, err)
	}
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = r.Close() }() // read only: nothing to lose
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", b.URI(key), err)
	}
	return data, info.Generation, nil
}

// Exists reports whether an object exists.
func Exists(ctx context.Context, b store.Bucket, key string) (bool, error) {
	_, err := b.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotExist):
		return false, nil
	default:
		return false, err
	}
}

// DeleteIfExists deletes an object; an absent one is not an error.
func DeleteIfExists(ctx context.Context, b store.Bucket, key string) error {
	if err := b.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotExist) {
		return err
	}
	return nil
}
