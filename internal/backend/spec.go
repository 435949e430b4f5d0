package backend

import (
	"errors"
	"fmt"
	"strings"
)

// TableSpec describes how one namespace reads and writes its database.
// With no templates the namespace lives in the generic ringcache_kv table,
// keyed by Namespace. With any template, only the given operations are
// available (see the package doc). Templates use $1 for the key and $2 for
// the value, on both drivers:
//
//	LoadSQL:   SELECT profile FROM users WHERE id = $1
//	UpsertSQL: INSERT INTO users (id, profile) VALUES ($1, $2)
//	           ON CONFLICT (id) DO UPDATE SET profile = excluded.profile
//	DeleteSQL: DELETE FROM users WHERE id = $1
type TableSpec struct {
	Namespace string
	LoadSQL   string // one statement; the first column of the first row is the value
	UpsertSQL string // must insert or update; $1 key, $2 value
	DeleteSQL string // must succeed when the key is absent; $1 key
}

// templated reports whether the spec names any SQL of its own.
func (s TableSpec) templated() bool {
	return strings.TrimSpace(s.LoadSQL) != "" || strings.TrimSpace(s.UpsertSQL) != "" ||
		strings.TrimSpace(s.DeleteSQL) != ""
}

// validate checks the spec without touching the database: the namespace is
// set and each given template uses exactly the placeholders its operation
// binds. Errors name the field and wrap ErrInvalidSpec.
func (s TableSpec) validate() error {
	var errs []error
	if strings.TrimSpace(s.Namespace) == "" {
		errs = append(errs, &fieldError{kind: ErrInvalidSpec, field: "namespace", msg: "is required"})
	}
	for _, t := range []struct {
		field, sql string
		want       int // placeholders $1..$want must all be used
	}{
		{"load_sql", s.LoadSQL, 1},
		{"upsert_sql", s.UpsertSQL, 2},
		{"delete_sql", s.DeleteSQL, 1},
	} {
		if strings.TrimSpace(t.sql) == "" {
			continue
		}
		if err := checkPlaceholders(t.sql, t.want); err != nil {
			errs = append(errs, &fieldError{kind: ErrInvalidSpec, field: t.field, msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

var placeholderRole = [...]string{1: "$1 (the key)", 2: "$2 (the value)"}

// checkPlaceholders reports a template that binds other than $1..$want, or
// leaves one of them unused (PostgreSQL rejects unused parameters whose type
// it cannot infer, and a key that is not used is almost surely a mistake).
func checkPlaceholders(sql string, want int) error {
	used := make(map[int]bool)
	var extra []string
	rewritePlaceholders(sql, func(n int, text string) string {
		if n >= 1 && n <= want {
			used[n] = true
		} else {
			extra = append(extra, text)
		}
		return text
	})
	for n := 1; n <= want; n++ {
		if !used[n] {
			return fmt.Errorf("must reference %s", placeholderRole[n])
		}
	}
	if len(extra) > 0 {
		allowed := "$1 (the key)"
		if want == 2 {
			allowed = "$1 (the key) and $2 (the value)"
		}
		return fmt.Errorf("may only reference %s, found %s", allowed, strings.Join(extra, ", "))
	}
	return nil
}

// sqlitePlaceholders rewrites $N to ?N, SQLite's numbered parameter syntax,
// so one template serves both drivers.
func sqlitePlaceholders(sql string) string {
	return rewritePlaceholders(sql, func(n int, text string) string { return "?" + text[1:] })
}

// rewritePlaceholders calls fn for each $N (N decimal digits) outside
// single-quoted literals, double-quoted identifiers, -- line comments and
// /* */ block comments, and replaces the placeholder with fn's result.
// PostgreSQL dollar-quoted strings are not recognised.
func rewritePlaceholders(sql string, fn func(n int, text string) string) string {
	var b strings.Builder
	b.Grow(len(sql))
	for i := 0; i < len(sql); {
		c := sql[i]
		switch {
		case c == '\'' || c == '"':
			end := strings.IndexByte(sql[i+1:], c) // '' and "" escapes re-enter here
			if end < 0 {
				b.WriteString(sql[i:])
				return b.String()
			}
			b.WriteString(sql[i : i+end+2])
			i += end + 2
		case c == '-' && strings.HasPrefix(sql[i:], "--"):
			end := strings.IndexByte(sql[i:], '\n')
			if end < 0 {
				end = len(sql) - i
			}
			b.WriteString(sql[i : i+end])
			i += end
		case c == '/' && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				b.WriteString(sql[i:])
				return b.String()
			}
			b.WriteString(sql[i : i+end+4])
			i += end + 4
		case c == '$' && i+1 < len(sql) && isDigit(sql[i+1]):
			j := i + 1
			n := 0
			for j < len(sql) && isDigit(sql[j]) {
				if n < 1<<20 {
					n = n*10 + int(sql[j]-'0')
				}
				j++
			}
			b.WriteString(fn(n, sql[i:j]))
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
