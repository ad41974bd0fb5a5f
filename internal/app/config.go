package app

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/registry"
	"github.com/adtech/scorer/writers/table"
)

// Config is the scorer configuration file. Every key is optional; the
// defaults (see Default) run the embedded demo from the repository
// root. Precedence: flags over environment (SCORER_<KEY>, nested keys joined
// by "_", e.g. SCORER_BACKFILL_TABLE) over the file over the defaults.
// docs/config.md documents every key; keep the two in step.
type Config struct {
	// Input is the URI of the input store: dumps/YYYY-MM/ and queue/.
	Input string `yaml:"input"`
	// Output is the URI of the output store: the tables and _scorer/.
	Output string `yaml:"output"`
	// Model is the champion: the URI of a model bundle folder, or a
	// reference into Registry, "models:/<name>@current" (the version
	// promoted last, read at the start of every run) or
	// "models:/<name>/<version>".
	Model string `yaml:"model"`
	// Challengers are further models (URIs or references, as Model) that
	// every scoring run scores beside the champion into the
	// <table>_challengers table, for scorer evaluate to compare.
	Challengers []string `yaml:"challengers"`
	// Registry is the URI of the model registry: models/<name>/<version>/
	// bundles and each name's current alias (docs/evaluation.md).
	Registry string `yaml:"registry"`
	// Workers scoring in parallel; 0 means one per core.
	Workers int `yaml:"workers"`
	// BatchSize is the number of rows per record batch and per model call.
	BatchSize int `yaml:"batch_size"`
	// ReadConcurrency is the number of input files decoded at once.
	ReadConcurrency int `yaml:"read_concurrency"`
	// MaxBadRows is how many bad input rows a run tolerates, sending them to
	// the rejects table: a count ("100") or a fraction of the rows read
	// ("0.5%" or "0.005"). "0" fails the run on the first bad row.
	MaxBadRows string `yaml:"max_bad_rows"`
	// MaxAbsLogit fails a run (exit code 2) whose model gives a logit of
	// larger magnitude: an absurd model, not a confident one. 0 turns the
	// check off; logits that are not finite always fail the run.
	MaxAbsLogit float64 `yaml:"max_abs_logit"`
	// Drift: when the inputs' drift from the model's training profile
	// (population stability index per feature) warns or fails a run.
	Drift jobs.DriftPolicy `yaml:"drift"`
	// Images: how the images of image features are read (docs/images.md).
	Images ImagesConfig `yaml:"images"`

	Backfill TableConfig   `yaml:"backfill"`
	Queue    TableConfig   `yaml:"queue"`
	Rejects  RejectsConfig `yaml:"rejects"`
	CSV      CSVConfig     `yaml:"csv"`
	Parquet  ParquetConfig `yaml:"parquet"`
	Log      LogConfig     `yaml:"log"`
	// Progress shows a progress bar: auto (on a terminal), on, off.
	Progress string `yaml:"progress"`
	// LeaseTTL is how long a job's lease lives without renewal: a run that
	// stalls longer loses it and cannot commit; a crashed run's lease frees
	// the job after this long.
	LeaseTTL time.Duration  `yaml:"lease_ttl"`
	GCS      GCSConfig      `yaml:"gcs"`
	Train    TrainConfig    `yaml:"train"`
	Schedule ScheduleConfig `yaml:"schedule"`
	Evaluate EvaluateConfig `yaml:"evaluate"`
	Promote  PromoteConfig  `yaml:"promote"`
	// Retention is read by scorer gc (docs/store.md#retention).
	Retention RetentionConfig `yaml:"retention"`
	// Serve is read by scorer serve (docs/serve.md).
	Serve ServeConfig `yaml:"serve"`
}

