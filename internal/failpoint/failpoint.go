// Package failpoint lets crash tests kill the process at a named point of a
// run, so that recovery is tested against real SIGKILLs rather than simulated
// errors. It does nothing unless SCORER_FAILPOINT is set.
//
// SCORER_FAILPOINT=name kills the process (SIGKILL) the first time Hit(name)
// is called; name:N kills it on the Nth call. Names are listed where Hit is
// called (grep "failpoint.Hit").
package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

var (
	target string
	after  int64 = 1
	hits   atomic.Int64
)

func init() {
	spec := os.Getenv("SCORER_FAILPOINT")
	if spec == "" {
		return
	}
	name, n, ok := strings.Cut(spec, ":")
	target = name
	if ok {
		if v, err := strconv.ParseInt(n, 10, 64); err == nil && v > 0 {
			after = v
		}
	}
}

// Hit marks that the run reached the point name.
func Hit(name string) {
	if target == "" || name != target {
		return
	}
	if hits.Add(1) == after {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
