package resp

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/pkg/ring"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// The replies below are what redis-server 7 answers to the same commands
// (checked with redis-cli), except where the comment says ringcache
// differs.
func TestDoor_RepliesAsRedisDoes(t *testing.T) {
	_, addr := startServer(t, nil)
	c := dial(t, addr)
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"PING"}, "+PONG\r\n"},
		{[]string{"ping", "hi"}, "$2\r\nhi\r\n"},
		{[]string{"ECHO", "x y"}, "$3\r\nx y\r\n"},
		{[]string{"foo", "bar", "baz"}, "-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n"},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"get", "a", "b"}, "-ERR wrong number of arguments for 'get' command\r\n"},
		{[]string{"SET", "k"}, "-ERR wrong number of arguments for 'set' command\r\n"},
		{[]string{"SET", "k", "v", "EX"}, "-ERR syntax error\r\n"},
		{[]string{"SET", "k", "v", "EX", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"SET", "k", "v", "EX", "0"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"SET", "k", "v", "ex", "-1"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"SET", "k", "v", "NX", "XX"}, "-ERR syntax error\r\n"},
		{[]string{"SET", "k", "v", "foo"}, "-ERR syntax error\r\n"},
		{[]string{"SET", "k", "v", "EX", "10", "PX", "100"}, "-ERR syntax error\r\n"},
		{[]string{"SET", "k", "v", "KEEPTTL", "EX", "5"}, "-ERR syntax error\r\n"},
		{[]string{"SET", "k", "v", "EX", "9999999999999999"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"SETEX", "k", "0", "v"}, "-ERR invalid expire time in 'setex' command\r\n"},
		{[]string{"SETEX", "k", "abc", "v"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"PSETEX", "k", "0", "v"}, "-ERR invalid expire time in 'psetex' command\r\n"},
		{[]string{"GETEX", "k", "foo"}, "-ERR syntax error\r\n"},
		{[]string{"GETEX", "k", "EX", "5", "PERSIST"}, "-ERR syntax error\r\n"},
		{[]string{"EXPIRE", "k", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"EXPIRE", "k", "10", "foo"}, "-ERR Unsupported option foo\r\n"},
		{[]string{"EXPIRE", "k", "9999999999999999"}, "-ERR invalid expire time in 'expire' command\r\n"},
		{[]string{"MSET", "a"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"MSET", "a", "1", "b"}, "-ERR wrong number of arguments for 'mset' command\r\n"},
		{[]string{"SELECT", "abc"}, "-ERR value is not an integer or out of range\r\n"},
		{[]string{"SELECT", "0"}, "+OK\r\n"},
		{[]string{"SELECT", "1"}, "-ERR DB index is out of range\r\n"}, // Redis has 16 databases; ringcache one
		{[]string{"CLIENT", "foo"}, "-ERR unknown subcommand 'foo'. Try CLIENT HELP.\r\n"},
		{[]string{"CLIENT", "SETNAME", "a b"}, "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"},
		{[]string{"COMMAND", "foo"}, "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n"},
		{[]string{"CLUSTER", "INFO"}, "-ERR This instance has cluster support disabled\r\n"},
		{[]string{"READONLY"}, "-ERR This instance has cluster support disabled\r\n"},
		{[]string{"TTL"}, "-ERR wrong number of arguments for 'ttl' command\r\n"},
		{[]string{"EXISTS"}, "-ERR wrong number of arguments for 'exists' command\r\n"},
		{[]string{"DEL"}, "-ERR wrong number of arguments for 'del' command\r\n"},
		{[]string{"ECHO"}, "-ERR wrong number of arguments for 'echo' command\r\n"},
		{[]string{"PING", "a", "b"}, "-ERR wrong number of arguments for 'ping' command\r\n"},
		{[]string{"HELLO", "4"}, "-NOPROTO unsupported protocol version\r\n"},
		{[]string{"HELLO", "abc"}, "-ERR Protocol version is not an integer or out of range\r\n"},
		{[]string{"AUTH", "x"}, "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"},
		{[]string{"AUTH", "default", "anything"}, "+OK\r\n"}, // the default user has no password
		{[]string{"AUTH", "alice", "x"}, "-WRONGPASS invalid username-password pair or user is disabled.\r\n"},
		{[]string{"COMMAND", "INFO", "nosuch"}, "*1\r\n$-1\r\n"},
		{[]string{"SET", "k", "v", "PX", "9223372036854775807"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"SET", "k", "v", "EX", "9223372036854775"}, "-ERR invalid expire time in 'set' command\r\n"},
		{[]string{"FLUSHDB", "foo"}, "-ERR syntax error\r\n"},
		{[]string{"DBSIZE", "x"}, "-ERR wrong number of arguments for 'dbsize' command\r\n"},
		{[]string{"GETDEL"}, "-ERR wrong number of arguments for 'getdel' command\r\n"},
		// Data.
		{[]string{"GET", "k"}, "$-1\r\n"},
		{[]string{"SET", "k", "v"}, "+OK\r\n"},
		{[]string{"GET", "k"}, "$1\r\nv\r\n"},
		{[]string{"TTL", "k"}, ":3600\r\n"}, // the namespace's TTL
		{[]string{"SET", "k", "v2", "KEEPTTL", "GET"}, "$1\r\nv\r\n"},
		{[]string{"SET", "k", "x", "NX"}, "$-1\r\n"},
		{[]string{"SET", "k", "x", "NX", "GET"}, "$2\r\nv2\r\n"},
		{[]string{"SET", "n", "x", "XX"}, "$-1\r\n"},
		{[]string{"EXISTS", "k", "n", "k"}, ":2\r\n"},
		{[]string{"EXPIRE", "k", "100"}, ":1\r\n"},
		{[]string{"TTL", "k"}, ":100\r\n"},
		{[]string{"GETEX", "k", "PERSIST"}, "$2\r\nv2\r\n"},
		{[]string{"TTL", "k"}, ":-1\r\n"},
		{[]string{"TTL", "n"}, ":-2\r\n"},
		{[]string{"EXPIRE", "n", "100"}, ":0\r\n"},
		{[]string{"MSET", "a", "1", "users:b", "2", "a", "3"}, "+OK\r\n"},
		{[]string{"MGET", "a", "users:b", "b", "c"}, "*4\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n$-1\r\n"},
		{[]string{"DEL", "a", "a", "users:b", "c"}, ":2\r\n"},
		{[]string{"SET", "users:", "v"}, "-ERR invalid argument: key is empty\r\n"},
		{[]string{"GETDEL", "k"}, "$2\r\nv2\r\n"},
		{[]string{"EXPIRE", "k", "0"}, ":0\r\n"},
		{[]string{"SET", "k", "v", "PX", "100000"}, "+OK\r\n"},
		{[]string{"EXPIRE", "k", "-1"}, ":1\r\n"}, // deletes, as in Redis
		{[]string{"GET", "k"}, "$-1\r\n"},
		{[]string{"FLUSHALL"}, "-ERR FLUSHALL is not available on this server\r\n"},
	} {
		if got := c.do(tc.cmd...); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.cmd, got, tc.want)
		}
	}
}

