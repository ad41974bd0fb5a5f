package app_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/adtech/scorer/internal/app"
)

// An entry point loads and validates the configuration, makes the App and
// asks it for runs; it renders the results and maps errors to exit codes.
func Example() {
	cfg, err := app.Load(os.Getenv("SCORER_CONFIG"), os.LookupEnv)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		fmt.Println("configuration:", err)
		os.Exit(app.ExitUsage)
	}
	a := app.New(cfg, app.Options{Log: slog.Default(), Version: "v1.2.3"})
	ctx := context.Background()
	plan, err := a.PlanBackfill(ctx, app.BackfillRequest{Month: "2020-09"})
	if err != nil {
		os.Exit(app.ExitCode(err))
	}
	fmt.Println("would read", len(plan.Read), "files and replace", plan.PartitionURI)
	sum, err := a.Backfill(ctx, app.BackfillRequest{Month: "2020-09"})
	if err != nil {
		os.Exit(app.ExitCode(err))
	}
	fmt.Println(sum.RowsRead, "rows scored by run", sum.RunID)
}
