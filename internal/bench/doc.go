// Package bench holds the write-path benchmarks of ringcache: Set throughput
// and latency per write mode (cache only, write-through, durable
// write-behind) and the coalescing of write-behind flushes, each against one
// in-process node over real gRPC, with a real journal file and a throwaway
// PostgreSQL (internal/pgtest); and replicated write-behind (replicas 1
// against 2) on two in-process nodes.
//
// The code is all in _test.go files; run it with `make bench-write`, or
//
//	go test -run '^$' -bench 'Set_' -benchtime 5s ./internal/bench/
//	go test -run '^$' -bench Coalescing -benchtime 1x ./internal/bench/
//	go test -run '^$' -bench Replication -benchtime 5s ./internal/bench/
//
// Results and their reading are in docs/benchmarks.md. Nothing here asserts
// a speed: `go test ./internal/bench/` runs only a smoke test that checks
// each write mode puts its data where it belongs.
package bench
