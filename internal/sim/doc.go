// Package sim replays a key trace against one node's store at a range of
// sizes and reports the hit rate of each: the capacity planning behind
// `ringcachectl simulate`.
//
// The cache simulated is the node's own engine, not a model of it: an otter
// v2 W-TinyLFU cache bounded by bytes and weighed as package store weighs
// (key + value + store.EntryOverhead), with the store's no-expiry policy.
// Two settings differ, both to make a replay repeatable and fast: maintenance
// (draining the read and write buffers, admission, eviction) runs on the
// replaying goroutine right after each access instead of on a goroutine of
// its own, and the clock stands still, so no entry expires. Keys are
// numbered rather than kept as strings, and entries carry their weight
// instead of a value, so a trace of large values costs no memory.
//
// A replay is read-through: every request is a Get, and a miss inserts the
// key with its request's value size, as a node does after loading it.
// Hits and misses are counted after the warm-up prefix of the trace.
// Results vary slightly between runs, as otter seeds its frequency sketch
// and its admission jitter at random: in three runs of a Zipf trace, by up
// to 1.7 points of hit rate for caches of a few thousand entries or fewer,
// by at most 0.2 for caches of ten thousand entries or more.
//
// Knee finds the size past which more memory buys little (Kneedle), and
// WritePlot draws the hit rate curve as a PNG.
package sim
