//go:build failpoints

package failpoint

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// A failpoints build kills the process at the Nth hit of the point named.
func TestKillAtPoint(t *testing.T) {
	if !Enabled {
		t.Fatal("failpoint.Enabled is false with -tags failpoints")
	}
	if os.Getenv("SCORER_FAILPOINT_CHILD") == "1" {
		Hit("other")
		Hit("point")
		Hit("point") // killed here
		os.Exit(3)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillAtPoint$")
	cmd.Env = append(os.Environ(), "SCORER_FAILPOINT_CHILD=1", "SCORER_FAILPOINT=point:2")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child ended with %v, want SIGKILL", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL", err)
	}
}
