// Package backend is the database seam behind read-through, write-through
// and write-behind namespaces: it turns a namespace's configuration into a
// strategy.Backend that loads one key at a time and writes batches of
// versioned writes, in PostgreSQL (pgxpool) or in an embedded SQLite file
// (modernc.org/sqlite, no cgo).
//
// # Guarantees
//
//   - Load returns found=false with a nil error when the query returns no row,
//     or when the first column of its first row is NULL. A found value is a
//     fresh slice owned by the caller. An empty value (zero bytes) is found.
//   - Write applies its batch in order in ONE transaction, all or nothing.
//     PostgreSQL: one pgx.Batch, sent in one round trip and run by the
//     server as one implicit transaction (pgx ends it with a single Sync),
//     so a failed statement rolls back the whole batch. SQLite: one BEGIN
//     IMMEDIATE transaction, each distinct statement prepared once,
//     rolled back on any error. A failed Write leaves nothing applied; its
//     error names the write that failed ("write 3 of 500 (upsert of key
//     "k")") when the database says which. The caller isolates a poison write
//     by retrying the batch one write at a time.
//   - Writes are versioned and idempotent (generic table, and templates
//     that bind the version): a write replaces a row only of a LOWER
//     version, and an equal version re-applied is harmless. A delete
//     stores a tombstone (NULL value) with its version, so an older write
//     arriving later cannot resurrect the key; a newer write does.
//     Versions above math.MaxInt64 (both databases store signed 64-bit
//     integers) are rejected. A nil value is stored as an empty value,
//     never as NULL.
//   - A write that changed nothing is reported, never passed as written:
//     when a version-guarded statement matched no row, Write commits the
//     rest of the batch and returns a *strategy.StaleVersionError
//     (strategy.ErrStaleVersion) listing those writes. The generic table
//     reads the version it holds (Stored), and takes the same version with
//     the same value for this write applied before (a retried batch), but
//     with another value as stale. A template cannot say which version it
//     holds (Stored 0): an upsert that bound its version and matched no row
//     is stale, and so is a versioned delete that matched no row while
//     load_sql still finds the key.
//   - An error wrapping strategy.ErrRejected means the database refused a
//     write for good; any other error is presumed transient (see Errors).
//   - When a call fails because its context was cancelled or its deadline
//     passed, the returned error wraps ctx.Err() (errors.Is works) and never
//     ErrRejected. On PostgreSQL the query is cancelled on the server too (a
//     cancel request, then the connection is dropped if the server has not
//     answered within 500ms).
//   - No error quotes a key or a value (flush errors are logged): a write
//     is named by its position in the batch ("write 3 of 500 (upsert)"),
//     and a PostgreSQL error by its message up to the first colon, its
//     SQLSTATE and the constraint, table, column or type it names, without
//     its detail ("Key (id)=(42) already exists"); errors.As still finds
//     the *pgconn.PgError. SQLite's messages name constraints and columns,
//     not values, and are kept (a trigger's RAISE text excepted).
//   - Every error names the namespace; configuration errors name the field
//     (driver, dsn, path, max_conns, namespace, load_sql, upsert_sql,
//     delete_sql) and wrap ErrInvalidConfig or ErrInvalidSpec.
//   - A DB and the Backends it returns are safe for concurrent use by many
//     goroutines. Backends are valid until the DB is closed.
//   - SQLite files run in WAL mode with a busy timeout, so several processes
//     (several ringcached nodes on one machine) can share one file.
//
// # Errors
//
// Rejected (wrap strategy.ErrRejected): PostgreSQL SQLSTATE classes 22 (data
// exception: bad input syntax, out of range), 23 (integrity constraint: NOT
// NULL, CHECK, unique, foreign key), 42 (syntax error or access rule
// violation: an undefined column in a template, a missing GRANT) and 54
// (program limit exceeded: an index row or value too large), and an argument
// pgx cannot encode for its parameter (a version too large for an integer
// column). SQLite: SQLITE_CONSTRAINT, SQLITE_MISMATCH, SQLITE_TOOBIG,
// SQLITE_RANGE and SQLITE_ERROR (SQLite's code for a SQL error: syntax, no
// such table or column). A write to a templated namespace that lacks the
// template it needs wraps both ErrNoTemplate and ErrRejected.
//
// Transient (everything else): connection failures, timeouts, serialization
// failures (40001), deadlocks (40P01), too many connections (53300), disk
// full (53100), admin shutdown (57P01), a read-only standby after a failover
// (25006); SQLITE_BUSY, SQLITE_LOCKED, I/O errors, a full disk, a read-only
// file. Ambiguous cases are presumed transient, so nothing is dead-lettered
// that a retry might apply: notably an exception RAISEd by a PL/pgSQL trigger
// (P0001). A trigger that refuses rows for good should raise with a class-23
// SQLSTATE (RAISE ... USING ERRCODE = 'check_violation').
//
// # Tables
//
// A namespace either names its own SQL (TableSpec templates) or uses the
// generic table, which Open creates when it is missing:
//
//	ringcache_kv(namespace TEXT, key TEXT, value BYTEA|BLOB NULL,
//	             version BIGINT NOT NULL DEFAULT 0, updated_at TIMESTAMP,
//	             PRIMARY KEY (namespace, key))
//
// A NULL value is a tombstone. Tombstones stay in the table: removing old
// ones (older than any write that could still arrive) is future work, so a
// namespace that deletes many distinct keys grows until then.
//
// Open migrates a table of the previous schema (value NOT NULL). PostgreSQL:
// ALTER TABLE ringcache_kv ALTER COLUMN value DROP NOT NULL, under the same
// advisory lock as the CREATE, so several nodes may open at once. SQLite
// cannot alter a column constraint: the rows are copied into a new table
// that replaces the old one, in one BEGIN IMMEDIATE transaction (other
// processes wait; a second process finds the work done). Rows keep their
// versions. If the role may not alter the table, namespaces on the generic
// table fail at Table with ErrGenericTableUnavailable.
//
// Templates use PostgreSQL placeholders on both drivers: $1 is the key; in
// upsert_sql $2 is the value and $3 (optional) the version; in delete_sql $2
// (optional) is the version. A template may reference only these. A
// template that does not reference its version is NOT version-protected:
// the last write applied wins, whatever its version. To be protected, store
// the version and compare it:
//
//	INSERT INTO users (id, profile, version) VALUES ($1, $2, $3)
//	ON CONFLICT (id) DO UPDATE SET profile = excluded.profile,
//	    version = excluded.version WHERE users.version < excluded.version
//
// A delete_sql such as DELETE ... WHERE id = $1 AND version < $2 keeps a
// newer row, but cannot stop an older upsert arriving later from inserting
// the key again; only a tombstone (an UPDATE that sets the value to NULL
// and keeps the version, which load_sql then reports as not found) can.
//
// If a spec sets ANY template, the generic table is not used for that
// namespace at all: an operation whose template is missing fails with
// ErrNoTemplate when called (a spec with only load_sql is read-only). If a
// spec sets none, all operations use the generic table.
//
// The value is the first column of the first row load_sql returns; further
// columns and rows are ignored. PostgreSQL columns of type bytea, text,
// varchar, json and jsonb scan directly; cast other types (::text). The key
// is sent as text; PostgreSQL converts it where the column type allows,
// otherwise cast the placeholder ($1::bigint). The version is a 64-bit
// integer: store it in a BIGINT column.
//
// # Limits
//
//   - For SQLite, $N placeholders are rewritten to ?N outside single-quoted
//     literals, double-quoted identifiers and comments; a '$' followed by a
//     digit anywhere else is rewritten too.
//   - SQLite templates receive a valid UTF-8 value as TEXT and any other
//     value as BLOB (the generic table always stores BLOB). SQLite's driver
//     reports an empty BLOB like NULL, so a row written by another program
//     with an empty BLOB value loads as not found in a templated namespace.
//   - SQL errors in a template (a misspelled column) surface at first use,
//     not from Table; they are rejections.
package backend
