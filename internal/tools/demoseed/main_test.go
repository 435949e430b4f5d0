package main

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/ringcache/ringcache/internal/backend"
)

func TestRun_SeedsRowsTheQuickstartNamespaceCanLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "app.db")
	var out bytes.Buffer
	for range 2 { // a second run is harmless
		out.Reset()
		if err := run(context.Background(), []string{"-db", path, "-rows", "50"}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if want := "seeded 50 users into " + path + "\n"; out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
	db, err := backend.Open(context.Background(), backend.Config{Driver: "sqlite", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	users, err := db.Table(backend.TableSpec{Namespace: "users", LoadSQL: "SELECT profile FROM users WHERE id = $1"})
	if err != nil {
		t.Fatal(err)
	}
	v, found, err := users.Load(context.Background(), "42")
	if want := `{"id":"42","name":"user-42","plan":"pro"}`; err != nil || !found || string(v) != want {
		t.Fatalf("Load(42) = %s, %v, %v; want %s", v, found, err, want)
	}
	if _, found, err := users.Load(context.Background(), "51"); found || err != nil {
		t.Fatalf("Load(51) found=%v err=%v; want not found", found, err)
	}
}

func TestRun_RejectsNegativeRows(t *testing.T) {
	if err := run(context.Background(), []string{"-db", filepath.Join(t.TempDir(), "a.db"), "-rows", "-1"}, &bytes.Buffer{}); err == nil {
		t.Fatal("run accepted -rows -1")
	}
}
