// Package e2e holds end-to-end tests of the shipped binaries: TestMain builds
// ringcached, ringcachectl, ringcachectl-bench (which ringcachectl runs for
// bench and simulate) and demoseed with `go build`, and the tests start
// real ringcached processes on free loopback ports and drive them through
// ringcachectl (and, where the CLI cannot express a request, a raw gRPC
// client), the way an operator would.
//
// A failing test prints its nodes' logs; RINGCACHE_E2E_LOG_LEVEL=debug
// makes them say more.
//
// The package has no non-test code; `go test -short` skips it.
package e2e
