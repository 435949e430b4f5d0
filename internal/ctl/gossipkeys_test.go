package ctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"

	"github.com/ringcache/ringcache/internal/admin"
	"github.com/ringcache/ringcache/internal/gossipkey"
	"github.com/ringcache/ringcache/internal/membership"
	ringcachev1 "github.com/ringcache/ringcache/proto/ringcache/v1"
)

var (
	oldGossipKey = []byte("old-gossip-key-1")
	newGossipKey = []byte("new-gossip-key-2")
)

// keyNode is one node of a keyring test: the real Admin service over a
// real gossip keyring (each member alone on loopback), with a key file.
type keyNode struct {
	name, addr, file string
	ring             *membership.Membership
	failUse          atomic.Bool // UseKey fails while set
}

func (k *keyNode) Keys() [][]byte            { return k.ring.Keys() }
func (k *keyNode) InstallKey(b []byte) error { return k.ring.InstallKey(b) }
func (k *keyNode) RemoveKey(b []byte) error  { return k.ring.RemoveKey(b) }
func (k *keyNode) UseKey(b []byte) error {
	if k.failUse.Load() {
		return errors.New("injected failure")
	}
	return k.ring.UseKey(b)
}

// startKeyCluster serves n Admin services whose Members lists them all
// alive, each with keys (none: gossip not encrypted).
func startKeyCluster(t *testing.T, n int, keys ...[]byte) []*keyNode {
	t.Helper()
	dir := t.TempDir()
	nodes := make([]*keyNode, n)
	var members []*ringcachev1.Member
	lis := make([]func(), n)
	for i := range nodes {
		k := &keyNode{name: fmt.Sprintf("n%d", i+1), file: filepath.Join(dir, fmt.Sprintf("n%d.keys", i+1))}
		if len(keys) > 0 {
			if err := gossipkey.Write(k.file, keys, ""); err != nil {
				t.Fatal(err)
			}
		}
		ring, err := membership.New(membership.Config{Name: k.name, BindAddr: "127.0.0.1:0", Preset: membership.PresetLocal, Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ring.Shutdown() })
		k.ring = ring
		l := listen(t)
		k.addr = l.Addr().String()
		members = append(members, &ringcachev1.Member{Name: k.name, GrpcAddr: k.addr, State: ringcachev1.MemberState_MEMBER_STATE_ALIVE})
		lis[i] = func() {
			srv := grpc.NewServer()
			ringcachev1.RegisterAdminServer(srv, &membersAdmin{
				Server:  admin.New(admin.Config{Name: k.name, Keyring: func() admin.Keyring { return k }, KeyFile: k.file}),
				members: members,
			})
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(srv.Stop)
		}
		nodes[i] = k
	}
	for _, start := range lis {
		start()
	}
	return nodes
}

// membersAdmin is the Admin service with a fixed member list.
type membersAdmin struct {
	*admin.Server
	members []*ringcachev1.Member
}

func (m *membersAdmin) Members(context.Context, *ringcachev1.MembersRequest) (*ringcachev1.MembersResponse, error) {
	return &ringcachev1.MembersResponse{Members: m.members}, nil
}

func writeKeyFile(t *testing.T, key []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "new.key")
	if err := gossipkey.Write(p, [][]byte{key}, ""); err != nil {
		t.Fatal(err)
	}
	return p
}

// holds checks that every node's keyring and key file are keys, in order.
func holds(t *testing.T, nodes []*keyNode, keys ...[]byte) {
	t.Helper()
	for _, k := range nodes {
		file, err := gossipkey.Read(k.file)
		if err != nil {
			t.Fatal(err)
		}
		for what, got := range map[string][][]byte{"keyring": k.ring.Keys(), "key file": file} {
			if len(got) != len(keys) || !bytes.Equal(bytes.Join(got, nil), bytes.Join(keys, nil)) {
				t.Errorf("%s's %s: %d keys (primary %s), want %d (primary %s)", k.name, what, len(got), gossipkey.ID(got[0]), len(keys), gossipkey.ID(keys[0]))
			}
		}
	}
}

