// Package enginetest builds engines for the tests of the engine and of
// the doors around it.
package enginetest

import (
	"testing"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/pkg/ring"
)

// Alone starts cfg's engine as the only member of its ring (cfg.Self,
// at a placeholder address), ready to serve every key; it closes with the
// test.
func Alone(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	e, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	r, err := ring.New(ring.Config{}, []ring.Member{{Name: cfg.Self, Addr: "127.0.0.1:1"}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	e.SetRing(r)
	e.SetReady()
	return e
}
