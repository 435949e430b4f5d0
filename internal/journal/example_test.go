package journal_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/ringcache/ringcache/internal/journal"
)

// A write-behind Set appends and acknowledges; the flusher takes the oldest
// pending records, writes them to the database and acks them.
func ExampleJournal() {
	dir, err := os.MkdirTemp("", "journal")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()

	ctx := context.Background()
	// Set path: once Append returns nil the write is on disk.
	for v, value := range []string{"alice", "alice2"} {
		r := journal.Record{Namespace: "users", Key: "42", Value: []byte(value), Version: uint64(v + 1)}
		if err := j.Append(ctx, r); err != nil {
			log.Fatal(err) // errors.Is(err, journal.ErrFull): RESOURCE_EXHAUSTED
		}
	}

	// Flusher path.
	recs, err := j.Oldest(500)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range recs {
		fmt.Printf("upsert %s/%s = %s (version %d)\n", r.Namespace, r.Key, r.Value, r.Version)
	}
	if err := j.Ack(recs); err != nil {
		log.Fatal(err)
	}
	s, err := j.Stats()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("pending %d, appends %d, coalesced %d\n", s.Pending, s.Appends, s.Coalesced)
	// Output:
	// upsert users/42 = alice2 (version 2)
	// pending 0, appends 2, coalesced 1
}
