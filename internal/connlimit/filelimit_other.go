//go:build !unix

package connlimit

// FileLimit returns 0: this system has no limit on open files to read.
func FileLimit() int { return 0 }
