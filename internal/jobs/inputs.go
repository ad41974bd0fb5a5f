package jobs

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
)

// ParseMonth parses YYYY-MM and returns the half-open UTC range [from, to).
func ParseMonth(s string) (from, to time.Time, err error) {
	from, err = time.Parse("2006-01", s)
	if err != nil {
		return from, to, fmt.Errorf("%w: month %q: want YYYY-MM", ErrConfig, s)
	}
	return from, from.AddDate(0, 1, 0), nil
}

// ParseDate parses YYYY-MM-DD (UTC).
func ParseDate(s string) (time.Time, error) {
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return d, fmt.Errorf("%w: date %q: want YYYY-MM-DD", ErrConfig, s)
	}
	return d, nil
}

// dataFile reports whether a listed key is an input file: a known format,
// not hidden ("." or "_" prefix, as Hive and Spark skip them).
func dataFile(key string) bool {
	base := path.Base(key)
	if strings.HasPrefix(base, ".") || strings.HasPrefix(base, "_") {
		return false
	}
	return readers.Supported(key) == nil
}

// DirPrefix is the key prefix of a folder of a store: "" for the whole
// store, else the folder's name and a slash.
func DirPrefix(dir string) string {
	if dir = strings.TrimSuffix(dir, "/"); dir == "" {
		return ""
	}
	return dir + "/"
}

// ListInputs lists the input files under a folder of the input store,
// sorted by key. Files of unknown formats are skipped (and returned as
// skipped so the caller can log them).
func ListInputs(ctx context.Context, b store.Bucket, dir string) (files []store.ObjectInfo, skipped []string, err error) {
	prefix := DirPrefix(dir)
	objs, err := b.List(ctx, prefix)
	if err != nil {
		return nil, nil, fmt.Errorf("list inputs: %w", err)
	}
	for _, o := range objs {
		if dataFile(o.Key) {
			files = append(files, o)
		} else {
			skipped = append(skipped, o.Key)
		}
	}
	return files, skipped, nil
}
