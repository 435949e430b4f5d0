package strategy

import "strconv"

// ForgetLoads detaches every load in flight: none of them will cache its
// result, and callers arriving later start fresh loads instead of joining
// them. A node calls it when keys change owner, since a load that started
// under the old ring may have read a database row that a write pending on
// another node makes stale.
func (n *Namespace) ForgetLoads() {
	n.UncacheLoads()
	n.epoch.Add(1) // new flight keys: later callers cannot join older loads
}

// UncacheLoads makes every load in flight not cache its result; unlike
// ForgetLoads, callers still join them, so a key keeps one load at a
// time. A node calls it when the previous owner of a partition it gained
// let the partition go: a load in flight may have read the database before
// that owner's last write, and must not keep the value.
func (n *Namespace) UncacheLoads() {
	for i := range n.gen {
		n.genMu[i].Lock()
		n.gen[i].Add(1)
		n.genMu[i].Unlock()
	}
}

// flightKey is the singleflight key of skey in the current load epoch.
func (n *Namespace) flightKey(skey string) string {
	if e := n.epoch.Load(); e > 0 {
		return strconv.FormatUint(e, 36) + "\x01" + skey
	}
	return skey
}
