package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/internal/app"
)

func (c *cli) modelsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "the model registry: add, list, promote, roll back",
		Long: `The model registry (config: registry) keeps every version of each model under
models/<name>/<version>/ and a current alias, models/<name>/current.json,
changed only by promote and rollback, each recorded as an event with who,
when and why. A run whose model is "models:/<name>@current" loads the
version current when it starts, and records it in every row it writes.
See docs/evaluation.md.`,
		Example: `  scorer models add out/models/ctr-2020-09
  scorer models list
  scorer models promote ctr-demo 2020-09.1 --reason "better AUC on 2020-09"
  scorer models rollback ctr-demo --reason "CTR dropped after the switch"`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(c.modelsAddCmd(), c.modelsListCmd(), c.modelsPromoteCmd(), c.modelsRollbackCmd())
	return cmd
}

func (c *cli) registryFlag(cmd *cobra.Command) {
	c.stringFlag(cmd, "registry", "", "model registry URI (config: registry)", func(c *app.Config) *string { return &c.Registry })
}

func (c *cli) modelsAddCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add BUNDLE",
		Short: "copy a trained bundle into the registry as <name>/<version>",
		Long: `Copy the model bundle at BUNDLE (a folder URI, as scorer train --out wrote it)
into the registry under its name and version (model.yaml). Versions are
immutable: adding the same bundle again does nothing, another bundle under
an existing version is refused (exit code 2).`,
		Args: cobra.ExactArgs(1),
	}
	c.registryFlag(cmd)
	exitCodes(cmd, codes(0, 1, 2))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		name, version, err := c.newApp(cfg).AddModel(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.env.stdout, "added %s %s to %s (models:/%s/%s)\n", name, version, cfg.Registry, name, version)
		return err
	}
	return cmd
}

func (c *cli) modelsListCmd() *cobra.Command {
	var format *formatValue
	cmd := &cobra.Command{
		Use:   "list [NAME]",
		Short: "list the models, their versions, the current one and the latest evaluations",
		Args:  cobra.MaximumNArgs(1),
	}
	c.registryFlag(cmd)
	c.stringFlag(cmd, "output", "", "output store URI, where the evaluations are (config: output)", func(c *app.Config) *string { return &c.Output })
	format = formatFlag(cmd.Flags(), "the listing")
	exitCodes(cmd, codes(0, 1, 2))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		name := ""
		if len(args) == 1 {
			name = args[0]
		}
		ls, err := c.newApp(cfg).ListModels(cmd.Context(), name)
		if err != nil {
			return err
		}
		if *format == "json" {
			if ls == nil {
				ls = []app.ModelListing{}
			}
			return writeJSON(c.env.stdout, ls)
		}
		if len(ls) == 0 {
			_, err := fmt.Fprintf(c.env.stdout, "no models in %s\n", cfg.Registry)
			return err
		}
		return printModels(c.env.stdout, ls)
	}
	return cmd
}