func TestDoor_RESP3AfterHello(t *testing.T) {
	_, addr := startServer(t, nil)
	c := dial(t, addr)
	if got := c.do("HELLO", "3"); !strings.HasPrefix(got, "%7\r\n$6\r\nserver\r\n") || !strings.Contains(got, "$5\r\nproto\r\n:3\r\n") {
		t.Fatalf("HELLO 3 = %q", got)
	}
	if got := c.do("GET", "missing"); got != "_\r\n" {
		t.Fatalf("GET of a missing key in RESP3 = %q, want _", got)
	}
	if got := c.do("HELLO", "2"); !strings.HasPrefix(got, "*14\r\n") {
		t.Fatalf("HELLO 2 = %q", got)
	}
	if got := c.do("GET", "missing"); got != "$-1\r\n" {
		t.Fatalf("GET in RESP2 = %q", got)
	}
}

// Commands sent together run as one batch with their replies in order; a
// command on a key an earlier one wrote sees that write.
func TestDoor_PipelineKeepsOrderPerKey(t *testing.T) {
	_, addr := startServer(t, nil)
	c := dial(t, addr)
	var in strings.Builder
	want := ""
	for i := range 50 {
		v := strings.Repeat("x", i)
		in.Write(encode("SET", "k", v))
		in.Write(encode("GET", "k"))
		in.Write(encode("PING"))
		want += "+OK\r\n$" + itoa(i) + "\r\n" + v + "\r\n+PONG\r\n"
	}
	c.send(in.String())
	var got strings.Builder
	for range 150 {
		got.WriteString(c.reply())
	}
	if got.String() != want {
		t.Fatalf("pipelined replies out of order:\n got %.300q\nwant %.300q", got.String(), want)
	}
}

