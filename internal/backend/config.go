package backend

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// Driver names accepted in Config.Driver.
const (
	DriverPostgres = "postgres"
	DriverSQLite   = "sqlite"
)

// Config selects and configures one database. The zero value is invalid:
// Driver and either DSN (postgres) or Path (sqlite) are required.
type Config struct {
	// Driver is "postgres" or "sqlite".
	Driver string
	// DSN is the PostgreSQL connection string (URL or key=value form; pgx
	// pool_* parameters are honoured). Postgres only.
	DSN string
	// Path is the SQLite database file. Its directory is created when
	// missing. Extra modernc.org/sqlite DSN parameters may follow a '?'
	// ("data/app.db?_pragma=cache_size(-20000)"); a _pragma that sets one of
	// the defaults (busy_timeout(5000), synchronous(FULL), foreign_keys(1))
	// replaces it. The file is always switched to WAL. SQLite only.
	Path string
	// MaxConns bounds the connection pool. 0 means the default: the greater
	// of 4 and the number of CPUs (pgxpool's default; a DSN pool_max_conns
	// wins over the default but not over a non-zero MaxConns).
	MaxConns int
	// Lazy lets Open succeed while PostgreSQL is unreachable: the pool
	// connects, and the generic table is created, on first use. ringcached
	// sets it so a node restarting during a database outage still starts and
	// keeps its write-behind journal until the database is back. Without
	// Lazy, Open fails fast on an unreachable server. Postgres only.
	Lazy bool
}

// Validate reports every problem in c, each naming its field. The errors
// wrap ErrInvalidConfig. Validate does not modify c.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &fieldError{kind: ErrInvalidConfig, field: field, msg: fmt.Sprintf(format, args...)})
	}
	switch c.Driver {
	case DriverPostgres:
		if strings.TrimSpace(c.DSN) == "" {
			bad("dsn", "is required for driver postgres")
		}
		if c.Path != "" {
			bad("path", "is not used by driver postgres (set dsn)")
		}
	case DriverSQLite:
		file, _, _ := strings.Cut(c.Path, "?")
		switch {
		case strings.TrimSpace(file) == "":
			bad("path", "is required for driver sqlite")
		case file == ":memory:" || strings.HasPrefix(file, "file:"):
			bad("path", "must be a file path, got %q (a memory database or URI cannot be shared between processes)", file)
		}
		if c.DSN != "" {
			bad("dsn", "is not used by driver sqlite (set path)")
		}
	case "":
		bad("driver", "is required (postgres or sqlite)")
	default:
		bad("driver", "%q is not supported (use postgres or sqlite)", c.Driver)
	}
	if c.MaxConns < 0 || c.MaxConns > math.MaxInt32 {
		bad("max_conns", "must be between 0 (default) and %d, got %d", math.MaxInt32, c.MaxConns)
	}
	return errors.Join(errs...)
}
