//go:build unix

package connlimit

import (
	"math"
	"syscall"
)

// FileLimit returns the process's limit on open files: its soft
// RLIMIT_NOFILE, which Go raises to (one less than) the hard limit when the
// process starts (package syscall, on Unix systems). It returns 0 when the
// limit cannot be read.
func FileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return int(min(uint64(rl.Cur), math.MaxInt32))
}