func TestDoor_ProtocolErrorRepliesAndCloses(t *testing.T) {
	s, addr := startServer(t, nil)
	for _, in := range []string{
		"*2\r\n$3\r\nGET\r\n:1\r\n",
		"*1\r\n$-5\r\n",
		"*1\r\n$1073741824\r\n", // 1 GB declared: refused before a byte of it
		"*99999999\r\n",
		"*1\r\n$3\r\nGETXX",
	} {
		c := dial(t, addr)
		c.send(in)
		if got := c.reply(); !strings.HasPrefix(got, "-ERR Protocol error: ") {
			t.Errorf("%q: reply %q, want a protocol error", in, got)
		}
		if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("%q: connection still open after a protocol error (%v)", in, err)
		}
	}
	p := dial(t, addr)
	if got := p.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("after bad input the door answers %q", got)
	}
	p.nc.Close()
	waitFor(t, "connections to close", func() bool { return s.Conns() == 0 })
}

// An unterminated command followed by a disconnect leaves nothing behind.
func TestDoor_UnterminatedArrayThenHangUp(t *testing.T) {
	s, addr := startServer(t, nil)
	c := dial(t, addr)
	c.send("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n")
	c.nc.Close()
	waitFor(t, "the connection to end", func() bool { return s.Conns() == 0 })
}

// A client that sends commands and never reads the replies is cut after
// the write timeout; its memory stays bounded meanwhile and other clients
// are served.
func TestDoor_ClientThatNeverReadsIsCut(t *testing.T) {
	s, addr := startServer(t, func(c *Config) { c.WriteTimeout = 300 * time.Millisecond })
	big := strings.Repeat("v", 512<<10)
	setter := dial(t, addr)
	if got := setter.do("SET", "big", big); got != "+OK\r\n" {
		t.Fatal(got)
	}
	setter.nc.Close()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	hog := dial(t, addr)
	go func() {
		req := strings.Repeat(string(encode("GET", "big")), 64)
		for range 200 { // up to 6 GB of replies if the door buffered them
			if _, err := hog.nc.Write([]byte(req)); err != nil {
				return
			}
		}
	}()
	other := dial(t, addr)
	if got := other.do("PING"); got != "+PONG\r\n" {
		t.Fatalf("another client got %q while one did not read", got)
	}
	waitFor(t, "the door to cut the client that does not read", func() bool { return s.Conns() == 1 })
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
		t.Fatalf("heap grew by %d bytes for a client that does not read", grown)
	}
	if got := other.do("GET", "big"); len(got) != len(big)+len("$524288\r\n\r\n") {
		t.Fatalf("other client: %d bytes", len(got))
	}
}

func TestDoor_RefusesConnectionsOverTheBound(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.MaxConns = 1 })
	first := dial(t, addr)
	if got := first.do("PING"); got != "+PONG\r\n" {
		t.Fatal(got)
	}
	if got := dial(t, addr).reply(); got != "-ERR max number of clients reached\r\n" {
		t.Fatalf("second connection got %q", got)
	}
}

// fakeTopology: n1 (this node) owns slots 0-8191, n2 the rest.
func fakeTopology() Topology {
	n1 := Node{ID: NodeID("n1"), Name: "n1", Addr: "127.0.0.1:7001"}
	n2 := Node{ID: NodeID("n2"), Name: "n2", Addr: "127.0.0.1:7002"}
	v := &View{Version: 3, Self: n1, Ranges: []SlotRange{{0, 8191, n1}, {8192, ring.Slots - 1, n2}}}
	return TopologyFunc(func() *View { return v })
}

