package bench

import (
	"testing"

	"github.com/ringcache/ringcache/internal/pgtest"
)

// TestMain stops the shared PostgreSQL server, started on first use only:
// the cache-only benchmark and `go test -short` never start one.
func TestMain(m *testing.M) { pgtest.Main(m) }
