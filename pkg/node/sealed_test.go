package node_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringcache/ringcache/internal/clustertest"
	"github.com/ringcache/ringcache/pkg/node"
	"github.com/ringcache/ringcache/pkg/strategy"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// Issue 11: a sensitive namespace's values never rest on disk in the
// clear; they reach the database in the clear, after a restart too, and
// not at all without a key that opens them.
func TestNode_SensitiveValuesAreSealedInTheJournal(t *testing.T) {
	db := clustertest.NewFakeDB()
	jpath := filepath.Join(t.TempDir(), "journal.db")
	key := bytes.Repeat([]byte{7}, 32)
	start := func(keys [][]byte, flush time.Duration) *node.Node {
		n, err := node.New(node.Config{
			Name: "solo", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
			Namespaces: []node.NamespaceSpec{{
				Policy: strategy.Policy{Name: "pii", Read: strategy.ReadThrough, Write: strategy.WriteBehind, TTL: time.Minute},
				Loader: db, Writer: db, Sensitive: true,
			}},
			Journal:  node.JournalConfig{Path: jpath, FlushInterval: flush, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond},
			SealKeys: keys,
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const secret = "top-secret-value-0042"
	// The database is down while the first node runs: its flusher's first
	// round (at start, whenever its goroutine runs) must not take the
	// record before the node is killed.
	db.FailWrites(errors.New("database down"))
	n := start([][]byte{key}, time.Hour)
	if _, err := n.CacheServer().Set(ctxT(t), &pb.SetRequest{Namespace: "pii", Key: "alice", Value: []byte(secret)}); err != nil {
		t.Fatal(err)
	}
	n.Kill()
	raw, err := os.ReadFile(jpath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(secret)) {
		t.Fatal("the journal file holds the sensitive value in the clear")
	}
	// Without a key that opens it, the record becomes a dead letter with
	// the reason; nothing reaches the database, which is up again.
	db.FailWrites(nil)
	wrong := start([][]byte{bytes.Repeat([]byte{8}, 32)}, 10*time.Millisecond)
	clustertest.Eventually(t, 10*time.Second, func() error {
		d, err := wrong.AdminServer().DeadLetters(ctxT(t), &pb.DeadLettersRequest{})
		if err != nil {
			return err
		}
		if len(d.GetDeadLetters()) != 1 || !strings.Contains(d.GetDeadLetters()[0].GetLastError(), "open") {
			return fmt.Errorf("dead letters %v, want alice's with the reason", d.GetDeadLetters())
		}
		return nil
	})
	if _, ok := db.Row("alice"); ok {
		t.Fatal("a value reached the database without the key that sealed it")
	}
	wrong.Kill()
	// With the key back (after a rotation that kept it), the operator
	// requeues it and it is flushed in the clear.
	n = start([][]byte{bytes.Repeat([]byte{9}, 32), key}, 10*time.Millisecond)
	defer n.Kill()
	if _, err := n.AdminServer().RetryDeadLetter(ctxT(t), &pb.RetryDeadLetterRequest{Namespace: "pii", Key: "alice"}); err != nil {
		t.Fatal(err)
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		if v, ok := db.Row("alice"); !ok || string(v) != secret {
			return errRow(v, ok)
		}
		return nil
	})
	if _, err := node.New(node.Config{Name: "x", GRPCAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		Namespaces: []node.NamespaceSpec{{Policy: strategy.Policy{Name: "pii", Write: strategy.WriteBehind}, Writer: db, Sensitive: true}},
		Journal:    node.JournalConfig{Path: filepath.Join(t.TempDir(), "j.db")}}); err == nil {
		t.Fatal("a sensitive write-behind namespace started without seal keys")
	}
}

func errRow(v []byte, ok bool) error {
	if !ok {
		return fmt.Errorf("no database row yet")
	}
	return fmt.Errorf("database row %q", v)
}
