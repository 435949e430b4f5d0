package membership

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Leave tells the cluster this node is leaving and waits up to timeout for
// the message to spread. Peers then list it as left rather than dead: it
// first publishes a leaving mark in its metadata, because memberlist's own
// leave event does not say whether a node left or died.
//
// It waits only while some peer stays (alive, no leaving mark). When the
// whole cluster stops at once, nobody is left to hear the message, and
// memberlist, which gossips only to the peers it lists alive and counts a
// broadcast sent once it went out RetransmitMult times, would wait the full
// timeout for peers that left before then.
func (m *Membership) Leave(timeout time.Duration) error {
	if !m.isLeaving() {
		m.AnnounceLeaving(timeout / 2)
	}
	if !m.PeersStay() {
		_ = m.list.Leave(time.Millisecond) // queue the message; nobody waits for it
		return nil
	}
	// memberlist's Leave cannot be cut short: it runs on, at most until
	// timeout, when the peers leave first. Shutdown may come meanwhile; a
	// Leave that starts only after it panics, which ends its goroutine.
	sent := make(chan error, 1)
	m.listLeave.Go(func() {
		defer func() {
			if v := recover(); v != nil {
				sent <- fmt.Errorf("leave: %v", v)
			}
		}()
		sent <- m.list.Leave(timeout)
	})
	tick := time.NewTicker(leavePoll)
	defer tick.Stop()
	for {
		select {
		case err := <-sent:
			if err != nil && m.PeersStay() {
				return err
			}
			return nil
		case <-tick.C:
			if !m.PeersStay() {
				return nil // the peers left meanwhile
			}
		}
	}
}

// leavePoll is how often Leave checks whether a peer still stays.
const leavePoll = 20 * time.Millisecond

// PeersStay reports whether a member other than this node is alive and has
// not announced its leave.
func (m *Membership) PeersStay() bool {
	return slices.ContainsFunc(m.Alive(), func(x Member) bool { return x.Name != m.cfg.Name })
}

// AnnounceLeaving publishes this node's leaving mark: peers take it out of
// their rings at once while it stays in the cluster to drain. Leave follows.
// It stops the join loop, gossips the mark, then hands it to every alive
// peer directly (pushLeaving), within timeout in all. The wait for the
// gossip matters when the peers leave too: a peer that is leaving gets no
// push, and learns of the mark from the gossip only.
func (m *Membership) AnnounceLeaving(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	m.leavingOnce.Do(func() { close(m.leaving) })
	if err := m.updateNode(timeout / 2); err != nil {
		m.log.Debug("leaving mark not yet gossiped; pushing it to each peer", "err", err)
	}
	m.pushLeaving(time.Until(deadline))
}

// isLeaving reports whether AnnounceLeaving ran: the node publishes its
// leaving mark, and no longer joins.
func (m *Membership) isLeaving() bool {
	select {
	case <-m.leaving:
		return true
	default:
		return false
	}
}

// pushLeaving hands this node's state, its leaving mark included, to every
// alive peer through memberlist's state sync over TCP (the push/pull its
// Join runs), waiting at most timeout. Each push carries the whole member
// list, so a leave costs O(N²) bytes over the cluster: 100 nodes of ~100
// bytes each make about 1 MB. The peers are taken in random order, at most
// pushLeavingParallel at a time; a push that has not finished within
// pushLeavingStall (a peer that does not answer) gives its turn to the
// next and runs on, so unreachable peers do not keep the mark from the
// others. A push still running when pushLeaving returns ends with
// Shutdown, which closes its connection (watchTransport).
//
// Gossip alone does not always deliver the mark. memberlist sends a
// broadcast a few times only (RetransmitMult), maybe all of them to one
// peer, and the leave message that follows replaces the mark in the queues
// of the peers that would pass it on. A peer that hears of the leave but
// not of the mark lists this node dead, as if it had crashed: it does not
// pull this node's cached entries (so the leave waits its full warm
// hand-over timeout), and it drops its whole cache when this node comes
// back (engine.Merge).
func (m *Membership) pushLeaving(timeout time.Duration) {
	var peers []Member
	for _, p := range m.Alive() {
		if p.Name != m.cfg.Name && p.GossipAddr != "" {
			peers = append(peers, p)
		}
	}
	if len(peers) == 0 || timeout <= 0 {
		return
	}
	rand.Shuffle(len(peers), func(i, j int) { peers[i], peers[j] = peers[j], peers[i] })
	m.mu.Lock()
	if m.stopped { // Shutdown waits for m.wg: no Add after it began
		m.mu.Unlock()
		return
	}
	m.wg.Add(len(peers))
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type pushed struct {
		name string
		err  error
	}
	turns := make(chan struct{}, pushLeavingParallel)
	results := make(chan pushed, len(peers))
	started := 0
dispatch:
	for _, p := range peers {
		select {
		case turns <- struct{}{}:
		case <-ctx.Done():
			break dispatch
		}
		started++
		yield := sync.OnceFunc(func() { <-turns })
		stall := time.AfterFunc(pushLeavingStall, yield)
		go func() {
			defer m.wg.Done()
			_, err := m.list.Join([]string{p.GossipAddr})
			stall.Stop()
			yield()
			if err != nil {
				m.log.Debug("leaving mark not pushed to a peer", "peer", p.Name, "addr", p.GossipAddr, "err", err)
			}
			results <- pushed{p.Name, err}
		}()
	}
	m.wg.Add(started - len(peers)) // the pushes never started
	missed := map[string]bool{}    // until its push succeeds
	for _, p := range peers {
		missed[p.Name] = true
	}
	for answered := 0; answered < started && ctx.Err() == nil; {
		select {
		case r := <-results:
			answered++
			if r.err == nil {
				delete(missed, r.name)
			}
		case <-ctx.Done():
		}
	}
	// A peer that has left or died meanwhile (the whole cluster stopping)
	// needs no mark.
	for _, p := range m.Members() {
		if p.State != StateAlive {
			delete(missed, p.Name)
		}
	}
	if len(missed) > 0 {
		m.log.Warn("leaving mark not pushed to every peer; those that miss it take this node for dead", "peers", len(peers), "missed", len(missed), "timeout", timeout)
	}
}

// pushLeavingParallel bounds the leaving mark's pushes that run at once
// and have not stalled: one TCP connection each.
const pushLeavingParallel = 16

// pushLeavingStall is how long a push holds its turn: a peer on the
// same network answers a push/pull in milliseconds. A variable for tests.
var pushLeavingStall = 200 * time.Millisecond
