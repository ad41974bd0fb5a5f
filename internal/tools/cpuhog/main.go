// Command cpuhog keeps every core busy for a bounded time: the load under
// which make test-stress runs the suite. It spins -per-cpu goroutines per
// core (GOMAXPROCS = all cores) and exits by itself after -for, or at
// SIGINT/SIGTERM, so a forgotten hog cannot outlive its run by long.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
)

func main() {
	perCPU := flag.Int("per-cpu", 2, "busy goroutines per core")
	limit := flag.Duration("for", 30*time.Minute, "stop after this long (at most 2h)")
	flag.Parse()
	if *perCPU < 1 || *limit <= 0 || *limit > 2*time.Hour {
		fmt.Fprintln(os.Stderr, "cpuhog: -per-cpu must be >= 1 and -for in (0, 2h]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *limit)
	defer cancel()
	n := *perCPU * runtime.NumCPU()
	fmt.Fprintf(os.Stderr, "cpuhog: %d busy goroutines on %d cores for at most %s\n", n, runtime.NumCPU(), *limit)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { spin(ctx) })
	}
	wg.Wait()
}

// spin burns CPU until ctx ends, checking it every few million iterations.
func spin(ctx context.Context) {
	x := uint64(1)
	for ctx.Err() == nil {
		for range 1 << 22 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 { // keep the loop from being optimised away
		fmt.Fprintln(os.Stderr, "cpuhog: unreachable")
	}
}
