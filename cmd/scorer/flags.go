package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// flags holds the flags every scoring command shares. Flags are applied over
// the configuration only when given, so that an unset flag never hides a
// value from the file or the environment.
type flags struct {
	fs         *flag.FlagSet
	configPath string
	overrides  map[string]func(*Config, string) error
}

func newFlags(name, synopsis, description string, stderr io.Writer) *flags {
	f := &flags{fs: flag.NewFlagSet(name, flag.ContinueOnError), overrides: map[string]func(*Config, string) error{}}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		fmt.Fprintf(f.fs.Output(), "Usage: scorer %s %s\n\n%s\n\nFlags:\n", name, synopsis, strings.TrimSpace(description))
		f.fs.PrintDefaults()
		fmt.Fprint(f.fs.Output(), "\nExit codes: 0 ok, 1 failed (safe to rerun), 2 usage or config error, 3 bad input,\n4 another run of the job is active (retry later).\n")
	}
	f.fs.StringVar(&f.configPath, "config", "", "config file (YAML); default $SCORER_CONFIG, else built-in defaults")
	return f
}

// storeFlags adds the flags that name stores and the model.
func (f *flags) storeFlags() *flags {
	f.override("input", "input store URI (local path, file:// or gs://)", func(c *Config, v string) error { c.Input = v; return nil })
	f.override("output", "output store URI", func(c *Config, v string) error { c.Output = v; return nil })
	f.override("model", "model bundle URI", func(c *Config, v string) error { c.Model = v; return nil })
	return f
}

// runFlags adds the flags that tune a scoring run.
func (f *flags) runFlags() *flags {
	f.override("workers", "scoring workers (0 = one per core)", intSetter(func(c *Config) *int { return &c.Workers }))
	f.override("batch-size", "rows per batch", intSetter(func(c *Config) *int { return &c.BatchSize }))
	f.override("max-bad-rows", `bad rows tolerated: a count ("100") or a fraction ("0.5%")`, func(c *Config, v string) error { c.MaxBadRows = v; return nil })
	f.override("progress", "progress bar: auto, on, off", func(c *Config, v string) error { c.Progress = v; return nil })
	return f
}

func (f *flags) logFlags() *flags {
	f.override("log-format", "log format: auto, text, json", func(c *Config, v string) error { c.Log.Format = v; return nil })
	f.override("log-level", "log level: debug, info, warn, error", func(c *Config, v string) error { c.Log.Level = v; return nil })
	return f
}

func intSetter(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not an integer: %q", v)
		}
		*field(c) = n
		return nil
	}
}

func (f *flags) override(name, usage string, set func(*Config, string) error) {
	f.fs.String(name, "", usage)
	f.overrides[name] = set
}

// parse parses args, loads the config and applies the given flags over it.
func (f *flags) parse(args []string, env *environment) (Config, error) {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return Config{}, err
		}
		return Config{}, usageError{err}
	}
	if f.fs.NArg() > 0 {
		return Config{}, usageError{fmt.Errorf("unexpected argument %q", f.fs.Arg(0))}
	}
	path := f.configPath
	if path == "" {
		path, _ = env.getenv("SCORER_CONFIG")
	}
	cfg, err := loadConfig(path, env.getenv)
	if err != nil {
		return cfg, usageError{err}
	}
	var errs []error
	f.fs.Visit(func(fl *flag.Flag) {
		if set, ok := f.overrides[fl.Name]; ok {
			if err := set(&cfg, fl.Value.String()); err != nil {
				errs = append(errs, fmt.Errorf("--%s: %w", fl.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return cfg, usageError{err}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{fmt.Errorf("invalid configuration:\n%w", err)}
	}
	env.log = newLogger(env.stderr, cfg.Log, env.isTerminal)
	useGCSConfig(cfg, env)
	return cfg, nil
}
