package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/scoring/bundle"
)

func (c *cli) importCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "turn a model trained elsewhere into a bundle (onnx)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(c.importONNXCmd())
	return cmd
}

func (c *cli) importONNXCmd() *cobra.Command {
	var (
		r    app.ImportRequest
		bind []string
	)
	cmd := &cobra.Command{
		Use:   "onnx MODEL.onnx --spec FEATURES.yaml --out DIR [flags]",
		Short: "import an ONNX model (PyTorch, TensorFlow/Keras, ...) as a model bundle",
		Long: `Import an ONNX model as a model bundle: the graph in model.yaml (arch kind
graph), the float32 weights in weights.safetensors, the feature spec that
computes its inputs beside them. The bundle is then scored like any other
(backfill, run, challengers, evaluate, the registry), compiled into the same
fused Gorgonia graph as scorer's own models.

The graph's inputs are bound to the spec's features: --bind INPUT=f1,f2,...
(in the order of the input's values per row); an input named as a feature
takes that feature; the only float input left takes every numeric feature,
the only integer input left every categorical, cross and timestamp feature,
in spec order. Integer ids that the model looks up directly are categorical
features with ids: N (docs/features.md).

The model is compiled before the bundle is written: an operator scorer does
not run, an opset outside 13-21, a dynamic dimension other than the batch, a
reshape that fixes the batch size, or a feature whose cardinality reaches
beyond the table it indexes is refused here, naming the node, its operator
and the opset. The output gives one score a row ([batch] or [batch, 1]),
or two classes ([batch, 2]: class 1 is the click). docs/models.md lists
the operators and rules.

--data FILE_OR_URI gives a sample of the model's input data (a CSV, TSV,
JSONL or Parquet file, gzipped or not, or a folder of them; read with the
configured CSV settings): 16 of its rows (the first missing each input
column, the rest spread across the sample) are kept in the bundle's
reference.json with their features and the model's scores. Every load of
the bundle (scorer validate, every run, the daemon) recomputes them, and
refuses the bundle (exit code 2) if the features or the scores changed
(the skew guard, docs/bundle.md#reference-rows-and-the-skew-guard).
Without --data the bundle has no reference rows and the skew guard has
nothing to check.`,
		Example: `  scorer import onnx ctr.onnx --spec features.yaml --out models/ctr-onnx --data dumps/2020-08/ads-000.csv.gz
  scorer import onnx ctr.onnx --spec features.yaml --out gs://models/ctr/7 --bind dense=price,width --bind sparse=site,device`,
		Args: cobra.ExactArgs(1),
	}
	fs := cmd.Flags()
	fs.StringVar(&r.Spec, "spec", "", "feature spec file computing the model's inputs (required)")
	fs.StringVar(&r.Out, "out", "", "folder or URI to write the bundle to (required)")
	fs.StringVar(&r.Stats, "stats", "", "YAML file of feature statistics (stats: numeric means and stds, vocabularies) for a spec that standardizes or has vocabularies")
	fs.StringVar(&r.Name, "name", "", "bundle name (default: the file name without .onnx)")
	fs.StringVar(&r.Version, "version", "", "bundle version (default: the first 12 hex digits of the file's SHA-256)")
	fs.StringArrayVar(&bind, "bind", nil, "INPUT=feature,feature,...: the features of a graph input, in order (repeatable)")
	fs.StringVar(&r.Output, "output", "", "graph output to score with (default: the only one)")
	fs.StringVar(&r.Data, "data", "", "a sample of the model's input data (file or folder; CSV, TSV, JSONL, Parquet) to take the bundle's reference rows from (default: none, the skew guard checks nothing)")
	fs.StringVar(&r.OutputKind, "output-kind", bundle.OutputProbability, "what the output is: probability (computed by a final Sigmoid, or a Softmax over two classes) or logit (one, or two classes')")
	exitCodes(cmd, codes(0, 1, 2))

	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if r.Spec == "" || r.Out == "" {
			return cliError{fmt.Errorf("--spec and --out are required")}
		}
		if r.OutputKind != bundle.OutputProbability && r.OutputKind != bundle.OutputLogit {
			return cliError{fmt.Errorf("--output-kind %q: want probability or logit", r.OutputKind)}
		}
		var err error
		if r.Bind, err = app.ParseBind(bind); err != nil {
			return err
		}
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		r.Model = args[0]
		r.Command = "scorer " + strings.Join(c.args, " ")
		bu, uri, err := c.newApp(cfg).ImportONNX(cmd.Context(), r)
		if err != nil {
			return err
		}
		w := &errWriter{w: c.env.stdout}
		g := bu.Graph
		w.printf("imported %s (opset %d, %d nodes, %d weights) as %s %s -> %s\n", g.Source.File, g.Opset, len(g.Nodes), len(bu.Weights), bu.Name, bu.Version, uri)
		for _, in := range g.Inputs {
			w.printf("  input %s (%s) <- %s\n", in.Name, in.DType, strings.Join(in.Features, ", "))
		}
		w.printf("  output %s (%s)\n", g.Output.Name, g.Output.Kind)
		if len(bu.Reference) == 0 {
			w.printf("  no reference rows (no --data): the skew guard has nothing to check\n")
		} else {
			w.printf("  %d reference rows from %s (the skew guard checks them at every load)\n", len(bu.Reference), r.Data)
		}
		return w.err
	}
	return cmd
}
