// Command imagedata writes a month of demo ad dumps with banners for the
// image benchmarks (internal/perf/rss-images.sh): -rows rows in gzip CSV
// files of at most 500k rows under <out>/dumps/<month>/, each row showing
// one of -creatives banners (300 × 250 PNG, written once under
// <out>/banners/), drawn by internal/demodata as testdata/store-images is.
//
//	go run ./internal/perf/imagedata -out /tmp/scorer-perf/images -month 2020-12 -rows 1000000
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
	out := flag.String("out", "", "store folder (required)")
	month := flag.String("month", "2020-12", "month folder under dumps/")
	rows := flag.Int("rows", 1_000_000, "rows in all")
	creatives := flag.Int("creatives", 1000, "distinct banners")
	flag.Parse()
	if *out == "" {
		log.Fatal("imagedata: -out is required")
	}
	if err := run(*out, *month, *rows, *creatives); err != nil {
		log.Fatal(err)
	}
}

func run(out, month string, rows, n int) error {
	var names []string
	for i := range n {
		c := fmt.Sprintf("cr%05d", i)
		names = append(names, c)
		if _, err := os.Stat(filepath.Join(out, demodata.BannerURI(c))); err == nil {
			continue // written for another month
		}
		if err := demodata.WriteBanner(out, c, 300, 250); err != nil {
			return err
		}
	}
	g := demodata.New(2020)
	const perFile = 500_000
	files := (rows + perFile - 1) / perFile
	return demodata.WriteMonth(out, month, files, func(name string, part int, from, to time.Time) []demodata.Row {
		return g.ImageRows(name, min(perFile, rows-part*perFile), from, to, names)
	})
}
