package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) recoverCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "recover [flags]",
		Short: "finish publishing the runs interrupted after their commit",
		Long: `Finish publishing every run that committed but was interrupted while
publishing (a crash, a kill, a lost machine), so that globbing the tables
shows one complete state again. Each job is healed under its lease; a job
whose lease a live run holds is left to that run. Every command that uses
the output store does this when it starts, and the daemon at start and every
few minutes: recover does it on demand and says what it healed.`,
		Example: `  scorer recover --output out
  scorer recover --output gs://bucket/scores -o json`,
		Args: cobra.NoArgs,
	}
	c.stringFlag(cmd, "output", "", "output store URI (config: output)", func(c *app.Config) *string { return &c.Output })
	format := formatFlag(cmd.Flags(), "what was healed")
	exitCodes(cmd, codes(0, 1, 2, 3))
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		rep, err := c.newApp(cfg).Recover(cmd.Context())
		if rep != nil {
			if *format == "json" {
				if werr := writeJSON(c.env.stdout, rep); werr != nil && err == nil {
					err = werr
				}
			} else {
				w := &errWriter{w: c.env.stdout}
				if len(rep.Jobs) == 0 {
					w.printf("nothing to heal: every committed run is published\n")
				}
				for _, j := range rep.Jobs {
					switch {
					case j.Error != "":
						w.printf("%s: failed after %d run(s) rolled forward %v: %s\n", j.Job, len(j.RolledForward), j.RolledForward, j.Error)
					case j.Busy:
						w.printf("%s: left to the running job that holds its lease\n", j.Job)
					default:
						w.printf("%s: rolled forward %s\n", j.Job, runList(j.RolledForward))
					}
				}
				if err == nil {
					err = w.err
				}
			}
		}
		return err
	}
	return cmd
}

// runList prints run ids, or says there were none.
func runList(ids []string) string {
	if len(ids) == 0 {
		return "nothing (finished meanwhile)"
	}
	return fmt.Sprint(ids)
}
