package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringcache/ringcache/internal/buildinfo"
	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/membership"
	"github.com/ringcache/ringcache/internal/resp"
	"github.com/ringcache/ringcache/pkg/ring"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// RESPConfig opens the Redis protocol door (docs/resp.md): RESP2 and RESP3
// on its own port, through the same request path as gRPC. The zero value
// keeps it closed.
type RESPConfig struct {
	// Addr is the listen address (host:port; port 0 picks one); empty
	// keeps the door closed.
	Addr string
	// AdvertiseAddr is the address Redis Cluster clients are sent to
	// (CLUSTER SLOTS, MOVED); empty means the listener's.
	AdvertiseAddr string
	// DefaultNamespace holds every key that does not start with a
	// configured namespace and a colon; empty means "default", which must
	// then be configured.
	DefaultNamespace string
	// RedirectAll answers MOVED on every connection, as Redis Cluster
	// does, rather than only on those that sent a cluster command
	// (config resp.redirect: always; docs/resp.md).
	RedirectAll bool
}

// DefaultRESPNamespace is RESPConfig.DefaultNamespace when none is given.
const DefaultRESPNamespace = "default"

// respDoor is the node's RESP server and the cluster view it shows.
type respDoor struct {
	server *resp.Server
	lis    net.Listener
	addr   string
	view   atomic.Pointer[cachedView]
	// stop closes the door, once, and waits for Serve to return: its
	// connections answer what they have read for up to grace, or are cut
	// at once (resp.Server.Shutdown).
	stop func(grace time.Duration)
}

// cachedView is a cluster view and what it was built from: the table's
// version (in the view) and the membership's generation.
type cachedView struct {
	*resp.View
	generation uint64
}

// RESPAddr returns the address of the RESP door, "" when it is closed.
func (n *Node) RESPAddr() string {
	if n.resp == nil {
		return ""
	}
	return n.resp.addr
}

// listenRESP opens the RESP door when configured: its listener, and its
// server on the engine. It serves at once; ops get NODE_NOT_READY until
// the node has joined.
func (n *Node) listenRESP() error {
	rc := n.cfg.RESP
	if rc.Addr == "" {
		return nil
	}
	if n.cfg.TLS == nil && !n.cfg.Insecure && !loopback(rc.Addr) {
		return fmt.Errorf("node: refusing to serve the Redis protocol in plaintext on %s, which is not a loopback address: give the node a certificate (--tls-cert, --tls-key), or pass --insecure to accept the risk", rc.Addr)
	}
	def := rc.DefaultNamespace
	if def == "" {
		def = DefaultRESPNamespace
	}
	maxValue := 0
	for _, s := range n.cfg.Namespaces {
		maxValue = max(maxValue, s.Policy.MaxValueBytes)
	}
	if maxValue == 0 {
		maxValue = 64 << 20 // no namespace bounds its values
	}
	d := &respDoor{}
	cfg := resp.Config{
		Engine: n.engine, DefaultNamespace: def, Auth: n.sec.auth, MaxBatch: n.cfg.MaxBatchKeys,
		MaxValueBytes: maxValue, Topology: resp.TopologyFunc(n.respView), RedirectAll: rc.RedirectAll, Name: n.cfg.Name, Version: buildinfo.Version(),
		Logger: n.log, Now: n.now, Stats: n.respStats, Flush: n.flushEverywhere,
	}
	if n.sec.tls != nil {
		tc, err := n.sec.tls.ServerConfig(n.cfg.TLS.RequireClientCert)
		if err != nil {
			return fmt.Errorf("node: RESP TLS: %w", err)
		}
		cfg.TLS = tc
	}
	var err error
	if d.server, err = resp.New(cfg); err != nil {
		if errors.Is(err, resp.ErrNoDefaultNamespace) && rc.DefaultNamespace == "" {
			return fmt.Errorf("node: the RESP door needs a default namespace: configure a namespace %q or set resp.default_namespace: %w", DefaultRESPNamespace, err)
		}
		return fmt.Errorf("node: %w", err)
	}
	if d.lis, err = net.Listen("tcp", rc.Addr); err != nil {
		return fmt.Errorf("node: listen for RESP on %s: %w", rc.Addr, err)
	}
	if d.addr, err = advertiseAddr(rc.AdvertiseAddr, n.cfg.AdvertiseGossipAddr, d.lis.Addr().(*net.TCPAddr)); err != nil {
		d.lis.Close()
		return err
	}
	lis := d.lis
	if cfg.TLS != nil {
		lis = tls.NewListener(lis, cfg.TLS)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := d.server.Serve(lis); err != nil {
			n.log.Error("RESP server stopped", "err", err)
		}
	}()
	n.resp = d
	var once sync.Once
	d.stop = func(grace time.Duration) { once.Do(func() { _ = d.server.Shutdown(grace); <-served }) }
	n.closers = append(n.closers, func() { d.stop(0) }) // Kill, or after Close stopped it
	n.log.Info("RESP door open", "addr", d.addr, "default_namespace", def)
	return nil
}

