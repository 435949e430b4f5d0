package resp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/engine/enginetest"
	"github.com/ringcache/ringcache/internal/hlc"
	"github.com/ringcache/ringcache/internal/store"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// noPeers fails every forward: the test engines own every key.
type noPeers struct{}

func (noPeers) Forward(context.Context, ring.Member, *pb.ForwardRequest) (*pb.ForwardResponse, error) {
	return nil, errors.New("no peers in this test")
}

func (noPeers) Lookup(context.Context, ring.Member, *pb.LookupRequest) (*pb.LookupResponse, error) {
	return nil, errors.New("no peers in this test")
}

func (noPeers) Merged(context.Context, ring.Member, *pb.MergedRequest) (*pb.MergedResponse, error) {
	return nil, errors.New("no peers in this test")
}

func (noPeers) Replicate(context.Context, ring.Member) (pb.Peer_ReplicateClient, error) {
	return nil, errors.New("no peers in this test")
}

func (noPeers) Handover(context.Context, ring.Member, *pb.HandoverRequest) (*pb.HandoverResponse, error) {
	return nil, errors.New("no peers in this test")
}

func (noPeers) StillPending(context.Context, ring.Member, *pb.StillPendingRequest) (*pb.StillPendingResponse, error) {
	return nil, errors.New("no peers in this test")
}

func (noPeers) Transfer(context.Context, ring.Member, *pb.TransferRequest) (pb.Peer_TransferClient, error) {
	return nil, errors.New("no peers in this test")
}

func (noPeers) TransferLookup(context.Context, ring.Member, *pb.TransferLookupRequest) (*pb.TransferLookupResponse, error) {
	return nil, errors.New("no peers in this test")
}

// newTestEngine returns a ready engine of one node, "n1", that owns every
// key, with cache-aside namespaces "default" and "users".
func newTestEngine(t testing.TB) *engine.Engine {
	t.Helper()
	return newTestEngineWith(t)
}

// newTestEngineWith is newTestEngine with more namespaces.
func newTestEngineWith(t testing.TB, extra ...engine.NamespaceSpec) *engine.Engine {
	t.Helper()
	st, err := store.New(store.Config{MaxBytes: 64 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	var specs []engine.NamespaceSpec
	for _, n := range []string{"default", "users"} {
		specs = append(specs, engine.NamespaceSpec{Policy: strategy.Policy{Name: n, TTL: time.Hour, MaxKeyBytes: 1024, MaxValueBytes: 1 << 20}})
	}
	specs = append(specs, extra...)
	return enginetest.Alone(t, engine.Config{Self: "n1", Namespaces: specs, Store: st, Versions: &hlc.Clock{}, Peers: noPeers{}})
}

// startServer serves a door on the test engine on a loopback port and
// returns its address; mutate adjusts the config.
func startServer(t testing.TB, mutate func(*Config)) (*Server, string) {
	t.Helper()
	cfg := Config{Engine: newTestEngine(t), DefaultNamespace: "default", Name: "n1", MaxValueBytes: 1 << 20}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, lis.Addr().String()
}

// rawConn is a client that speaks RESP by hand.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

func dial(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	if _, err := c.nc.Write([]byte(s)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// do sends a command and returns its reply as raw RESP.
func (c *rawConn) do(args ...string) string {
	c.t.Helper()
	c.send(string(encode(args...)))
	return c.reply()
}

// reply reads one whole reply, raw.
func (c *rawConn) reply() string {
	c.t.Helper()
	var b strings.Builder
	c.readValue(&b)
	return b.String()
}

func (c *rawConn) readValue(b *strings.Builder) {
	c.t.Helper()
	line, err := c.br.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read reply: %v (so far %q)", err, b.String())
	}
	b.WriteString(line)
	body := strings.TrimSuffix(line[1:], "\r\n")
	switch line[0] {
	case '$', '=':
		n := atoi(c.t, body)
		if n < 0 {
			return
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(c.br, buf); err != nil {
			c.t.Fatalf("read bulk: %v", err)
		}
		b.Write(buf)
	case '*', '~', '%':
		n := atoi(c.t, body)
		if line[0] == '%' {
			n *= 2
		}
		for range max(n, 0) {
			c.readValue(b)
		}
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("bad length %q", s)
	}
	return n
}