// Keys are slotted as Redis slots them: "foo" is slot 12182 (n2), "bar"
// 5061 (n1).
func TestDoor_MovedOnlyForClusterAwareConnections(t *testing.T) {
	_, addr := startServer(t, func(c *Config) { c.Topology = fakeTopology() })
	plain := dial(t, addr)
	if got := plain.do("SET", "foo", "1"); got != "+OK\r\n" {
		t.Fatalf("a standalone client's key owned elsewhere: %q, want it served (forwarded)", got)
	}
	cl := dial(t, addr)
	if got := cl.do("CLUSTER", "KEYSLOT", "foo"); got != ":12182\r\n" {
		t.Fatalf("KEYSLOT foo = %q", got)
	}
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"GET", "foo"}, "-MOVED 12182 127.0.0.1:7002\r\n"},
		{[]string{"GET", "bar"}, "$-1\r\n"},
		{[]string{"MGET", "{foo}a", "{foo}b"}, "-MOVED 12182 127.0.0.1:7002\r\n"},
		{[]string{"MGET", "foo", "bar"}, "-CROSSSLOT Keys in request don't hash to the same slot\r\n"},
		{[]string{"CLUSTER", "MYID"}, "$40\r\n" + NodeID("n1") + "\r\n"},
		{[]string{"CLUSTER", "SLOTS"}, "*2\r\n*3\r\n:0\r\n:8191\r\n*3\r\n$9\r\n127.0.0.1\r\n:7001\r\n$40\r\n" + NodeID("n1") + "\r\n" +
			"*3\r\n:8192\r\n:16383\r\n*3\r\n$9\r\n127.0.0.1\r\n:7002\r\n$40\r\n" + NodeID("n2") + "\r\n"},
	} {
		if got := cl.do(tc.cmd...); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.cmd, got, tc.want)
		}
	}
	nodes := cl.do("CLUSTER", "NODES")
	for _, want := range []string{NodeID("n1") + " 127.0.0.1:7001@17001 myself,master - 0 0 3 connected 0-8191\n", NodeID("n2") + " 127.0.0.1:7002@17002 master - 0 0 3 connected 8192-16383\n"} {
		if !strings.Contains(nodes, want) {
			t.Errorf("CLUSTER NODES %q lacks %q", nodes, want)
		}
	}
	if info := cl.do("CLUSTER", "INFO"); !strings.Contains(info, "cluster_state:ok\r\n") || !strings.Contains(info, "cluster_known_nodes:2\r\n") {
		t.Errorf("CLUSTER INFO = %q", info)
	}
}

// An owner still settling into the table (it would refuse clients as not
// ready) gets no MOVED: its keys are served here, forwarded; CLUSTER SLOTS
// names it all the same.
func TestDoor_NoMovedToASettlingOwner(t *testing.T) {
	n1 := Node{ID: NodeID("n1"), Name: "n1", Addr: "127.0.0.1:7001"}
	n2 := Node{ID: NodeID("n2"), Name: "n2", Addr: "127.0.0.1:7002", Settling: true}
	v := &View{Version: 3, Self: n1, Ranges: []SlotRange{{0, 8191, n1}, {8192, ring.Slots - 1, n2}}}
	_, addr := startServer(t, func(c *Config) { c.Topology = TopologyFunc(func() *View { return v }); c.RedirectAll = true })
	cl := dial(t, addr)
	for _, tc := range []struct {
		cmd  []string
		want string
	}{
		{[]string{"SET", "foo", "1"}, "+OK\r\n"}, // slot 12182, n2's
		{[]string{"GET", "foo"}, "$1\r\n1\r\n"},
		{[]string{"MGET", "foo", "bar"}, "*2\r\n$1\r\n1\r\n$-1\r\n"},
	} {
		if got := cl.do(tc.cmd...); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.cmd, got, tc.want)
		}
	}
	if slots := cl.do("CLUSTER", "SLOTS"); !strings.Contains(slots, ":7002\r\n$40\r\n"+NodeID("n2")) {
		t.Errorf("CLUSTER SLOTS does not name the settling owner: %q", slots)
	}
}

