//go:build !failpoints

package failpoint

// Enabled says whether this build has failpoints (-tags failpoints).
const Enabled = false

// Hit does nothing: this build has no failpoints. It is inlined away.
func Hit(string) {}
