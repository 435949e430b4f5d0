// Package replica is the wire of replicated write-behind: Links carry the
// records a node journals (it is their origin) to the nodes that keep copies
// of them (its replicas), over one Peer.Replicate stream per replica, and a
// Receiver stores what arrives in the replica's journal
// (internal/journal's replica copies). Which nodes are the replicas of a
// record, and what happens when an origin goes away, is internal/engine's.
//
// # Guarantees
//
//   - Acknowledged means on disk. A record's result is nil only once the
//     replica has answered the frame that carried it, and the replica
//     answers a frame only after the journal commit (fsync) that stored it.
//   - Group commit on both sides, with no timer. Each link sends at most one
//     frame at a time and waits for its answer; records queued meanwhile go
//     together in the next frame, so concurrent writes to one replica share
//     one frame, and the replica's journal commits frames of every origin
//     that arrive during one fsync together with its own writes.
//   - Bounded waits. A frame unanswered within Config.Timeout breaks the
//     stream: its records fail with ErrUnavailable, and the link is
//     reported Down until a later attempt connects again.
//   - Failures say which replica and why (errors wrap ErrUnavailable, or
//     journal.ErrFull when the replica refused copies at its bound). A failed
//     record may still have been stored on the replica.
package replica

import "errors"

// ErrUnavailable is wrapped by the results of records that did not reach a
// replica (no connection, a broken stream, no answer in time).
var ErrUnavailable = errors.New("replica unavailable")
