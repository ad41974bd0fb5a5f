//go:build failpoints

package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Enabled says whether this build has failpoints (-tags failpoints).
const Enabled = true

var (
	target string
	after  int64 = 1
	signal       = syscall.SIGKILL
	hits   atomic.Int64
)

func init() {
	spec := os.Getenv("SCORER_FAILPOINT")
	if spec == "" {
		return
	}
	parts := strings.Split(spec, ":")
	target = parts[0]
	if len(parts) > 1 {
		if v, err := strconv.ParseInt(parts[1], 10, 64); err == nil && v > 0 {
			after = v
		}
	}
	if len(parts) > 2 && parts[2] == "stop" {
		signal = syscall.SIGSTOP
	}
}

// Hit marks that the run reached the point name, and kills or stops the
// process there if SCORER_FAILPOINT names it.
func Hit(name string) {
	if target == "" || name != target {
		return
	}
	if hits.Add(1) != after {
		return
	}
	_ = syscall.Kill(os.Getpid(), signal)
	if signal == syscall.SIGKILL {
		select {} // the signal is on its way
	}
	// SIGSTOP reaches the process a moment later: park here meanwhile, so
	// that it stops at this point and not a few steps further.
	time.Sleep(100 * time.Millisecond)
}
