package backend_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ringcache/ringcache/internal/backend"
	"github.com/ringcache/ringcache/pkg/strategy"
)

func ExampleOpen() {
	dir, _ := os.MkdirTemp("", "backend-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := backend.Open(ctx, backend.Config{Driver: "sqlite", Path: filepath.Join(dir, "app.db")})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	// No templates: the namespace lives in the generic ringcache_kv table.
	sessions, err := db.Table(backend.TableSpec{Namespace: "sessions"})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Versions order the writes of a key: a delete leaves a tombstone, so
	// the older write that arrives after it changes nothing.
	_ = sessions.Write(ctx, []strategy.Write{{Key: "s1", Value: []byte("alice"), Version: 1}})
	v, found, err := sessions.Load(ctx, "s1")
	fmt.Printf("%s %v %v\n", v, found, err)
	_ = sessions.Write(ctx, []strategy.Write{{Key: "s1", Delete: true, Version: 3}})
	_ = sessions.Write(ctx, []strategy.Write{{Key: "s1", Value: []byte("late"), Version: 2}})
	_, found, _ = sessions.Load(ctx, "s1")
	fmt.Println(found)

	// Only load_sql: a read-only namespace over the application's table.
	_, err = db.Table(backend.TableSpec{Namespace: "users", LoadSQL: "SELECT profile FROM users WHERE id = 1"})
	fmt.Println(err)
	// Output:
	// alice true <nil>
	// false
	// namespace "users": load_sql: must reference $1 (the key)
}
