package hotkeys

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// zipfReads touches n reads of keys k0..k<keys-1> in partition p, drawn
// from a Zipf distribution (k0 the most read), with a printed seed.
func zipfReads(t testing.TB, tr *Tracker, seed uint64, n, keys, p int) {
	t.Helper()
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 1)), 1.1, 1, uint64(keys-1))
	for range n {
		tr.Touch("users", fmt.Sprintf("k%d", z.Uint64()), p)
	}
}

func TestTracker_FindsTheHottestKeysOfEachPartition(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	tr := New(Config{Partitions: 4, PerPartition: 4, SampleEvery: 1})
	for p := range 4 {
		zipfReads(t, tr, seed+uint64(p), 20000, 1000, p)
	}
	got := tr.Snapshot()
	if len(got) != 16 {
		t.Fatalf("snapshot has %d keys, want 4 per partition: %+v", len(got), got)
	}
	for p := range 4 {
		var keys []string
		for _, k := range got {
			if k.Partition == p {
				keys = append(keys, k.Key)
			}
		}
		// Under Zipf(1.1) over 1000 keys k0 takes about 18% of the reads
		// and k1 8%: above the 1/(4*4) share Space-Saving is sure to keep.
		for _, want := range []string{"k0", "k1"} {
			if !slices.Contains(keys, want) {
				t.Errorf("partition %d: hottest keys %v lack %s", p, keys, want)
			}
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i].Count > got[i-1].Count {
			t.Fatalf("snapshot not in count order at %d: %+v", i, got)
		}
	}
}

func TestTracker_SnapshotHalvesCounts(t *testing.T) {
	tr := New(Config{Partitions: 1, SampleEvery: 1})
	for range 8 {
		tr.Touch("users", "a", 0)
	}
	tr.Touch("users", "b", 0)
	if got := tr.Snapshot(); len(got) != 2 || got[0].Key != "a" || got[0].Count != 8 || got[1].Count != 1 {
		t.Fatalf("first snapshot %+v, want a:8 then b:1", got)
	}
	if got := tr.Snapshot(); len(got) != 1 || got[0].Key != "a" || got[0].Count != 4 {
		t.Fatalf("second snapshot %+v, want a:4 alone (b halved to 0 and dropped)", got)
	}
}

func TestTracker_SamplesOneReadInN(t *testing.T) {
	tr := New(Config{Partitions: 1, SampleEvery: 16})
	for range 16000 {
		tr.Touch("users", "a", 0)
	}
	// Binomial(16000, 1/16): mean 1000, sd about 31.
	if s := tr.Sampled(); s < 800 || s > 1200 {
		t.Fatalf("sampled %d of 16000 reads at 1 in 16, want about 1000", s)
	}
	tr.Touch("users", "a", 5) // no such partition
	tr.Touch("users", "a", -1)
}

func TestBound_KeysAndBytes(t *testing.T) {
	keys := []Key{{Namespace: "n", Key: "aaaa", Count: 1}, {Namespace: "n", Key: "bb", Count: 3}, {Namespace: "n", Key: "c", Count: 2}}
	if got := Bound(slices.Clone(keys), 2, 100); len(got) != 2 || got[0].Key != "bb" || got[1].Key != "c" {
		t.Fatalf("Bound(2 keys) = %+v", got)
	}
	// bb costs 3 bytes, c 2: 5 fit in 6, aaaa (5 more) does not.
	if got := Bound(slices.Clone(keys), 10, 6); len(got) != 2 {
		t.Fatalf("Bound(6 bytes) = %+v", got)
	}
}

func TestSaveLoad_RoundTripAndBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	empty, err := Load(path, 10, 100)
	if err != nil || len(empty.Keys) != 0 {
		t.Fatalf("Load of a missing file = %+v, %v; want an empty list", empty, err)
	}
	list := List{Node: "n1", Partitions: 4096, Keys: []Key{{Namespace: "users", Key: "42", Partition: 7, Count: 9}, {Namespace: "users", Key: "7", Partition: 1, Count: 2}}}
	if err := Save(path, list); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if got.Node != "n1" || got.Partitions != 4096 || !slices.Equal(got.Keys, list.Keys) {
		t.Fatalf("Load = %+v, want %+v", got, list)
	}
	if got, _ := Load(path, 1, 100); len(got.Keys) != 1 || got.Keys[0].Key != "42" {
		t.Fatalf("Load with 1 key = %+v", got.Keys)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files after Save, want the list alone (no temporary file left)", len(entries))
	}
}

func TestLoad_RefusesATornOrForeignFile(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"torn": `{"version":1,"keys":[{"ns":"u`, "v9": `{"version":9}`} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path, 10, 100); err == nil {
			t.Errorf("Load(%s) succeeded, want ErrFormat", name)
		}
	}
}

func BenchmarkTouch(b *testing.B) {
	tr := New(Config{Partitions: 4096})
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("user:%d", i)
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			tr.Touch("users", keys[i%len(keys)], i%4096)
			i++
		}
	})
}

func TestTracker_SeedKeepsTheSavedListUntilHotterKeysCome(t *testing.T) {
	tr := New(Config{Partitions: 2, PerPartition: 1, SampleEvery: 1})
	tr.Seed([]Key{{Namespace: "users", Key: "old", Partition: 1, Count: 4}, {Namespace: "users", Key: "x", Partition: 9, Count: 4}})
	tr.Touch("users", "new", 1)
	if got := tr.Snapshot(); len(got) != 1 || got[0].Key != "old" {
		t.Fatalf("snapshot after seeding = %+v, want the seeded key", got)
	}
	for range 10 {
		tr.Touch("users", "new", 1)
	}
	if got := tr.Snapshot(); len(got) != 1 || got[0].Key != "new" {
		t.Fatalf("snapshot after 11 reads of a new key = %+v, want it", got)
	}
}
