package journal

import (
	"errors"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// diskFull reports whether err comes of a full disk or quota, and returns
// the system error to wrap. bbolt loses the system error when it grows its
// file ("file resize error: %s"), so when err does not carry ENOSPC or
// EDQUOT the device itself is asked: a failure with less than minFree
// left on it is a full disk.
// minFree is the room below which a failed write is taken for a full
// disk: sixteen pages, less than any commit of more than one record needs.
const minFree = 64 << 10

func (j *Journal) diskFull(err error) (error, bool) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		if errors.Is(err, errno) {
			return errno, true
		}
	}
	var st unix.Statfs_t
	if unix.Statfs(filepath.Dir(j.path), &st) != nil {
		return nil, false
	}
	if uint64(st.Bavail)*uint64(st.Bsize) < minFree {
		return syscall.ENOSPC, true
	}
	return nil, false
}
