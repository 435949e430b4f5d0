package resp_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// startCluster starts n in-process nodes with the RESP door open, serving
// "default" (a pure cache, the door's default namespace), "users"
// (read-through from the cluster's fake database) and, with writeBehind,
// "orders".
func startCluster(t *testing.T, n int, configure func(i int, cfg *node.Config)) *clustertest.Cluster {
	t.Helper()
	return clustertest.Start(t, n, clustertest.Options{
		Configure: func(i int, cfg *node.Config) {
			cfg.RESP = node.RESPConfig{Addr: "127.0.0.1:0"}
			cfg.Namespaces = append([]node.NamespaceSpec{{Policy: strategy.Policy{Name: "default", TTL: time.Hour, MaxKeyBytes: 1024, MaxValueBytes: 1 << 20}}}, cfg.Namespaces...)
			if configure != nil {
				configure(i, cfg)
			}
		},
	})
}

// respAddrs returns the RESP addresses of c's first three nodes.
func respAddrs(c *clustertest.Cluster) []string {
	var addrs []string
	for i := range 3 {
		addrs = append(addrs, c.Node(i).RESPAddr())
	}
	return addrs
}

// rueidisCluster returns a rueidis client in cluster mode on addrs.
func rueidisCluster(t *testing.T, addrs []string) rueidis.Client {
	t.Helper()
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	return rc
}

// setThenGet writes keys k0-k99 through rueidis and reads each back through
// go-redis's ClusterClient, values marked with round; it returns the first
// error.
func setThenGet(rc rueidis.Client, gc *redis.ClusterClient, round int) error {
	for k := range 100 {
		key, v := fmt.Sprintf("k%d", k), fmt.Sprintf("v%d-%d", k, round)
		if err := rc.Do(ctx, rc.B().Set().Key(key).Value(v).Build()).Error(); err != nil {
			return fmt.Errorf("rueidis SET %s: %w", key, err)
		}
		if got, err := gc.Get(ctx, key).Result(); err != nil || got != v {
			return fmt.Errorf("ClusterClient GET %s = %q, %v; want %q", key, got, err, v)
		}
	}
	return nil
}

