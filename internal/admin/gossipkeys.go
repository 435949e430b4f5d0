package admin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ringcache/ringcache/internal/gossipkey"
	"github.com/ringcache/ringcache/internal/membership"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Admin RPCs of gossip key rotation (ringcachectl gossip-keys). Each
// changes this node's keyring only; the ctl runs each step on every member
// before the next (internal/membership says why that order).

// Keyring is the node's gossip keyring: *membership.Membership. Keys
// returns copies, primary first, or nil when gossip is not encrypted; the
// others fail with membership.ErrNotEncrypted then.
type Keyring interface {
	Keys() [][]byte
	InstallKey(key []byte) error
	UseKey(key []byte) error
	RemoveKey(key []byte) error
}

// GossipKeys implements pb.AdminServer.
func (s *Server) GossipKeys(context.Context, *pb.GossipKeysRequest) (*pb.GossipKeysResponse, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	keys := s.cfg.Keyring().Keys()
	kr := s.keyring(keys)
	if s.cfg.KeyFile != "" && len(keys) > 0 {
		switch cur, err := gossipkey.Read(s.cfg.KeyFile); {
		case err != nil:
			kr.KeyFileError = err.Error()
		case !sameKeys(cur, keys):
			kr.KeyFileError = s.cfg.KeyFile + " holds other keys, or another primary, than the keyring in use"
		}
	}
	return &pb.GossipKeysResponse{Keyring: kr}, nil
}

// InstallGossipKey implements pb.AdminServer. It refuses a key that came
// over a plaintext connection from another host: whoever watched the wire
// would hold the cluster's next gossip key.
func (s *Server) InstallGossipKey(ctx context.Context, req *pb.InstallGossipKeyRequest) (*pb.InstallGossipKeyResponse, error) {
	if err := inTheClear(ctx); err != nil {
		return nil, err
	}
	if !gossipkey.ValidLen(len(req.GetKey())) {
		return nil, status.Errorf(codes.InvalidArgument, "a gossip key is 16, 24 or 32 bytes (AES-128, -192 or -256), got %d", len(req.GetKey()))
	}
	kr, err := s.changeKeys(func(kr Keyring) error { return kr.InstallKey(req.GetKey()) })
	if err != nil {
		return nil, err
	}
	return &pb.InstallGossipKeyResponse{Keyring: kr}, nil
}

// UseGossipKey implements pb.AdminServer.
func (s *Server) UseGossipKey(_ context.Context, req *pb.UseGossipKeyRequest) (*pb.UseGossipKeyResponse, error) {
	kr, err := s.changeKeys(func(kr Keyring) error {
		k := keyByID(kr.Keys(), req.GetId())
		if k == nil {
			return fmt.Errorf("%w: no key with fingerprint %q on %s", membership.ErrKeyNotInstalled, req.GetId(), s.cfg.Name)
		}
		return kr.UseKey(k)
	})
	if err != nil {
		return nil, err
	}
	return &pb.UseGossipKeyResponse{Keyring: kr}, nil
}

// RemoveGossipKey implements pb.AdminServer. A key that is not installed
// is not an error: the keyring is as asked.
func (s *Server) RemoveGossipKey(_ context.Context, req *pb.RemoveGossipKeyRequest) (*pb.RemoveGossipKeyResponse, error) {
	kr, err := s.changeKeys(func(kr Keyring) error {
		if k := keyByID(kr.Keys(), req.GetId()); k != nil {
			return kr.RemoveKey(k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &pb.RemoveGossipKeyResponse{Keyring: kr}, nil
}

// changeKeys runs change on the keyring and then rewrites the key file
// with the keyring it leaves, when the file holds another, both under
// keyMu so that the file follows the changes in their order. The file is
// written after the change: if the node dies in between, the file is one
// step of a rotation behind, and a node restarted from it still talks to a
// cluster at the next step. A file that cannot be written is reported in
// the answer and logged; the change stays in force.
func (s *Server) changeKeys(change func(Keyring) error) (*pb.GossipKeyring, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	kr := s.cfg.Keyring()
	if err := change(kr); err != nil {
		return nil, keyStatus(err)
	}
	keys := kr.Keys()
	out := s.keyring(keys)
	if s.cfg.KeyFile == "" {
		return out, nil
	}
	if cur, err := gossipkey.Read(s.cfg.KeyFile); err == nil && sameKeys(cur, keys) {
		return out, nil
	}
	comment := fmt.Sprintf("Gossip keys of %s, the first primary: rewritten by ringcached at %s\n"+
		"after an Admin call changed them (ringcachectl gossip-keys). Keep the file in\n"+
		"step with the keyring in use: a node restarted with an older key list may be\n"+
		"refused by its cluster.", s.cfg.Name, time.Now().UTC().Format(time.RFC3339))
	if err := gossipkey.Write(s.cfg.KeyFile, keys, comment); err != nil {
		out.KeyFileError = fmt.Sprintf("the keyring changed but %s could not be rewritten: %v", s.cfg.KeyFile, err)
		s.log().Error("gossip keys changed in memory but not in the key file: update it before this node restarts",
			"file", s.cfg.KeyFile, "err", err, "primary", gossipkey.ID(keys[0]), "keys", len(keys))
		return out, nil
	}
	s.log().Info("gossip keys changed by an Admin call; key file rewritten",
		"file", s.cfg.KeyFile, "primary", gossipkey.ID(keys[0]), "keys", len(keys))
	return out, nil
}

// keyring is the fingerprints of keys, primary first.
func (s *Server) keyring(keys [][]byte) *pb.GossipKeyring {
	kr := &pb.GossipKeyring{Node: s.cfg.Name, Encrypted: len(keys) > 0, KeyFile: s.cfg.KeyFile}
	for i, k := range keys {
		kr.Keys = append(kr.Keys, &pb.GossipKey{Id: gossipkey.ID(k), Primary: i == 0})
	}
	return kr
}

func keyByID(keys [][]byte, id string) []byte {
	for _, k := range keys {
		if gossipkey.ID(k) == id {
			return k
		}
	}
	return nil
}

// keyStatus maps a keyring error to its gRPC status.
func keyStatus(err error) error {
	switch {
	case errors.Is(err, membership.ErrBadKey):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, membership.ErrNotEncrypted), errors.Is(err, membership.ErrKeyNotInstalled),
		errors.Is(err, membership.ErrRemovePrimary):
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// inTheClear refuses a call that came without TLS from an address other
// than loopback.
func inTheClear(ctx context.Context) error {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil // not over gRPC: a test calling the method
	}
	if _, tls := p.AuthInfo.(credentials.TLSInfo); tls {
		return nil
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok && a.IP.IsLoopback() {
		return nil
	}
	return status.Error(codes.FailedPrecondition, "refusing a gossip key sent in the clear from another host: "+
		"anyone on the path has read it, so do not use this key; call over TLS (the node's --tls-cert, the ctl's --tls-ca), "+
		"or rotate by editing --gossip-key-file and sending SIGHUP")
}

// sameKeys reports whether a and b hold the same keys in the same order.
func sameKeys(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
