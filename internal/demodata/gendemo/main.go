// Command gendemo writes the embedded demo store under testdata/store: two
// months of labelled ad dumps (gzip CSV) and a day of queued prediction
// requests (JSON Lines), drawn from demodata's seeded click function; and
// the demo store with images under testdata/store-images: the same kind of
// dumps with an image_uri column naming a banner (PNG, under banners/)
// whose look adds to the click logit (demodata.Creative), the second
// month showing creatives the first did not.
//
//	go run ./internal/demodata/gendemo -out testdata/store -images-out testdata/store-images
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
	imagesOut := flag.String("images-out", "", "store folder to write the demo with images to (none if empty)")
	flag.Parse()
	if err := run(*out, *seed, *rows); err != nil {
		log.Fatal(err)
	}
	if *imagesOut != "" {
		if err := runImages(*imagesOut, *seed, *rows); err != nil {
			log.Fatal(err)
		}
	}
}

func run(out string, seed uint64, rows int) error {
	g := demodata.New(seed)
	for _, month := range []string{"2020-08", "2020-09"} {
		if err := demodata.WriteMonth(out, month, 2, func(name string, _ int, from, to time.Time) []demodata.Row {
			return g.Rows(name, rows, from, to)
		}); err != nil {
			return err
		}
	}
	day := time.Date(2020, 9, 2, 0, 0, 0, 0, time.UTC)
	for _, hour := range []int{0, 12} {
		name := fmt.Sprintf("requests-2020-09-02T%02d", hour)
		from := day.Add(time.Duration(hour) * time.Hour)
		if err := demodata.WriteFile(filepath.Join(out, "queue", name+".jsonl"), func(f *os.File) error {
			return demodata.WriteJSONL(f, g.Rows(name, rows/10, from, from.Add(12*time.Hour)))
		}); err != nil {
			return err
		}
	}
	return nil
}

// Creatives of the demo with images: August shows cr000..cr059,
// September cr020..cr079, a third of them new: a model that learned what
// the banners look like, not which ones they are, scores those too.
const bannerW, bannerH = 300, 250

func runImages(out string, seed uint64, rows int) error {
	g := demodata.New(seed)
	names := func(from, to int) []string {
		var s []string
		for i := from; i < to; i++ {
			s = append(s, fmt.Sprintf("cr%03d", i))
		}
		return s
	}
	for _, c := range names(0, 80) {
		if err := demodata.WriteBanner(out, c, bannerW, bannerH); err != nil {
			return err
		}
	}
	for month, creatives := range map[string][]string{"2020-08": names(0, 60), "2020-09": names(20, 80)} {
		if err := demodata.WriteMonth(out, month, 2, func(name string, _ int, from, to time.Time) []demodata.Row {
			return g.ImageRows(name, rows, from, to, creatives)
		}); err != nil {
			return err
		}
	}
	return nil
}