// ServeConfig is scorer serve's: the REST API that queues requests into
// queue.dir of the input store and scores online (docs/serve.md).
type ServeConfig struct {
	// Addr is the address to listen on.
	Addr string `yaml:"addr"`
	// TokensFile holds the bearer tokens that /v1/ accepts, one a line
	// (blank lines and lines starting with # left out). The environment
	// variable SCORER_SERVE_TOKENS (comma-separated) adds more, e.g. from
	// a Kubernetes secret. No token at all: the server does not start.
	TokensFile string `yaml:"tokens_file"`
	// Instance names this server's queue files; "" is the host name.
	// Servers writing the same queue folder need different ones.
	Instance string `yaml:"instance"`
	// MaxBodyBytes and MaxItems bound one call.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	MaxItems     int   `yaml:"max_items"`
	// A queue file is written when BatchMaxItems requests wait or
	// BatchMaxWait after the first: /v1/requests answers after that.
	BatchMaxItems int           `yaml:"batch_max_items"`
	BatchMaxWait  time.Duration `yaml:"batch_max_wait"`
	// TLSCert and TLSKey (PEM files) serve HTTPS; both or neither.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Timeouts of every phase of a call (net/http.Server's).
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ReadTimeout       time.Duration `yaml:"read_timeout"`
	WriteTimeout      time.Duration `yaml:"write_timeout"`
	IdleTimeout       time.Duration `yaml:"idle_timeout"`
	// ShutdownTimeout: after SIGTERM, calls in flight get this long to be
	// answered (queued or refused) before the process exits.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// RetentionConfig says how long scorer gc keeps each kind of state; a
// value of 0 days keeps that kind forever (gc does not collect it). Each
// kind is also kept while anything may still need it (docs/store.md#retention).
type RetentionConfig struct {
	// RunRecordsDays: run records of runs started longer ago are deleted,
	// except the newest of each job and of each scheduled job, and those of
	// runs still running.
	RunRecordsDays int `yaml:"run_records_days"`
	// ScheduleDays: settled-slot records of the schedule's ledger for slots
	// longer ago, and before their job's watermark, are deleted.
	ScheduleDays int `yaml:"schedule_days"`
	// StagingDays: the staging of a run that will not be published from it,
	// with nothing written to it for this long, is deleted.
	StagingDays int `yaml:"staging_days"`
	// ArchiveDays: the archived commit log (_scorer/archive/commits/) is
	// kept this long after archiving; 0 keeps it (an audit trail).
	ArchiveDays int `yaml:"archive_days"`
	// QueueDays: queued input files uploaded longer ago that a done queue
	// run consumed (in the latest checkpoint of the ledger, with their
	// current generation) are archived or deleted (QueueAction); 0 keeps
	// them.
	QueueDays int `yaml:"queue_days"`
	// QueueAction: archive (moved to QueueArchiveDir of the input store) or
	// delete.
	QueueAction string `yaml:"queue_action"`
	// QueueArchiveDir is the folder of the input store that archived queue
	// files move to, under their path relative to queue.dir.
	QueueArchiveDir string `yaml:"queue_archive_dir"`
}

// Retention queue actions.
const (
	QueueArchive = "archive"
	QueueDelete  = "delete"
)

// EvaluateConfig is read by scorer evaluate (docs/evaluation.md).
type EvaluateConfig struct {
	// Table is the output table of the evaluations: one row per model,
	// scored partition and segment. Its calibration curves go to
	// <table>_calibration.
	Table string `yaml:"table"`
	// Label is the 0/1 label column; default the first label column of the
	// evaluated job (backfill.label_columns or queue.label_columns).
	Label string `yaml:"label"`
	// SegmentColumns slice the metrics: one row per value of each, besides
	// the row of all rows. Each is a column of the score table or of the
	// labels source.
	SegmentColumns []string `yaml:"segment_columns"`
	// MaxSegmentValues bounds the values of one segment column evaluated
	// apart: the most frequent ones; the others are pooled as "(other)".
	MaxSegmentValues int `yaml:"max_segment_values"`
	// Bins is the number of equal-count score bins of the calibration curve
	// and of the expected calibration error (10: deciles).
	Bins int `yaml:"bins"`
}

// PromoteConfig says when scorer models promote refuses a challenger: when
// on the latest evaluation of both its AUC is lower than the current
// model's by more than MaxAUCDrop, or its log loss higher by more than
// MaxLogLossRise (--force overrides, and is recorded).
type PromoteConfig struct {
	MaxAUCDrop     float64 `yaml:"max_auc_drop"`
	MaxLogLossRise float64 `yaml:"max_log_loss_rise"`
}

// ScheduleConfig is read by scorer schedule (docs/scheduler.md).
type ScheduleConfig struct {
	// Listen is the address of the HTTP listener serving /healthz, /readyz
	// and /metrics; empty for none.
	Listen string `yaml:"listen"`
	// ShutdownTimeout is how long, after SIGTERM, a running run may take to
	// finish before it is cancelled.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// Retries of a run that failed in a way that is safe to retry (exit
	// codes 1 and 4); bad input and configuration errors are not retried.
	Retries int `yaml:"retries"`
	// Backoff before the first retry, doubled before each further one up to
	// MaxBackoff.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxCatchUp: at start, run only the newest this many due runs of each
	// job and skip the older ones; 0 runs them all.
	MaxCatchUp int `yaml:"max_catch_up"`
	// Jobs are the scheduled jobs (settable in the file only).
	Jobs []ScheduleJob `yaml:"jobs"`
}

// ScheduleJob is one scheduled job.
type ScheduleJob struct {
	// Name names the job in the run records, the schedule's ledger and the
	// logs: keep it stable (a renamed job starts afresh, with nothing due).
	Name string `yaml:"name"`
	// Kind: queue (scorer run, partition date = the scheduled day) or
	// backfill (scorer backfill of Month).
	Kind string `yaml:"kind"`
	// Cron is a five-field cron expression or a descriptor (@daily).
	Cron string `yaml:"cron"`
	// TimeZone is the IANA zone Cron is read in; default UTC.
	TimeZone string `yaml:"time_zone"`
	// Month, for a backfill: "previous" (default: the month before the
	// scheduled day) or a fixed YYYY-MM.
	Month string `yaml:"month"`
}

// GCSConfig tunes the gs:// store (store.GCSOptions).
type GCSConfig struct {
	// MaxAttempts bounds the attempts of one call, the first included.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff doubles after every retry up to MaxBackoff (jittered).
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	// CallTimeout is the deadline of one attempt (a request, an upload
	// chunk, a wait for bytes of a read).
	CallTimeout time.Duration `yaml:"call_timeout"`
	// ChunkSize: objects up to this size are uploaded in one request,
	// larger ones resumably in chunks of this size.
	ChunkSize int `yaml:"chunk_size"`
	// ParallelReadThreshold: objects at least this large are read as
	// parallel ranges of ParallelReadPartSize, ParallelReads at once.
	ParallelReadThreshold int64 `yaml:"parallel_read_threshold"`
	ParallelReadPartSize  int64 `yaml:"parallel_read_part_size"`
	ParallelReads         int   `yaml:"parallel_reads"`
}

// TableConfig says where one job reads and what it writes.
type TableConfig struct {
	// Dir is the folder of the input store the job reads (dumps, queue).
	Dir string `yaml:"dir"`
	// Table is the output table name.
	Table string `yaml:"table"`
	// IDColumns are copied from each input row to its output row.
	IDColumns []string `yaml:"id_columns"`
	// LabelColumns are copied, as numbers, from each input row to its
	// output row: null where missing, and in every row of a file that has
	// no such column. scorer evaluate reads them.
	LabelColumns []string `yaml:"label_columns"`
	// Duplicates (queue only): what a run does with a request whose ids
	// were scored before, in the run or in the window: reject (to the
	// rejects table), keep_first (dropped, counted) or keep_all.
	Duplicates string `yaml:"duplicates"`
	// DuplicatesWindowDays (queue only): how many day partitions, the
	// run's and the ones before it, hold the ids that count as scored.
	DuplicatesWindowDays int `yaml:"duplicates_window_days"`
}

// RejectsConfig says what the rejects tables keep of a bad row.
type RejectsConfig struct {
	// RawMaxBytes bounds the raw text kept of a rejected row (the raw
	// column); 0 keeps none.
	RawMaxBytes int `yaml:"raw_max_bytes"`
}

// CSVConfig describes the CSV dumps.
type CSVConfig struct {
	// Delimiter is one character; "\t" for tab. Empty: "," (tab for .tsv).
	Delimiter string `yaml:"delimiter"`
	// Header says the first line names the columns.
	Header bool `yaml:"header"`
	// Columns names the columns of headerless files.
	Columns []string `yaml:"columns"`
}

// ParquetConfig sizes the output files.
type ParquetConfig struct {
	RowGroupRows int `yaml:"row_group_rows"`
	PartRows     int `yaml:"part_rows"`
}

// LogConfig sets up log/slog.
type LogConfig struct {
	// Format: auto (text on a terminal, JSON otherwise), text, json.
	Format string `yaml:"format"`
	// Level: debug, info, warn, error.
	Level string `yaml:"level"`
}

// TrainConfig is read by scorer train.
type TrainConfig struct {
	// Spec is the feature spec file (YAML).
	Spec string `yaml:"spec"`
	// Name and Version of the bundle; version defaults to the month.
	Name    string `yaml:"name"`
	Version string `yaml:"version"`
	// Arch: wide, deep or wide_deep. EmbeddingDim and Hidden size the deep
	// part; a wide model ignores them.
	Arch         string `yaml:"arch"`
	EmbeddingDim int    `yaml:"embedding_dim"`
	Hidden       []int  `yaml:"hidden"`
	// Epochs is the most epochs run; with a validation split, training
	// stops after Patience epochs without a lower validation log loss (0:
	// never early) and keeps the best epoch's weights.
	Epochs       int     `yaml:"epochs"`
	Patience     int     `yaml:"patience"`
	BatchSize    int     `yaml:"batch_size"`
	LearningRate float64 `yaml:"learning_rate"`
	L2           float64 `yaml:"l2"`
	// ValidationFraction of the rows is held out to pick the epoch and to
	// measure AUC and log loss; 0 for none (then all Epochs run).
	ValidationFraction float64 `yaml:"validation_fraction"`
	// Split: time holds out the latest rows by TimeColumn (without one,
	// the last rows in input order); random a seeded random choice.
	Split      string `yaml:"split"`
	TimeColumn string `yaml:"time_column"`
	// Refit retrains on every row for the best epoch count.
	Refit bool  `yaml:"refit"`
	Seed  int64 `yaml:"seed"`
	// Image is the image tower, used when the spec has image features.
	Image ImageTowerConfig `yaml:"image"`
}

// ImagesConfig says how runs read the images of image features.
type ImagesConfig struct {
	// OnBadImage: missing (score the row with the model's learned
	// missing-image embedding, counted in the summary), reject (the row is
	// a bad row: to the rejects table with its file, row, the URI and the
	// reason, within max_bad_rows) or fail (the run fails as bad input,
	// exit 3, naming the row, URI and reason).
	OnBadImage string `yaml:"on_bad_image"`
	// Workers fetch and decode images at once, apart from the scoring
	// workers; 0 means one per core.
	Workers int `yaml:"workers"`
	// MaxBytes refuses a larger image object before reading it.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxTrainImages bounds the distinct images scorer train holds in
	// memory (3 × size² float32 each: 12 KiB at 32 px).
	MaxTrainImages int `yaml:"max_train_images"`
}

// Options are the jobs' image options.
func (c ImagesConfig) Options() jobs.ImageOptions {
	return jobs.ImageOptions{OnBadImage: c.OnBadImage, Workers: c.Workers, MaxBytes: c.MaxBytes}
}

// ImageTowerConfig is train.image: the image tower of a model whose spec
// has image features.
type ImageTowerConfig struct {
	// Channels of the 3×3 conv layers (each with ReLU and 2×2 max pooling).
	Channels []int `yaml:"channels,flow"`
	// Embedding is the width of an image's embedding.
	Embedding int `yaml:"embedding"`
	// ONNX, if set, is an image model (a file or URI) of the tower's
	// shape, e.g. a PyTorch CNN exported with torch.onnx.export: its
	// layers and weights are the tower (Channels and Embedding are then
	// the model's), frozen unless FineTune.
	ONNX     string `yaml:"onnx"`
	FineTune bool   `yaml:"fine_tune"`
}

// Validate checks the train section (scorer train and scorer validate).
func (t TrainConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("train."+format, a...)) }
	if t.Spec == "" {
		bad("spec: must be set")
	}
	if t.Name == "" {
		bad("name: must be set")
	}
	switch t.Arch {
	case "wide", "deep", "wide_deep":
	default:
		bad("arch: wide, deep or wide_deep, not %q", t.Arch)
	}
	if t.Arch != "wide" {
		if t.EmbeddingDim < 1 {
			bad("embedding_dim: must be >= 1 for %s, got %d", t.Arch, t.EmbeddingDim)
		}
		for i, h := range t.Hidden {
			if h < 1 {
				bad("hidden[%d]: must be >= 1, got %d", i, h)
			}
		}
	}
	if t.Epochs < 1 {
		bad("epochs: must be >= 1, got %d", t.Epochs)
	}
	if t.Patience < 0 {
		bad("patience: must be >= 0, got %d", t.Patience)
	}
	if t.BatchSize < 1 {
		bad("batch_size: must be >= 1, got %d", t.BatchSize)
	}
	if !(t.LearningRate > 0 && t.LearningRate < 1) {
		bad("learning_rate: must be in (0, 1), got %g", t.LearningRate)
	}
	if !(t.L2 >= 0 && t.L2 < 1) {
		bad("l2: must be in [0, 1), got %g", t.L2)
	}
	if !(t.ValidationFraction >= 0 && t.ValidationFraction < 1) {
		bad("validation_fraction: must be in [0, 1), got %g", t.ValidationFraction)
	}
	switch t.Split {
	case jobs.SplitTime, jobs.SplitRandom:
	default:
		bad("split: time or random, not %q", t.Split)
	}
	if t.Refit && t.ValidationFraction == 0 {
		bad("refit: needs a validation split (validation_fraction > 0) to choose the epoch count")
	}
	return errors.Join(errs...)
}

