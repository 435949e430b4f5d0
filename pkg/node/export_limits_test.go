package node

import (
	"github.com/ringcache/ringcache/internal/connlimit"
	"github.com/ringcache/ringcache/internal/service"
)

// WatchStats returns the invalidation hub's figures.
func (n *Node) WatchStats() service.HubStats { return n.hub.Stats() }

// ConnStats returns the connection limiter's figures.
func (n *Node) ConnStats() connlimit.Stats { return n.conns.Stats() }
