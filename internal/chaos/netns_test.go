package chaos

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// requireRoot skips without root, or fails under CI=true, where the lab
// must work.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("network namespaces need root, and CI=true: run the tests as root")
	}
	t.Skip("network namespaces need root")
}

func TestNetwork_CutAndHeal(t *testing.T) {
	requireRoot(t)
	nw, err := NewNetwork(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := nw.Close(); err != nil {
			t.Error(err)
		}
		if out, _ := exec.Command("ip", "-o", "link", "show").Output(); strings.Contains(string(out), namePrefix+nw.id) {
			t.Errorf("links of the run left after Close:\n%s", out)
		}
	})
	a, err := nw.AddHost("a", true, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := nw.AddHost("b", true, false)
	if err != nil {
		t.Fatal(err)
	}
	// A listener inside a's namespace, on its peer address.
	var l net.Listener
	if err := a.do(func() (err error) {
		l, err = net.Listen("tcp", netip.AddrPortFrom(a.PeerIP, 0).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	reach := func(from string, dial func(ctx context.Context, addr string) (net.Conn, error)) error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		c, err := dial(ctx, l.Addr().String())
		if err != nil {
			return fmt.Errorf("from %s: %w", from, err)
		}
		defer c.Close()
		buf := make([]byte, 2)
		c.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := c.Read(buf); err != nil || string(buf) != "ok" {
			return fmt.Errorf("from %s: read %q, %v", from, buf, err)
		}
		return nil
	}
	root := func(ctx context.Context, addr string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}
	for _, step := range []struct {
		do                     func() error
		fromB, fromRoot, fromA bool
	}{
		{func() error { return nil }, true, true, true},
		{func() error { return nw.Cut(a, PeerLink) }, false, false, true},
		{func() error { return nw.Heal(a, PeerLink) }, true, true, true},
		{func() error { return nw.Cut(b, PeerLink) }, false, true, true},
		{func() error { return nw.Heal(b, PeerLink) }, true, true, true},
	} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			from string
			want bool
			dial func(ctx context.Context, addr string) (net.Conn, error)
		}{{"b", step.fromB, b.Dial}, {"root", step.fromRoot, root}, {"a itself", step.fromA, a.Dial}} {
			if c.want {
				// Healing takes a moment (the bridge port comes up): poll.
				if _, err := poll(context.Background(), 5*time.Second, "reach a", func() error { return reach(c.from, c.dial) }); err != nil {
					t.Fatal(err)
				}
			} else if err := reach(c.from, c.dial); err == nil {
				t.Fatalf("%s reaches a across a cut link", c.from)
			}
		}
	}
}

func TestSweep_RemovesOnlyDeadRuns(t *testing.T) {
	requireRoot(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dead := fmt.Sprintf("%s%06xfe", namePrefix, gone.Process.Pid)
	live := fmt.Sprintf("%s%06xfe", namePrefix, os.Getpid())
	for _, args := range [][]string{
		{"netns", "add", dead + "-x"},
		{"netns", "add", live + "-x"},
		{"link", "add", dead + "pb", "type", "bridge"},
		{"link", "add", live + "pb", "type", "bridge"},
	} {
		if err := ipRun(args...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ipRun("netns", "del", live+"-x")
		ipRun("link", "del", live+"pb")
	})
	// A process left running in the crashed run's namespace.
	sleeper := exec.Command("ip", "netns", "exec", dead+"-x", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- sleeper.Wait() }()

	Sweep(nil)

	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		sleeper.Process.Kill()
		t.Fatal("the process in the crashed run's namespace is still running after Sweep")
	}
	nss, _ := exec.Command("ip", "netns", "list").Output()
	links, _ := exec.Command("ip", "-o", "link", "show").Output()
	if strings.Contains(string(nss), dead) || strings.Contains(string(links), dead) {
		t.Fatalf("Sweep left the crashed run's namespace or bridge:\n%s\n%s", nss, links)
	}
	if !strings.Contains(string(nss), live+"-x") || !strings.Contains(string(links), live+"pb") {
		t.Fatalf("Sweep removed a live run's namespace or bridge:\n%s\n%s", nss, links)
	}
}

func TestOwnerPID(t *testing.T) {
	for name, want := range map[string]int{"rkc00abcd01pb": 0xabcd, "rkc00abcd01-n1": 0xabcd, "rkc00ab": -1, "eth0": -1, "rkcxyzxyz01pb": -1} {
		pid, ok := ownerPID(name)
		if (want < 0) == ok || (ok && pid != want) {
			t.Errorf("ownerPID(%q) = %d, %v; want %d", name, pid, ok, want)
		}
	}
}