// DefaultMaxAbsLogit is the default max_abs_logit: a logit of 50 is a
// probability within 2e-22 of 0 or 1, which no click model means; a
// poisoned bias (1e38) or weights blown up in training give far more.
const DefaultMaxAbsLogit = 50

// Drift defaults: a PSI above 0.25 is the usual "significant shift" (below
// 0.1 "no change"); failing a run is a choice each deployment makes.
// Below 1000 rows a PSI over deciles is mostly sampling noise.
const (
	DefaultDriftWarnAbove = 0.25
	DefaultDriftMinRows   = 1000
)

// Default is the configuration with every key at its default: it runs the
// embedded demo from the repository root.
func Default() Config {
	return Config{
		Input:           "testdata/store",
		Output:          "out",
		Model:           "testdata/models/ctr-demo",
		BatchSize:       4096,
		ReadConcurrency: 2,
		MaxBadRows:      "0",
		MaxAbsLogit:     DefaultMaxAbsLogit,
		Drift:           jobs.DriftPolicy{WarnAbove: DefaultDriftWarnAbove, MinRows: DefaultDriftMinRows},
		Images:          ImagesConfig{OnBadImage: scoring.BadImageMissing, MaxBytes: 8 << 20, MaxTrainImages: jobs.DefaultMaxTrainImages},
		Backfill:        TableConfig{Dir: "dumps", Table: "ad_scores", IDColumns: []string{"ad_id"}, LabelColumns: []string{"clicked"}},
		Queue: TableConfig{
			Dir: "queue", Table: "request_scores", IDColumns: []string{"request_id"}, LabelColumns: []string{"clicked"},
			Duplicates: string(jobs.DupReject), DuplicatesWindowDays: 2,
		},
		Rejects:  RejectsConfig{RawMaxBytes: 1024},
		CSV:      CSVConfig{Header: true},
		Parquet:  ParquetConfig{RowGroupRows: 128 * 1024, PartRows: 1 << 20},
		Log:      LogConfig{Format: "auto", Level: "info"},
		Progress: "auto",
		LeaseTTL: time.Minute,
		GCS:      gcsDefaults(),
		Schedule: ScheduleConfig{
			Listen: ":8080", ShutdownTimeout: 5 * time.Minute, Retries: 3, Backoff: time.Minute, MaxBackoff: 15 * time.Minute,
			Jobs: []ScheduleJob{
				{Name: "nightly-queue", Kind: "queue", Cron: "30 2 * * *", TimeZone: "UTC"},
				{Name: "monthly-backfill", Kind: "backfill", Cron: "0 4 1 * *", TimeZone: "UTC", Month: "previous"},
			},
		},
		Evaluate: EvaluateConfig{Table: "evaluations", MaxSegmentValues: 50, Bins: 10},
		Promote:  PromoteConfig{MaxAUCDrop: 0.002, MaxLogLossRise: 0.002},
		Retention: RetentionConfig{
			RunRecordsDays: 90, ScheduleDays: 90, StagingDays: 7,
			QueueAction: QueueArchive, QueueArchiveDir: "queue-archive",
		},
		Serve: ServeConfig{
			Addr: ":8080", MaxBodyBytes: 4 << 20, MaxItems: 5000, BatchMaxItems: 5000, BatchMaxWait: 50 * time.Millisecond,
			ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
			IdleTimeout: 2 * time.Minute, ShutdownTimeout: 25 * time.Second,
		},
		Train: TrainConfig{
			Image: ImageTowerConfig{Channels: []int{8, 16}, Embedding: 8},
			Spec:  "testdata/features.yaml", Name: "ctr-demo", Arch: "wide_deep", EmbeddingDim: 8,
			Hidden: []int{32, 16}, Epochs: 8, Patience: 2, BatchSize: 256, LearningRate: 0.001,
			ValidationFraction: 0.2, Split: jobs.SplitTime, Seed: 1,
		},
	}
}

