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
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for s := range h.members {
		if s.namespaces != nil && !s.namespaces[ns] {
			continue
		}
		s.reset.Store(true)
		n++
	}
	h.wake()
	return n
}

// ResetWatchers is Hub.Reset on the services' hub (the Admin service's
// FlushNamespace calls it).
func (s *Services) ResetWatchers(ns string) int { return s.cfg.Hub.Reset(ns) }
