package app

import (
	"strings"
	"testing"
)

// Every setting that becomes a key of a store is a path inside it, and a
// file URI names no host: refused by Validate, naming the setting, from
// the file and from the environment alike.
func TestValidateConfinesPaths(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string // "setting: detail": the setting named in the error, and what is wrong
	}{
		{"queue dir climbs out (env)", "", map[string]string{"SCORER_QUEUE_DIR": "../../../../etc"}, `queue.dir: "../../../../etc" has a ".." element`},
		{"dumps dir climbs out (file)", "backfill:\n  dir: dumps/../../x\n", nil, `backfill.dir: "dumps/../../x" has a ".." element`},
		{"absolute dir", "backfill:\n  dir: /etc\n", nil, `backfill.dir: "/etc" is absolute`},
		{"NUL in dir", "", map[string]string{"SCORER_QUEUE_DIR": "q\x00"}, `queue.dir: "q\x00" holds a NUL byte`},
		{"dot-dot table", "", map[string]string{"SCORER_BACKFILL_TABLE": ".."}, `backfill.table: ".." is not a valid table name`},
		{"hidden table", "queue:\n  table: .tmp\n", nil, `queue.table: ".tmp" is not a valid table name`},
		{"output with a host (env)", "", map[string]string{"SCORER_OUTPUT": "file://evil.host/tmp/x"}, `output: URI "file://evil.host/tmp/x" names host "evil.host"`},
		{"input with a host (file)", "input: file://h/data\n", nil, `input: URI "file://h/data" names host "h"`},
		{"model with a host", "model: file://h/m\n", nil, `model: URI "file://h/m" names host "h"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeConfig(t, tt.file)
			}
			cfg, err := Load(path, mapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			err = cfg.Validate()
			setting, detail, _ := strings.Cut(tt.want, ": ")
			if err == nil || !strings.Contains(err.Error(), setting+": ") || !strings.Contains(err.Error(), detail) {
				t.Fatalf("Validate: %v, want an error naming %s and containing %q", err, setting, detail)
			}
		})
	}
	// What stays valid: nested folders, a trailing slash, localhost.
	cfg := Default()
	cfg.Backfill.Dir, cfg.Queue.Dir, cfg.Output = "data/dumps/", "data/queue", "file://localhost/tmp/out"
	if err := cfg.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}