// Load applies the file (if any) and then the environment (SCORER_<KEY>,
// read through env) to the defaults. It does not validate: flags may still
// change the result (see Validate).
func Load(path string, env func(string) (string, bool)) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		// An empty file (io.EOF) means "all defaults".
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(reflect.ValueOf(&cfg).Elem(), "SCORER", env); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// applyEnv sets each scalar (and list) field from PREFIX_<YAML KEY>.
func applyEnv(v reflect.Value, prefix string, env func(string) (string, bool)) error {
	t := v.Type()
	for i := range t.NumField() {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		name := prefix + "_" + strings.ToUpper(tag)
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			if err := applyEnv(f, name, env); err != nil {
				return err
			}
			continue
		}
		s, ok := env(name)
		if !ok {
			continue
		}
		if err := setScalar(f, s); err != nil {
			return fmt.Errorf("environment %s=%q: %w", name, s, err)
		}
	}
	return nil
}

func setScalar(f reflect.Value, s string) error {
	if f.Type() == reflect.TypeFor[time.Duration]() {
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Slice:
		if strings.TrimSpace(s) == "" { // SCORER_TRAIN_HIDDEN="": the empty list
			f.Set(reflect.MakeSlice(f.Type(), 0, 0))
			return nil
		}
		parts := strings.Split(s, ",")
		sl := reflect.MakeSlice(f.Type(), len(parts), len(parts))
		for i, p := range parts {
			if err := setScalar(sl.Index(i), strings.TrimSpace(p)); err != nil {
				return err
			}
		}
		f.Set(sl)
	default:
		return fmt.Errorf("unsupported kind %s", f.Kind())
	}
	return nil
}

