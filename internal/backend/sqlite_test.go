package backend_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/pkg/strategy"
)

// Several ringcached processes on one machine share one SQLite file.

func TestSQLite_TwoHandlesShareOneFileConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	cfg := backend.Config{Driver: backend.DriverSQLite, Path: path}
	dbs := make([]backend.DB, 2)
	var wg sync.WaitGroup
	for i := range dbs { // open concurrently: both race to create the file, WAL and the table
		wg.Go(func() {
			db, err := backend.Open(context.Background(), cfg)
			if err != nil {
				t.Errorf("Open %d: %v", i, err)
				return
			}
			dbs[i] = db
		})
	}
	wg.Wait()
	for _, db := range dbs {
		if db == nil {
			t.FailNow()
		}
		t.Cleanup(func() { db.Close() })
	}
	const writers, keys = 4, 50
	for w := range writers {
		kv := table(t, dbs[w%2], backend.TableSpec{Namespace: "shared"})
		wg.Go(func() {
			for k := range keys {
				key := fmt.Sprintf("w%d-%d", w, k)
				err := kv.Write(context.Background(), []strategy.Write{
					{Key: key, Value: []byte(key), Version: lastVersion.Add(1)},
					{Key: "hot", Value: []byte(key), Version: lastVersion.Add(1)},
				})
				// The writers race on "hot": a write that lost to a newer
				// one committed first is reported, and the rest applied.
				var stale *strategy.StaleVersionError
				if errors.As(err, &stale) && len(stale.Writes) == 1 && stale.Writes[0].Index == 1 {
					err = nil
				}
				if err != nil {
					t.Errorf("Write %s and hot: %v", key, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, db := range dbs {
		kv := table(t, db, backend.TableSpec{Namespace: "shared"})
		for w := range writers {
			for k := range keys {
				key := fmt.Sprintf("w%d-%d", w, k)
				mustLoad(t, kv, key, []byte(key))
			}
		}
		if _, found, err := kv.Load(context.Background(), "hot"); !found || err != nil {
			t.Fatalf("handle %d: hot key found=%v err=%v", i, found, err)
		}
	}
}

const (
	helperPathEnv = "RINGCACHE_BACKEND_TEST_HELPER_PATH"
	helperIDEnv   = "RINGCACHE_BACKEND_TEST_HELPER_ID"
	helperKeys    = 100
)

func TestSQLite_TwoProcessesShareOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	const procs = 2
	cmds := make([]*exec.Cmd, procs)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSQLite_HelperProcessWrites$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), helperPathEnv+"="+path, helperIDEnv+"="+strconv.Itoa(i))
		cmds[i] = cmd
	}
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range cmds {
		if errs[i] != nil {
			t.Fatalf("helper process %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	kv := table(t, openDB(t, backend.Config{Driver: backend.DriverSQLite, Path: path}), backend.TableSpec{Namespace: "shared"})
	for i := range procs {
		for k := range helperKeys {
			key := fmt.Sprintf("p%d-%d", i, k)
			mustLoad(t, kv, key, []byte(key))
		}
	}
}

// TestSQLite_HelperProcessWrites is the child of
// TestSQLite_TwoProcessesShareOneFile; it skips when run directly.
func TestSQLite_HelperProcessWrites(t *testing.T) {
	path := os.Getenv(helperPathEnv)
	if path == "" {
		t.Skip("helper process for TestSQLite_TwoProcessesShareOneFile")
	}
	id := os.Getenv(helperIDEnv)
	kv := table(t, openDB(t, backend.Config{Driver: backend.DriverSQLite, Path: path}), backend.TableSpec{Namespace: "shared"})
	for k := range helperKeys {
		key := fmt.Sprintf("p%s-%d", id, k)
		mustStore(t, kv, key, []byte(key))
		mustLoad(t, kv, key, []byte(key))
	}
}
