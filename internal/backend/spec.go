package backend

import (
	"errors"
	"fmt"
	"strings"
)

// TableSpec describes how one namespace reads and writes its database.
// With no templates the namespace lives in the generic ringcache_kv table,
// keyed by Namespace. With any template, only the given operations are
// available (see the package doc). Templates use $N placeholders on both
// drivers: $1 is the key, $2 the value and $3 the write's version in
// upsert_sql, $2 the delete's version in delete_sql. The versions are
// optional; a template that does not reference its version is not protected
// against an older write replacing a newer one.
//
//	LoadSQL:   SELECT profile FROM users WHERE id = $1
//	UpsertSQL: INSERT INTO users (id, profile, version) VALUES ($1, $2, $3)
//	           ON CONFLICT (id) DO UPDATE SET profile = excluded.profile,
//	           version = excluded.version WHERE users.version < excluded.version
//	DeleteSQL: DELETE FROM users WHERE id = $1 AND version < $2
type TableSpec struct {
	Namespace string
	LoadSQL   string // one statement; the first column of the first row is the value
	UpsertSQL string // must insert or update; $1 key, $2 value, optional $3 version
	DeleteSQL string // must succeed when the key is absent; $1 key, optional $2 version
}

// templated reports whether the spec names any SQL of its own.
func (s TableSpec) templated() bool {
	return strings.TrimSpace(s.LoadSQL) != "" || strings.TrimSpace(s.UpsertSQL) != "" ||
		strings.TrimSpace(s.DeleteSQL) != ""
}

// templateParams lists the placeholders of one operation's template.
type templateParams struct {
	field    string
	required int      // $1..$required must all be referenced
	roles    []string // roles[n-1] describes $n; len(roles) placeholders may be referenced
}

var (
	loadParams   = templateParams{"load_sql", 1, []string{"the key"}}
	upsertParams = templateParams{"upsert_sql", 2, []string{"the key", "the value", "the version"}}
	deleteParams = templateParams{"delete_sql", 1, []string{"the key", "the version"}}
)

// validate checks the spec without touching the database: the namespace is
// set and each given template references the placeholders its operation
// requires and no others. Errors name the field and wrap ErrInvalidSpec.
func (s TableSpec) validate() error {
	var errs []error
	if strings.TrimSpace(s.Namespace) == "" {
		errs = append(errs, &fieldError{kind: ErrInvalidSpec, field: "namespace", msg: "is required"})
	}
	for _, t := range []struct {
		sql string
		p   templateParams
	}{{s.LoadSQL, loadParams}, {s.UpsertSQL, upsertParams}, {s.DeleteSQL, deleteParams}} {
		if strings.TrimSpace(t.sql) == "" {
			continue
		}
		if _, err := checkPlaceholders(t.sql, t.p); err != nil {
			errs = append(errs, &fieldError{kind: ErrInvalidSpec, field: t.p.field, msg: err.Error()})
		}
	}
	return errors.Join(errs...)
}

// checkPlaceholders reports a template that leaves one of $1..$required
// unused (PostgreSQL rejects unused parameters whose type it cannot infer,
// and a key that is not used is almost surely a mistake) or references a
// placeholder beyond the operation's. It returns how many placeholders the
// template binds: the highest one it references.
func checkPlaceholders(sql string, p templateParams) (int, error) {
	used := make(map[int]bool)
	var extra []string
	highest := 0
	rewritePlaceholders(sql, func(n int, text string) string {
		if n >= 1 && n <= len(p.roles) {
			used[n] = true
			highest = max(highest, n)
		} else {
			extra = append(extra, text)
		}
		return text
	})
	for n := 1; n <= p.required; n++ {
		if !used[n] {
			return 0, fmt.Errorf("must reference $%d (%s)", n, p.roles[n-1])
		}
	}
	if len(extra) > 0 {
		allowed := make([]string, len(p.roles))
		for i, role := range p.roles {
			allowed[i] = fmt.Sprintf("$%d (%s)", i+1, role)
		}
		list := allowed[0]
		if len(allowed) > 1 {
			list = strings.Join(allowed[:len(allowed)-1], ", ") + " and " + allowed[len(allowed)-1]
		}
		return 0, fmt.Errorf("may only reference %s, found %s", list, strings.Join(extra, ", "))
	}
	return highest, nil
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
