package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

// gcKeysPrinted is how many keys of each kind the text summary names.
const gcKeysPrinted = 3

func (c *cli) gcCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc [flags]",
		Short: "delete the run state older than its retention (config: retention)",
		Long: `Delete what the engine keeps about its work once it is older than the
retention section of the configuration says, and nothing needs it any more:
run records (the newest of each job stays), settled slots of the schedule's
ledger (before each job's watermark), staging of runs that will not publish
from it, archived commit records, and queued input files consumed by a
checkpointed run (moved to retention.queue_archive_dir, or deleted). A kind
with 0 days is kept forever. Safe while runs are active; a gc stopped midway
is finished by the next. See docs/store.md#retention.`,
		Example: `  scorer gc --dry-run
  scorer gc --output gs://bucket/scores -o json`,
		Args: cobra.NoArgs,
	}
	c.stringFlag(cmd, "output", "", "output store URI (config: output)", func(c *app.Config) *string { return &c.Output })
	c.stringFlag(cmd, "input", "", "input store URI, for the queue (config: input)", func(c *app.Config) *string { return &c.Input })
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be deleted; delete nothing")
	format := formatFlag(cmd.Flags(), "what was deleted")
	exitCodes(cmd, map[int]string{
		app.ExitOK:    "ok: everything past its retention is deleted (or, with --dry-run, listed)",
		app.ExitRetry: "failed (a store error): safe to rerun, the next gc finishes what this one began",
		app.ExitUsage: exitHelp[app.ExitUsage],
	})
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		rep, err := c.newApp(cfg).GC(cmd.Context(), app.GCRequest{DryRun: dryRun})
		if rep == nil {
			return err
		}
		var werr error
		if *format == "json" {
			werr = writeJSON(c.env.stdout, rep)
		} else {
			werr = printGC(c.env.stdout, rep)
		}
		if err == nil {
			err = werr
		}
		return err
	}
	return cmd
}

// printGC prints a GC report: a line per kind, with a few of its keys.
func printGC(w io.Writer, rep *app.GCReport) error {
	ew := &errWriter{w: w}
	deleted, moved := "deleted", "moved"
	if rep.DryRun {
		deleted, moved = "would be deleted", "would be moved"
		ew.printf("dry run: nothing deleted\n")
	}
	for _, k := range rep.Kinds() {
		if k.Days == 0 {
			ew.printf("%-17s kept forever (retention.%s: 0)\n", k.Name, k.Key)
			continue
		}
		what := fmt.Sprintf("%d %s", k.Count, deleted)
		switch {
		case k.Action == app.QueueArchive:
			what = fmt.Sprintf("%d %s to %s", k.Count, moved, k.To)
		case k.Objects != k.Count:
			what += fmt.Sprintf(" (%d objects)", k.Objects)
		}
		ew.printf("%-17s %s: older than %d days (before %s); %d old kept\n", k.Name, what, k.Days, k.Before.Format(time.DateOnly), k.Kept)
		for i, key := range k.Keys {
			if i == gcKeysPrinted {
				ew.printf("  ... and %d more\n", k.Count-gcKeysPrinted)
				break
			}
			ew.printf("  %s\n", key)
		}
		for _, f := range k.Conflicts {
			ew.printf("  kept %s: the archive holds another file of its name\n", f)
		}
		if k.Error != "" {
			ew.printf("  stopped: %s\n", k.Error)
		}
	}
	return ew.err
}