func TestGossipKeysRotate_SwitchesEveryMemberAndTheirKeyFiles(t *testing.T) {
	nodes := startKeyCluster(t, 3, oldGossipKey)
	newFile := writeKeyFile(t, newGossipKey)
	newID, oldID := gossipkey.ID(newGossipKey), gossipkey.ID(oldGossipKey)

	out, stderr, err := runCLI(t, "", "--addr", nodes[1].addr, "gossip-keys", "rotate", "--key-file", newFile)
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, stderr)
	}
	holds(t, nodes, newGossipKey)
	for _, want := range []string{
		"rotating the gossip keys of 3 alive members (n1, n2, n3) to key " + newID,
		"step 1/3: every member holds key " + newID,
		"step 2/3: every member encrypts with key " + newID,
		"step 3/3: removed key " + oldID + " from every member",
	} {
		if !strings.Contains(stderr, want+"\n") {
			t.Errorf("progress lacks %q:\n%s", want, stderr)
		}
	}
	want := [][]string{{"NODE", "PRIMARY", "OTHER KEYS", "KEY FILE"}}
	for _, k := range nodes {
		want = append(want, []string{k.name, newID, "-", k.file})
	}
	assertRows(t, out, want)

	// Again: every step is done already, and nothing changes.
	if _, stderr, err := runCLI(t, "", "--addr", nodes[0].addr, "gossip-keys", "rotate", "--key-file", newFile); err != nil || !strings.Contains(stderr, "step 3/3: no other key to remove") {
		t.Fatalf("second rotate: %v\n%s", err, stderr)
	}
	holds(t, nodes, newGossipKey)
}

func TestGossipKeysRotate_StopsAtAFailedStepAndResumes(t *testing.T) {
	nodes := startKeyCluster(t, 3, oldGossipKey)
	newFile := writeKeyFile(t, newGossipKey)
	nodes[2].failUse.Store(true)

	_, _, err := runCLI(t, "", "--addr", nodes[0].addr, "gossip-keys", "rotate", "--key-file", newFile)
	if err == nil || !strings.Contains(err.Error(), "step 2/3") || !strings.Contains(err.Error(), "use of n3") || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("rotate with n3 failing step 2: %v; want an error naming step 2 and n3", err)
	}
	// n1 and n2 switched, n3 did not; nobody lost the old key.
	holds(t, nodes[:2], newGossipKey, oldGossipKey)
	holds(t, nodes[2:], oldGossipKey, newGossipKey)
	out := mustRun(t, "--addr", nodes[0].addr, "gossip-keys")
	if !strings.Contains(out, "the members' keyrings differ") {
		t.Errorf("list after a half rotation does not say the keyrings differ:\n%s", out)
	}

	nodes[2].failUse.Store(false)
	if _, stderr, err := runCLI(t, "", "--addr", nodes[0].addr, "gossip-keys", "rotate", "--key-file", newFile); err != nil {
		t.Fatalf("rotate again: %v\n%s", err, stderr)
	}
	holds(t, nodes, newGossipKey)
}