func TestDoor_InfoNamesFieldsAsRedis(t *testing.T) {
	_, addr := startServer(t, func(c *Config) {
		c.Stats = func() NodeStats { return NodeStats{Keys: 7, UsedMemory: 1000, MaxMemory: 4000, Evictions: 2} }
	})
	c := dial(t, addr)
	c.do("SET", "a", "1")
	c.do("GET", "a")
	c.do("GET", "b")
	info := c.do("INFO")
	for _, want := range []string{"# Server\r\n", "redis_version:", "connected_clients:1\r\n", "used_memory:1000\r\n", "maxmemory:4000\r\n",
		"evicted_keys:2\r\n", "keyspace_hits:1\r\n", "keyspace_misses:1\r\n", "db0:keys=7,", "# Keyspace\r\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("INFO lacks %q:\n%s", want, info)
		}
	}
	if stats := c.do("INFO", "stats"); strings.Contains(stats, "# Server") || !strings.Contains(stats, "# Stats") {
		t.Errorf("INFO stats = %q", stats)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// In a pipeline, FLUSHALL and FLUSHDB run after the commands before them
// and before the ones after, as in Redis: a SET before the flush is
// flushed, a GET before it still reads, and DBSIZE counts the SETs sent
// ahead of it.
func TestDoor_AFlushInAPipelineKeepsItsPlace(t *testing.T) {
	eng := newTestEngine(t)
	ns, err := eng.Namespace("default")
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, func(c *Config) {
		c.Engine = eng
		c.Flush = func(context.Context) error {
			_, err := ns.Flush("")
			return err
		}
		c.Stats = func() NodeStats { // the keys x1 and x2 that read back
			var n uint64
			for _, k := range []string{"x1", "x2"} {
				if _, found, _, _ := ns.Peek(k); found {
					n++
				}
			}
			return NodeStats{Keys: n}
		}
	})
	c := dial(t, addr)
	c.do("SET", "before", "1")
	pipeline := func(cmds ...[]string) []string {
		var b strings.Builder
		for _, cmd := range cmds {
			b.Write(encode(cmd...))
		}
		c.send(b.String())
		out := make([]string, len(cmds))
		for i := range cmds {
			out[i] = c.reply()
		}
		return out
	}
	got := pipeline([]string{"GET", "before"}, []string{"SET", "a", "1"}, []string{"FLUSHALL"}, []string{"GET", "a"}, []string{"GET", "before"})
	if want := []string{"$1\r\n1\r\n", "+OK\r\n", "+OK\r\n", "$-1\r\n", "$-1\r\n"}; !slices.Equal(got, want) {
		t.Errorf("GET before, SET a, FLUSHALL, GET a, GET before = %q, want %q", got, want)
	}
	got = pipeline([]string{"SET", "x1", "1"}, []string{"SET", "x2", "1"}, []string{"DBSIZE"})
	if got[2] != ":2\r\n" {
		t.Errorf("DBSIZE after two SETs in its pipeline = %q, want :2", got[2])
	}
}

// A node that stops (Shutdown) answers what each connection has read
// before it closes it: a client whose GET waits on the database gets its
// value, then the end of the connection, rather than a reset with no
// answer — also when it pipelined more commands the node never read.
func TestDoor_ShutdownAnswersTheCommandsReadBeforeIt(t *testing.T) {
	loading, release := make(chan struct{}), make(chan struct{})
	slow := strategy.LoaderFunc(func(context.Context, string) ([]byte, bool, error) {
		close(loading)
		<-release
		return []byte("loaded"), true, nil
	})
	eng := newTestEngineWith(t, engine.NamespaceSpec{Policy: strategy.Policy{Name: "slow", Read: strategy.ReadThrough, TTL: time.Hour, MaxKeyBytes: 64}, Loader: slow})
	s, addr := startServer(t, func(c *Config) { c.Engine = eng })
	c := dial(t, addr)
	c.send(string(encode("GET", "slow:k")))
	<-loading
	// Sent while the GET waits: the node reads none of it.
	c.send(strings.Repeat(string(encode("SET", "unread", "x")), 1000))
	closed := make(chan error, 1)
	go func() { closed <- s.Shutdown(10 * time.Second) }()
	waitFor(t, "the listener to close", func() bool {
		nc, err := net.Dial("tcp", addr)
		if err == nil {
			nc.Close()
		}
		return err != nil
	})
	close(release)
	if got := c.reply(); got != "$6\r\nloaded\r\n" {
		t.Fatalf("the GET in progress when the door closed got %q, want its value", got)
	}
	if _, err := c.br.ReadByte(); err != io.EOF {
		t.Fatalf("after the last reply: %v, want the end of the connection, not a reset", err)
	}
	c.nc.Close() // the node lingers until the client closes
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
}

// CLUSTER NODES shows the bus port Redis would use (the client port +
// 10000), and 0 where that is no port: parsers read it as a number.
func TestDoor_ClusterNodesBusPortIsAPort(t *testing.T) {
	n1 := Node{ID: NodeID("n1"), Name: "n1", Addr: "127.0.0.1:7001"}
	n2 := Node{ID: NodeID("n2"), Name: "n2", Addr: "127.0.0.1:60000"}
	text := nodesText(&View{Version: 1, Self: n1, Ranges: []SlotRange{{0, 8191, n1}, {8192, ring.Slots - 1, n2}}})
	for _, want := range []string{" 127.0.0.1:7001@17001 ", " 127.0.0.1:60000@0 "} {
		if !strings.Contains(text, want) {
			t.Errorf("CLUSTER NODES %q lacks %q", text, want)
		}
	}
}
