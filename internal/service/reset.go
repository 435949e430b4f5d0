package service

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errReset ends the invalidation streams of a flushed namespace. Every
// subscriber already drops all it holds of a node whose stream breaks
// (changes may have been missed), so ending the stream is a reset that
// every hot cache and near cache understands, whatever its version.
var errReset = status.Error(codes.Aborted, "namespace flushed on this node: drop cached entries and subscribe again")

// Reset ends every subscription that watches namespace ns (or every
// namespace), so that its subscriber drops what it holds of this node's
// keys. Call it after the change it announces is in the store: a
// subscriber that subscribes again then reads the new state. It returns
// how many subscriptions it ended.
func (h *Hub) Reset(ns string) int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for s := range h.subs {
		if s.namespaces != nil && !s.namespaces[ns] {
			continue
		}
		s.resetOnce.Do(func() { close(s.reset) })
		n++
	}
	return n
}

// ResetWatchers is Hub.Reset on the services' hub (the Admin service's
// FlushNamespace calls it).
func (s *Services) ResetWatchers(ns string) int { return s.cfg.Hub.Reset(ns) }