// Validate checks the configuration without touching any store.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, u := range []struct{ key, uri string }{{"input", c.Input}, {"output", c.Output}} {
		if u.uri == "" {
			bad("%s: must be set", u.key)
		} else if err := store.CheckURI(u.uri); err != nil {
			bad("%s: %v", u.key, err)
		}
	}
	if c.Registry != "" {
		if err := store.CheckURI(c.Registry); err != nil {
			bad("registry: %v", err)
		}
	}
	if c.Model == "" {
		bad("model: must be set")
	} else if err := c.checkModel(c.Model); err != nil {
		bad("model: %v", err)
	}
	for i, m := range c.Challengers {
		if err := c.checkModel(m); err != nil {
			bad("challengers[%d]: %v", i, err)
		}
		if m == c.Model || slices.Contains(c.Challengers[:i], m) {
			bad("challengers[%d]: %q is listed twice (or is the model itself)", i, m)
		}
	}
	if c.Workers < 0 {
		bad("workers: must be >= 0, got %d", c.Workers)
	}
	if err := c.Drift.Check(nil); err != nil { // the feature names: when a run loads the model
		bad("%v", err)
	}
	switch c.Images.OnBadImage {
	case scoring.BadImageMissing, scoring.BadImageReject, scoring.BadImageFail:
	default:
		bad("images.on_bad_image: %s, %s or %s, not %q", scoring.BadImageMissing, scoring.BadImageReject, scoring.BadImageFail, c.Images.OnBadImage)
	}
	if c.Images.Workers < 0 || c.Images.MaxBytes < 1 || c.Images.MaxTrainImages < 1 {
		bad("images: workers must be >= 0, max_bytes and max_train_images >= 1 (got %d, %d, %d)", c.Images.Workers, c.Images.MaxBytes, c.Images.MaxTrainImages)
	}
	if sv := c.Serve; sv.MaxBodyBytes < 1 || sv.MaxItems < 1 || sv.BatchMaxItems < 1 || sv.BatchMaxWait <= 0 ||
		sv.ReadHeaderTimeout <= 0 || sv.ReadTimeout <= 0 || sv.WriteTimeout <= 0 || sv.IdleTimeout <= 0 || sv.ShutdownTimeout <= 0 {
		bad("serve: max_body_bytes, max_items, batch_max_items and every timeout must be positive")
	} else if (sv.TLSCert == "") != (sv.TLSKey == "") {
		bad("serve: tls_cert and tls_key go together")
	}
	if c.BatchSize < 1 || c.BatchSize > 1<<20 {
		bad("batch_size: must be in 1..1048576, got %d", c.BatchSize)
	}
	if c.ReadConcurrency < 1 {
		bad("read_concurrency: must be >= 1, got %d", c.ReadConcurrency)
	}
	if _, err := jobs.ParseBadRowLimit(c.MaxBadRows); err != nil {
		bad("max_bad_rows: %v", err)
	}
	if c.Rejects.RawMaxBytes < 0 || c.Rejects.RawMaxBytes > 1<<20 {
		bad("rejects.raw_max_bytes: must be in 0..1048576, got %d", c.Rejects.RawMaxBytes)
	}
	if !(c.MaxAbsLogit >= 0) || math.IsInf(c.MaxAbsLogit, 0) {
		bad("max_abs_logit: must be a number >= 0 (0 turns the check off), got %g", c.MaxAbsLogit)
	}
	for name, t := range map[string]TableConfig{"backfill": c.Backfill, "queue": c.Queue} {
		// A table is one folder of the output store: no separator, no
		// NUL, not "_scorer" and the like (the scorer's own state), not
		// ".tmp", "." or ".." (the local store's temporary files, or a
		// way out of the store).
		if t.Table == "" || strings.ContainsAny(t.Table, "/=\x00") || strings.HasPrefix(t.Table, "_") || strings.HasPrefix(t.Table, ".") {
			bad("%s.table: %q is not a valid table name", name, t.Table)
		}
		// The folder the job reads is a key prefix inside the input store.
		if t.Dir == "" {
			bad("%s.dir: must be set", name)
		} else if err := store.CheckKey(strings.TrimSuffix(t.Dir, "/")); err != nil {
			bad("%s.dir: must be a folder inside the input store: %v", name, err)
		}
		if len(t.IDColumns) == 0 {
			bad("%s.id_columns: at least one id column is needed", name)
		}
		for _, id := range t.IDColumns {
			if jobs.RejectsColumn(id) {
				bad("%s.id_columns: %q is also a column of the rejects table; rename it", name, id)
			}
		}
		for i, l := range t.LabelColumns {
			if slices.Contains(t.IDColumns, l) || slices.Contains(t.LabelColumns[:i], l) || jobs.ScoreTableColumn(l) {
				bad("%s.label_columns: %q is also an id column, listed twice, or a column the score table has anyway", name, l)
			}
		}
	}
	if c.Backfill.Duplicates != "" || c.Backfill.DuplicatesWindowDays != 0 {
		bad("backfill.duplicates, backfill.duplicates_window_days: queue only (a backfill replaces its month whole)")
	}
	if _, err := jobs.ParseDuplicates(c.Queue.Duplicates); err != nil {
		bad("queue.duplicates: %v", err)
	}
	if c.Queue.DuplicatesWindowDays < 1 || c.Queue.DuplicatesWindowDays > 366 {
		bad("queue.duplicates_window_days: must be in 1..366, got %d", c.Queue.DuplicatesWindowDays)
	}
	if c.Backfill.Table == c.Queue.Table {
		bad("backfill.table and queue.table must differ (their partitions have different keys)")
	}
	if d := []rune(unescapeDelim(c.CSV.Delimiter)); len(d) > 1 {
		bad("csv.delimiter: must be one character, got %q", c.CSV.Delimiter)
	}
	if c.Parquet.RowGroupRows < 1 || c.Parquet.PartRows < c.Parquet.RowGroupRows {
		bad("parquet: need 1 <= row_group_rows <= part_rows, got %d and %d", c.Parquet.RowGroupRows, c.Parquet.PartRows)
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		bad("log.format: auto, text or json, not %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: debug, info, warn or error, not %q", c.Log.Level)
	}
	if err := c.GCS.Options(nil).Validate(); err != nil {
		bad("gcs: %v", err)
	}
	if c.LeaseTTL < 2*time.Second {
		bad("lease_ttl: must be at least 2s (leases are renewed at most once a second), got %s", c.LeaseTTL)
	}
	switch c.Progress {
	case "auto", "on", "off":
	default:
		bad("progress: auto, on or off, not %q", c.Progress)
	}
	e := c.Evaluate
	if err := table.ValidateTable(e.Table); err != nil {
		bad("evaluate.table: %v", err)
	}
	for _, t := range []string{c.Backfill.Table, c.Queue.Table} {
		if slices.Contains([]string{t, jobs.RejectsTable(t), jobs.ChallengersTable(t)}, e.Table) {
			bad("evaluate.table: %q is a table of the scoring jobs", e.Table)
		}
	}
	if e.MaxSegmentValues < 1 {
		bad("evaluate.max_segment_values: must be >= 1, got %d", e.MaxSegmentValues)
	}
	if e.Bins < 0 || e.Bins > 1000 {
		bad("evaluate.bins: must be in 0..1000, got %d", e.Bins)
	}
	for _, m := range []struct {
		key string
		v   float64
	}{{"max_auc_drop", c.Promote.MaxAUCDrop}, {"max_log_loss_rise", c.Promote.MaxLogLossRise}} {
		if !(m.v >= 0) || math.IsInf(m.v, 0) {
			bad("promote.%s: must be a number >= 0, got %g", m.key, m.v)
		}
	}
	for _, err := range c.Schedule.validate() {
		bad("schedule.%v", err)
	}
	for _, err := range c.Retention.validate(c) {
		bad("retention.%v", err)
	}
	return errors.Join(errs...)
}

