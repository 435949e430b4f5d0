package strategy

// Superseded drops the key's cached entry if it holds version or an older
// one. The write-behind flusher calls it for a pending write of that
// version that met a newer row when it reached the database: another node
// acknowledged a later write of the key (a partition kept the two apart,
// and each owned the key on its side). Until then the pending write was
// this node's answer for the key, and it may have been cached; kept, the
// entry would serve the older value until it expires. Loads in flight do
// not cache either; the next read loads the database's row. Watchers are
// told.
func (n *Namespace) Superseded(key string, version uint64) {
	skey := n.prefix + key
	n.bump(skey)
	if e, ok := n.store.Get(skey); !ok || e.Version > version {
		return
	}
	n.store.Delete(skey)
	n.changed(key)
}
