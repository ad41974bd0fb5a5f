package report_test

import (
	"bytes"
	"fmt"
	"log"
	"math"
	"strings"
	"time"

	"github.com/adtech/scorer/internal/report"
)

func ExampleRender() {
	r := &report.Report{
		Title:        "ad_scores month=2020-09",
		Table:        "ad_scores",
		Partition:    "month=2020-09",
		RunID:        "20201001T010203Z-abcd1234",
		ModelName:    "ctr-demo",
		ModelVersion: "2020-08.1",
		GeneratedAt:  time.Date(2020, 10, 1, 1, 2, 3, 0, time.UTC),
		Rows:         40000,
		Status:       "warn",
		Scores: report.ScoreDist{
			Bins:      []float64{0.6, 0.25, 0.1, 0.05},
			Mean:      0.19,
			Quantiles: []report.Quantile{{Q: 0.5, Value: 0.16}},
		},
		Drift: []report.FeatureDrift{
			{
				Feature: "site_id", Kind: "categorical", PSI: 0.02, JS: 0.01,
				PSIPrev: math.NaN(), JSPrev: math.NaN(), WarnAbove: 0.1, FailAbove: 0.25, Status: "ok",
				History:     []report.Point{{Partition: "month=2020-08", Value: 0.01}, {Partition: "month=2020-09", Value: 0.02}},
				MissingRate: 0.01, TrainMissingRate: 0.01, PrevMissingRate: math.NaN(),
			},
			{
				Feature: "device", Kind: "categorical", PSI: 0.18, JS: 0.06,
				PSIPrev: math.NaN(), JSPrev: math.NaN(), WarnAbove: 0.1, FailAbove: 0.25, Status: "warn",
				MissingRate: 0, TrainMissingRate: 0, PrevMissingRate: math.NaN(),
			},
		},
		// Training and Evaluation are nil: no training profile, no labels.
	}
	var b bytes.Buffer
	if err := report.Render(&b, r); err != nil {
		log.Fatal(err)
	}
	// In scorer the bytes go to the output store; here, a glance at them.
	doc := b.String()
	fmt.Println(strings.SplitN(doc, "\n", 2)[0])
	fmt.Println("charts:", strings.Count(doc, "<svg"))
	fmt.Println("device before site_id:", strings.Index(doc, `data-feature="device"`) < strings.Index(doc, `data-feature="site_id"`))
	// Output:
	// <!DOCTYPE html>
	// charts: 2
	// device before site_id: true
}