// validate checks the retention section; each error starts with its key.
func (r RetentionConfig) validate(c Config) []error {
	var errs []error
	for _, d := range []struct {
		key  string
		days int
	}{
		{"run_records_days", r.RunRecordsDays},
		{"schedule_days", r.ScheduleDays},
		{"staging_days", r.StagingDays},
		{"archive_days", r.ArchiveDays},
		{"queue_days", r.QueueDays},
	} {
		if d.days < 0 {
			errs = append(errs, fmt.Errorf("%s: must be >= 0 (0 keeps forever), got %d", d.key, d.days))
		}
	}
	switch r.QueueAction {
	case QueueArchive, QueueDelete:
	default:
		errs = append(errs, fmt.Errorf("queue_action: archive or delete, not %q", r.QueueAction))
	}
	dir := strings.TrimSuffix(r.QueueArchiveDir, "/")
	inside := func(a, b string) bool { return strings.HasPrefix(a+"/", strings.TrimSuffix(b, "/")+"/") }
	switch {
	case dir == "":
		errs = append(errs, errors.New("queue_archive_dir: must be set"))
	case store.CheckKey(dir) != nil:
		errs = append(errs, fmt.Errorf("queue_archive_dir: must be a folder inside the input store: %w", store.CheckKey(dir)))
	case inside(dir, c.Queue.Dir) || inside(c.Queue.Dir, dir):
		errs = append(errs, fmt.Errorf("queue_archive_dir: %q overlaps queue.dir %q: archived files would be queued again", r.QueueArchiveDir, c.Queue.Dir))
	case inside(dir, c.Backfill.Dir):
		errs = append(errs, fmt.Errorf("queue_archive_dir: %q is inside backfill.dir %q: a backfill would read archived files", r.QueueArchiveDir, c.Backfill.Dir))
	}
	return errs
}

