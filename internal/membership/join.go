package membership

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cenkalti/backoff/v5"
)

// JoinState says whether this node has joined a cluster and, if not, what
// its last join attempt met.
type JoinState int

// Join states.
const (
	// JoinPending: no join attempt has finished yet.
	JoinPending JoinState = iota + 1
	// JoinJoined: this node has met another member (or has no seeds, as
	// the first node of a cluster). It stays joined, as Joined does.
	JoinJoined
	// JoinUnreachable: no seed answered the last attempt. They may not be
	// up yet; a node that serves alone after a bootstrap timeout is safe
	// only in this state.
	JoinUnreachable
	// JoinRefused: a seed answered the last attempt and refused this node
	// (another gossip key, encryption on one side only, an incompatible
	// protocol). A cluster exists and this node is not in it.
	JoinRefused
)

func (s JoinState) String() string {
	switch s {
	case JoinPending:
		return "pending"
	case JoinJoined:
		return "joined"
	case JoinUnreachable:
		return "unreachable"
	case JoinRefused:
		return "refused"
	}
	return "unknown"
}

// JoinStatus is what JoinStatus returns.
type JoinStatus struct {
	State JoinState
	// Err is why the last attempt did not join: it wraps ErrSeedsUnreachable
	// or ErrSeedsRefused, and memberlist's message for each seed. Nil when
	// joined or pending.
	Err error
	// Attempts counts join attempts so far, rejoins included.
	Attempts int
}

// joinRecord is the outcome of the last join attempt; guarded by m.mu.
type joinRecord struct {
	state    JoinState
	err      error
	attempts int
	since    time.Time // when the attempts began to end in state
	warned   bool      // that joining fails so, since then
}

// JoinStatus says whether this node has joined and, if not, why: whether
// the seeds did not answer (JoinUnreachable) or answered and refused it
// (JoinRefused). Joining is retried in the background in both cases.
func (m *Membership) JoinStatus() JoinStatus {
	m.mu.Lock()
	j := m.join
	m.mu.Unlock()
	select {
	case <-m.joined:
		return JoinStatus{State: JoinJoined, Attempts: j.attempts}
	default:
	}
	if j.state == 0 {
		j.state = JoinPending
	}
	return JoinStatus{State: j.state, Err: j.err, Attempts: j.attempts}
}

func (m *Membership) markJoined() { m.joinOnce.Do(func() { close(m.joined) }) }

// Joined is closed once this node has joined at least one other node, or at
// once when it has no seeds (the first node of a cluster).
func (m *Membership) Joined() <-chan struct{} { return m.joined }

// seeds returns the join list without this node's own address.
func (m *Membership) seeds() []string {
	self := m.LocalAddr()
	var out []string
	for _, s := range m.cfg.Join {
		if s != "" && s != self && s != m.cfg.BindAddr {
			out = append(out, s)
		}
	}
	return out
}

// joinLoop joins the seeds, and keeps trying while this node is alone (seeds
// may not be up yet, this node was cut off, or it is refused), backing off
// exponentially with jitter. Once in a cluster it still contacts the seeds
// every RejoinInterval: memberlist stops probing nodes it declared dead, so
// without this two halves of a healed network partition would stay two
// clusters. A leaving node stops: it is alone once its peers have left
// before it (a whole cluster stopping), and its seeds, leaving too, would
// look like seeds that refuse it.
func (m *Membership) joinLoop() {
	defer m.wg.Done()
	defer close(m.joinDone)
	seeds := m.seeds()
	if len(seeds) == 0 {
		return
	}
	b := &backoff.ExponentialBackOff{
		InitialInterval:     m.cfg.RetryInterval,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         m.cfg.MaxRetryInterval,
	}
	b.Reset()
	t := time.NewTimer(0)
	defer t.Stop()
	var lastContact time.Time
	for {
		select {
		case <-m.stop:
			return
		case <-m.leaving:
			return
		case <-t.C:
		}
		// While joined, wake every RetryInterval to notice being cut off.
		next := m.cfg.RetryInterval
		alone := m.list.NumMembers() <= 1
		if !alone {
			// Company, by our join or by a peer's (a healed partition
			// merged from the other side): the next time this node is
			// alone, its retries start at RetryInterval again, not where
			// the backoff stopped (up to MaxRetryInterval after the heal).
			b.Reset()
		}
		switch {
		case alone:
			if !m.attemptJoin(seeds) {
				next = b.NextBackOff()
				break
			}
			b.Reset()
			lastContact = time.Now()
		case time.Since(lastContact) >= m.cfg.RejoinInterval:
			m.attemptJoin(seeds)
			lastContact = time.Now()
		}
		t.Reset(next)
	}
}

