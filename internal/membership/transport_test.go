package membership

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// memberlist shuts its transport down before it stops its timers; a gossip
// or probe packet sent in between must be dropped, not fail with "use of
// closed network connection" (which memberlist logs as an error on a clean
// stop).
func TestWatchTransport_PacketsSentAfterShutdownAreDropped(t *testing.T) {
	mc := memberlist.DefaultLANConfig()
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	tr, err := newWatchTransport(mc)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := memberlist.Address{Addr: peer.LocalAddr().String()}

	if _, err := tr.WriteToAddress([]byte("before"), to); err != nil {
		t.Fatalf("send before shutdown: %v", err)
	}
	buf := make([]byte, 64)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := peer.ReadFrom(buf); err != nil || string(buf[:n]) != "before" {
		t.Fatalf("the peer read %q, %v; want the packet sent before shutdown", buf[:n], err)
	}

	if err := tr.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.WriteToAddress([]byte("after"), to); err != nil {
		t.Errorf("WriteToAddress after shutdown: %v; want the packet dropped without an error", err)
	}
	if _, err := tr.WriteTo([]byte("after"), to.Addr); err != nil {
		t.Errorf("WriteTo after shutdown: %v; want the packet dropped without an error", err)
	}
}
