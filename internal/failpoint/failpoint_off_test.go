//go:build !failpoints

package failpoint

import (
	"os"
	"os/exec"
	"testing"
)

// The default build, the production one, has no failpoints: Hit is inert
// even with SCORER_FAILPOINT naming the point.
func TestDefaultBuildIsInert(t *testing.T) {
	if Enabled {
		t.Fatal("failpoint.Enabled in a build without -tags failpoints")
	}
	if os.Getenv("SCORER_FAILPOINT_CHILD") == "1" {
		Hit("point")
		Hit("point")
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDefaultBuildIsInert$")
	cmd.Env = append(os.Environ(), "SCORER_FAILPOINT_CHILD=1", "SCORER_FAILPOINT=point")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("Hit with SCORER_FAILPOINT=point: %v\n%s", err, out)
	}
}