// respView is the cluster as Redis Cluster clients see it: the partition
// table's slot ranges, each with its owner's RESP address (from gossip). It
// is rebuilt when the table or the membership changes (a member back with
// another address, say), and served from memory otherwise: it is read on
// every command of a cluster-aware connection.
func (n *Node) respView() *resp.View {
	r := n.engine.Routing() // a node back from a stall, left out, owns nothing
	if r == nil {
		return nil
	}
	d := n.resp
	gen := n.members.Generation() // before Members: a change in between rebuilds again
	if v := d.view.Load(); v != nil && v.Version == r.Version() && v.generation == gen {
		return v.View
	}
	self := resp.Node{ID: resp.NodeID(n.cfg.Name), Name: n.cfg.Name, Addr: d.addr}
	v := buildRESPView(r, self, n.members.Members())
	d.view.Store(&cachedView{View: v, generation: gen})
	return v
}

// buildRESPView maps r's slot ranges to their owners' RESP addresses, as
// members (alive, dead or left) last announced them. An owner that died or
// is leaving keeps its own address until the table drops it: a cluster
// client then meets a connection error and reloads its map, as with a
// Redis master that failed. Were its ranges shown as this node's, a client
// that loaded the map then would keep sending them here, to be forwarded
// for as long as it kept that map, after the table gave them to others.
//
// An owner with no RESP door, or not heard of yet, is shown as self, so a
// cluster client sends its keys here and this node forwards them. An owner
// that has not yet published r's version as the table it routes by is
// Settling: MOVED would send clients to a node that refuses them as not
// ready, so its keys are forwarded until it has (its new metadata moves the
// membership's generation, and the view is rebuilt).
func buildRESPView(r *ring.Ring, self resp.Node, members []membership.Member) *resp.View {
	known := make(map[string]membership.Member, len(members))
	for _, m := range members {
		known[m.Name] = m
	}
	v := &resp.View{Version: r.Version(), Self: self}
	for _, sr := range r.SlotRanges() {
		owner := self
		if m := known[sr.Owner.Name]; sr.Owner.Name != self.Name && m.RESPAddr != "" {
			owner = resp.Node{ID: resp.NodeID(m.Name), Name: m.Name, Addr: m.RESPAddr, Settling: m.TableVersion < r.Version()}
		}
		v.Ranges = append(v.Ranges, resp.SlotRange{Start: sr.First, End: sr.Last, Owner: owner})
	}
	return v
}

func (n *Node) respStats() resp.NodeStats {
	st := n.store.Stats()
	return resp.NodeStats{Keys: st.Entries, UsedMemory: st.Bytes, MaxMemory: st.MaxBytes, Evictions: st.Evictions}
}

// flushEverywhere flushes every namespace on this node and on every other
// member of its table (Peer.FlushNamespace), all members at once: the
// Redis door's FLUSHDB. It returns every member's failure.
func (n *Node) flushEverywhere(ctx context.Context) error {
	r := n.engine.Ring()
	if r == nil {
		return engine.ErrNotReady
	}
	members := r.Members()
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			for _, ns := range n.engine.Names() {
				req := &pb.FlushNamespaceRequest{Namespace: ns}
				var err error
				if m.Name == n.cfg.Name {
					_, err = n.services.FlushNamespace(n.cfg.Name, req)
				} else {
					_, err = n.peers.FlushNamespace(ctx, m, req)
				}
				if err != nil {
					errs[i] = fmt.Errorf("%s: namespace %s: %w", m.Name, ns, err)
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
