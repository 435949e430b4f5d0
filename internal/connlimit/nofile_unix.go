//go:build unix

package connlimit

import "syscall"

// OpenFileLimit returns the process's open-file limit, or 0 when unknown.
// Go raises the soft limit to the hard one at start; "unlimited" counts
// as unknown.
func OpenFileLimit() uint64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur >= 1<<62 {
		return 0
	}
	return uint64(r.Cur)
}
