package connlimit_test

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringcache/ringcache/internal/connlimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server accepts on l until it is closed and keeps what it accepts.
type server struct {
	l     *connlimit.Listener
	mu    sync.Mutex
	conns []net.Conn
	done  chan struct{}
}

func serve(t *testing.T, cfg connlimit.Config) *server {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{l: connlimit.Wrap(inner, cfg), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			c, err := s.l.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		s.l.Close()
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, c := range s.conns {
			c.Close()
		}
	})
	return s
}

func (s *server) accepted() []net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]net.Conn(nil), s.conns...)
}

// dial connects from the loopback address src.
func dial(t *testing.T, src string, l net.Listener) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c within a second.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func isPeer(addr net.Addr) bool { return addr.(*net.TCPAddr).IP.Equal(net.ParseIP("127.0.0.1")) }

func TestListener_OverTheBoundClosedAtOncePeersUseTheReserve(t *testing.T) {
	var changes []error
	var mu sync.Mutex
	s := serve(t, connlimit.Config{Max: 2, Reserved: 1, IsPeer: isPeer, OnChange: func(err error) {
		mu.Lock()
		changes = append(changes, err)
		mu.Unlock()
	}})
	dial(t, "127.0.0.2", s.l)
	dial(t, "127.0.0.2", s.l)
	eventually(t, "two clients admitted", func() bool { return len(s.accepted()) == 2 })
	if err := s.l.Err(); !errors.Is(err, connlimit.ErrFull) {
		t.Fatalf("Err at the bound = %v, want ErrFull", err)
	}
	start := time.Now()
	if over := dial(t, "127.0.0.2", s.l); !closedByServer(over) {
		t.Fatal("a client over the bound was left open")
	}
	if took := time.Since(start); took > 500*time.Millisecond {
		t.Errorf("a client over the bound waited %s to be told", took)
	}
	peer := dial(t, "127.0.0.1", s.l)
	eventually(t, "a peer admitted beyond the client bound", func() bool { return len(s.accepted()) == 3 })
	if second := dial(t, "127.0.0.1", s.l); !closedByServer(second) {
		t.Fatal("a peer beyond the reserve was left open")
	}
	if closedByServer(peer) {
		t.Fatal("the admitted peer was closed")
	}
	if st := s.l.Stats(); st.Clients != 2 || st.Peers != 1 || st.Refused != 2 {
		t.Fatalf("stats %+v, want 2 clients, 1 peer, 2 refused", st)
	}
	cs := s.accepted()
	cs[0].Close() // one client leaves: still full, so readiness does not flap
	if err := s.l.Err(); !errors.Is(err, connlimit.ErrFull) {
		t.Fatalf("Err one below the bound = %v, want ErrFull until a twentieth is free", err)
	}
	cs[1].Close()
	if err := s.l.Err(); err != nil {
		t.Fatalf("Err well below the bound = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || changes[0] == nil || changes[1] != nil {
		t.Fatalf("OnChange calls %v, want [full, nil]", changes)
	}
}

func TestListener_StrikesCloseTheConnection(t *testing.T) {
	s := serve(t, connlimit.Config{Max: 10, Strikes: 2})
	c := dial(t, "127.0.0.2", s.l)
	eventually(t, "accepted", func() bool { return len(s.accepted()) == 1 })
	addr := c.LocalAddr()
	if s.l.Strike(addr) {
		t.Fatal("closed at the first of two strikes")
	}
	if !s.l.Strike(addr) || !closedByServer(c) {
		t.Fatal("the second strike did not close the connection")
	}
	if st := s.l.Stats(); st.Struck != 1 || st.Clients != 0 {
		t.Fatalf("stats %+v, want 1 struck and no client left", st)
	}
}

// fakeListener fails its first accepts with EMFILE, as the kernel does
// when the process is out of descriptors.
type fakeListener struct {
	net.Listener
	fails int
}

func (f *fakeListener) Accept() (net.Conn, error) {
	if f.fails > 0 {
		f.fails--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return f.Listener.Accept()
}

func TestListener_OutOfDescriptorsRetriedAndReported(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var seen []error
	l := connlimit.Wrap(&fakeListener{Listener: inner, fails: 3}, connlimit.Config{OnChange: func(err error) { seen = append(seen, err) }})
	defer l.Close()
	go func() {
		if c, err := net.Dial("tcp", inner.Addr().String()); err == nil {
			defer c.Close()
			c.Read(make([]byte, 1))
		}
	}()
	c, err := l.Accept() // retries past the failures, returns no error
	if err != nil {
		t.Fatalf("Accept returned %v; failures for want of descriptors are retried", err)
	}
	c.Close()
	if st := l.Stats(); st.AcceptErrors != 3 {
		t.Fatalf("stats %+v, want 3 accept errors", st)
	}
	if len(seen) != 2 || !errors.Is(seen[0], connlimit.ErrNoDescriptors) || seen[1] != nil {
		t.Fatalf("OnChange calls %v, want [out of descriptors, nil]", seen)
	}
}

// TestListener_RealEMFILE lowers the process's open-file limit until
// accept fails: the listener reports it, sheds the waiting connections
// (their clients see them closed), and recovers when descriptors free up.
func TestListener_RealEMFILE(t *testing.T) {
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := connlimit.Wrap(inner, connlimit.Config{})
	defer l.Close()
	// Connections wait in the backlog before the limit drops.
	var waiting []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		waiting = append(waiting, c)
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	low := old
	low.Cur = uint64(len(entries)) // no descriptor left
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer restore()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	eventually(t, "Err reports the failed accepts", func() bool { return errors.Is(l.Err(), connlimit.ErrNoDescriptors) })
	shed := 0
	for _, c := range waiting {
		if closedByServer(c) {
			shed++
		}
	}
	if shed == 0 {
		t.Error("no waiting connection was shed while out of descriptors")
	}
	restore()
	late, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer late.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted after descriptors were freed")
	}
	eventually(t, "Err clears after an accept", func() bool { return l.Err() == nil })
	t.Logf("accept errors %d, refused (shed) %d", l.Stats().AcceptErrors, l.Stats().Refused)
	l.Close()
	for c := range accepted {
		c.Close()
	}
}
