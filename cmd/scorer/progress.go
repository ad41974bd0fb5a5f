package main

import (
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/jobs"
)

// progressBar shows input bytes read with ETA and rows/s on a terminal.
type progressBar struct {
	w     io.Writer
	bar   *progressbar.ProgressBar
	start time.Time
}

// newProgress returns a maker of the progress reporters the config asks
// for, or nil for none.
func newProgress(cfg app.Config, env *environment) func() jobs.Progress {
	if cfg.Progress == "off" || (cfg.Progress == "auto" && !env.isTerminal) {
		return nil
	}
	return func() jobs.Progress { return &progressBar{w: env.stderr} }
}

func (p *progressBar) Start(totalBytes int64) {
	p.start = time.Now()
	p.bar = progressbar.NewOptions64(totalBytes,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(200*time.Millisecond),
		progressbar.OptionShowDescriptionAtLineEnd(),
		progressbar.OptionClearOnFinish(),
	)
}

func (p *progressBar) Update(bytesRead, rows int64) {
	if p.bar == nil {
		return
	}
	secs := max(time.Since(p.start).Seconds(), 1e-3)
	p.bar.Describe(fmt.Sprintf("%d rows, %.0f rows/s", rows, float64(rows)/secs))
	_ = p.bar.Set64(bytesRead)
}

func (p *progressBar) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
