package backend

import "testing"

func TestSQLitePlaceholders_RewritesOnlyOutsideLiteralsAndComments(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT v FROM t WHERE k = $1`:                      `SELECT v FROM t WHERE k = ?1`,
		`INSERT INTO t VALUES ($1, $2) -- $1 stays`:         `INSERT INTO t VALUES (?1, ?2) -- $1 stays`,
		`SELECT '$1 it''s $2', "col$1" FROM t WHERE k = $1`: `SELECT '$1 it''s $2', "col$1" FROM t WHERE k = ?1`,
		"SELECT /* $1 */ v FROM t WHERE k = $1\n-- $2":      "SELECT /* $1 */ v FROM t WHERE k = ?1\n-- $2",
		`SELECT $10, $ 1, $x FROM t WHERE k=$1`:             `SELECT ?10, $ 1, $x FROM t WHERE k=?1`,
		`SELECT 'unterminated $1`:                           `SELECT 'unterminated $1`,
	} {
		if got := sqlitePlaceholders(in); got != want {
			t.Errorf("sqlitePlaceholders(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSQLiteDSN_PathPragmasReplaceDefaults(t *testing.T) {
	for path, want := range map[string]string{
		"a.db": "a.db?_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)",
		"a.db?_pragma=busy_timeout(50)&_pragma=cache_size(-2000)": "a.db?_txlock=immediate&_pragma=synchronous(FULL)" +
			"&_pragma=foreign_keys(1)&_pragma=busy_timeout(50)&_pragma=cache_size(-2000)",
		"a.db?_pragma=Synchronous%20%3D%20NORMAL": "a.db?_txlock=immediate&_pragma=busy_timeout(5000)" +
			"&_pragma=foreign_keys(1)&_pragma=Synchronous%20%3D%20NORMAL",
	} {
		if file, dsn := sqliteDSN(path); file != "a.db" || dsn != want {
			t.Errorf("sqliteDSN(%q) = %q, %q; want a.db, %q", path, file, dsn, want)
		}
	}
}