// attemptJoin makes one join attempt, records its outcome and reports
// whether this node now has company.
func (m *Membership) attemptJoin(seeds []string) bool {
	probe := &joinProbe{self: m.LocalAddr()}
	m.transport.probe.Store(probe)
	_, err := m.list.Join(seeds)
	m.transport.probe.Store(nil)
	joined := m.list.NumMembers() > 1
	state, err := classifyJoin(joined, probe.answered.Load(), flatten(err))

	m.mu.Lock()
	prev := m.join.state
	rec := joinRecord{state: state, err: err, attempts: m.join.attempts + 1, since: m.join.since, warned: m.join.warned}
	if state != prev {
		rec.since, rec.warned = time.Now(), false
	}
	warn := state != JoinJoined && !rec.warned && time.Since(rec.since) >= m.cfg.JoinWarnAfter
	rec.warned = rec.warned || warn
	m.join = rec
	m.mu.Unlock()
	switch {
	case state == JoinJoined:
		if prev != JoinJoined {
			m.log.Info("joined cluster", "members", m.list.NumMembers())
		}
		m.markJoined()
	case m.isLeaving(): // no longer wanted
		m.log.Debug("join attempt failed; retrying", "state", state, "seeds", seeds, "err", err)
	case warn && state == JoinRefused:
		m.log.Error("seeds refuse this node; retrying in the background", "for", time.Since(rec.since).Round(time.Second), "seeds", seeds, "err", err)
	case warn:
		m.log.Warn("no seed has answered; retrying in the background", "for", time.Since(rec.since).Round(time.Second), "seeds", seeds, "err", err)
	case state == prev: // said already
		m.log.Debug("join attempt failed; retrying", "state", state, "seeds", seeds, "err", err)
	case state == JoinRefused:
		m.log.Info("a seed answered but has not admitted this node yet; retrying in the background", "seeds", seeds, "err", err)
	default:
		m.log.Info("no seed answered yet; retrying in the background", "seeds", seeds, "err", err)
	}
	return joined
}

// classifyJoin names the outcome of one join attempt: joined when this node
// now sees another member; refused when a seed answered (sent bytes back on
// the join connection) and still this node is alone; unreachable when no
// seed answered at all.
func classifyJoin(joined, answered bool, err error) (JoinState, error) {
	switch {
	case joined:
		return JoinJoined, nil
	case err == nil && answered:
		err = errors.New("a seed answered but admitted no member")
	case err == nil:
		err = errors.New("no seed address to contact")
	}
	if answered {
		return JoinRefused, fmt.Errorf("%w: %w", ErrSeedsRefused, err)
	}
	return JoinUnreachable, fmt.Errorf("%w: %w", ErrSeedsUnreachable, err)
}

// flatten turns memberlist's multierror (one error per seed, printed over
// several lines) into one line, "cause; cause", for a log line or a
// readiness message. errors.Is still sees every cause.
func flatten(err error) error {
	multi, ok := err.(interface{ WrappedErrors() []error })
	if !ok {
		return err
	}
	errs := multi.WrappedErrors()
	if len(errs) == 1 {
		return errs[0]
	}
	return joined(errs)
}

type joined []error

func (j joined) Error() string {
	msgs := make([]string, len(j))
	for i, e := range j {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

func (j joined) Unwrap() []error { return j }
