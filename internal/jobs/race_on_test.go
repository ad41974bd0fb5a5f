//go:build race

package jobs

// raceEnabled: the test binary is built with -race.
const raceEnabled = true
