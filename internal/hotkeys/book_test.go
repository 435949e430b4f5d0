package hotkeys

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestBook_SaveThenOpenSeedsTheNextTracker(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	written := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cfg := BookConfig{Path: path, Node: "n1", Tracker: Config{Partitions: 4, SampleEvery: 1}, Now: func() time.Time { return written }}
	b, keys, err := OpenBook(cfg)
	if err != nil || len(keys) != 0 {
		t.Fatalf("OpenBook of a missing file = %v, %v; want no keys, no error", keys, err)
	}
	for range 3 {
		b.Tracker().Touch("users", "42", 2)
	}
	if err := b.Save(); err != nil {
		t.Fatal(err)
	}
	list, err := Load(path, 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if list.Node != "n1" || !list.Written.Equal(written) || list.Partitions != 4 || len(list.Keys) != 1 || list.Keys[0].Key != "42" {
		t.Fatalf("saved list = %+v", list)
	}

	b2, keys, err := OpenBook(cfg)
	if err != nil || len(keys) != 1 || keys[0].Key != "42" || keys[0].Partition != 2 {
		t.Fatalf("OpenBook after Save = %+v, %v; want the saved key", keys, err)
	}
	if got := b2.Tracker().Snapshot(); len(got) != 1 || got[0].Key != "42" {
		t.Fatalf("new tracker not seeded with the saved list: %+v", got)
	}
}

func TestOpenBook_ForgetsAListOfAnotherPartitionCount(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := Save(path, List{Partitions: 256, Keys: []Key{{Namespace: "users", Key: "42", Partition: 7, Count: 9}}}); err != nil {
		t.Fatal(err)
	}
	b, keys, err := OpenBook(BookConfig{Path: path, Tracker: Config{Partitions: 4096}})
	if err != nil || len(keys) != 0 {
		t.Fatalf("OpenBook = %v, %v; want no keys: partition 7 of 256 is other slots than partition 7 of 4096", keys, err)
	}
	if got := b.Tracker().Snapshot(); len(got) != 0 {
		t.Fatalf("tracker seeded with a foreign list: %+v", got)
	}
}

func TestOpenBook_UnreadableFileLeavesAWorkingBook(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, []byte(`{"version":1,"keys":[{"ns`), 0o644); err != nil {
		t.Fatal(err)
	}
	b, keys, err := OpenBook(BookConfig{Path: path, Tracker: Config{Partitions: 4}})
	if !errors.Is(err, ErrFormat) || len(keys) != 0 {
		t.Fatalf("OpenBook of a torn file = %v, %v; want no keys and ErrFormat", keys, err)
	}
	if err := b.Save(); err != nil {
		t.Fatalf("Save over the torn file: %v", err)
	}
	if _, err := Load(path, 10, 100); err != nil {
		t.Fatalf("the list Save wrote does not load: %v", err)
	}
}

func TestBook_RunSavesUntilStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	b, _, err := OpenBook(BookConfig{Path: path, Tracker: Config{Partitions: 4}})
	if err != nil {
		t.Fatal(err)
	}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { b.Run(stop, time.Millisecond); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run wrote no list within 10s")
		}
		time.Sleep(time.Millisecond)
	}
	close(stop)
	<-done
}

func TestBook_NilSavesNothing(t *testing.T) {
	var b *Book
	if b.Tracker() != nil || b.Save() != nil {
		t.Fatal("a nil Book must have no tracker and save nothing")
	}
}

// A node drains for up to tens of seconds after it stops serving; the
// periodic saves of that drain, each halving the counts, must not replace
// the list it wrote when it stopped.
func TestBook_SavesAfterCloseKeepTheClosingList(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	b, _, err := OpenBook(BookConfig{Path: path, Tracker: Config{Partitions: 4, SampleEvery: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		b.Tracker().Touch("users", "42", 1)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 8 { // without Close, these halve the count to zero and write an empty list
		if err := b.Save(); err != nil {
			t.Fatal(err)
		}
	}
	list, err := Load(path, 10, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Keys) != 1 || list.Keys[0].Key != "42" || list.Keys[0].Count != 8 {
		t.Fatalf("list after Close and 8 saves = %+v; want users/42 counted 8, as Close wrote it", list.Keys)
	}
}
