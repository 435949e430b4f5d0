package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/auth"
	"github.com/ringcache/ringcache/internal/certs"
	"github.com/ringcache/ringcache/internal/reason"
	"github.com/ringcache/ringcache/pkg/client"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// secureConfig is the auth section of the secure cluster: web reads users
// and reads and writes sessions; ops administers; limited reads sessions
// at 5 ops/s; the nodes' certificates (n1, n2, n3) are peers; a caller
// without credentials may do nothing. %s is the tokens file.
const secureConfig = `
auth:
  tokens_file: %s
  principals:
    web: {namespaces: {users: [read], sessions: [read, write]}}
    ops: {admin: true}
    limited: {namespaces: {sessions: [read]}, rate: 5, burst: 5}
    "n*": {peer: true}
  anonymous: {namespaces: {}}
`

const (
	opsToken     = "ops-secret-token"
	limitedToken = "limited-secret-token"
)

// secureCluster is a cluster whose nodes serve mutual TLS and the auth
// section above, with the files they were given.
type secureCluster struct {
	*cluster
	ca      *certs.CA
	caFile  string
	pool    *x509.CertPool
	web     tls.Certificate // client certificate of principal web
	keyFile string          // gossip keys
}

func writePair(t *testing.T, dir, name string, p certs.Pair) (string, string) {
	t.Helper()
	crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := certs.WritePair(crt, key, p, true); err != nil {
		t.Fatal(err)
	}
	return crt, key
}

func startSecureCluster(t *testing.T, n int) *secureCluster {
	t.Helper()
	c := newCluster(t)
	sc := &secureCluster{cluster: c}
	dir := filepath.Join(c.dir, "certs")
	ca, caPair, err := certs.NewCA("", 0)
	if err != nil {
		t.Fatal(err)
	}
	sc.ca = ca
	sc.caFile, _ = writePair(t, dir, "ca", caPair)
	sc.pool = x509.NewCertPool()
	sc.pool.AddCert(caPair.Cert)
	for i := 1; i <= n; i++ {
		p, err := ca.Node(fmt.Sprintf("n%d", i), []string{"127.0.0.1"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		writePair(t, dir, fmt.Sprintf("n%d", i), p)
	}
	web, err := ca.Client("web", 0)
	if err != nil {
		t.Fatal(err)
	}
	if sc.web, err = tls.X509KeyPair(web.CertPEM, web.KeyPEM); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(c.dir, "tokens")
	body := "ops " + auth.HashToken(opsToken) + "\nlimited " + auth.HashToken(limitedToken) + "\n"
	if err := os.WriteFile(tokens, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	sc.keyFile = filepath.Join(c.dir, "gossip.keys")
	writeGossipKeys(t, sc.keyFile, gossipKey(1))
	c.perNode = func(name string) []string {
		return []string{
			"--tls-cert", filepath.Join(dir, name+".crt"), "--tls-key", filepath.Join(dir, name+".key"),
			"--audit-log", filepath.Join(c.dir, name+".audit"),
		}
	}
	c.nodeFlags = []string{"--tls-client-ca", sc.caFile, "--gossip-key-file", sc.keyFile}
	c.ctlFlags = []string{"--tls-ca", sc.caFile, "--token", opsToken}
	c.creds = credentials.NewTLS(&tls.Config{RootCAs: sc.pool, MinVersion: tls.VersionTLS13})
	c.form(n, fmt.Sprintf(secureConfig, tokens))
	return sc
}

func gossipKey(i int) []byte { return []byte(fmt.Sprintf("gossip-key-%05d", i)) } // 16 bytes

func writeGossipKeys(t *testing.T, path string, keys ...[]byte) {
	t.Helper()
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// dial connects to addr over TLS, presenting cert if given and sending
// token if not empty.
func (sc *secureCluster) dial(t *testing.T, addr string, cert *tls.Certificate, token string) *grpc.ClientConn {
	t.Helper()
	cfg := &tls.Config{RootCAs: sc.pool, MinVersion: tls.VersionTLS13}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(cfg))}
	if token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(token)))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

type tokenCreds string

func (tc tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(tc)}, nil
}
func (tokenCreds) RequireTransportSecurity() bool { return true }

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: %v, want %v", what, err, code)
	}
}

