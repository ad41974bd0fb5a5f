package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/jobs"
	"github.com/adtech/scorer/scoring/kernels"
)

// cli builds the command tree for one command line.
type cli struct {
	env  *environment
	args []string // the command line, without the program name
	// Persistent flags (every command).
	configPath string
	// overrides are, per command, the flags that set configuration keys:
	// applied over the file and the environment only when given, so that
	// an unset flag never hides a value from either.
	overrides map[*cobra.Command]map[string]func(*app.Config)
	started   bool // a command's own code ran (errors before are cobra's)
}

func newCLI(env *environment, args []string) *cli {
	return &cli{env: env, args: args, overrides: map[*cobra.Command]map[string]func(*app.Config){}}
}

// exitHelp describes the exit codes, for each command's help.
var exitHelp = map[int]string{
	app.ExitOK:       "ok: published complete output, or nothing to do",
	app.ExitRetry:    "failed, nothing partial published: safe to rerun as is",
	app.ExitUsage:    "usage, configuration or model bundle error: fix it first",
	app.ExitBadInput: "bad input data (file, row and column in the log): fix it or raise max_bad_rows",
	app.ExitBusy:     "another run of the same job holds its lease: retry later",
	app.ExitAborted:  "stopped by SIGTERM with a run cancelled at schedule.shutdown_timeout",
	app.ExitRefused:  "refused: the version evaluates worse than the current one (--force overrides)",
	app.ExitDrift:    "the inputs drifted beyond drift.fail_above (features in the log): nothing published",
}

// exitCodes sets the exit codes a command's help lists.
func exitCodes(cmd *cobra.Command, codes map[int]string) *cobra.Command {
	var b strings.Builder
	for code := range len(exitHelp) {
		if m, ok := codes[code]; ok {
			fmt.Fprintf(&b, "  %d  %s\n", code, m)
		}
	}
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations["exit-codes"] = b.String()
	return cmd
}

// codes picks entries of exitHelp.
func codes(c ...int) map[int]string {
	m := map[int]string{}
	for _, code := range c {
		m[code] = exitHelp[code]
	}
	return m
}

const usageTemplate = `Usage:{{if .Runnable}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{with index .Annotations "exit-codes"}}

Exit codes:
{{. | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}
`

// root is the scorer command and its subcommands.
func (c *cli) root() *cobra.Command {
	env := c.env
	root := &cobra.Command{
		Use:   "scorer",
		Short: "batch click-prediction engine",
		Long: `scorer: batch click-prediction engine.

Every command reads one YAML config file (--config or $SCORER_CONFIG; the
defaults run the demo from the repository root). A key is set, highest
first, by its flag, by the environment (SCORER_<KEY>, e.g. SCORER_OUTPUT),
by the file, or by its default. See README.md and docs/.`,
		Version:       versionLine(),
		SilenceErrors: true, // run reports the error once, in the log format
		SilenceUsage:  true, // a flag error is one line and a hint, not the whole usage
		// No Args: cobra's own check of the root's arguments reports an
		// unknown command with suggestions (SuggestionsMinimumDistance).
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(env.stderr)
			_ = cmd.Usage() // the usage goes to stderr; the error follows
			return cliError{errors.New("a command is required")}
		},
		PersistentPreRun: func(*cobra.Command, []string) { c.started = true },
	}
	root.SuggestionsMinimumDistance = 2
	root.SetOut(env.stdout)
	root.SetErr(env.stderr)
	root.SetIn(env.stdin)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return cliError{err} })
	exitCodes(root, codes(0, 1, 2, 3, 4, 5, 6))

	pf := root.PersistentFlags()
	pf.StringVar(&c.configPath, "config", "", "config file (YAML); default $SCORER_CONFIG, else the built-in defaults")
	def := app.Default()
	pf.String("log-format", def.Log.Format, "log format: auto (text on a terminal, JSON otherwise), text, json")
	pf.String("log-level", def.Log.Level, "log level: debug, info, warn, error")

	root.AddCommand(
		c.backfillCmd(), c.queueCmd(), c.shardsCmd(), c.trainCmd(), c.scheduleCmd(),
		c.historyCmd(), c.recoverCmd(), c.gcCmd(), c.validateCmd(), c.evaluateCmd(), c.reportCmd(), c.modelsCmd(), c.importCmd(), c.serveCmd(), c.versionCmd(),
	)
	// The completion command of cobra (scorer completion bash|zsh|fish|powershell).
	root.InitDefaultCompletionCmd()
	for _, sub := range root.Commands() {
		if sub.Name() == "completion" {
			sub.Short = "print a shell completion script (bash, zsh, fish, powershell)"
		}
	}
	return root
}

