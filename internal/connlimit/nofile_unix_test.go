//go:build unix

package connlimit

import (
	"syscall"
	"testing"
)

func TestOpenFileLimit_IsTheSoftLimitUnlessUnlimited(t *testing.T) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	want := r.Cur
	if r.Cur >= 1<<62 {
		want = 0 // unlimited counts as unknown
	}
	if got := OpenFileLimit(); got != want {
		t.Fatalf("OpenFileLimit = %d, want %d (rlimit cur %d)", got, want, r.Cur)
	}
}
