//go:build race

package gateway

// raceEnabled: the race detector makes sync.Pool drop some of what is
// put back, so allocation counts are not the program's.
const raceEnabled = true
