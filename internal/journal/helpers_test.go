package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// openTest opens a journal in a fresh directory. At cleanup it checks the
// journal's invariants (as bbolt's btesting does after every test) and closes
// it.
func openTest(tb testing.TB, opts Options) *Journal {
	tb.Helper()
	return openAt(tb, filepath.Join(tb.TempDir(), "data", "journal.db"), opts)
}

func openAt(tb testing.TB, path string, opts Options) *Journal {
	tb.Helper()
	j, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() {
		if err := checkInvariants(j); err != nil && !errors.Is(err, ErrClosed) {
			tb.Errorf("invariants at cleanup: %v", err)
		}
		if err := j.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return j
}

// checkInvariants verifies bbolt's own consistency and the journal's: the
// counters equal what the buckets hold, every pending record has exactly one
// queue entry carrying its sequence, and every record decodes.
func checkInvariants(j *Journal) error {
	return j.view(func(tx *bolt.Tx) error {
		var checkErr error
		for err := range tx.Check() { // drain: Check's goroutine sends them all
			if checkErr == nil {
				checkErr = fmt.Errorf("bbolt check: %w", err)
			}
		}
		if checkErr != nil {
			return checkErr
		}
		c, err := readCounters(tx)
		if err != nil {
			return err
		}
		var n, size uint64
		err = tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			r, seq, err := decode(v)
			if err != nil {
				return fmt.Errorf("pending %q: %w", k, err)
			}
			if !bytes.Equal(k, nsKey(r.Namespace, r.Key)) {
				return fmt.Errorf("pending %q holds record of %s/%s", k, r.Namespace, r.Key)
			}
			if got := tx.Bucket(bucketQueue).Get(seqKey(seq)); !bytes.Equal(got, k) {
				return fmt.Errorf("pending %q has sequence %d, whose queue entry is %q", k, seq, got)
			}
			n++
			size += uint64(r.size())
			return nil
		})
		if err != nil {
			return err
		}
		if q := tx.Bucket(bucketQueue).Stats().KeyN; uint64(q) != n {
			return fmt.Errorf("%d queue entries for %d pending records", q, n)
		}
		if c.pending != n || c.bytes != size {
			return fmt.Errorf("counters say %d pending, %d bytes; buckets hold %d, %d bytes", c.pending, c.bytes, n, size)
		}
		var dead uint64
		err = tx.Bucket(bucketDead).ForEach(func(k, v []byte) error {
			dead++
			_, _, err := decode(v)
			return err
		})
		if err != nil {
			return err
		}
		if c.dead != dead {
			return fmt.Errorf("counter says %d dead letters; bucket holds %d", c.dead, dead)
		}
		return nil
	})
}

// commits returns the id of the last committed write transaction: it grows
// by one per bbolt commit.
func commits(tb testing.TB, j *Journal) int {
	tb.Helper()
	var id int
	if err := j.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil }); err != nil {
		tb.Fatal(err)
	}
	return id
}

func mustAppend(tb testing.TB, j *Journal, r Record) {
	tb.Helper()
	if err := j.Append(context.Background(), r); err != nil {
		tb.Fatalf("Append(%s/%s v%d): %v", r.Namespace, r.Key, r.Version, err)
	}
}

func mustPending(tb testing.TB, j *Journal, ns, key string) Record {
	tb.Helper()
	r, ok, err := j.Pending(ns, key)
	if err != nil || !ok {
		tb.Fatalf("Pending(%s, %s) = %v, %v; want a record", ns, key, ok, err)
	}
	return r
}

func mustStats(tb testing.TB, j *Journal) Stats {
	tb.Helper()
	s, err := j.Stats()
	if err != nil {
		tb.Fatalf("Stats: %v", err)
	}
	return s
}

func set(ns, key, value string, version uint64) Record {
	return Record{Namespace: ns, Key: key, Value: []byte(value), Version: version}
}
