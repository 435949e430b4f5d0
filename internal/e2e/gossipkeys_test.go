package e2e

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/gossipkey"
)

type keyringJSON struct {
	Node string `json:"node"`
	Keys []struct {
		ID      string `json:"id"`
		Primary bool   `json:"primary"`
	} `json:"keys"`
	KeyFile      string `json:"key_file"`
	KeyFileError string `json:"key_file_error"`
}

// TestGossipKeys_CtlRotatesThreeNodesAndARestartKeepsTheNewKey rotates the
// gossip key of three real nodes (mutual TLS, auth, --gossip-key-file) with
// `ringcachectl gossip-keys rotate`, as principal ops, while every node is
// asked for its members all along: no member is lost. The nodes rewrite
// their key file, so a node restarted afterwards starts with the new key
// and rejoins; no log holds the key.
func TestGossipKeys_CtlRotatesThreeNodesAndARestartKeepsTheNewKey(t *testing.T) {
	t.Parallel()
	sc := startSecureCluster(t, 3)
	newKey := gossipKey(2)
	newFile := filepath.Join(sc.dir, "new.key")
	writeGossipKeys(t, newFile, newKey)
	newID, oldID := gossipkey.ID(newKey), gossipkey.ID(gossipKey(1))

	// Members stay alive throughout, as every node sees them.
	ctx, stop := context.WithCancel(context.Background())
	var lost atomic.Pointer[string]
	var polls atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, p := range sc.nodes {
				var m membersJSON
				if _, err := sc.ctlJSONErr(p.grpcAddr, &m, "members"); err == nil && m.count("alive") != 3 {
					msg := fmt.Sprintf("%s sees %d alive: %+v", p.name, m.count("alive"), m.Members)
					lost.CompareAndSwap(nil, &msg)
				}
				polls.Add(1)
			}
		}
	})

	res, err := ctl(sc.nodes[0].grpcAddr, nil, append(append([]string(nil), sc.ctlFlags...), "gossip-keys", "rotate", "--key-file", newFile)...)
	if err != nil || res.exitCode != 0 {
		stop()
		wg.Wait()
		t.Fatalf("gossip-keys rotate: %v, exit %d\n%s%s", err, res.exitCode, res.stdout, res.stderr)
	}
	t.Logf("gossip-keys rotate:\n%s%s", res.stderr, res.stdout)
	for _, want := range []string{"step 1/3: every member holds key " + newID, "step 2/3: every member encrypts with key " + newID, "step 3/3: removed key " + oldID} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("rotate's progress lacks %q", want)
		}
	}
	// Gossip goes on under the new key alone: wait for a few more rounds
	// of member polls before judging.
	after := polls.Load()
	eventually(t, 20*time.Second, "members polled after the rotation", func() error {
		if polls.Load() < after+9 {
			return fmt.Errorf("%d polls since", polls.Load()-after)
		}
		return nil
	})
	stop()
	wg.Wait()
	if l := lost.Load(); l != nil {
		t.Fatalf("a member was lost during the rotation: %s", *l)
	}

	var rings []keyringJSON
	sc.ctlJSON(sc.nodes[1].grpcAddr, &rings, "gossip-keys")
	if len(rings) != 3 {
		t.Fatalf("gossip-keys lists %d members, want 3: %+v", len(rings), rings)
	}
	for _, r := range rings {
		if len(r.Keys) != 1 || r.Keys[0].ID != newID || !r.Keys[0].Primary || r.KeyFileError != "" {
			t.Fatalf("%s after the rotation: %+v; want the new key %s alone, key file in step", r.Node, r, newID)
		}
	}
	keys, err := gossipkey.Read(sc.keyFile)
	if err != nil || len(keys) != 1 || gossipkey.ID(keys[0]) != newID {
		t.Fatalf("the key file holds %d keys (%v); want the new key alone", len(keys), err)
	}

	// A restart starts from the file, which is the keyring in use.
	p := sc.node("n2")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.done
	var join []string
	for _, q := range sc.nodes {
		join = append(join, q.gossipAddr)
	}
	p.logPath = filepath.Join(sc.dir, "n2.restarted.log")
	if err := sc.start(p, "--join", strings.Join(join, ",")); err != nil {
		t.Fatal(err)
	}
	eventually(t, formTimeout, "n2 rejoins with the rewritten key file", func() error {
		for _, q := range sc.nodes {
			if err := sc.checkFormed(q, 3); err != nil {
				return err
			}
		}
		return nil
	})

	// Every gossip-key call is audited; no log holds the key.
	var logs strings.Builder
	files, _ := filepath.Glob(filepath.Join(sc.dir, "*.log"))
	audits, _ := filepath.Glob(filepath.Join(sc.dir, "*.audit"))
	for _, f := range append(files, audits...) {
		b, _ := os.ReadFile(f)
		logs.Write(b)
	}
	for _, method := range []string{"InstallGossipKey", "UseGossipKey", "RemoveGossipKey"} {
		if !strings.Contains(logs.String(), `"method":"/ringcache.v1.Admin/`+method+`"`) {
			t.Errorf("no audit line for %s", method)
		}
	}
	for _, secret := range []string{string(newKey), base64.StdEncoding.EncodeToString(newKey)} {
		if strings.Contains(logs.String(), secret) || strings.Contains(res.stdout+res.stderr, secret) {
			t.Fatalf("a log or the ctl's output holds the new gossip key")
		}
	}
}
