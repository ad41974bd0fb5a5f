// Command scorer is the batch click-prediction engine: it scores monthly ad
// dumps (backfill) and queued prediction requests (run) with a model bundle,
// trains bundles (train), checks a set-up without scoring (validate), runs
// the scheduler daemon (schedule) and shows the recorded runs (history).
//
// The application lives in internal/app; this command parses flags (with
// spf13/cobra, one file per command), sets up logging and signals, wires
// the configuration into the application, renders its results and turns
// errors into the documented exit codes (docs/exit-codes.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/adtech/scorer/internal/app"
	"github.com/adtech/scorer/internal/memlimit"
)

// environment is what a command gets from the process.
type environment struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	getenv         func(string) (string, bool)
	isTerminal     bool // stderr is a terminal: text logs and a progress bar in auto mode
	stdinTerminal  bool // stdin is a terminal: a destructive command may ask for confirmation
	log            *slog.Logger
	jsonLogs       bool             // the format of log, decided before anything can fail
	sched          *app.DaemonHooks // tests only: drive scorer schedule in-process
	// memLimit is the runtime's soft memory limit main set from the
	// container's (0: none set), and memLimitFile where it came from.
	memLimit     int64
	memLimitFile string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &environment{
		stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.LookupEnv,
		isTerminal:    term.IsTerminal(int(os.Stderr.Fd())),
		stdinTerminal: term.IsTerminal(int(os.Stdin.Fd())),
	}
	// Without GOMEMLIMIT, 90% of the container's memory limit.
	env.memLimit, env.memLimitFile = memlimit.Apply(os.LookupEnv, memlimit.OSReadFile)
	code := run(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, env *environment, args []string) int {
	if env.stdin == nil {
		env.stdin = strings.NewReader("")
	}
	// The log format is decided first, from the flags, the environment and
	// the config file read leniently, so that every line, even one about a
	// bad flag or a bad config file, has the format asked for.
	env.setLogger(earlyLogConfig(args, env.getenv))
	if env.memLimit > 0 {
		env.log.Debug("Go memory limit set from the container's", "limit_bytes", env.memLimit, "from", env.memLimitFile)
	}
	c := newCLI(env, args)
	root := c.root()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	var ce cliError
	if err != nil && !c.started && !errors.As(err, &ce) {
		err = cliError{err} // cobra's: an unknown command, a bad argument
	}
	code := exitCode(err)
	if err != nil {
		c.report(cmd, err, code)
	}
	return code
}

// setLogger sets the structured logger: JSON if asked for, or in auto mode
// when stderr is not a terminal; text otherwise.
func (env *environment) setLogger(cfg app.LogConfig) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level)) // validated with the config; info if not
	opts := &slog.HandlerOptions{Level: level}
	env.jsonLogs = cfg.Format == "json" || (cfg.Format == "auto" && !env.isTerminal)
	if env.jsonLogs {
		env.log = slog.New(slog.NewJSONHandler(env.stderr, opts))
		return
	}
	env.log = slog.New(slog.NewTextHandler(env.stderr, opts))
}

// earlyLogConfig is the log section as the command line, the environment
// and the config file set it, read without failing.
func earlyLogConfig(args []string, getenv func(string) (string, bool)) app.LogConfig {
	flags := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, name := range []string{"config", "log-format", "log-level"} {
			switch {
			case strings.HasPrefix(a, "--"+name+"="):
				flags[name] = strings.TrimPrefix(a, "--"+name+"=")
			case a == "--"+name && i+1 < len(args):
				flags[name] = args[i+1]
			}
		}
	}
	path, ok := flags["config"]
	if !ok {
		path, _ = getenv("SCORER_CONFIG")
	}
	lc := app.PeekLog(path, getenv)
	if v, ok := flags["log-format"]; ok {
		lc.Format = v
	}
	if v, ok := flags["log-level"]; ok {
		lc.Level = v
	}
	return lc
}

// cliError is an error in the command line (an unknown command or flag, a
// missing or malformed argument): it is reported in one line with a hint
// to the command's help, and exits 2.
type cliError struct{ err error }

func (e cliError) Error() string { return e.err.Error() }
func (e cliError) Unwrap() error { return e.err }

// exitCode is the process's exit code for the error a command returned.
func exitCode(err error) int {
	var ce cliError
	if errors.As(err, &ce) {
		return app.ExitUsage
	}
	return app.ExitCode(err)
}

// report logs the error that ends a command, once.
func (c *cli) report(cmd *cobra.Command, err error, code int) {
	env := c.env
	if ce := (cliError{}); errors.As(err, &ce) {
		hint := fmt.Sprintf("Run '%s --help' for usage.", cmd.CommandPath())
		if env.jsonLogs {
			env.log.Error(err.Error(), "hint", hint, "exit_code", code)
			return
		}
		_, _ = fmt.Fprintf(env.stderr, "Error: %s\n%s\n", strings.TrimRight(err.Error(), "\n"), hint)
		return
	}
	name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	env.log.Error(name+" failed", "err", err, "exit_code", code)
}
