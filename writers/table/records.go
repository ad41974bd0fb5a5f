package table

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/state"
)

// FormatVersion is written into commit records and manifests. Readers reject
// newer versions than they know.
const FormatVersion = state.CommitFormat

// Names of the objects that the protocol keeps beside the data of a
// partition. See the package doc; the keys under _scorer/ are made by
// internal/state (docs/store.md lists them).
const (
	// ManifestName is the manifest object of a partition.
	ManifestName = "_manifest.json"
	// SuccessName is the marker written when a partition's folder matches
	// its manifest.
	SuccessName = "_SUCCESS"
	// ManifestListName is the partition's file list as text: the full URI
	// of each file the manifest lists, one per line, in the manifest's
	// order. It is the form BigQuery external tables accept as a manifest
	// (file_set_spec_type = NEW_LINE_DELIMITED_MANIFEST) and that DuckDB
	// reads with read_csv; written from _manifest.json right after it.
	ManifestListName = "_manifest.txt"
)

// Mode says how a run's files combine with a partition's.
type Mode string

const (
	// Replace makes the partition exactly this run's files.
	Replace Mode = "REPLACE"
	// Append adds this run's files to the partition's.
	Append Mode = "APPEND"
)

// Model names the model that produced a run.
type Model struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// InputFile is one input object a run consumed. The ledger (Consumed) is
// keyed by Key; a file counts as consumed only with the same Generation.
type InputFile struct {
	Key        string `json:"key"`
	Generation int64  `json:"generation"`
	Size       int64  `json:"size"`
	CRC32C     uint32 `json:"crc32c"`
	Rows       int64  `json:"rows"`
}

// FileEntry is one published Parquet file of a partition.
type FileEntry struct {
	Name   string `json:"name"` // base name inside the partition folder
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
	RunID  string `json:"run_id"`
}

// OutputRecord is one (table, partition) that a run writes.
type OutputRecord struct {
	Table     string      `json:"table"`
	Partition string      `json:"partition"`
	Mode      Mode        `json:"mode"`
	Rows      int64       `json:"rows"`
	Files     []FileEntry `json:"files"`
}

// CommitRecord is the commit point of a run, stored at
// _scorer/commits/<run_id>.json. Its existence means the run is committed.
type CommitRecord struct {
	FormatVersion int            `json:"format_version"`
	RunID         string         `json:"run_id"`
	Job           string         `json:"job"`
	Model         Model          `json:"model"`
	CommittedAt   time.Time      `json:"committed_at"`
	Inputs        []InputFile    `json:"inputs"`
	Outputs       []OutputRecord `json:"outputs"`
}

// Manifest is a partition's _manifest.json: the files that make up the
// partition. The run fields (RunID, Model, CommittedAt) are those of the run
// that wrote it last. Inputs are the inputs of every run that still has files
// in the partition (for REPLACE: the last run's).
type Manifest struct {
	FormatVersion int         `json:"format_version"`
	RunID         string      `json:"run_id"`
	Table         string      `json:"table"`
	Partition     string      `json:"partition"`
	Mode          Mode        `json:"mode"`
	Files         []FileEntry `json:"files"`
	TotalRows     int64       `json:"total_rows"`
	Model         Model       `json:"model"`
	Inputs        []InputFile `json:"inputs"`
	CommittedAt   time.Time   `json:"committed_at"`
}

// Success is the content of a partition's _SUCCESS marker.
type Success struct {
	RunID       string    `json:"run_id"`
	CommittedAt time.Time `json:"committed_at"`
}

// Done is the content of _scorer/commits/<run_id>.done, written when a
// committed run is fully rolled forward.
type Done struct {
	RunID  string    `json:"run_id"`
	DoneAt time.Time `json:"done_at"`
}

// PartitionPrefix is the folder of a partition, with a trailing slash.
func PartitionPrefix(table, partition string) string { return table + "/" + partition + "/" }

// PartName is the base name of a run's n-th part in a partition.
func PartName(runID string, n int) string { return fmt.Sprintf("part-%s-%05d.parquet", runID, n) }

func finalKey(table, partition, name string) string {
	return PartitionPrefix(table, partition) + name
}

var (
	runIDRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	tableRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	segmentRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_]*=[A-Za-z0-9][A-Za-z0-9_.:+%-]*$`)
)

// ValidateRunID checks that a run id is usable in object keys and file
// names: letters, digits, '_', '.', '-', starting with a letter or digit.
func ValidateRunID(id string) error {
	if !runIDRE.MatchString(id) || len(id) > 200 {
		return fmt.Errorf("run id %q: %w", id, ErrInvalidName)
	}
	return nil
}

// ValidateTable checks a table name: letters, digits, '_' and '-', not
// starting with '_' (folders starting with '_' or '.' are hidden from Spark
// and reserved here for the _scorer/ state folder).
func ValidateTable(name string) error {
	if !tableRE.MatchString(name) {
		return fmt.Errorf("table %q: %w", name, ErrInvalidName)
	}
	return nil
}

// ValidatePartition checks a Hive-style partition: one or more key=value
// segments joined by '/', e.g. "month=2020-09" or "date=2020-09-02/hour=07".
func ValidatePartition(p string) error {
	if p == "" {
		return fmt.Errorf("partition %q: %w", p, ErrInvalidName)
	}
	for _, seg := range strings.Split(p, "/") {
		if !segmentRE.MatchString(seg) {
			return fmt.Errorf("partition %q: %w", p, ErrInvalidName)
		}
	}
	return nil
}
