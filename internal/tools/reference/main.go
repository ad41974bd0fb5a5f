// Command reference writes the reference rows of an existing model bundle
// (its reference.json: docs/bundle.md#reference-rows-and-the-skew-guard)
// and its training profile (profile.json: docs/monitoring.md) from a sample of
// its input data, and nothing else: model.yaml and the weights stay as
// they are. scorer train and scorer import onnx --data write both for the
// bundles they make; this is for a bundle made before there were any, such
// as the shipped demo model, whose retraining would change its weights
// (make demo-reference):
//
//	go run ./internal/tools/reference -model testdata/models/ctr-demo -data testdata/store/dumps/2020-08
//
// The rows are picked, computed and scored as scorer train does it, with
// today's feature code and kernels, and then checked by the skew guard.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring/bundle"
)

func main() {
	model := flag.String("model", "", "folder or URI of the model bundle (required)")
	data := flag.String("data", "", "a sample of the model's input data: file or folder, CSV/TSV/JSONL/Parquet (required)")
	flag.Parse()
	if *model == "" || *data == "" {
		fmt.Fprintln(os.Stderr, "reference: -model and -data are required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	n, err := write(ctx, *model, *data)
	if err != nil {
		fmt.Fprintln(os.Stderr, "reference:", err)
		os.Exit(app.ExitCode(err))
	}
	fmt.Printf("%d reference rows and the training profile from %s -> %s\n", n, *data, *model)
}

// write computes the rows and writes the bundle's reference.json.
func write(ctx context.Context, model, data string) (int, error) {
	b, err := store.Open(ctx, model)
	if err != nil {
		return 0, fmt.Errorf("model: %w", err)
	}
	// bundle.Load, not app.LoadBundle: the rows there now (if any) are to
	// be replaced, not checked.
	bu, err := bundle.Load(ctx, b, "")
	if err != nil {
		return 0, err
	}
	a := app.New(app.Default(), app.Options{})
	if bu.Reference, err = a.ReferenceRows(ctx, bu, data); err != nil {
		return 0, err
	}
	if err := bu.SaveReference(ctx, b, ""); err != nil {
		return 0, err
	}
	if bu.Profile, err = a.DataProfile(ctx, bu, data); err != nil {
		return 0, err
	}
	if err := bu.SaveProfile(ctx, b, ""); err != nil {
		return 0, err
	}
	return len(bu.Reference), nil
}
