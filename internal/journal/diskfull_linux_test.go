//go:build linux

package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// TestJournal_DiskFullFailsAppendAndStaysUsable fills a 2 MiB tmpfs. It runs
// only as root where mount works (otherwise it skips); CI runs as root.
func TestJournal_DiskFullFailsAppendAndStaysUsable(t *testing.T) {
	dir := mountTmpfs(t, "2m")
	// A filler file to delete later: the "other things on the disk".
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "journal.db")
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	value := bytes.Repeat([]byte("x"), 16<<10)
	var acked []Record
	var full error
	for i := range 1000 {
		r := Record{Namespace: "ns", Key: fmt.Sprint(i), Value: value, Version: 1}
		if err := j.Append(context.Background(), r); err != nil {
			full = err
			break
		}
		acked = append(acked, r)
	}
	if full == nil {
		t.Fatal("1000 appends of 16 KiB fit in a 2 MiB tmpfs")
	}
	t.Logf("after %d acknowledged appends: %v", len(acked), full)
	if !errors.Is(full, ErrFull) || !errors.Is(full, syscall.ENOSPC) {
		t.Errorf("disk-full error %v should wrap ErrFull and ENOSPC", full)
	}

	// Still usable while full: reads work and counters are exact.
	if s, err := j.Stats(); err != nil || s.Pending != len(acked) {
		t.Errorf("Stats while full = %+v, %v; want %d pending", s, err, len(acked))
	}
	if err := checkInvariants(j); err != nil {
		t.Errorf("invariants while full: %v", err)
	}
	// bbolt reports a failed growth of its file as text only ("file
	// resize error: %s"); the journal asks the device and still says full.
	if err := j.wrap("grow", errors.New("file resize error: no space")); !errors.Is(err, ErrFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("an unwrapped growth failure on a full device = %v; want ErrFull and ENOSPC", err)
	}
	// Another append fails the same way, without a panic.
	err = j.Append(context.Background(), Record{Namespace: "ns", Key: "again", Value: value, Version: 1})
	t.Logf("append while still full: %v", err)
	// An Ack may need a page too; whatever it returns, nothing breaks.
	err = j.Ack(acked[:1])
	t.Logf("ack while full: %v", err)
	if err == nil {
		acked = acked[1:]
	}

	// Free space: appends work again.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := j.wrap("grow", errors.New("file resize error: io")); errors.Is(err, ErrFull) {
		t.Errorf("an unwrapped failure with room on the device = %v; want it not taken for a full disk", err)
	}
	for i := range 5 {
		r := Record{Namespace: "ns", Key: fmt.Sprint("after-", i), Value: value, Version: 1}
		if err := j.Append(context.Background(), r); err != nil {
			t.Fatalf("append after freeing space: %v", err)
		}
		acked = append(acked, r)
	}

	// Every acknowledged record survives a reopen.
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openAt(t, path, Options{})
	for _, r := range acked {
		if got := mustPending(t, j, r.Namespace, r.Key); !bytes.Equal(got.Value, r.Value) {
			t.Fatalf("%s: value of %d bytes after reopen", r.Key, len(got.Value))
		}
	}
	if s := mustStats(t, j); s.Pending != len(acked) {
		t.Errorf("after reopen Pending = %d; want %d", s.Pending, len(acked))
	}
}

// mountTmpfs mounts a tmpfs of the given size on a fresh directory and
// unmounts it at cleanup; it skips the test unless it can.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}
