package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func runVersion(_ context.Context, env *environment, args []string) error {
	f := newFlags("version", "", "Print the version, the Go version and the VCS revision.", env.stderr)
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	fmt.Fprintf(env.stdout, "scorer %s (%s, revision %s, %s/%s)\n", version, runtime.Version(), rev, runtime.GOOS, runtime.GOARCH)
	return nil
}
