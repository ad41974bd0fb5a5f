package demodata

import "testing"

// A dump written by WriteDump reads back the same with ReadDump, and is
// what the readers take: gzip CSV with the header first.
func TestDumpRoundTrip(t *testing.T) {
	path := t.TempDir() + "/d.csv.gz"
	recs := [][]string{{"ad_id", "note"}, {"a1", "x, \"quoted\""}, {"a2", ""}}
	if err := WriteDump(path, recs); err != nil {
		t.Fatal(err)
	}
	got, err := ReadDump(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %v, want %v", got, recs)
	}
	for i := range recs {
		for j := range recs[i] {
			if got[i][j] != recs[i][j] {
				t.Fatalf("read %v, want %v", got, recs)
			}
		}
	}
	if _, err := ReadDump(t.TempDir() + "/none.csv.gz"); err == nil {
		t.Error("reading a missing dump did not fail")
	}
}
