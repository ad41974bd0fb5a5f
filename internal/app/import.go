package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/adtech/scorer/features"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/readers"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
	"github.com/adtech/scorer/scoring/onnx"
)

// ImportRequest asks for an ONNX model to become a bundle.
type ImportRequest struct {
	Model string // path or URI of the .onnx file
	Spec  string // feature spec file computing the model's inputs
	// Stats is a YAML file of features.Stats (numeric means and standard
	// deviations, vocabularies), for specs that standardize or look up.
	Stats         string
	Out           string // folder or URI the bundle is written to
	Name, Version string
	// Bind maps graph inputs to features (INPUT=f1,f2,... flags).
	Bind       map[string][]string
	Output     string
	OutputKind string
	Command    string // recorded in the bundle
	// Data is a sample of the model's input data (a CSV, JSONL or Parquet
	// file, or a folder of them; a path or URI) from which the bundle's
	// reference rows are taken; "" for none (the skew guard then has
	// nothing to check).
	Data string
}

// ParseBind reads --bind values: INPUT=feature,feature,...
func ParseBind(values []string) (map[string][]string, error) {
	bind := map[string][]string{}
	for _, v := range values {
		name, list, ok := strings.Cut(v, "=")
		if !ok || name == "" || list == "" {
			return nil, UsageError{fmt.Errorf("bind %q: want INPUT=feature,feature (the features of a graph input, in order)", v)}
		}
		if _, dup := bind[name]; dup {
			return nil, UsageError{fmt.Errorf("--bind: input %q is bound twice", name)}
		}
		bind[name] = strings.Split(list, ",")
	}
	return bind, nil
}

// ImportONNX imports an ONNX model as a bundle and saves it; it returns the
// bundle and the URI it was saved to. A model scorer cannot run is a
// configuration error (exit 2) naming the node, operator and opset.
func (a *App) ImportONNX(ctx context.Context, r ImportRequest) (*bundle.Bundle, string, error) {
	if r.Model == "" || r.Spec == "" || r.Out == "" {
		return nil, "", UsageError{errors.New("import onnx: a model file, --spec and --out are required")}
	}
	spec, err := features.LoadSpec(r.Spec)
	if err != nil {
		return nil, "", UsageError{err}
	}
	var stats features.Stats
	if r.Stats != "" {
		data, err := os.ReadFile(r.Stats)
		if err != nil {
			return nil, "", UsageError{fmt.Errorf("read feature statistics: %w", err)}
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&stats); err != nil {
			return nil, "", UsageError{fmt.Errorf("%s: %w", r.Stats, err)}
		}
	}
	dir, file := path.Split(r.Model)
	if dir == "" {
		dir = "."
	}
	src, err := store.Open(ctx, dir)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("model: %w", err)}
	}
	data, err := store.ReadAll(ctx, src, file)
	if err != nil {
		if errors.Is(err, store.ErrNotExist) {
			return nil, "", UsageError{fmt.Errorf("model: %w", err)}
		}
		return nil, "", fmt.Errorf("read %s: %w", src.URI(file), err)
	}
	name := r.Name
	if name == "" {
		name = strings.TrimSuffix(file, ".onnx")
	}
	bu, err := onnx.Import(data, onnx.Options{
		Name: name, Version: r.Version, Spec: spec, Stats: stats, Bind: r.Bind,
		Output: r.Output, OutputKind: r.OutputKind, File: src.URI(file),
	})
	if err != nil {
		return nil, "", fmt.Errorf("%w: %s: %w", jobs.ErrConfig, src.URI(file), err)
	}
	bu.Training.Command = r.Command
	bu.Training.Data = src.URI(file)
	if r.Data == "" {
		a.log.Info("no --data: the bundle has no reference rows and no training profile, so the skew guard will have nothing to check and drift is measured against the previous partition only", "model", src.URI(file))
	} else {
		if bu.Reference, err = a.ReferenceRows(ctx, bu, r.Data); err != nil {
			return nil, "", err
		}
		a.log.Info("reference rows", "data", r.Data, "rows", len(bu.Reference))
		if bu.Profile, err = a.DataProfile(ctx, bu, r.Data); err != nil {
			return nil, "", err
		}
		a.log.Info("training profile", "data", r.Data, "rows", bu.Profile.Rows)
	}
	out, err := store.Open(ctx, r.Out)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("out: %w", err)}
	}
	if err := bu.Save(ctx, out, ""); err != nil {
		return nil, "", fmt.Errorf("save bundle: %w", err)
	}
	a.log.Info("imported ONNX model", "file", src.URI(file), "opset", bu.Graph.Opset, "nodes", len(bu.Graph.Nodes), "bundle", out.URI(""))
	return bu, out.URI(""), nil
}