func TestSecure_PrincipalsRolesAndThePeerPlane(t *testing.T) {
	sc := startSecureCluster(t, 3)
	addr := sc.nodes[0].grpcAddr
	ctx := context.Background()
	anon := pb.NewCacheClient(sc.dial(t, addr, nil, ""))
	webConn := sc.dial(t, addr, &sc.web, "")
	web := pb.NewCacheClient(webConn)

	_, err := anon.Get(ctx, &pb.GetRequest{Namespace: "users", Key: "1"})
	wantCode(t, "a call with neither a client certificate nor a token", err, codes.Unauthenticated)
	if reason.Of(err) != reason.Unauthenticated {
		t.Fatalf("reason %q, want %s", reason.Of(err), reason.Unauthenticated)
	}
	r, err := web.Get(ctx, &pb.GetRequest{Namespace: "users", Key: "1"})
	if err != nil || !r.Found {
		t.Fatalf("web reads users: %v %v", r, err)
	}
	_, err = web.Set(ctx, &pb.SetRequest{Namespace: "users", Key: "1", Value: []byte("x")})
	wantCode(t, "web sets users", err, codes.PermissionDenied)
	if !strings.Contains(status.Convert(err).Message(), `may not write namespace "users"`) {
		t.Fatalf("denial %q does not name the missing role and namespace", status.Convert(err).Message())
	}
	if _, err := web.Set(ctx, &pb.SetRequest{Namespace: "sessions", Key: "s", Value: []byte("v")}); err != nil {
		t.Fatalf("web sets sessions: %v", err)
	}
	_, err = pb.NewAdminClient(webConn).Members(ctx, &pb.MembersRequest{})
	wantCode(t, "web calls Admin", err, codes.PermissionDenied)
	_, err = pb.NewPeerClient(webConn).Forward(ctx, &pb.ForwardRequest{From: "evil", Hlc: 1})
	wantCode(t, "web calls Peer", err, codes.PermissionDenied)

	// A token principal over TLS without a client certificate.
	ops := sc.dial(t, addr, nil, opsToken)
	if m, err := pb.NewAdminClient(ops).Members(ctx, &pb.MembersRequest{}); err != nil || len(m.Members) != 3 {
		t.Fatalf("ops calls Admin: %v %v", m, err)
	}
	_, err = pb.NewCacheClient(sc.dial(t, addr, nil, "not-a-token")).Get(ctx, &pb.GetRequest{Namespace: "sessions", Key: "s"})
	wantCode(t, "a bad token", err, codes.Unauthenticated)

	// The clock poisoning of issue 11: refused outright from a non-peer...
	poison := func(conn *grpc.ClientConn) error {
		_, err := pb.NewPeerClient(conn).Forward(ctx, &pb.ForwardRequest{From: "n9", Hlc: math.MaxUint64 - 1, Ops: []*pb.PipelineOp{
			{Id: 0, Op: &pb.PipelineOp_Set{Set: &pb.SetRequest{Namespace: "sessions", Key: "k", Value: []byte("poisoned")}}},
		}})
		return err
	}
	if _, err := web.Set(ctx, &pb.SetRequest{Namespace: "sessions", Key: "k", Value: []byte("v1")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "a poisoned Forward from web", poison(webConn), codes.PermissionDenied)
	// ...and from a peer, refused by the offset bound: never adopted.
	n2, err := tls.LoadX509KeyPair(filepath.Join(sc.dir, "certs", "n2.crt"), filepath.Join(sc.dir, "certs", "n2.key"))
	if err != nil {
		t.Fatal(err)
	}
	err = poison(sc.dial(t, addr, &n2, ""))
	wantCode(t, "a poisoned Forward from a peer", err, codes.FailedPrecondition)
	if reason.Of(err) != reason.ClockSkew {
		t.Fatalf("reason %q, want %s", reason.Of(err), reason.ClockSkew)
	}
	for _, p := range sc.nodes { // a later write wins, through every node
		if _, err := pb.NewCacheClient(sc.dial(t, p.grpcAddr, &sc.web, "")).Set(ctx, &pb.SetRequest{Namespace: "sessions", Key: "k", Value: []byte("v2-" + p.name)}); err != nil {
			t.Fatal(err)
		}
		got, err := web.Get(ctx, &pb.GetRequest{Namespace: "sessions", Key: "k"})
		if err != nil || string(got.Value) != "v2-"+p.name {
			t.Fatalf("after the poisoned Forward, Get = %q, %v; want the later write v2-%s", got.GetValue(), err, p.name)
		}
	}

	// Rate limits: limited is refused past its rate, web is not.
	limited := pb.NewCacheClient(sc.dial(t, addr, nil, limitedToken))
	var refused error
	for range 50 {
		if _, err := limited.Get(ctx, &pb.GetRequest{Namespace: "sessions", Key: "s"}); err != nil {
			refused = err
			break
		}
	}
	wantCode(t, "limited past its rate", refused, codes.ResourceExhausted)
	if reason.Of(refused) != reason.RateLimited || reason.RetryDelay(refused) <= 0 {
		t.Fatalf("rate-limited error carries reason %q and retry delay %v", reason.Of(refused), reason.RetryDelay(refused))
	}
	for range 50 {
		if _, err := web.Get(ctx, &pb.GetRequest{Namespace: "sessions", Key: "s"}); err != nil {
			t.Fatalf("web was limited by limited's rate: %v", err)
		}
	}

	// The audit log holds the admin call and the denied calls, and no log
	// or audit line holds a key or value used above.
	var audit strings.Builder
	for _, p := range sc.nodes {
		b, _ := os.ReadFile(filepath.Join(sc.dir, p.name+".audit"))
		audit.Write(b)
	}
	for _, want := range []string{`"method":"/ringcache.v1.Admin/Members"`, `"decision":"deny"`, `"principal":"web"`} {
		if !strings.Contains(audit.String(), want) {
			t.Fatalf("audit log lacks %s:\n%s", want, audit.String())
		}
	}
	for _, p := range sc.nodes {
		all := p.log() + audit.String()
		for _, secret := range []string{"poisoned", "v2-n", opsToken, limitedToken} {
			if strings.Contains(all, secret) {
				t.Fatalf("%s's log or the audit log contains %q", p.name, secret)
			}
		}
	}
}

func TestSecure_PlaintextOffLoopbackIsRefused(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(ringcachedBin, "--name", "x", "--grpc-addr", "0.0.0.0:0", "--gossip-addr", "127.0.0.1:0",
		"--admin-addr", "", "--data-dir", dir)
	out, err := cmd.CombinedOutput()
	if err == nil || cmd.ProcessState.ExitCode() == 0 {
		t.Fatalf("ringcached on 0.0.0.0 without TLS started (exit 0):\n%s", out)
	}
	for _, want := range []string{"--tls-cert", "--insecure"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the refusal does not say what to do (%s):\n%s", want, out)
		}
	}
}

