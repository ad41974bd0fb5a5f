// Command perfdata writes the performance data set: the reference bundles
// (ctr-mlp, ctr-logreg) and Criteo-like ad dumps in a scorer store, so that
// the built scorer binary can be timed and its memory measured on them.
//
//	perfdata -out /tmp/scorer-perf -rows 1000000 -files 2 -copies 1
//
// writes
//
//	OUT/models/ctr-mlp/      model.yaml, weights.safetensors
//	OUT/models/ctr-logreg/
//	OUT/store/dumps/2020-01/part-00000.csv ...   files × rows/files rows
//
// -copies C > 1 adds C-1 hard links of every file (part-c00001-00000.csv,
// ...): C times the rows for the disk space of one copy. Existing bundles
// are kept; the month's files are written again.
//
// -export DIR writes, for tools outside Go (the side-by-side comparison
// with ONNX Runtime and numpy), prepared model inputs of -export-rows rows
// and the reference models' scores of them, as NumPy arrays:
//
//	DIR/dense.npy          float32 [N, 13]   the dense features (I1..I13)
//	DIR/cat.npy            int32   [N, 26]   each categorical's index in its own table (0 = missing)
//	DIR/scores-ctr-mlp.npy float32 [N]       scorer's probabilities
//	DIR/scores-ctr-logreg.npy
//
// The weights are the bundles' weights.safetensors (docs/bundle.md names
// them; deep.emb stacks the 26 tables of 65537 rows in feature order).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/adtech/scorer/internal/perf"
	"github.com/adtech/scorer/readers/store"
	"github.com/adtech/scorer/scoring"
	"github.com/adtech/scorer/scoring/kernels"
)

func main() {
	out := flag.String("out", "", "output folder (required)")
	rows := flag.Int("rows", 1_000_000, "rows in all, before -copies")
	files := flag.Int("files", 2, "files the rows are split into")
	copies := flag.Int("copies", 1, "hard-linked copies of every file (multiplies the rows)")
	month := flag.String("month", "2020-01", "month folder under store/dumps/")
	seed := flag.Uint64("seed", 1, "seed of weights and rows")
	models := flag.Bool("models", true, "write the reference bundles")
	export := flag.String("export", "", "also write prepared inputs and scores as .npy files to this folder")
	exportRows := flag.Int("export-rows", 8192, "rows of -export")
	kernel := flag.Bool("kernel", false, "print the scoring kernel of this build (kernels.Name) and exit")
	flag.Parse()
	if *kernel {
		fmt.Println(kernels.Name())
		return
	}
	if *out == "" || *rows < 1 || *files < 1 || *copies < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*out, *rows, *files, *copies, *month, *seed, *models); err != nil {
		fmt.Fprintln(os.Stderr, "perfdata:", err)
		os.Exit(1)
	}
	if *export != "" {
		if err := exportInputs(*export, *exportRows, *seed); err != nil {
			fmt.Fprintln(os.Stderr, "perfdata:", err)
			os.Exit(1)
		}
	}
}

// exportInputs writes prepared inputs and both models' scores of them.
func exportInputs(dir string, n int, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	in, err := perf.NewGenerator(seed + 1).Batch(n)
	if err != nil {
		return err
	}
	write := func(name string, f func(*os.File) error) error {
		file, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if err := f(file); err != nil {
			_ = file.Close()
			return err
		}
		return file.Close()
	}
	if err := write("dense.npy", func(f *os.File) error { return perf.WriteNPY(f, in.Dense, n, in.D) }); err != nil {
		return err
	}
	if err := write("cat.npy", func(f *os.File) error { return perf.WriteNPY(f, in.Cat, n, in.K) }); err != nil {
		return err
	}
	for _, name := range []string{perf.MLP, perf.LogReg} {
		bu, err := perf.Bundle(name, seed)
		if err != nil {
			return err
		}
		m, err := scoring.NewModel(bu, 1024)
		if err != nil {
			return err
		}
		scores := make([]float32, n)
		err = m.Score(in, scores)
		_ = m.Close()
		if err != nil {
			return err
		}
		if err := write("scores-"+name+".npy", func(f *os.File) error { return perf.WriteNPY(f, scores, n) }); err != nil {
			return err
		}
	}
	fmt.Printf("perfdata: %d prepared rows and scores under %s\n", n, dir)
	return nil
}

func run(out string, rows, files, copies int, month string, seed uint64, models bool) error {
	ctx := context.Background()
	if models {
		for _, name := range []string{perf.MLP, perf.LogReg} {
			dir := filepath.Join(out, "models", name)
			if _, err := os.Stat(filepath.Join(dir, "model.yaml")); err == nil {
				continue
			}
			bu, err := perf.Bundle(name, seed)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			if err := bu.Save(ctx, store.NewFileBucket(dir), ""); err != nil {
				return err
			}
		}
	}
	dir := filepath.Join(out, "store", "dumps", month)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	g := perf.NewGenerator(seed)
	for f := range files {
		n := rows / files
		if f < rows%files {
			n++
		}
		name := filepath.Join(dir, fmt.Sprintf("part-%05d.csv", f))
		if err := writeFile(name, g, n); err != nil {
			return err
		}
		for c := 1; c < copies; c++ {
			if err := os.Link(name, filepath.Join(dir, fmt.Sprintf("part-c%05d-%05d.csv", c, f))); err != nil {
				return err
			}
		}
	}
	fmt.Printf("perfdata: %d rows in %d files under %s\n", rows*copies, files*copies, dir)
	return nil
}

func writeFile(name string, g *perf.Generator, n int) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := g.WriteCSV(f, n); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
