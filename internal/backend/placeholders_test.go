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
