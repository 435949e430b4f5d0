package clustertest

import "go.uber.org/goleak"

// LeakIgnores are the goroutines of memberlist that may outlive a node's
// Close or Kill by design, for goleak.VerifyTestMain in packages that run
// nodes:
//   - a probe in flight: memberlist's Shutdown does not wait for it, and it
//     ends within its ack timer (a probe interval);
//   - memberlist's Leave, when the peers left before its leave message went
//     out: membership.Leave stops waiting for it then, and it ends by
//     itself within the node's LeaveTimeout.
func LeakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"),
		goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).Leave"),
	}
}
