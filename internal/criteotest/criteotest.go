// Package criteotest finds the public Criteo sample that tests train and
// score on. The sample lives outside the repository (its terms forbid
// redistribution): tests look for it in $SCORER_CRITEO_SAMPLE or the shared
// data folder beside the checkout, skip without it, and copy its rows only
// into temporary folders. Only tests import this package.
package criteotest

import (
	"bufio"
	"os"
	"testing"
)

// candidates are where the sample is looked for, in order.
func candidates() []string {
	return []string{
		os.Getenv("SCORER_CRITEO_SAMPLE"),
		"../../../shared/data/criteo_train_head10k/criteo_train_sample10k.tsv",
		"/work/shared/data/criteo_train_head10k/criteo_train_sample10k.tsv",
	}
}

// Lines returns the sample's lines (10,000 in their original, time, order),
// or skips the test when the sample is absent.
func Lines(t testing.TB) []string {
	t.Helper()
	var f *os.File
	for _, p := range candidates() {
		if p == "" {
			continue
		}
		var err error
		if f, err = os.Open(p); err == nil {
			break
		}
	}
	if f == nil {
		t.Skipf("Criteo sample not available (set SCORER_CRITEO_SAMPLE): none of %q", candidates())
	}
	defer func() { _ = f.Close() }() // read only
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", f.Name(), err)
	}
	return lines
}
