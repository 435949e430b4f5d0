// Package chaos tries a real ringcache cluster against faults, as an
// adversarial user would, and checks what its clients saw.
//
// The lab (Network): every ringcached process runs in its own Linux network
// namespace, joined by veth pairs to two bridges in the root namespace —
// the peer network (gossip, gRPC between nodes and from clients) and the
// database network, where a real PostgreSQL runs in a namespace of its own.
// A link is cut by detaching a veth from its bridge (`ip link set DEV
// nomaster`) and healed by attaching it again; no iptables or netem is
// needed. It needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN). Names carry the
// creating process's pid, so every run cleans up after itself (Close) and
// sweeps what crashed runs left behind (Sweep).
//
// The clients record every operation with its invocation and completion
// time and its result (ok, fail, or unknown: timed out). One client per
// node runs inside the node's namespace and calls that node directly (an
// application next to its node, on the same side of any partition); the
// others use pkg/client from the root namespace. They read and write three
// namespaces: write-through (wt), write-behind (wb), and write-aside (rt),
// where the application writes PostgreSQL itself and then deletes the
// cached entry. Every value names its writer and sequence number, so each
// read maps back to the one write it saw.
//
// The nemeses (kill -9, pause, partition one node from the others, isolate
// the database, graceful restart) run in rounds, each on keys of its own:
// prime the keys, warm up, inject the fault, wait for its detection, hold,
// heal, wait for convergence (every node serving, every ring agreeing),
// settle. At the end the journals are drained and every key is read
// through every node and in the database.
//
// Check then states what held (Report, WriteTable):
//   - no acknowledged write of wt or wb is missing from the database
//     (CheckLost);
//   - no read outside a fault window (before the fault, or after the
//     cluster converged) returned a value older than a write acknowledged
//     before the read began (CheckStale); reads during a fault may, and are
//     counted apart;
//   - wt is a linearizable register (porcupine) under the nemeses in
//     Linearizable; under a partition or a pause past detection the cache
//     is deliberately weaker (see docs/reliability.md).
package chaos