func TestGossipKeys_SingleStepsAndJSON(t *testing.T) {
	nodes := startKeyCluster(t, 2, oldGossipKey)
	newFile := writeKeyFile(t, newGossipKey)
	newID, oldID := gossipkey.ID(newGossipKey), gossipkey.ID(oldGossipKey)
	seed := nodes[0].addr

	newText, err := os.ReadFile(newFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := runCLI(t, string(newText), "--addr", seed, "gossip-keys", "install", "--key-file", "-"); err != nil {
		t.Fatalf("install --key-file - (stdin): %v\n%s", err, stderr)
	}
	holds(t, nodes, oldGossipKey, newGossipKey)
	if _, _, err := runCLI(t, "", "--addr", seed, "gossip-keys", "remove", oldID); err == nil || !strings.Contains(err.Error(), "FAILED_PRECONDITION") {
		t.Fatalf("removing the primary: %v, want FAILED_PRECONDITION", err)
	}
	mustRun(t, "--addr", seed, "gossip-keys", "use", "--key-file", newFile, "--node-only")
	holds(t, nodes[:1], newGossipKey, oldGossipKey)
	holds(t, nodes[1:], oldGossipKey, newGossipKey)
	mustRun(t, "--addr", seed, "gossip-keys", "use", newID)
	mustRun(t, "--addr", seed, "gossip-keys", "remove", oldID)
	holds(t, nodes, newGossipKey)

	out := mustRun(t, "--addr", seed, "gossip-keys", "list", "-o", "json")
	var want []string
	for _, k := range nodes {
		want = append(want, fmt.Sprintf(`{"node":%q,"addr":%q,"encrypted":true,"keys":[{"id":%q,"primary":true}],"key_file":%q}`, k.name, k.addr, newID, k.file))
	}
	assertJSON(t, out, "["+strings.Join(want, ",")+"]")

	if _, _, err := runCLI(t, "", "--addr", seed, "gossip-keys", "use", newID, "--key-file", newFile); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("use with an ID and --key-file: %v", err)
	}
}

func TestGossipKeys_AKeyFileOutOfStepFailsTheCommand(t *testing.T) {
	nodes := startKeyCluster(t, 2, oldGossipKey)
	if err := gossipkey.Write(nodes[1].file, [][]byte{newGossipKey}, ""); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "", "--addr", nodes[0].addr, "gossip-keys")
	if err == nil || !strings.Contains(err.Error(), "n2: ") || strings.Contains(err.Error(), "n1: ") {
		t.Fatalf("list with n2's key file edited: %v; want an error naming n2 only", err)
	}
	if !strings.Contains(out, nodes[1].file+" (NOT IN STEP)") {
		t.Errorf("the table does not flag n2's key file:\n%s", out)
	}
}

func TestGossipKeysRotate_RefusesUnencryptedClustersAndBadKeyFiles(t *testing.T) {
	nodes := startKeyCluster(t, 2)
	newFile := writeKeyFile(t, newGossipKey)
	_, _, err := runCLI(t, "", "--addr", nodes[0].addr, "gossip-keys", "rotate", "--key-file", newFile)
	if err == nil || !strings.Contains(err.Error(), "not encrypted") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("rotate of an unencrypted cluster: %v", err)
	}
	two := filepath.Join(t.TempDir(), "two.keys")
	if err := gossipkey.Write(two, [][]byte{newGossipKey, oldGossipKey}, ""); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{two: "holds 2 keys", "": "--key-file is required", filepath.Join(t.TempDir(), "none"): "no such file"} {
		if _, _, err := runCLI(t, "", "--addr", nodes[0].addr, "gossip-keys", "rotate", "--key-file", file); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--key-file %q: %v, want %q", file, err, want)
		}
	}
	if _, err := os.Stat(nodes[0].file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a key file appeared on an unencrypted node: %v", err)
	}
}

func TestGossipKeys_NoKeyInTheClearToAnotherHost(t *testing.T) {
	// No connection: the check comes before any call.
	o := &options{timeout: DefaultTimeout}
	if _, err := o.installKey(t.Context(), &node{addr: "192.0.2.1:7101"}, newGossipKey); err == nil || !strings.Contains(err.Error(), "in the clear") {
		t.Fatalf("install to 192.0.2.1 without TLS: %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:1": true, "[::1]:1": true, "localhost:1": true, "10.0.0.1:1": false, "n1:1": false, "bad": false} {
		if loopback(addr) != want {
			t.Errorf("loopback(%q) = %v, want %v", addr, !want, want)
		}
	}
}
