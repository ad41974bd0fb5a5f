package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/adtech/scorer/scoring/kernels"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionLine is what scorer version and scorer --version print.
func versionLine() string {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	return fmt.Sprintf("scorer %s (%s, revision %s, %s/%s, kernel %s)", version, runtime.Version(), rev, runtime.GOOS, runtime.GOARCH, kernelName())
}

// kernelName is the matrix kernel this build and CPU use (chosen at first
// use: see scoring/kernels), or why SCORER_KERNEL cannot be honoured.
func kernelName() string {
	if err := kernels.Check(); err != nil {
		return "invalid " + "SCORER_KERNEL"
	}
	return kernels.Name()
}

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version (also scorer --version)",
		Long:  "Print the version, the Go version, the VCS revision, the platform and the matrix\nkernel chosen for this CPU (avx512, avx2-fma or go; SCORER_KERNEL forces one).",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(c.env.stdout, versionLine())
			return err
		},
	}
}