// checkModel checks a model URI or registry reference.
func (c Config) checkModel(uri string) error {
	ref, ok, err := registry.ParseRef(uri)
	switch {
	case err != nil:
		return err
	case ok && c.Registry == "":
		return fmt.Errorf("%s is a registry reference, but registry is not set", ref)
	case ok:
		return nil
	}
	return store.CheckURI(uri)
}

func gcsDefaults() GCSConfig {
	d := store.DefaultGCSOptions()
	return GCSConfig{
		MaxAttempts: d.MaxAttempts, InitialBackoff: d.InitialBackoff, MaxBackoff: d.MaxBackoff,
		CallTimeout: d.CallTimeout, ChunkSize: d.ChunkSize, ParallelReadThreshold: d.ParallelReadThreshold,
		ParallelReadPartSize: d.ParallelReadPartSize, ParallelReads: d.ParallelReads,
	}
}

// Options are the store options of this config; onRetry (may be nil) is
// called on every retry.
func (g GCSConfig) Options(onRetry func(op string, err error)) store.GCSOptions {
	return store.GCSOptions{
		MaxAttempts: g.MaxAttempts, InitialBackoff: g.InitialBackoff, MaxBackoff: g.MaxBackoff,
		CallTimeout: g.CallTimeout, ChunkSize: g.ChunkSize, ParallelReadThreshold: g.ParallelReadThreshold,
		ParallelReadPartSize: g.ParallelReadPartSize, ParallelReads: g.ParallelReads, OnRetry: onRetry,
	}
}

