// Command demoseed fills a SQLite file with demo users for the README
// quickstart:
//
//	go run ./internal/tools/demoseed -db data/app.db -rows 1000
//
// It creates users(id TEXT PRIMARY KEY, profile TEXT NOT NULL) when missing
// and upserts ids "1".."N" with deterministic JSON profiles such as
// {"id":"42","name":"user-42","plan":"pro"}. Running it again is harmless,
// also while ringcached nodes use the file. A namespace serves the rows with
//
//	load_sql: SELECT profile FROM users WHERE id = $1
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	_ "modernc.org/sqlite"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "demoseed:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("demoseed", flag.ContinueOnError)
	path := fs.String("db", "data/app.db", "SQLite file to create or update")
	rows := fs.Int("rows", 1000, "number of users to upsert (ids 1..rows)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rows < 0 {
		return errors.New("-rows must be >= 0")
	}
	if err := seed(ctx, *path, *rows); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d users into %s\n", *rows, *path)
	return nil
}

var plans = [...]string{"pro", "free", "team"}

// profileJSON is the demo row's JSON; field order is the output order.
type profileJSON struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Plan string `json:"plan"`
}

// profile returns the deterministic profile of user i.
func profile(i int) string {
	id := strconv.Itoa(i)
	b, _ := json.Marshal(profileJSON{ID: id, Name: "user-" + id, Plan: plans[i%len(plans)]})
	return string(b)
}

func seed(ctx context.Context, path string, rows int) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// The same settings the backend package uses, so seeding can run next
	// to live nodes: WAL, wait for locks, take the write lock up front.
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, profile TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create table users: %w", err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO users (id, profile) VALUES (?1, ?2)
ON CONFLICT (id) DO UPDATE SET profile = excluded.profile`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for i := 1; i <= rows; i++ {
		if _, err := stmt.ExecContext(ctx, strconv.Itoa(i), profile(i)); err != nil {
			return fmt.Errorf("upsert user %d: %w", i, err)
		}
	}
	return tx.Commit()
}
