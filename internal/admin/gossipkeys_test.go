package admin

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/gossipkey"
	"github.com/ringcache/ringcache/internal/membership"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

var (
	oldKey = []byte("old-gossip-key-1")
	newKey = []byte("new-gossip-key-2")
)

// keyServer returns an Admin service over a real gossip member (alone,
// on loopback) started with keys, and its key file.
func keyServer(t *testing.T, keys ...[]byte) (*Server, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "gossip.keys")
	if len(keys) > 0 {
		if err := gossipkey.Write(file, keys, "test"); err != nil {
			t.Fatal(err)
		}
	}
	m, err := membership.New(membership.Config{Name: "n1", BindAddr: "127.0.0.1:0", Preset: membership.PresetLocal, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return New(Config{Name: "n1", Keyring: func() Keyring { return m }, KeyFile: file}), file
}

func ids(kr *pb.GossipKeyring) []string {
	var out []string
	for _, k := range kr.GetKeys() {
		id := k.GetId()
		if k.GetPrimary() {
			id += "*"
		}
		out = append(out, id)
	}
	return out
}

func wantCode(t *testing.T, what string, err error, code codes.Code) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("%s: %v, want %v", what, err, code)
	}
}

func TestGossipKeys_RotationStepsAndTheKeyFileFollows(t *testing.T) {
	s, file := keyServer(t, oldKey)
	ctx := context.Background()
	oldID, newID := gossipkey.ID(oldKey), gossipkey.ID(newKey)
	fileHolds := func(step string, want ...[]byte) {
		t.Helper()
		got, err := gossipkey.Read(file)
		if err != nil || !sameKeys(got, want) {
			t.Fatalf("%s: key file holds %d keys (%v), want %d in order", step, len(got), err, len(want))
		}
	}

	got, err := s.GossipKeys(ctx, &pb.GossipKeysRequest{})
	if err != nil || strings.Join(ids(got.Keyring), ",") != oldID+"*" || !got.Keyring.Encrypted || got.Keyring.KeyFileError != "" {
		t.Fatalf("list: %v %v", got, err)
	}

	in, err := s.InstallGossipKey(ctx, &pb.InstallGossipKeyRequest{Key: newKey})
	if err != nil || strings.Join(ids(in.Keyring), ",") != oldID+"*,"+newID {
		t.Fatalf("install: %v %v", in, err)
	}
	fileHolds("install", oldKey, newKey)

	_, err = s.RemoveGossipKey(ctx, &pb.RemoveGossipKeyRequest{Id: oldID})
	wantCode(t, "removing the primary", err, codes.FailedPrecondition)
	_, err = s.UseGossipKey(ctx, &pb.UseGossipKeyRequest{Id: "0123456789abcdef"})
	wantCode(t, "using a key not installed", err, codes.FailedPrecondition)

	use, err := s.UseGossipKey(ctx, &pb.UseGossipKeyRequest{Id: newID})
	if err != nil || ids(use.Keyring)[0] != newID+"*" {
		t.Fatalf("use: %v %v", use, err)
	}
	fileHolds("use", newKey, oldKey)

	rm, err := s.RemoveGossipKey(ctx, &pb.RemoveGossipKeyRequest{Id: oldID})
	if err != nil || strings.Join(ids(rm.Keyring), ",") != newID+"*" {
		t.Fatalf("remove: %v %v", rm, err)
	}
	fileHolds("remove", newKey)
	if _, err := s.RemoveGossipKey(ctx, &pb.RemoveGossipKeyRequest{Id: oldID}); err != nil {
		t.Fatalf("removing a key no longer installed: %v, want no error", err)
	}

	// An edited file is reported as out of step, never silently trusted.
	if err := gossipkey.Write(file, [][]byte{oldKey}, ""); err != nil {
		t.Fatal(err)
	}
	got, err = s.GossipKeys(ctx, &pb.GossipKeysRequest{})
	if err != nil || got.Keyring.KeyFileError == "" {
		t.Fatalf("list with a stale key file: %v %v, want key_file_error", got, err)
	}
}

func TestGossipKeys_AKeyFileThatCannotBeWrittenIsReported(t *testing.T) {
	s, file := keyServer(t, oldKey)
	s.cfg.KeyFile = filepath.Join(file, "not-a-dir", "gossip.keys")
	in, err := s.InstallGossipKey(context.Background(), &pb.InstallGossipKeyRequest{Key: newKey})
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Keyring.Keys) != 2 || !strings.Contains(in.Keyring.KeyFileError, "could not be rewritten") {
		t.Fatalf("install with an unwritable key file: %v; want the key installed and key_file_error set", in)
	}
}

func TestGossipKeys_RefusesBadKeysAndUnencryptedNodes(t *testing.T) {
	s, _ := keyServer(t, oldKey)
	ctx := context.Background()
	_, err := s.InstallGossipKey(ctx, &pb.InstallGossipKeyRequest{Key: []byte("short")})
	wantCode(t, "a 5-byte key", err, codes.InvalidArgument)

	plain, _ := keyServer(t)
	got, err := plain.GossipKeys(ctx, &pb.GossipKeysRequest{})
	if err != nil || got.Keyring.Encrypted || len(got.Keyring.Keys) != 0 {
		t.Fatalf("list on an unencrypted node: %v %v", got, err)
	}
	_, err = plain.InstallGossipKey(ctx, &pb.InstallGossipKeyRequest{Key: newKey})
	wantCode(t, "install on an unencrypted node", err, codes.FailedPrecondition)
}

func TestGossipKeys_NoKeyInTheClearFromAnotherHost(t *testing.T) {
	s, file := keyServer(t, oldKey)
	before, _ := os.ReadFile(file)
	remote := &net.TCPAddr{IP: net.ParseIP("10.1.2.3"), Port: 5555}
	ctx := peer.NewContext(context.Background(), &peer.Peer{Addr: remote})
	_, err := s.InstallGossipKey(ctx, &pb.InstallGossipKeyRequest{Key: newKey})
	wantCode(t, "a key in the clear from 10.1.2.3", err, codes.FailedPrecondition)
	if after, _ := os.ReadFile(file); !bytes.Equal(before, after) {
		t.Fatal("the refused key reached the key file")
	}

	for name, p := range map[string]*peer.Peer{
		"over TLS":      {Addr: remote, AuthInfo: credentials.TLSInfo{}},
		"from loopback": {Addr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 5555}},
	} {
		if _, err := s.InstallGossipKey(peer.NewContext(context.Background(), p), &pb.InstallGossipKeyRequest{Key: newKey}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
