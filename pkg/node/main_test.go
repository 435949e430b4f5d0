package node_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them, except
// a memberlist probe: memberlist's Shutdown does not wait for a probe in
// flight, which ends on its own within a probe timeout
// (membership.Shutdown).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}
