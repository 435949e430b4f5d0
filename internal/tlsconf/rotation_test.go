package tlsconf_test

import (
	"crypto/x509"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/certs"
	"github.com/ringcache/ringcache/internal/tlsconf"
)

// handshaker dials addr in a loop from several goroutines, each connection
// with a fresh ClientConfig, and records the serial the server presented.
type handshaker struct {
	ok, failed atomic.Int64
	lastSerial atomic.Pointer[big.Int]
	firstErr   atomic.Pointer[error]
	started    [3]atomic.Int64 // dials started by each goroutine
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startHandshakes(t *testing.T, addr string, client *tlsconf.Source, wantSeenAs string) *handshaker {
	h := &handshaker{stop: make(chan struct{})}
	for i := range h.started {
		h.wg.Go(func() {
			for {
				select {
				case <-h.stop:
					return
				default:
				}
				h.started[i].Add(1)
				server, seenAs, err := dial(addr, client.ClientConfig())
				if err == nil && seenAs != wantSeenAs {
					err = &mismatch{seenAs}
				}
				if err != nil {
					h.failed.Add(1)
					h.firstErr.CompareAndSwap(nil, &err)
					continue
				}
				h.ok.Add(1)
				h.lastSerial.Store(server.SerialNumber)
			}
		})
	}
	t.Cleanup(h.finish)
	return h
}

type mismatch struct{ seenAs string }

func (m *mismatch) Error() string { return "server saw the caller as " + m.seenAs }

// drain waits until every dial in flight has ended: each goroutine has
// started two more, so a dial set up before a rotation step cannot complete
// after the next one (in production the steps are minutes apart).
func (h *handshaker) drain(t *testing.T) {
	t.Helper()
	var marks [len(h.started)]int64
	for i := range h.started {
		marks[i] = h.started[i].Load()
	}
	waitFor(t, "dials in flight to end", func() bool {
		for i := range h.started {
			if h.started[i].Load() < marks[i]+2 {
				return false
			}
		}
		return true
	})
}

func (h *handshaker) finish() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.wg.Wait()
}

func (h *handshaker) check(t *testing.T) {
	t.Helper()
	h.finish()
	if n := h.failed.Load(); n > 0 {
		t.Errorf("%d of %d handshakes failed during rotation; first: %v", n, n+h.ok.Load(), *h.firstErr.Load())
	}
	if h.ok.Load() == 0 {
		t.Error("no handshake completed")
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRotation_NewHandshakesPresentTheNewSerialAndNoneFails(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "127.0.0.1")
	k.node(t, "n2", "127.0.0.1")
	server := load(t, k.nodeFiles("n1"), 10*time.Millisecond)
	srv, err := server.ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	h := startHandshakes(t, addr, load(t, k.nodeFiles("n2"), 10*time.Millisecond), "n2")
	waitFor(t, "a first handshake", func() bool { return h.ok.Load() > 0 })

	for range 5 {
		// Rewritten in place, certificate first: for a moment the files hold
		// a new certificate with the old key, or half a file.
		fresh := k.node(t, "n1", "127.0.0.1")
		waitFor(t, "a handshake presenting serial "+fresh.SerialNumber.String(), func() bool {
			s := h.lastSerial.Load()
			return s != nil && s.Cmp(fresh.SerialNumber) == 0
		})
		if got := server.Certificate().SerialNumber; got.Cmp(fresh.SerialNumber) != 0 {
			t.Errorf("Certificate() serial %s, want %s", got, fresh.SerialNumber)
		}
	}
	h.check(t)
	if s := server.Stats(); s.Reloads < 5 {
		t.Errorf("stats = %+v, want at least 5 reloads", s)
	}
}

func TestRotation_CAReplacedInThreeStepsWithNoFailedHandshake(t *testing.T) {
	k := newPKI(t)
	k.node(t, "n1", "127.0.0.1")
	k.node(t, "n2", "127.0.0.1")
	oldCA := k.ca
	n1 := load(t, k.nodeFiles("n1"), 10*time.Millisecond)
	n2 := load(t, k.nodeFiles("n2"), 10*time.Millisecond)
	srv, err := n1.ServerConfig(true)
	if err != nil {
		t.Fatal(err)
	}
	h := startHandshakes(t, serve(t, srv), n2, "n2")
	waitFor(t, "a first handshake", func() bool { return h.ok.Load() > 0 })

	newCA, newPair, err := certs.NewCA("ringcache CA 2", 0)
	if err != nil {
		t.Fatal(err)
	}
	trusts := func(s *tlsconf.Source, ca *certs.CA) bool {
		_, err := ca.Cert.Verify(x509.VerifyOptions{Roots: s.ClientConfig().RootCAs})
		return err == nil
	}
	oldPEM := readFile(t, k.path("ca.crt"))

	// 1. Every node trusts both CAs.
	writeFile(t, k.path("ca.crt"), append(append([]byte{}, oldPEM...), newPair.CertPEM...))
	waitFor(t, "both nodes to trust the new CA", func() bool { return trusts(n1, newCA) && trusts(n2, newCA) })
	h.drain(t)
	// 2. Every node gets a certificate from the new CA.
	k.ca = newCA
	k.node(t, "n1", "127.0.0.1")
	k.node(t, "n2", "127.0.0.1")
	waitFor(t, "both nodes to present certificates of the new CA", func() bool {
		return n1.Certificate().Issuer.CommonName == "ringcache CA 2" && n2.Certificate().Issuer.CommonName == "ringcache CA 2"
	})
	h.drain(t)
	okBefore := h.ok.Load()
	// 3. The old CA is dropped.
	writeFile(t, k.path("ca.crt"), newPair.CertPEM)
	waitFor(t, "both nodes to drop the old CA", func() bool { return !trusts(n1, oldCA) && !trusts(n2, oldCA) })
	waitFor(t, "handshakes after the old CA is gone", func() bool { return h.ok.Load() > okBefore+10 })
	h.check(t)
}

func TestRotation_HalfWrittenPairKeepsServingTheOldCertificate(t *testing.T) {
	k := newPKI(t)
	old := k.node(t, "n1", "127.0.0.1")
	server := load(t, k.nodeFiles("n1"), time.Hour) // only Reload looks at the files
	srv, err := server.ServerConfig(false)
	if err != nil {
		t.Fatal(err)
	}
	addr := serve(t, srv)
	client := load(t, tlsconf.Files{CA: k.path("ca.crt")}, 0)

	p, err := k.ca.Node("n1", []string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, k.path("node.n1.crt"), p.CertPEM) // the key is not written yet
	if err := server.Reload(); err == nil {
		t.Fatal("Reload accepted a certificate with the old key")
	}
	if got, _, err := dial(addr, client.ClientConfig()); err != nil || got.SerialNumber.Cmp(old.SerialNumber) != 0 {
		t.Fatalf("during a half-written rotation: err %v, serial %v; want the old certificate served", err, got)
	}
	writeFile(t, k.path("node.n1.key"), p.KeyPEM)
	if err := server.Reload(); err != nil {
		t.Fatalf("Reload of the complete pair: %v", err)
	}
	if got, _, err := dial(addr, client.ClientConfig()); err != nil || got.SerialNumber.Cmp(p.Cert.SerialNumber) != 0 {
		t.Fatalf("after the rotation: err %v; want the new certificate served", err)
	}
}
