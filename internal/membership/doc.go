// Package membership wraps hashicorp/memberlist: it gossips which nodes are
// in the cluster and each node's gRPC address (carried in node metadata).
//
// # Guarantees
//
//   - The member list is kept from memberlist's event hooks alone: the *Node
//     values that memberlist.Members returns are mutated by memberlist after
//     it lets go of its lock, so reading them races. The price is that
//     memberlist reports no event when it starts to suspect a node; a suspect
//     node shows as alive (and keeps its keys) until it is declared dead.
//   - memberlist calls its hooks while holding its own locks, so the hooks
//     here only copy what they need and signal, without blocking, one channel
//     that a single consumer (the node's ring builder) drains.
//   - History is bounded: a dead or left member stays listed for
//     Config.Linger after it departed, then it is forgotten, leaving mark and
//     all. Pruning is lazy (on every event and every read) and costs O(1)
//     when nothing has expired.
//   - A node that cannot join says why: JoinStatus tells seeds that did not
//     answer (not up yet, or cut off) from seeds that answered and refused
//     this node (another gossip key, one side encrypted and the other not,
//     an incompatible protocol). Joining is retried in the background either
//     way, with jittered exponential backoff.
//
// # Gossip encryption and key rotation
//
// With Config.Keys (or SecretKey) set, every gossip packet and stream is
// encrypted and authenticated with AES-GCM under the primary key (the first);
// the other keys are tried when decrypting. A node without a matching key
// cannot join, and its packets are dropped.
//
// Keys are rotated across a running cluster without losing a member in three
// steps. Each step must have reached every node before the next one starts;
// check with Keys (or its KeyID fingerprints) on every node:
//
//  1. Install the new key on every node as a secondary key (InstallKey, or
//     ReloadKeys with the list [old, new]). Nodes still encrypt with the old
//     key, and every node can now decrypt both.
//  2. Make the new key primary on every node (UseKey, or ReloadKeys with
//     [new, old]). During this step some nodes encrypt with the new key and
//     some with the old one; every node holds both, so nothing is lost.
//  3. Remove the old key on every node (RemoveKey, or ReloadKeys with [new]).
//     From now on a node holding only the old key cannot join.
//
// Doing step 2 before step 1 has reached every node, or step 3 before step 2
// has, cuts the nodes that lag behind off the cluster until they catch up.
// ReloadKeys therefore refuses the two shortcuts it can detect on its own
// node: making primary a key this node did not already hold (skipping step
// 1), and dropping the key in use as primary (skipping step 2). Turning
// encryption on or off needs a restart of the cluster; it is not a rotation.
//
// # Probe-ack payloads
//
// Config.AckPayload and PeerPayload carry opaque bytes (the node's hybrid
// logical clock) on memberlist's probe acks. PeerPayload is only called when
// gossip is encrypted and incoming messages are verified, so the bytes come
// from a holder of the cluster key; without encryption anyone who can reach
// the gossip port could forge an ack, and no payload is sent or delivered.
// Even so the bytes are authenticated, not validated: a member with a bad
// clock, or a compromised one, can send any value, and the receiver must
// check the length and bound the value (for a clock, reject values too far
// ahead of the local wall clock) before it adopts anything.
package membership
