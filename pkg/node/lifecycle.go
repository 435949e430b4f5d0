package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/go-sockaddr"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/ringcache/ringcache/internal/membership"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// advertiseAddr returns the gRPC address to publish to peers: the explicit
// one, else the listener's, with an unspecified host (0.0.0.0, ::) replaced
// by the host of the advertised gossip address if there is one, else by this
// machine's private IP, as memberlist does for gossip.
func advertiseAddr(explicit, gossip string, lis *net.TCPAddr) (string, error) {
	if explicit != "" {
		if _, _, err := net.SplitHostPort(explicit); err != nil {
			return "", fmt.Errorf("node: advertise gRPC address %q: %w", explicit, err)
		}
		return explicit, nil
	}
	if !lis.IP.IsUnspecified() {
		return lis.String(), nil
	}
	if host, _, err := net.SplitHostPort(gossip); err == nil && host != "" {
		return net.JoinHostPort(host, strconv.Itoa(lis.Port)), nil
	}
	ip, err := sockaddr.GetPrivateIP()
	if err != nil || ip == "" {
		return "", fmt.Errorf("node: gRPC listens on %s and no private IP was found to publish; set the advertise gRPC address", lis)
	}
	return net.JoinHostPort(ip, strconv.Itoa(lis.Port)), nil
}

// awaitJoin marks the node ready once it has joined its cluster. When
// BootstrapTimeout passes first, a node whose seeds did not answer serves
// alone if BootstrapAlone says so; otherwise, and always when seeds
// answered and refused it, it stays not ready (and says why) while
// joining goes on in the background.
func (n *Node) awaitJoin() {
	t := time.NewTimer(n.cfg.BootstrapTimeout)
	defer t.Stop()
	select {
	case <-n.members.Joined():
	case <-t.C:
		st := n.members.JoinStatus()
		switch {
		case st.State == membership.JoinRefused:
			n.log.Error("seeds refuse this node; not serving until it joins them", "err", st.Err)
		case st.State != membership.JoinJoined && n.cfg.BootstrapAlone:
			n.log.Warn("no seed answered within the bootstrap timeout; serving as a cluster of one", "timeout", n.cfg.BootstrapTimeout)
			n.joined.Store(true)
			n.reconcile() // a table of this node alone
			n.updateReady()
			return
		case st.State != membership.JoinJoined:
			n.log.Warn("no seed answered within the bootstrap timeout; not serving alone without --bootstrap-alone", "timeout", n.cfg.BootstrapTimeout, "err", st.Err)
		}
		select {
		case <-n.members.Joined():
		case <-n.stop:
			return
		}
	case <-n.stop:
		return
	}
	n.joined.Store(true)
	n.updateReady()
}

// updateReady makes the engine ready once the node has joined its cluster
// and routes by its coordinator's table; from then on it stays ready (a
// newer table is pulled or pushed within moments, and a forwarded op is
// served by its receiver whatever its table says).
func (n *Node) updateReady() {
	if n.joined.Load() && n.table.Current() && !n.engine.Ready() {
		n.engine.SetReady()
	}
	if n.engine.Ready() {
		n.startWarm()
	}
	n.setServing()
}

// notServing reports NOT_SERVING; setServing reports SERVING if the node
// is Ready. Both hold healthMu, so that of two racing calls the later
// decides: a setServing that read Ready before a change that makes the
// node not ready, and whose caller then calls notServing, cannot report
// SERVING after it.
func (n *Node) notServing() {
	n.healthMu.Lock()
	defer n.healthMu.Unlock()
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	n.health.SetServingStatus(pb.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_NOT_SERVING)
}

func (n *Node) setServing() {
	n.healthMu.Lock()
	defer n.healthMu.Unlock()
	if !n.Ready() {
		return
	}
	n.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	n.health.SetServingStatus(pb.Cache_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
}

// ringLoop is the single consumer of membership changes.
func (n *Node) ringLoop() {
	for {
		select {
		case <-n.stop:
			return
		case <-n.members.Changed():
			n.reconcile()
		}
	}
}

// Close leaves the cluster gracefully: it reports NOT_SERVING, tells peers it
// is leaving (so they take over its keys at once), finishes in-flight calls
// until ctx ends, and releases everything. It returns an error when the
// journal could not be flushed or the leave did not complete; the node is
// closed either way.
func (n *Node) Close(ctx context.Context) error {
	var errs []error
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		n.stopWarm()
		n.engine.Drain() // ends WatchRing and Pipeline streams: clients move on
		n.health.Shutdown()
		if err := n.saveHotKeys(); err != nil {
			n.log.Warn("hot-key list not written; the next start warms from the last one", "err", err)
		}
		// Write-behind: flush, tell the replicas what was flushed, then
		// step out of the peers' rings and flush what arrived meanwhile,
		// so the database is current before the keys move. When the
		// database cannot be written, the pending records are handed to
		// the nodes that take the partitions over (replication.go).
		// Whatever is left stays in the journal and is flushed when the
		// node starts again.
		fctx, cancel := context.WithTimeout(ctx, n.cfg.FlushTimeout)
		defer cancel()
		flushed := n.flushFirst(fctx)
		n.settleDrops(fctx)
		// Warm hand-over: from the leave on, a new owner's pull of one of
		// this node's partitions takes its cached entries; the server keeps
		// serving those pulls (bounded) before it stops.
		n.engine.StartLeaving()
		n.members.AnnounceLeaving(n.cfg.LeaveTimeout / 2)
		n.flushOrHandOver(fctx, flushed)
		if err := n.members.Leave(n.cfg.LeaveTimeout); err != nil {
			errs = append(errs, fmt.Errorf("leave did not complete: %w", err))
		}
		if r := n.engine.Ring(); r != nil {
			n.awaitRoutedAround(ctx, r.Members()) // no peer forwards here any more
		}
		n.awaitWarmPulls(ctx)
		n.engine.StopReplicaStreams() // peers no longer copy to this node
		n.engine.StopForwardStreams() // nor forward to it
		done := make(chan struct{})
		go func() { n.server.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			n.server.Stop()
			<-done
		}
		if n.resp != nil { // its last writes are flushed below with gRPC's
			n.resp.stop(respGrace(ctx))
		}
		if err := n.flushOrHandOver(fctx, true); err != nil { // writes served during the drain
			errs = append(errs, err)
		}
		n.settleDrops(fctx)
		n.release()
	})
	return errors.Join(errs...)
}

// respGrace is how long a closing node's RESP connections get to answer
// what they have read: respShutdownGrace, within what is left of ctx.
func respGrace(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return min(respShutdownGrace, time.Until(d))
	}
	return respShutdownGrace
}

// respShutdownGrace bounds the RESP door's graceful stop.
const respShutdownGrace = 5 * time.Second

// Kill stops the node abruptly, as a crash would: no leave message, open
// calls cut. Peers find out through failure detection.
func (n *Node) Kill() {
	n.closeOnce.Do(func() {
		n.closing.Store(true)
		n.engine.Drain()
		n.server.Stop()
		n.release()
	})
}

// flushJournal writes pending write-behind records until the journal is
// empty or ctx ends.
func (n *Node) flushJournal(ctx context.Context) error {
	if n.flusher == nil {
		return nil
	}
	if err := n.flusher.Flush(ctx); err != nil {
		n.log.Error("write-behind journal not fully flushed; the rest is flushed on the next start", "err", err)
		return fmt.Errorf("write-behind journal not fully flushed: %w", err)
	}
	return nil
}

// release runs the closers, last opened first.
func (n *Node) release() {
	for _, c := range slices.Backward(n.closers) {
		c()
	}
	n.closers = nil
}
