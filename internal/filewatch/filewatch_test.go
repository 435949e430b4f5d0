package filewatch_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/filewatch"
	"github.com/ringcache/ringcache/internal/testclock"
)

// pair writes a "certificate" and a "key" that match when they hold the
// same text, standing in for material that must be consistent across files.
type pair struct{ a, b string }

func (p pair) load() (string, error) {
	a, err := os.ReadFile(p.a)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(p.b)
	if err != nil {
		return "", err
	}
	if !bytes.Equal(a, b) {
		return "", fmt.Errorf("%q and %q do not match", a, b)
	}
	return string(a), nil
}

func newPair(t *testing.T, content string) pair {
	t.Helper()
	dir := t.TempDir()
	p := pair{a: filepath.Join(dir, "a"), b: filepath.Join(dir, "b")}
	replace(t, p.a, content)
	replace(t, p.b, content)
	return p
}

// replace writes content to a new file and renames it over path.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestValue_ReloadsAfterIntervalWhenFilesChange(t *testing.T) {
	p := newPair(t, "v1")
	clock := testclock.New()
	v, err := filewatch.New([]string{p.a, p.b}, p.load, filewatch.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	replace(t, p.a, "v2")
	replace(t, p.b, "v2")
	if got := v.Get(); got != "v1" {
		t.Errorf("Get before the interval = %q, want v1 (files are looked at once a second)", got)
	}
	clock.Advance(filewatch.DefaultInterval)
	if got := v.Get(); got != "v2" {
		t.Errorf("Get after the interval = %q, want v2", got)
	}
	if s := v.Stats(); s.Reloads != 1 || s.Failures != 0 || s.LastError != nil {
		t.Errorf("stats = %+v, want one reload", s)
	}
}

func TestValue_HalfWrittenPairKeepsPreviousUntilBothMatch(t *testing.T) {
	p := newPair(t, "v1")
	var logs bytes.Buffer
	v, err := filewatch.New([]string{p.a, p.b}, p.load, filewatch.Options{
		Interval: -1, Logger: slog.New(slog.NewTextHandler(&logs, nil)), Name: "pair",
	})
	if err != nil {
		t.Fatal(err)
	}
	replace(t, p.a, "v2") // the key is not written yet
	for range 3 {
		if got := v.Get(); got != "v1" {
			t.Fatalf("Get with a half-written pair = %q, want v1", got)
		}
	}
	s := v.Stats()
	if s.Failures != 3 || s.LastError == nil || !strings.Contains(s.LastError.Error(), "reloading pair (keeping the previous one)") {
		t.Errorf("stats = %+v, want 3 failures naming the value", s)
	}
	if n := strings.Count(logs.String(), "reload failed"); n != 1 {
		t.Errorf("failed reload logged %d times, want once per distinct set of files:\n%s", n, logs.String())
	}
	replace(t, p.b, "v2")
	if got := v.Get(); got != "v2" {
		t.Errorf("Get after the pair is complete = %q, want v2", got)
	}
	if s := v.Stats(); s.Reloads != 1 || s.LastError != nil {
		t.Errorf("stats after success = %+v, want 1 reload and no error", s)
	}
}

func TestValue_MissingFileKeepsPrevious(t *testing.T) {
	p := newPair(t, "v1")
	v, err := filewatch.New([]string{p.a, p.b}, p.load, filewatch.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(p.b); err != nil {
		t.Fatal(err)
	}
	if got := v.Get(); got != "v1" {
		t.Errorf("Get with a missing file = %q, want v1", got)
	}
	if err := v.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload = %v, want ErrNotExist", err)
	}
}

func TestValue_UnchangedFilesAreNotReloaded(t *testing.T) {
	p := newPair(t, "v1")
	loads := 0
	v, err := filewatch.New([]string{p.a, p.b}, func() (string, error) { loads++; return p.load() }, filewatch.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		v.Get()
	}
	if loads != 1 {
		t.Errorf("loaded %d times for unchanged files, want only the first load", loads)
	}
}

func TestValue_InPlaceRewriteIsSeen(t *testing.T) {
	p := newPair(t, "v1")
	v, err := filewatch.New([]string{p.a, p.b}, p.load, filewatch.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	// A longer content changes the size even when the timestamp does not move.
	for _, f := range []string{p.a, p.b} {
		if err := os.WriteFile(f, []byte("v2-longer"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := v.Get(); got != "v2-longer" {
		t.Errorf("Get after an in-place rewrite = %q, want v2-longer", got)
	}
}

func TestNew_FailsWhenFirstLoadFails(t *testing.T) {
	dir := t.TempDir()
	p := pair{a: filepath.Join(dir, "a"), b: filepath.Join(dir, "b")}
	if _, err := filewatch.New([]string{p.a, p.b}, p.load, filewatch.Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("New with missing files = %v, want ErrNotExist", err)
	}
	if _, err := filewatch.New(nil, p.load, filewatch.Options{}); err == nil {
		t.Error("New without paths succeeded")
	}
}

func TestValue_ConcurrentGetDuringRotationNeverSeesAMismatch(t *testing.T) {
	p := newPair(t, "v0")
	v, err := filewatch.New([]string{p.a, p.b}, p.load, filewatch.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got := v.Get(); !strings.HasPrefix(got, "v") {
					t.Errorf("Get = %q", got)
					return
				}
			}
		})
	}
	for i := 1; i <= 50; i++ {
		s := fmt.Sprintf("v%d", i)
		replace(t, p.a, s)
		replace(t, p.b, s)
	}
	close(stop)
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for v.Get() != "v50" {
		if time.Now().After(deadline) {
			t.Fatalf("Get = %q after the last rotation, want v50", v.Get())
		}
	}
}

func TestValue_GetDoesNotWaitForAnotherCallersReload(t *testing.T) {
	p := newPair(t, "v1")
	entered, release := make(chan struct{}), make(chan struct{})
	first := true
	load := func() (string, error) {
		if !first {
			close(entered)
			<-release
		}
		first = false
		return p.load()
	}
	v, err := filewatch.New([]string{p.a, p.b}, load, filewatch.Options{Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	replace(t, p.a, "v2")
	replace(t, p.b, "v2")
	done := make(chan string)
	go func() { done <- v.Get() }()
	<-entered // that Get is now loading, holding the lock
	if got := v.Get(); got != "v1" {
		t.Errorf("Get during another caller's reload = %q, want the current v1 at once", got)
	}
	close(release)
	if got := <-done; got != "v2" {
		t.Errorf("the reloading Get returned %q, want v2", got)
	}
}