// flag registers a flag of cmd that overrides a configuration key.
func (c *cli) override(cmd *cobra.Command, name string, apply func(*app.Config)) {
	m := c.overrides[cmd]
	if m == nil {
		m = map[string]func(*app.Config){}
		c.overrides[cmd] = m
	}
	m[name] = apply
}

func (c *cli) stringFlag(cmd *cobra.Command, name, shorthand, usage string, field func(*app.Config) *string) {
	v := new(string)
	*v = *field(ptr(app.Default()))
	cmd.Flags().StringVarP(v, name, shorthand, *v, usage)
	c.override(cmd, name, func(cfg *app.Config) { *field(cfg) = *v })
}

func (c *cli) intFlag(cmd *cobra.Command, name, usage string, field func(*app.Config) *int) {
	v := new(int)
	*v = *field(ptr(app.Default()))
	cmd.Flags().IntVar(v, name, *v, usage)
	c.override(cmd, name, func(cfg *app.Config) { *field(cfg) = *v })
}

func (c *cli) int64Flag(cmd *cobra.Command, name, usage string, field func(*app.Config) *int64) {
	v := new(int64)
	*v = *field(ptr(app.Default()))
	cmd.Flags().Int64Var(v, name, *v, usage)
	c.override(cmd, name, func(cfg *app.Config) { *field(cfg) = *v })
}

func (c *cli) floatFlag(cmd *cobra.Command, name, usage string, field func(*app.Config) *float64) {
	v := new(float64)
	*v = *field(ptr(app.Default()))
	cmd.Flags().Float64Var(v, name, *v, usage)
	c.override(cmd, name, func(cfg *app.Config) { *field(cfg) = *v })
}

func (c *cli) boolFlag(cmd *cobra.Command, name, usage string, field func(*app.Config) *bool) {
	v := new(bool)
	*v = *field(ptr(app.Default()))
	cmd.Flags().BoolVar(v, name, *v, usage)
	c.override(cmd, name, func(cfg *app.Config) { *field(cfg) = *v })
}

// intsFlag is a list flag: comma-separated, and "" (--hidden=) is the
// empty list.
func (c *cli) intsFlag(cmd *cobra.Command, name, usage string, field func(*app.Config) *[]int) {
	v := new([]int)
	*v = *field(ptr(app.Default()))
	cmd.Flags().IntSliceVar(v, name, *v, usage)
	c.override(cmd, name, func(cfg *app.Config) { *field(cfg) = *v })
}

// stringsFlag is a list flag: repeated or comma-separated.
func (c *cli) stringsFlag(cmd *cobra.Command, name, usage string, field func(*app.Config) *[]string) {
	v := new([]string)
	*v = *field(ptr(app.Default()))
	cmd.Flags().StringSliceVar(v, name, *v, usage)
	c.override(cmd, name, func(cfg *app.Config) { *field(cfg) = *v })
}

func ptr[T any](v T) *T { return &v }

// storeFlags adds the flags that name the stores and the model.
func (c *cli) storeFlags(cmd *cobra.Command) {
	c.stringFlag(cmd, "input", "", "input store URI: a local path, file:// or gs:// (config: input)", func(c *app.Config) *string { return &c.Input })
	c.stringFlag(cmd, "output", "", "output store URI (config: output)", func(c *app.Config) *string { return &c.Output })
	c.stringFlag(cmd, "model", "", "model bundle URI, or models:/<name>@current (config: model)", func(c *app.Config) *string { return &c.Model })
	c.stringsFlag(cmd, "challenger", "models scored beside it into <table>_challengers; repeat or comma-separate (config: challengers)",
		func(c *app.Config) *[]string { return &c.Challengers })
	c.stringFlag(cmd, "registry", "", "model registry URI, for models:/ references (config: registry)", func(c *app.Config) *string { return &c.Registry })
}

