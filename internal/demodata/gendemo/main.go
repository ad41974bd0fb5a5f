// Command gendemo writes the embedded demo store under testdata/store: two
// months of labelled ad dumps (gzip CSV) and a day of queued prediction
// requests (JSON Lines), drawn from demodata's seeded click function.
//
//	go run ./internal/demodata/gendemo -out testdata/store
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/adtech/scorer/internal/demodata"
)

func main() {
	out := flag.String("out", "testdata/store", "store folder to write")
	seed := flag.Uint64("seed", 2020, "seed of the click function")
	rows := flag.Int("rows", 20000, "rows per dump file")
	flag.Parse()
	if err := run(*out, *seed, *rows); err != nil {
		log.Fatal(err)
	}
}

func run(out string, seed uint64, rows int) error {
	g := demodata.New(seed)
	for _, month := range []string{"2020-08", "2020-09"} {
		from, err := time.Parse("2006-01", month)
		if err != nil {
			return err
		}
		to := from.AddDate(0, 1, 0)
		for part := range 2 {
			name := fmt.Sprintf("ads-%s-%03d", month, part)
			if err := write(filepath.Join(out, "dumps", month, name+".csv.gz"), func(f *os.File) error {
				return demodata.WriteCSV(f, g.Rows(name, rows, from, to), true)
			}); err != nil {
				return err
			}
		}
	}
	day := time.Date(2020, 9, 2, 0, 0, 0, 0, time.UTC)
	for _, hour := range []int{0, 12} {
		name := fmt.Sprintf("requests-2020-09-02T%02d", hour)
		from := day.Add(time.Duration(hour) * time.Hour)
		if err := write(filepath.Join(out, "queue", name+".jsonl"), func(f *os.File) error {
			return demodata.WriteJSONL(f, g.Rows(name, rows/10, from, from.Add(12*time.Hour)))
		}); err != nil {
			return err
		}
	}
	return nil
}

func write(path string, fill func(*os.File) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := fill(f); err != nil {
		_ = f.Close() // the write already failed; that error is the one to report
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
