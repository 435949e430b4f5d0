package node_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ringcache/ringcache/internal/clustertest"
)

// TestMain fails the package's tests if any goroutine outlives them, except
// memberlist's that end on their own (clustertest.LeakIgnores): a probe in
// flight, and a Leave whose peers left first.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, clustertest.LeakIgnores()...)
}
