package app

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/adtech/scorer/internal/jobs"
)

func noEnv(string) (string, bool) { return "", false }

func mapEnv(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnvironmentOverFile(t *testing.T) {
	file := writeConfig(t, "workers: 3\nbatch_size: 100\nbackfill:\n  table: from_file\n")
	cfg, err := Load(file, mapEnv(map[string]string{"SCORER_BATCH_SIZE": "200", "SCORER_QUEUE_ID_COLUMNS": "a,b"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers != 3 || cfg.BatchSize != 200 || cfg.Backfill.Table != "from_file" || strings.Join(cfg.Queue.IDColumns, ",") != "a,b" {
		t.Fatalf("config = workers %d, batch %d, table %q, queue ids %v", cfg.Workers, cfg.BatchSize, cfg.Backfill.Table, cfg.Queue.IDColumns)
	}
	if cfg.Output != Default().Output {
		t.Fatalf("unset key changed: output %q", cfg.Output)
	}
}

func TestPeekLog(t *testing.T) {
	file := writeConfig(t, "log: {format: json}\nouput: typo is not PeekLog's business\n")
	if lc := PeekLog(file, noEnv); lc.Format != "json" || lc.Level != "info" {
		t.Errorf("from the file: %+v", lc)
	}
	if lc := PeekLog(file, mapEnv(map[string]string{"SCORER_LOG_FORMAT": "text"})); lc.Format != "text" {
		t.Errorf("the environment over the file: %+v", lc)
	}
	if lc := PeekLog(filepath.Join(t.TempDir(), "missing.yaml"), noEnv); lc != Default().Log {
		t.Errorf("a missing file: %+v", lc)
	}
}

func TestScheduleConfig(t *testing.T) {
	// Jobs in the file replace the default jobs; the environment sets the
	// other keys; a time zone defaults to UTC.
	cfg, err := Load(writeConfig(t, "schedule:\n  jobs:\n    - {name: hourly, kind: queue, cron: '0 * * * *'}\n"),
		mapEnv(map[string]string{"SCORER_SCHEDULE_LISTEN": ":9999"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Schedule.Jobs) != 1 || cfg.Schedule.Listen != ":9999" || cfg.Validate() != nil {
		t.Fatalf("schedule config %+v (%v)", cfg.Schedule, cfg.Validate())
	}
	if sp, _ := cfg.Schedule.Jobs[0].Spec(); sp.Location() != time.UTC {
		t.Errorf("default time zone %s, want UTC", sp.Location())
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	// A backfill job scores the month before its scheduled day (in its zone).
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	j := ScheduleJob{Kind: KindBackfill, Month: "previous"}
	for slot, month := range map[time.Time]string{
		time.Date(2021, 1, 1, 4, 0, 0, 0, berlin):  "2020-12",
		time.Date(2021, 3, 1, 0, 30, 0, 0, berlin): "2021-02",
	} {
		if got := j.MonthFor(slot); got != month || j.LeaseJob(slot) != jobs.BackfillJob(month) {
			t.Errorf("backfill scheduled %s: month %s, want %s", slot, got, month)
		}
	}
	// The README's demo config is valid.
	demo, err := Load("../../testdata/schedule-demo.yaml", noEnv)
	if err != nil || demo.Validate() != nil || len(demo.Schedule.Jobs) != 2 {
		t.Errorf("testdata/schedule-demo.yaml: %v %v", err, demo.Validate())
	}
}

// docs/config.md documents the schedule section with its defaults: the
// YAML in the doc decodes (every key in it exists) to the default schedule
// (every key of the section is in it, with its default value).
func TestConfigDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "```yaml\n")
	block, _, _ = strings.Cut(block, "```")
	if !ok {
		t.Fatal("no yaml block in docs/config.md")
	}
	var cfg Config
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("docs/config.md: %v", err)
	}
	if want := Default().Schedule; !reflect.DeepEqual(cfg.Schedule, want) {
		t.Errorf("docs/config.md schedule:\n%+v\nthe defaults:\n%+v", cfg.Schedule, want)
	}
	// The whole block is the defaults (compared as YAML: an empty list
	// and none are the same there).
	got, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want, err := yaml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("docs/config.md:\n%s\nthe defaults:\n%s", got, want)
	}
}

// Failures safe to retry (exit codes 1 and 4) are retried; configuration
// and bad-input failures are not.
func TestRetryable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{errors.New("read gs://x: connection reset"), true},
		{fmt.Errorf("run: %w", jobs.ErrBusy), true},
		{fmt.Errorf("row 3: %w", jobs.ErrBadInput), false},
		{fmt.Errorf("%w: model", jobs.ErrConfig), false},
		{UsageError{errors.New("output: bad")}, false},
	} {
		if got := Retryable(tt.err); got != tt.want {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// An environment variable set to "" is the empty list (SCORER_TRAIN_HIDDEN=
// clears the default hidden layers); a wide model ignores the deep
// settings instead of refusing them.
func TestTrainSection(t *testing.T) {
	cfg, err := Load("", mapEnv(map[string]string{"SCORER_TRAIN_HIDDEN": "", "SCORER_TRAIN_ARCH": "deep"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Train.Hidden == nil || len(cfg.Train.Hidden) != 0 {
		t.Errorf("SCORER_TRAIN_HIDDEN=\"\": hidden = %#v, want the empty list", cfg.Train.Hidden)
	}
	if err := cfg.Train.Validate(); err != nil {
		t.Errorf("deep without hidden layers: %v", err)
	}
	wide := Default().Train
	wide.Arch = "wide"
	if err := wide.Validate(); err != nil {
		t.Errorf("wide from the defaults: %v", err)
	}
	if a := wide.Architecture(); a.EmbeddingDim != 0 || len(a.Hidden) != 0 {
		t.Errorf("wide architecture %+v keeps deep settings", a)
	}
	for _, tt := range []struct {
		set  func(*TrainConfig)
		want string
	}{
		{func(c *TrainConfig) { c.Split = "latest" }, "train.split"},
		{func(c *TrainConfig) { c.ValidationFraction = 1 }, "train.validation_fraction"},
		{func(c *TrainConfig) { c.Patience = -1 }, "train.patience"},
		{func(c *TrainConfig) { c.Arch = "linear" }, "train.arch"},
		{func(c *TrainConfig) { c.Refit, c.ValidationFraction = true, 0 }, "train.refit"},
		{func(c *TrainConfig) { c.Hidden = []int{0} }, "train.hidden[0]"},
	} {
		c := Default().Train
		tt.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
		}
	}
}

// The keys of the feedback loop: label columns, registry references and
// the evaluate and promote sections are checked like every other key, and
// each error names its key.
func TestEvaluationConfig(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	ok := Default()
	ok.Registry, ok.Model, ok.Challengers = "reg", "models:/ctr@current", []string{"models:/ctr/2", "other/bundle"}
	if err := ok.Validate(); err != nil {
		t.Errorf("registry references: %v", err)
	}
	for _, tt := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.Model = "models:/ctr@current" }, "registry is not set"},
		{func(c *Config) { c.Registry, c.Model = "reg", "models:/ctr@latest" }, "model:"},
		{func(c *Config) { c.Registry, c.Model = "reg", "models:/../x/1" }, "model:"},
		{func(c *Config) { c.Challengers = []string{c.Model} }, "challengers[0]"},
		{func(c *Config) { c.Challengers = []string{"a", "a"} }, "challengers[1]"},
		{func(c *Config) { c.Challengers = []string{"file://evil.host/x"} }, "challengers[0]"},
		{func(c *Config) { c.Backfill.LabelColumns = []string{"ad_id"} }, "backfill.label_columns"},
		{func(c *Config) { c.Queue.LabelColumns = []string{"score"} }, "queue.label_columns"},
		{func(c *Config) { c.Backfill.LabelColumns = []string{"y", "y"} }, "backfill.label_columns"},
		{func(c *Config) { c.Evaluate.Table = "ad_scores_challengers" }, "evaluate.table"},
		{func(c *Config) { c.Evaluate.Table = "_x" }, "evaluate.table"},
		{func(c *Config) { c.Evaluate.MaxSegmentValues = 0 }, "evaluate.max_segment_values"},
		{func(c *Config) { c.Evaluate.Bins = -1 }, "evaluate.bins"},
		{func(c *Config) { c.Promote.MaxAUCDrop = -0.1 }, "promote.max_auc_drop"},
		{func(c *Config) { c.Promote.MaxLogLossRise = math.NaN() }, "promote.max_log_loss_rise"},
	} {
		c := Default()
		tt.set(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want an error naming %s", err, tt.want)
		}
	}
	// Lists come from the environment comma-separated.
	cfg, err := Load("", mapEnv(map[string]string{"SCORER_CHALLENGERS": "a,b", "SCORER_BACKFILL_LABEL_COLUMNS": ""}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Challengers, []string{"a", "b"}) || cfg.Backfill.LabelColumns == nil || len(cfg.Backfill.LabelColumns) != 0 {
		t.Errorf("challengers %q, backfill.label_columns %q", cfg.Challengers, cfg.Backfill.LabelColumns)
	}
}