// ReferenceRows takes a bundle's reference rows from a sample of its input
// data: a file (CSV, TSV, JSONL, Parquet, gzipped or not) or a folder of
// them, by path or URI, read as the configuration's CSV settings say. The
// rows are picked as scorer train picks them (jobs.ReferenceRows) and
// scored by the bundle; the bundle is not changed. A sample that does not
// exist, has no file or no usable row, or cannot be decoded (a missing
// column, a corrupt file) is a usage error.
func (a *App) ReferenceRows(ctx context.Context, bu *bundle.Bundle, data string) ([]bundle.ReferenceRow, error) {
	b, files, err := dataFiles(ctx, data)
	if err != nil {
		return nil, err
	}
	rows, err := jobs.Reference(ctx, jobs.ReferenceJob{Input: b, Files: files, Bundle: bu, CSV: a.cfg.CSV.CSVOptions()})
	if errors.Is(err, jobs.ErrBadInput) { // the sample named on the command line, not a run's input
		return nil, UsageError{fmt.Errorf("reference rows from %s: %w", data, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("reference rows from %s: %w", data, err)
	}
	if len(rows) == 0 {
		return nil, UsageError{fmt.Errorf("--data %s: no row the model can score", data)}
	}
	return rows, nil
}

// DataProfile is the training profile of a bundle made from a sample of its
// input data (as ReferenceRows reads it): the profile its scoring runs
// measure their drift against (docs/monitoring.md).
func (a *App) DataProfile(ctx context.Context, bu *bundle.Bundle, data string) (*features.Profile, error) {
	b, files, err := dataFiles(ctx, data)
	if err != nil {
		return nil, err
	}
	fx, err := features.NewPipeline(bu.Features, bu.Stats)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", jobs.ErrConfig, err)
	}
	p, err := jobs.ProfileData(ctx, func() (*readers.Reader, error) {
		return readers.Open(ctx, b, files, readers.Options{
			Schema: bu.ReferenceSchema(), BatchSize: 4096, Concurrency: 1, CSV: a.cfg.CSV.CSVOptions(),
			OnBadRow: func(readers.RowError) error { return nil }, // a sample: its bad rows are left out
		})
	}, fx, bu)
	if errors.Is(err, jobs.ErrBadInput) {
		return nil, UsageError{fmt.Errorf("profile of %s: %w", data, err)}
	}
	if err != nil {
		return nil, fmt.Errorf("profile of %s: %w", data, err)
	}
	return p, nil
}

// dataFiles resolves a file or folder of input data: its store and files.
func dataFiles(ctx context.Context, data string) (store.Bucket, []store.ObjectInfo, error) {
	dir, file := path.Split(strings.TrimSuffix(data, "/"))
	if dir == "" {
		dir = "."
	}
	b, err := store.Open(ctx, dir)
	if err != nil {
		return nil, nil, UsageError{fmt.Errorf("data: %w", err)}
	}
	info, err := b.Stat(ctx, file)
	if err == nil {
		return b, []store.ObjectInfo{info}, nil
	}
	if !errors.Is(err, store.ErrNotExist) {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	// Not a file: a folder.
	if b, err = store.Open(ctx, data); err != nil {
		return nil, nil, UsageError{fmt.Errorf("data: %w", err)}
	}
	files, _, err := jobs.ListInputs(ctx, b, "")
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	if len(files) == 0 {
		return nil, nil, UsageError{fmt.Errorf("data: no input file (CSV, TSV, JSONL, Parquet) at %s", b.URI(""))}
	}
	return b, files, nil
}