func printModels(w io.Writer, ls []app.ModelListing) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ew := &errWriter{w: tw}
	ew.printf("MODEL\tVERSION\tCURRENT\tADDED (UTC)\tLATEST EVALUATION\tAUC\tLOG LOSS\n")
	for _, l := range ls {
		for _, v := range l.Versions {
			cur := ""
			if v.Current {
				cur = "*"
			}
			evalAt, auc, ll := "-", "-", "-"
			if e := v.Evaluation; e != nil {
				evalAt = e.Table + "/" + e.Partition
				auc, ll = num(e.AUC), num(e.LogLoss)
			}
			ew.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Name, v.Version.Version, cur, v.AddedAt.UTC().Format(time.DateTime), evalAt, auc, ll)
		}
	}
	if ew.err == nil {
		ew.err = tw.Flush()
	}
	for _, l := range ls {
		if len(l.Events) == 0 {
			continue
		}
		ew.printf("\n%s: promotions and rollbacks\n", l.Name)
		for _, e := range l.Events {
			forced := ""
			if e.Forced {
				forced = " (forced past the evaluation gate)"
			}
			ew.printf("  %s  %-8s %s -> %s by %s%s: %s\n", e.At.UTC().Format(time.DateTime), e.Action, orDash(e.From), e.To, e.By, forced, orDash(e.Reason))
		}
	}
	return ew.err
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) modelsPromoteCmd() *cobra.Command {
	var (
		r      app.PromoteRequest
		format *formatValue
	)
	cmd := &cobra.Command{
		Use:   "promote NAME VERSION",
		Short: "make a version current, if it evaluates no worse than the current one",
		Long: `Make VERSION of model NAME the current one (models:/NAME@current), which
every later run then loads.

The evaluation gate: on the latest evaluation (scorer evaluate) of a
partition scored by both the current version and VERSION, VERSION's AUC
may be at most promote.max_auc_drop below the current one's and its log
loss at most promote.max_log_loss_rise above; otherwise, or without such an
evaluation, promote refuses (exit code 6) and changes nothing. --force
promotes anyway; the event records that it was forced and what the gate
found. The first promotion of a model has nothing to compare with.`,
		Example: `  scorer models promote ctr-demo 2020-09.1 --reason "wins on 2020-09"
  scorer models promote ctr-demo 2020-09.1 --force --reason "hotfix: see INC-123"`,
		Args: cobra.ExactArgs(2),
	}
	fs := cmd.Flags()
	fs.BoolVar(&r.Force, "force", false, "promote even if the evaluation gate refuses (recorded)")
	fs.StringVar(&r.Reason, "reason", "", "why: recorded in the event")
	fs.StringVar(&r.By, "by", "", "who: recorded in the event (default user@host)")
	c.registryFlag(cmd)
	c.stringFlag(cmd, "output", "", "output store URI, where the evaluations are (config: output)", func(c *app.Config) *string { return &c.Output })
	format = formatFlag(fs, "the promotion")
	exitCodes(cmd, codes(0, 1, 2, 6))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		r.Name, r.Version = args[0], args[1]
		p, err := c.newApp(cfg).Promote(cmd.Context(), r)
		if err != nil {
			if p != nil && *format == "json" {
				_ = writeJSON(c.env.stdout, p)
			}
			return err
		}
		if *format == "json" {
			return writeJSON(c.env.stdout, p)
		}
		ew := &errWriter{w: c.env.stdout}
		ew.printf("%s: current is now %s (was %s)\n", r.Name, p.Alias.Version, orDash(p.Alias.Previous))
		if g := p.Gate; g.Current != nil {
			ew.printf("gate on %s/%s: AUC %s vs %s, log loss %s vs %s%s\n", g.Table, g.Partition,
				num(g.Candidate.AUC), num(g.Current.AUC), num(g.Candidate.LogLoss), num(g.Current.LogLoss), map[bool]string{true: " (forced)"}[g.Forced])
		}
		return ew.err
	}
	return cmd
}

func (c *cli) modelsRollbackCmd() *cobra.Command {
	var r app.RollbackRequest
	cmd := &cobra.Command{
		Use:   "rollback NAME",
		Short: "make the previous current version current again",
		Long: `Make the version that was current before the present one current again: one
conditional write, recorded as an event. Rolling back twice returns to where
you started.`,
		Args: cobra.ExactArgs(1),
	}
	fs := cmd.Flags()
	fs.StringVar(&r.Reason, "reason", "", "why: recorded in the event")
	fs.StringVar(&r.By, "by", "", "who: recorded in the event (default user@host)")
	c.registryFlag(cmd)
	exitCodes(cmd, codes(0, 1, 2))
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := c.config(cmd)
		if err != nil {
			return err
		}
		r.Name = args[0]
		alias, err := c.newApp(cfg).Rollback(cmd.Context(), r)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(c.env.stdout, "%s: current is now %s (was %s)\n", r.Name, alias.Version, orDash(alias.Previous))
		return err
	}
	return cmd
}