// CSVOptions are the reader options of the csv section.
func (c CSVConfig) CSVOptions() readers.CSVOptions {
	var delim rune
	if d := []rune(unescapeDelim(c.Delimiter)); len(d) == 1 {
		delim = d[0]
	}
	return readers.CSVOptions{Delimiter: delim, Header: c.Header, ColumnNames: c.Columns}
}

func unescapeDelim(s string) string {
	if s == `\t` {
		return "\t"
	}
	return s
}

// PeekLog returns the log section as the file at path (if any) and the
// environment set it, leniently: it never fails, and a value it cannot read
// stays at its default. It lets a command pick its log format before the
// configuration is loaded and validated, so that even an error in the
// configuration is logged in the format asked for.
func PeekLog(path string, env func(string) (string, bool)) LogConfig {
	lc := Default().Log
	if path != "" {
		if data, err := os.ReadFile(path); err == nil {
			var f struct {
				Log struct {
					Format string `yaml:"format"`
					Level  string `yaml:"level"`
				} `yaml:"log"`
			}
			if yaml.Unmarshal(data, &f) == nil {
				lc.Format = cmp.Or(f.Log.Format, lc.Format)
				lc.Level = cmp.Or(f.Log.Level, lc.Level)
			}
		}
	}
	if v, ok := env("SCORER_LOG_FORMAT"); ok {
		lc.Format = v
	}
	if v, ok := env("SCORER_LOG_LEVEL"); ok {
		lc.Level = v
	}
	return lc
}
