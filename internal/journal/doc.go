// Package journal is the durable write-behind journal of one node: the
// pending writes of its write-behind namespaces, in one bbolt file in the
// node's data directory. A Set is acknowledged once its record is here; a
// flusher later writes pending records to the database and acks them.
//
// # Guarantees
//
//   - Durable before ack. Append returns nil only after the transaction
//     holding the record is committed and fsync'd. A record Append
//     acknowledged survives kill -9 of the process and, with a disk that
//     honours fsync, a crash of the machine. Concurrent Appends share one
//     commit (group commit: one committer takes every Append waiting, with no
//     timer), so
//     many writers pay for one fsync; a lone Append commits without waiting.
//   - Coalescing, latest wins. There is at most one pending record per
//     (namespace, key). An Append for a pending key replaces it, keeping its
//     Appended time and queue position, unless the stored Version is higher:
//     then the Append is superseded, stores nothing and returns nil. Ack,
//     Retry and Bury act only on the exact Version they are given, so a
//     newer write that arrived during a flush stays pending.
//   - FIFO. Oldest returns pending records in the order their keys first
//     became pending.
//   - Bounded. Pending count and bytes are counters stored in the same
//     transaction as the records, so they are exact across crashes. An
//     Append that would pass Options.MaxPending (new keys) or
//     Options.MaxBytes stores nothing and returns an error wrapping ErrFull.
//     Records live in bbolt, not in Go memory: the Journal's memory does not
//     grow with the backlog (bbolt maps the file; the OS pages it).
//   - Full disk. When the disk is full, bbolt's commit fails; Append returns
//     an error wrapping both ErrFull and the system error (ENOSPC), nothing
//     of that batch is stored, and the journal stays usable: reads, Acks
//     (which free pages for reuse) and, once space is freed, Appends work.
//   - Corruption is reported, never a panic: a record that does not decode
//     (format version, CRC-32C, lengths) yields an error wrapping ErrCorrupt.
//
// The file also keeps copies of other nodes' pending writes, for
// replicated write-behind (replica.go): committed with the node's own
// Appends, bounded apart, read and adopted when their origin is gone.
//
// A Journal is safe for concurrent use. One process at a time may open a
// file: another Open fails after Options.LockTimeout with ErrLocked.
// Options.NoSync gives up durability and is for tests and benchmarks only.
package journal
