// Package buildinfo says which build of ringcache is running: for
// `ringcached --version`, `ringcachectl --version`, the node's start log
// line and the RESP door's INFO (ringcache_version).
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// version is set at link time by builds that know it, as the Makefile and
// the Dockerfile do (from `git describe`):
//
//	go build -ldflags "-X github.com/ringcache/ringcache/internal/buildinfo.version=v0.3.0" ./cmd/node
var version string

// Version is the build's version: the one set at link time; else the
// module's (a `go install …@v0.3.0`); else the commit Go stamped into the
// build, with "+dirty" when the tree had changes; else "devel".
func Version() string { return resolved() }

var resolved = sync.OnceValue(func() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	return fromBuildInfo(bi)
})

func fromBuildInfo(bi *debug.BuildInfo) string {
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "devel-" + rev
	if dirty {
		v += "+dirty"
	}
	return v
}
