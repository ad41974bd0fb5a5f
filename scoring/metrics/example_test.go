package metrics_test

import (
	"fmt"
	"log"

	"github.com/adtech/scorer/scoring/metrics"
)

func ExampleAccumulator() {
	// One accumulator per model and segment, or per shard, merged later.
	var mobile, desktop metrics.Accumulator
	for _, row := range []struct {
		device string
		score  float32
		click  float64
	}{
		{"mobile", 0.1, 0},
		{"mobile", 0.3, 0},
		{"mobile", 0.4, 1},
		{"mobile", 0.8, 1},
		{"desktop", 0.2, 0},
		{"desktop", 0.6, 0},
		{"desktop", 0.5, 1},
		{"desktop", 0.9, 1},
	} {
		a := &mobile
		if row.device == "desktop" {
			a = &desktop
		}
		if err := a.Add(row.score, row.click); err != nil {
			log.Fatal(err)
		}
	}
	var all metrics.Accumulator
	all.Merge(&mobile)
	all.Merge(&desktop)

	for _, seg := range []struct {
		name string
		acc  *metrics.Accumulator
	}{{"mobile", &mobile}, {"desktop", &desktop}, {"all", &all}} {
		r := seg.acc.Result(2)
		fmt.Printf("%-7s rows %d, clicks %d, AUC %.3f, log loss %.3f (constant %.3f), Brier %.3f, ECE %.3f\n",
			seg.name, r.Rows, r.Positives, r.AUC, r.LogLoss, r.ConstantLogLoss, r.Brier, r.ECE)
		for _, b := range r.Bins {
			fmt.Printf("  scores %.1f-%.1f: mean %.2f, click rate %.2f\n", b.ScoreMin, b.ScoreMax, b.MeanScore, b.LabelRate)
		}
	}
	// Output:
	// mobile  rows 4, clicks 2, AUC 1.000, log loss 0.400 (constant 0.693), Brier 0.125, ECE 0.300
	//   scores 0.1-0.3: mean 0.20, click rate 0.00
	//   scores 0.4-0.8: mean 0.60, click rate 1.00
	// desktop rows 4, clicks 2, AUC 0.750, log loss 0.484 (constant 0.693), Brier 0.165, ECE 0.200
	//   scores 0.2-0.5: mean 0.35, click rate 0.50
	//   scores 0.6-0.9: mean 0.75, click rate 0.50
	// all     rows 8, clicks 4, AUC 0.875, log loss 0.442 (constant 0.693), Brier 0.145, ECE 0.025
	//   scores 0.1-0.4: mean 0.25, click rate 0.25
	//   scores 0.5-0.9: mean 0.70, click rate 0.75
}
