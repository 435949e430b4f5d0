package backend

import (
	"context"
	"fmt"
	"runtime"

	"github.com/ringcache/ringcache/pkg/strategy"
)

// DB is an open database: a connection pool shared by the namespaces that
// use it. It is safe for concurrent use.
type DB interface {
	// Table validates spec (cheaply, without a round trip) and returns the
	// Backend of its namespace. Errors name the offending field.
	Table(spec TableSpec) (strategy.Backend, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the pool. Backends from Table fail afterwards.
	Close() error
}

// Open validates cfg, connects, checks the connection and creates the
// generic table ringcache_kv when it is missing, or migrates it from the
// previous schema (see the package doc). ctx bounds the opening only.
func Open(ctx context.Context, cfg Config) (DB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Driver {
	case DriverPostgres:
		return openPostgres(ctx, cfg)
	case DriverSQLite:
		return openSQLite(ctx, cfg)
	}
	return nil, fmt.Errorf("%w: driver %q", ErrInvalidConfig, cfg.Driver) // unreachable after Validate
}

// DefaultMaxConns is the pool size of a backend whose config sets none: it
// mirrors pgxpool's default.
func DefaultMaxConns() int { return max(4, runtime.NumCPU()) }
