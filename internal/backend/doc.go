// Package backend is the database seam behind read-through and write-through
// namespaces: it turns a namespace's configuration into a strategy.Backend
// that loads, upserts and deletes one key at a time in PostgreSQL (pgxpool)
// or in an embedded SQLite file (modernc.org/sqlite, no cgo).
//
// # Guarantees
//
//   - Load returns found=false with a nil error when the query returns no row,
//     or when the first column of its first row is NULL. A found value is a
//     fresh slice owned by the caller. An empty value (zero bytes) is found.
//   - Store is an upsert and Remove succeeds when the key is absent, so a
//     retried write is harmless. A nil value is stored as an empty value,
//     never as NULL.
//   - When a call fails because its context was cancelled or its deadline
//     passed, the returned error wraps ctx.Err() (errors.Is works). On
//     PostgreSQL the query is cancelled on the server too (a cancel
//     request, then the connection is dropped if the server has not
//     answered within 500ms).
//   - Every error names the namespace; configuration errors name the field
//     (driver, dsn, path, max_conns, namespace, load_sql, upsert_sql,
//     delete_sql) and wrap ErrInvalidConfig or ErrInvalidSpec.
//   - A DB and the Backends it returns are safe for concurrent use by many
//     goroutines. Backends are valid until the DB is closed.
//   - SQLite files run in WAL mode with a busy timeout, so several processes
//     (several ringcached nodes on one machine) can share one file. Every
//     statement is its own transaction.
//
// # Tables
//
// A namespace either names its own SQL (TableSpec templates) or uses the
// generic table, which Open creates when it is missing:
//
//	ringcache_kv(namespace TEXT, key TEXT, value BYTEA|BLOB NOT NULL,
//	             version BIGINT NOT NULL DEFAULT 0, updated_at TIMESTAMP,
//	             PRIMARY KEY (namespace, key))
//
// version is reserved for write-behind (a newer write must not be overwritten
// by an older one); this package always writes 0.
//
// Templates use PostgreSQL placeholders on both drivers: $1 is the key and
// $2 the value (upsert_sql only). If a spec sets ANY template, the generic
// table is not used for that namespace at all: an operation whose template is
// missing fails with ErrNoTemplate when called (a spec with only load_sql is
// read-only). If a spec sets none, all three operations use the generic
// table.
//
// The value is the first column of the first row load_sql returns; further
// columns and rows are ignored. PostgreSQL columns of type bytea, text,
// varchar, json and jsonb scan directly; cast other types (::text). The key
// is sent as text; PostgreSQL converts it where the column type allows,
// otherwise cast the placeholder ($1::bigint).
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
//     not from Table.
package backend
