//go:build !unix

package connlimit

// OpenFileLimit returns 0: the limit is not known here.
func OpenFileLimit() uint64 { return 0 }