// forwards returns the ops the running nodes of c forwarded so far.
func forwards(t *testing.T, c *clustertest.Cluster) (n uint64) {
	t.Helper()
	for _, i := range c.Up() {
		s, err := c.Admin(i).Stats(ctx, &pb.StatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		n += s.Forwards
	}
	return n
}

func goRedis(t *testing.T, addr string, opt func(*redis.Options)) *redis.Client {
	t.Helper()
	o := &redis.Options{Addr: addr, MaxRetries: -1}
	if opt != nil {
		opt(o)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func rueidisClient(t *testing.T, addr string) rueidis.Client {
	t.Helper()
	// DisableCache: ringcache does not offer client-side caching (CLIENT
	// TRACKING), which rueidis turns on by default.
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatalf("rueidis: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

var ctx = context.Background()

// go-redis drives every node of a 3-node cluster: a key written through
// one node is read, timed and deleted through the others (the door
// forwards to the owner).
func TestGoRedis_DrivesEveryNode(t *testing.T) {
	c := startCluster(t, 3, nil)
	clients := make([]*redis.Client, 3)
	for i := range clients {
		clients[i] = goRedis(t, c.Node(i).RESPAddr(), nil)
	}
	for i := range 30 {
		k, v := fmt.Sprintf("key-%d", i), fmt.Sprintf("value-%d", i)
		w, r := clients[i%3], clients[(i+1)%3]
		if err := w.Set(ctx, k, v, time.Minute).Err(); err != nil {
			t.Fatalf("SET via node %d: %v", i%3, err)
		}
		if got, err := r.Get(ctx, k).Result(); err != nil || got != v {
			t.Fatalf("GET via node %d = %q, %v", (i+1)%3, got, err)
		}
		if ttl, err := r.TTL(ctx, k).Result(); err != nil || ttl <= 58*time.Second || ttl > time.Minute {
			t.Fatalf("TTL = %v, %v", ttl, err)
		}
	}
	vals, err := clients[2].MGet(ctx, "key-0", "key-1", "missing").Result()
	if err != nil || vals[0] != "value-0" || vals[1] != "value-1" || vals[2] != nil {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
	if err := clients[1].MSet(ctx, "m1", "a", "m2", "b").Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := clients[0].Del(ctx, "m1", "m2", "missing").Result(); err != nil || n != 2 {
		t.Fatalf("DEL = %d, %v", n, err)
	}
	if err := clients[0].Get(ctx, "m1").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after DEL: %v", err)
	}
	// SET NX / XX / GET and EXPIRE.
	if ok, err := clients[0].SetNX(ctx, "nx", "1", 0).Result(); err != nil || !ok {
		t.Fatalf("SETNX first = %v, %v", ok, err)
	}
	if ok, err := clients[1].SetNX(ctx, "nx", "2", 0).Result(); err != nil || ok {
		t.Fatalf("SETNX second = %v, %v", ok, err)
	}
	if ok, err := clients[2].SetXX(ctx, "nx", "3", 0).Result(); err != nil || !ok {
		t.Fatalf("SETXX = %v, %v", ok, err)
	}
	if old, err := clients[0].SetArgs(ctx, "nx", "4", redis.SetArgs{Get: true}).Result(); err != nil || old != "3" {
		t.Fatalf("SET GET = %q, %v", old, err)
	}
	if ok, err := clients[1].Expire(ctx, "nx", 5*time.Second).Result(); err != nil || !ok {
		t.Fatalf("EXPIRE = %v, %v", ok, err)
	}
	if ttl, err := clients[2].PTTL(ctx, "nx").Result(); err != nil || ttl > 5*time.Second || ttl < 4*time.Second {
		t.Fatalf("PTTL = %v, %v", ttl, err)
	}
	// Errors are Redis's.
	if err := clients[0].Do(ctx, "SET", "k", "v", "EX", "0").Err(); err == nil || err.Error() != "ERR invalid expire time in 'set' command" {
		t.Fatalf("SET EX 0: %v", err)
	}
	if err := clients[0].Do(ctx, "NOSUCH", "a").Err(); err == nil || err.Error() != "ERR unknown command 'NOSUCH', with args beginning with: 'a' " {
		t.Fatalf("unknown command: %v", err)
	}
}

// go-redis pipelines run as batches on the node, in order per key.
func TestGoRedis_PipelineInOrder(t *testing.T) {
	c := startCluster(t, 2, nil)
	cl := goRedis(t, c.Node(1).RESPAddr(), nil)
	pipe := cl.Pipeline()
	var gets []*redis.StringCmd
	for i := range 200 {
		pipe.Set(ctx, "p", i, 0)
		gets = append(gets, pipe.Get(ctx, "p"))
		pipe.Set(ctx, fmt.Sprintf("q%d", i), i, 0)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for i, g := range gets {
		if g.Val() != fmt.Sprint(i) {
			t.Fatalf("GET %d in the pipeline = %q: it did not see the SET before it", i, g.Val())
		}
	}
}

// rueidis with auto-pipelining: many goroutines on one connection.
func TestRueidis_AutoPipelining(t *testing.T) {
	c := startCluster(t, 3, nil)
	cl := rueidisClient(t, c.Node(0).RESPAddr())
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 64 {
		wg.Go(func() {
			for i := range 50 {
				k, v := fmt.Sprintf("r-%d-%d", g, i), fmt.Sprint(i)
				if err := cl.Do(ctx, cl.B().Set().Key(k).Value(v).Build()).Error(); err != nil {
					errs <- err
					return
				}
				got, err := cl.Do(ctx, cl.B().Get().Key(k).Build()).ToString()
				if err != nil || got != v {
					errs <- fmt.Errorf("GET %s = %q, %v", k, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := cl.Do(ctx, cl.B().Get().Key("missing").Build()).Error(); !rueidis.IsRedisNil(err) {
		t.Fatalf("GET missing: %v", err)
	}
	ttl, err := cl.Do(ctx, cl.B().Ttl().Key("missing").Build()).AsInt64()
	if err != nil || ttl != -2 {
		t.Fatalf("TTL missing = %d, %v", ttl, err)
	}
	res := cl.DoMulti(ctx, cl.B().Mset().KeyValue().KeyValue("x", "1").KeyValue("users:nobody", "2").Build(), cl.B().Mget().Key("x", "y").Build())
	if vals, err := res[1].AsStrSlice(); err != nil || len(vals) != 2 || vals[0] != "1" {
		t.Fatalf("MGET = %v, %v", vals, err)
	}
}

// A read-through namespace loads a key once for concurrent GETs from many
// connections, through every node.
func TestReadThrough_LoadsOnceForManyConnections(t *testing.T) {
	c := startCluster(t, 3, nil)
	c.DB.Put("u1", []byte("alice"))
	release := c.DB.Block()
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for i := range 60 {
		cl := goRedis(t, c.Node(i%3).RESPAddr(), nil)
		wg.Go(func() {
			got, err := cl.Get(ctx, "users:u1").Result()
			if err != nil || got != "alice" {
				errs <- fmt.Errorf("GET users:u1 = %q, %v", got, err)
			}
		})
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		if c.DB.Loads() == 0 {
			return errors.New("no load started")
		}
		return nil
	})
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := c.DB.Loads(); n != 1 {
		t.Fatalf("%d loads for 60 concurrent GETs, want 1", n)
	}
}

// redis-cli, plain and with -c, against the nodes of a cluster.
func TestRedisCLI(t *testing.T) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Fatal("redis-cli is not installed (apt-get install redis-tools); the RESP door is tested against it")
	}
	c := startCluster(t, 2, nil)
	run := func(i int, args ...string) string {
		t.Helper()
		host, port, _ := strings.Cut(c.Node(i).RESPAddr(), ":")
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %q: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		node int
		args []string
		want string
	}{
		{0, []string{"PING"}, "PONG"},
		{0, []string{"SET", "cli", "hello"}, "OK"},
		{1, []string{"GET", "cli"}, "hello"},
		{1, []string{"-c", "GET", "cli"}, "hello"},
		{0, []string{"-c", "SET", "cli2", "x", "EX", "100"}, "OK"},
		{1, []string{"TTL", "cli2"}, "100"},
		{1, []string{"DEL", "cli", "cli2"}, "2"},
		{0, []string{"EXISTS", "cli"}, "0"},
		{0, []string{"CLUSTER", "KEYSLOT", "{user1000}.following"}, "3443"},
		{0, []string{"NOSUCH"}, "ERR unknown command 'NOSUCH', with args beginning with:"},
	} {
		if got := run(tc.node, tc.args...); got != tc.want {
			t.Errorf("redis-cli %q on node %d = %q, want %q", tc.args, tc.node, got, tc.want)
		}
	}
	if info := run(0, "INFO", "stats"); !strings.Contains(info, "keyspace_hits:") {
		t.Errorf("INFO stats = %q", info)
	}
	if info := run(0, "INFO", "server"); !regexp.MustCompile(`(?m)^ringcache_version:\S+\s*$`).MatchString(info) {
		t.Errorf("INFO server names no ringcache_version: %q", info)
	}
}

// AUTH with a token identifies the caller; grants then apply per namespace.
func TestAuth_TokenAndGrants(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	writeTokens(t, tokens, map[string]string{"app": "s3cret-app-token", "reader": "s3cret-reader-token"})
	c := startCluster(t, 1, func(_ int, cfg *node.Config) {
		cfg.Auth = &node.AuthConfig{TokensFile: tokens, Principals: map[string]node.Grant{
			"app":    {Namespaces: map[string][]string{"*": {"read", "write"}}},
			"reader": {Namespaces: map[string][]string{"default": {"read"}}},
		}}
	})
	addr := c.Node(0).RESPAddr()
	anon := goRedis(t, addr, nil)
	if err := anon.Get(ctx, "k").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH ") {
		t.Fatalf("anonymous GET: %v, want NOAUTH", err)
	}
	bad := goRedis(t, addr, func(o *redis.Options) { o.Password = "wrong" })
	if err := bad.Ping(ctx).Err(); err == nil || err.Error() != "WRONGPASS invalid username-password pair or user is disabled." {
		t.Fatalf("wrong token: %v", err)
	}
	app := goRedis(t, addr, func(o *redis.Options) { o.Password = "s3cret-app-token" })
	if err := app.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("app SET: %v", err)
	}
	reader := goRedis(t, addr, func(o *redis.Options) { o.Username, o.Password = "reader", "s3cret-reader-token" })
	if got, err := reader.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("reader GET = %q, %v", got, err)
	}
	if err := reader.Set(ctx, "k", "w", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
		t.Fatalf("reader SET: %v, want NOPERM", err)
	}
	if err := app.Do(ctx, "FLUSHDB").Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM ") {
		t.Fatalf("FLUSHDB by a non-admin: %v, want NOPERM", err)
	}
}

// With auth on and nothing granted to anonymous callers, a connection that
// has not authenticated gets NOAUTH for every command but AUTH, HELLO and
// QUIT, as from a Redis with a password: it learns nothing of the cluster
// (INFO, CLUSTER SLOTS, DBSIZE). After AUTH it is served. Unknown commands
// and wrong arities keep their own errors, which Redis checks first.
func TestAuth_AnUnauthenticatedConnectionGetsNoauthForEverything(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	writeTokens(t, tokens, map[string]string{"app": "s3cret-app-token"})
	c := startCluster(t, 1, func(_ int, cfg *node.Config) {
		cfg.Auth = &node.AuthConfig{TokensFile: tokens, Principals: map[string]node.Grant{
			"app": {Namespaces: map[string][]string{"*": {"read"}}},
		}}
	})
	conn, err := net.Dial("tcp", c.Node(0).RESPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	send := func(cmd string) string {
		t.Helper()
		if _, err := conn.Write([]byte(cmd + "\r\n")); err != nil {
			t.Fatal(err)
		}
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(line, "\r\n")
	}
	for _, cmd := range []string{"PING", "INFO", "DBSIZE", "CLUSTER SLOTS", "CLIENT LIST", "COMMAND COUNT", "GET k", "SELECT 0"} {
		if got := send(cmd); got != "-NOAUTH Authentication required." {
			t.Errorf("%s before AUTH = %q; want -NOAUTH Authentication required.", cmd, got)
		}
	}
	if got := send("NOSUCH"); !strings.HasPrefix(got, "-ERR unknown command") {
		t.Errorf("an unknown command before AUTH = %q; want unknown command", got)
	}
	if got := send("GET"); got != "-ERR wrong number of arguments for 'get' command" {
		t.Errorf("GET without a key before AUTH = %q; want the arity error", got)
	}
	if got := send("AUTH wrong"); !strings.HasPrefix(got, "-WRONGPASS") {
		t.Errorf("AUTH with a wrong token = %q", got)
	}
	if got := send("AUTH s3cret-app-token"); got != "+OK" {
		t.Fatalf("AUTH = %q", got)
	}
	if got := send("PING"); got != "+PONG" {
		t.Errorf("PING after AUTH = %q", got)
	}
	if got := send("GET k"); got != "$-1" {
		t.Errorf("GET after AUTH = %q; want a miss", got)
	}
}

// A write-behind SET acknowledged through the RESP door survives kill -9:
// the journal is replayed by the next start and reaches the database.
func TestWriteBehind_SETSurvivesKill(t *testing.T) {
	db := clustertest.NewFakeDB()
	journal := filepath.Join(t.TempDir(), "journal.db")
	down := strategy.WriterFunc(func(context.Context, []strategy.Write) error { return errors.New("database down") })
	cfg := func(w strategy.Writer) node.Config {
		return node.Config{
			Name: "n1", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0", RESP: node.RESPConfig{Addr: "127.0.0.1:0"},
			Namespaces: []node.NamespaceSpec{
				{Policy: strategy.Policy{Name: "default", TTL: time.Hour}},
				{Policy: strategy.Policy{Name: "orders", Write: strategy.WriteBehind, TTL: time.Hour}, Writer: w},
			},
			Journal: node.JournalConfig{Path: journal, FlushInterval: 10 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond},
		}
	}
	n, err := node.New(cfg(down))
	if err != nil {
		t.Fatal(err)
	}
	cl := goRedis(t, n.RESPAddr(), nil)
	clustertest.Eventually(t, 10*time.Second, func() error { return cl.Ping(ctx).Err() })
	clustertest.Eventually(t, 10*time.Second, func() error { return cl.Set(ctx, "orders:o1", "paid", 0).Err() })
	n.Kill() // its writer never succeeded: the write is only in the journal
	n2, err := node.New(cfg(db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n2.Close(context.Background()) })
	clustertest.Eventually(t, 10*time.Second, func() error {
		if v, ok := db.Row("o1"); !ok || string(v) != "paid" {
			return fmt.Errorf("database row o1 = %q, %v", v, ok)
		}
		return nil
	})
}

// writeTokens writes a tokens file: "principal sha256hex" per line.
func writeTokens(t *testing.T, path string, tokens map[string]string) {
	t.Helper()
	var b strings.Builder
	for name, tok := range tokens {
		fmt.Fprintf(&b, "%s %x\n", name, sha256.Sum256([]byte(tok)))
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Cluster clients (go-redis ClusterClient, rueidis in cluster mode) work
// against the door: they read CLUSTER SLOTS and send each key where it
// says.
func TestClusterClients_WorkThroughTheDoor(t *testing.T) {
	c := startCluster(t, 3, nil)
	var addrs []string
	for i := range 3 {
		addrs = append(addrs, c.Node(i).RESPAddr())
	}
	gc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { gc.Close() })
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: addrs, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	if _, ok := rc.Nodes()[addrs[0]]; !ok && len(rc.Nodes()) == 0 {
		t.Fatalf("rueidis found no cluster nodes")
	}
	for i := range 50 {
		k := fmt.Sprintf("{user%d}.profile", i)
		if err := gc.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("ClusterClient SET: %v", err)
		}
		got, err := rc.Do(ctx, rc.B().Get().Key(k).Build()).ToString()
		if err != nil || got != "v" {
			t.Fatalf("rueidis cluster GET %s = %q, %v", k, got, err)
		}
		if n, err := gc.Del(ctx, k).Result(); err != nil || n != 1 {
			t.Fatalf("ClusterClient DEL = %d, %v", n, err)
		}
	}
}

// A cluster client's keys reach their owners with no forwarding hop,
// whichever namespace they address: bare keys of the default namespace,
// keys spelled with the default namespace's own name (a key of its own, in
// its own slot), and keys of another namespace.
func TestClusterClients_ReachOwnersWithoutForwarding(t *testing.T) {
	c := startCluster(t, 3, nil)
	rc := rueidisCluster(t, respAddrs(c))
	before := forwards(t, c)
	for i := range 100 {
		for _, k := range []string{fmt.Sprintf("k%d", i), fmt.Sprintf("default:k%d", i), fmt.Sprintf("%s:k%d", clustertest.NSCache, i)} {
			if err := rc.Do(ctx, rc.B().Set().Key(k).Value(k).Build()).Error(); err != nil {
				t.Fatalf("SET %s: %v", k, err)
			}
			if got, err := rc.Do(ctx, rc.B().Get().Key(k).Build()).ToString(); err != nil || got != k {
				t.Fatalf("GET %s = %q, %v", k, got, err)
			}
		}
	}
	if n := forwards(t, c) - before; n != 0 {
		t.Fatalf("the nodes forwarded %d ops of a cluster client; every key should reach its owner directly", n)
	}
	// "default:k1" is not "k1": the default namespace's name is no prefix.
	if err := rc.Do(ctx, rc.B().Set().Key("k1").Value("bare").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if got, err := rc.Do(ctx, rc.B().Get().Key("default:k1").Build()).ToString(); err != nil || got != "default:k1" {
		t.Fatalf("GET default:k1 = %q, %v; want its own value", got, err)
	}
}

// Cluster clients under load follow a ring change: a node joins, another
// leaves gracefully; they get MOVED for the slots that moved, refresh their
// maps, and once refreshed see no error and reach every owner directly.
func TestClusterClients_FollowRingChangesUnderLoad(t *testing.T) {
	c := startCluster(t, 3, nil)
	addrs := respAddrs(c)
	rc := rueidisCluster(t, addrs)
	// go-redis learns of slots that moved from a MOVED reply or its periodic
	// reload (60 s by default); a node that left answers neither, so
	// docs/resp.md advises a short reload interval.
	gc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ClusterStateReloadInterval: 2 * time.Second})
	t.Cleanup(func() { gc.Close() })
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { // load through the changes; errors here are allowed
		defer close(done)
		for r := 0; ; r++ {
			select {
			case <-stop:
				return
			default:
			}
			_ = setThenGet(rc, gc, r)
		}
	}()
	added := c.AddNode()
	c.WaitConverged()
	c.Stop(0)
	c.WaitConverged()
	close(stop)
	<-done
	// The clients refresh their maps: rueidis on the MOVED replies and
	// connection errors it met, go-redis's ClusterClient on a MOVED or at
	// its periodic reload, so keys of the node that left fail through it
	// until then.
	refreshed := time.Now()
	deadline := refreshed.Add(20 * time.Second)
	for err := setThenGet(rc, gc, -1); err != nil; err = setThenGet(rc, gc, -1) {
		if time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		for _, i := range c.Up() {
			slots, serr := goRedis(t, c.Node(i).RESPAddr(), nil).ClusterSlots(ctx).Result()
			t.Logf("node %d (%s) CLUSTER SLOTS: %v %v", i, c.Node(i).RESPAddr(), slots, serr)
		}
		t.Fatalf("node 0 was at %s: %v", addrs[0], err)
	}
	t.Logf("the clients' maps were current %v after the change", time.Since(refreshed).Round(time.Millisecond))
	before := forwards(t, c)
	for r := range 3 {
		if err := setThenGet(rc, gc, 1000+r); err != nil {
			t.Fatalf("after the clients refreshed their maps: %v", err)
		}
	}
	if n := forwards(t, c) - before; n != 0 {
		t.Fatalf("%d ops forwarded after the refresh; the clients should reach each key's owner (node %d joined, node 0 left)", n, added)
	}
}

// FLUSHDB through one node empties every namespace on every node: keys
// written through one node and owned by all three read as missing through
// a third.
func TestFlushDB_EmptiesEveryNamespaceOnEveryNode(t *testing.T) {
	c := startCluster(t, 3, nil)
	writer, flusher, reader := goRedis(t, c.Node(0).RESPAddr(), nil), goRedis(t, c.Node(1).RESPAddr(), nil), goRedis(t, c.Node(2).RESPAddr(), nil)
	var keys []string
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("k%d", i), fmt.Sprintf("users:%d", i))
	}
	for _, k := range keys {
		if err := writer.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
	}
	if n, err := reader.Exists(ctx, keys...).Result(); err != nil || n != int64(len(keys)) {
		t.Fatalf("EXISTS before the flush = %d, %v; want %d", n, err, len(keys))
	}
	if err := flusher.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("FLUSHDB: %v", err)
	}
	if n, err := reader.Exists(ctx, keys...).Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS after FLUSHDB = %d, %v; want 0 on every node", n, err)
	}
	// Each node frees what the flush hid in the background: DBSIZE (and
	// the memory) drop to nothing, as in Redis.
	for i, r := range []*redis.Client{writer, flusher, reader} {
		clustertest.Eventually(t, 10*time.Second, func() error {
			n, err := r.DBSize(ctx).Result()
			if err == nil && n != 0 {
				err = fmt.Errorf("node %d's DBSIZE after FLUSHDB is %d, want 0", i, n)
			}
			return err
		})
	}
	// The namespaces work on: a key written after the flush is read back.
	if err := writer.Set(ctx, "users:after", "w", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := reader.Get(ctx, "users:after").Result(); err != nil || got != "w" {
		t.Fatalf("GET after the flush = %q, %v", got, err)
	}
}