// leafSerial dials addr over TLS and returns the serial of the
// certificate the node presents.
func (sc *secureCluster) leafSerial(addr string) (string, error) {
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: sc.pool, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{sc.web}, NextProtos: []string{"h2"}})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
}

func TestSecure_RotationUnderLoad(t *testing.T) {
	sc := startSecureCluster(t, 3)
	dir := filepath.Join(sc.dir, "certs")
	var addrs []string
	for _, p := range sc.nodes {
		addrs = append(addrs, p.grpcAddr)
	}
	webCrt, webKey := writePair(t, dir, "web", mustClient(t, sc.ca, "web"))
	c, err := client.New(client.Options{Seeds: addrs, TLS: &client.TLSOptions{CAFile: sc.caFile, CertFile: webCrt, KeyFile: webKey}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Load through every node, counting failures, until the test is done.
	ctx, stop := context.WithCancel(context.Background())
	var calls, failures atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%d-%d", w, i%50)
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				err := c.Set(cctx, "sessions", key, []byte("v"), 0)
				if err == nil {
					_, _, err = c.Get(cctx, "sessions", key)
				}
				cancel()
				calls.Add(1)
				if err != nil && ctx.Err() == nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	// Members stay alive throughout, as every node sees them.
	var lost atomic.Pointer[string]
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, p := range sc.nodes {
				var m membersJSON
				if _, err := sc.ctlJSONErr(p.grpcAddr, &m, "members"); err == nil && m.count("alive") != 3 {
					msg := fmt.Sprintf("%s sees %d alive: %+v", p.name, m.count("alive"), m.Members)
					lost.CompareAndSwap(nil, &msg)
				}
			}
		}
	})

	// Certificates: new serials for every node, written in place.
	old := map[string]string{}
	for _, p := range sc.nodes {
		s, err := sc.leafSerial(p.grpcAddr)
		if err != nil {
			t.Fatal(err)
		}
		old[p.name] = s
		np, err := sc.ca.Node(p.name, []string{"127.0.0.1"}, 0)
		if err != nil {
			t.Fatal(err)
		}
		writePair(t, dir, p.name, np)
		eventually(t, 10*time.Second, p.name+" presents its new certificate", func() error {
			s, err := sc.leafSerial(p.grpcAddr)
			if err != nil {
				return err
			}
			if s != np.Cert.SerialNumber.String() {
				return fmt.Errorf("serial %s, want %s", s, np.Cert.SerialNumber)
			}
			return nil
		})
	}

	// Gossip keys: install, switch, remove, each step on every node (SIGHUP)
	// before the next.
	for step, keys := range [][][]byte{{gossipKey(1), gossipKey(2)}, {gossipKey(2), gossipKey(1)}, {gossipKey(2)}} {
		writeGossipKeys(t, sc.keyFile, keys...)
		for _, p := range sc.nodes {
			if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			eventually(t, 10*time.Second, fmt.Sprintf("%s reloads its gossip keys (step %d)", p.name, step+1), func() error {
				if n := strings.Count(p.log(), "SIGHUP: gossip keys reloaded"); n < step+1 {
					return fmt.Errorf("%d reloads logged", n)
				}
				return nil
			})
		}
	}
	// Some load after the last step, then stop.
	after := calls.Load()
	eventually(t, 10*time.Second, "calls go on after the rotations", func() error {
		if calls.Load() < after+100 {
			return fmt.Errorf("%d calls since", calls.Load()-after)
		}
		return nil
	})
	stop()
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d of %d calls failed during the rotations; first: %v", n, calls.Load(), *firstErr.Load())
	}
	if l := lost.Load(); l != nil {
		t.Fatalf("a member was lost during the gossip key rotation: %s", *l)
	}
	t.Logf("%d calls, none failed, while every node's certificate and the gossip key were rotated", calls.Load())
}

func mustClient(t *testing.T, ca *certs.CA, principal string) certs.Pair {
	t.Helper()
	p, err := ca.Client(principal, 0)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