// runFlags adds the flags that tune a scoring run.
func (c *cli) runFlags(cmd *cobra.Command) {
	c.intFlag(cmd, "workers", "scoring workers, 0 = one per core (config: workers)", func(c *app.Config) *int { return &c.Workers })
	c.intFlag(cmd, "batch-size", "rows per batch (config: batch_size)", func(c *app.Config) *int { return &c.BatchSize })
	c.stringFlag(cmd, "max-bad-rows", "", `bad rows tolerated: a count ("100") or a fraction ("0.5%") (config: max_bad_rows)`, func(c *app.Config) *string { return &c.MaxBadRows })
	c.stringFlag(cmd, "progress", "", "progress bar on stderr: auto, on, off (config: progress)", func(c *app.Config) *string { return &c.Progress })
}

// config loads the configuration of a command: defaults, file,
// environment, then the flags given on the command line; validated. It
// sets the logger the configuration asks for.
func (c *cli) config(cmd *cobra.Command) (app.Config, error) {
	env := c.env
	path := c.configPath
	if path == "" {
		path, _ = env.getenv("SCORER_CONFIG")
	}
	cfg, err := app.Load(path, env.getenv)
	if err != nil {
		return cfg, app.UsageError{Err: err}
	}
	fs := cmd.Flags()
	for _, name := range []string{"log-format", "log-level"} {
		if fs.Changed(name) {
			v, _ := fs.GetString(name)
			if name == "log-format" {
				cfg.Log.Format = v
			} else {
				cfg.Log.Level = v
			}
		}
	}
	for name, apply := range c.overrides[cmd] {
		if fs.Changed(name) {
			apply(&cfg)
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, app.UsageError{Err: fmt.Errorf("invalid configuration:\n%w", err)}
	}
	if err := kernels.Check(); err != nil {
		return cfg, app.UsageError{Err: err}
	}
	env.setLogger(cfg.Log)
	return cfg, nil
}

// newApp is the application of a command's configuration.
func (c *cli) newApp(cfg app.Config) *app.App {
	return app.New(cfg, app.Options{Log: c.env.log, Version: version, Progress: newProgress(cfg, c.env)})
}

// monthValue is a flag holding a month, YYYY-MM, checked when parsed.
type monthValue string

func (m *monthValue) String() string { return string(*m) }
func (m *monthValue) Type() string   { return "YYYY-MM" }
func (m *monthValue) Set(s string) error {
	if _, _, err := jobs.ParseMonth(s); err != nil {
		return errors.New("want YYYY-MM")
	}
	*m = monthValue(s)
	return nil
}

// dateValue is a flag holding a date, YYYY-MM-DD, checked when parsed.
type dateValue string

func (d *dateValue) String() string { return string(*d) }
func (d *dateValue) Type() string   { return "YYYY-MM-DD" }
func (d *dateValue) Set(s string) error {
	if _, err := jobs.ParseDate(s); err != nil {
		return errors.New("want YYYY-MM-DD")
	}
	*d = dateValue(s)
	return nil
}

// formatValue is the -o/--format flag: how results print on stdout.
type formatValue string

func (f *formatValue) String() string { return string(*f) }
func (f *formatValue) Type() string   { return "text|json" }
func (f *formatValue) Set(s string) error {
	if s != "text" && s != "json" {
		return errors.New("want text or json")
	}
	*f = formatValue(s)
	return nil
}

// formatFlag adds -o/--format (not --output: that names the output store).
func formatFlag(fs *pflag.FlagSet, what string) *formatValue {
	f := formatValue("text")
	fs.VarP(&f, "format", "o", "print "+what+" as text or json")
	return &f
}

// requireMonth checks that --month was given.
func requireMonth(m monthValue) error {
	if m == "" {
		return cliError{errors.New("--month is required")}
	}
	return nil
}
