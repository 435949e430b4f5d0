package daemon

import (
	"cmp"
	"log/slog"
	"reflect"
	"slices"

	"github.com/ringcache/ringcache/internal/config"
	"github.com/ringcache/ringcache/internal/gossipkey"
	"github.com/ringcache/ringcache/pkg/node"
)

// reloader is what a SIGHUP reloads on a node (*node.Node).
type reloader interface {
	RotateGossipKeys(keys [][]byte) error
	ReloadAuth(a *node.AuthConfig) error
	ReloadRESPRedirect(all bool)
	ReloadTLS() error
	ReopenAuditLog() error
	ReloadSealKeys(keys [][]byte) error
}

// reload is the SIGHUP handler. It re-reads the gossip keys, the config
// file's auth section and resp.redirect (started is the file the node
// started with), the tokens file and the TLS files, and reopens the audit
// log (logrotate's postrotate). Each part that fails is logged and leaves
// what was in force; the others go on. The rest of the config file needs a
// restart, and a change there is logged as such.
func reload(log *slog.Logger, f Flags, started *config.File, n reloader) {
	if f.GossipKeyFile != "" {
		reloadGossipKeys(log, f.GossipKeyFile, n.RotateGossipKeys)
	}
	if f.ConfigPath != "" {
		reloadFile(log, f.ConfigPath, f.DataDir, started, n)
	}
	if err := n.ReloadTLS(); err != nil {
		log.Error("SIGHUP: TLS files not reloaded; the certificate in use stays", "err", err)
	} else if f.Security.TLSCert != "" {
		log.Info("SIGHUP: TLS files reloaded")
	}
	if path := f.Security.SealKeyFile; path != "" {
		keys, err := gossipkey.Read(path)
		if err == nil {
			err = n.ReloadSealKeys(keys)
		}
		if err != nil {
			log.Error("SIGHUP: seal keys not reloaded; the keys in force stay", "err", err)
		} else {
			log.Info("SIGHUP: seal keys reloaded", "keys", len(keys))
		}
	}
	if err := n.ReopenAuditLog(); err != nil {
		log.Error("SIGHUP: audit log not reopened", "err", err)
	} else if f.Security.AuditLog != "" {
		log.Info("SIGHUP: audit log reopened", "path", f.Security.AuditLog)
	}
}

// reloadFile re-reads the config file at path and applies its auth
// section and resp.redirect; a file that does not load changes nothing.
func reloadFile(log *slog.Logger, path, dataDir string, started *config.File, n reloader) {
	file, err := config.LoadFile(path, dataDir)
	if err == nil {
		err = n.ReloadAuth(authConfig(file.Auth))
	}
	if err != nil {
		log.Error("SIGHUP: auth section not reloaded; the policy in force stays", "err", err)
		return
	}
	principals := 0
	if file.Auth != nil {
		principals = len(file.Auth.Principals)
	}
	log.Info("SIGHUP: auth section reloaded", "auth", file.Auth != nil, "principals", principals)
	n.ReloadRESPRedirect(file.RESP.Redirect == config.RedirectAlways)
	if file.RESP.Redirect != started.RESP.Redirect {
		log.Info("SIGHUP: resp.redirect reloaded; connections accepted from now on follow it", "redirect", cmp.Or(file.RESP.Redirect, config.RedirectAuto))
	}
	if changed := needRestart(started, file); len(changed) > 0 {
		log.Warn("SIGHUP: only the auth section, the files it names and resp.redirect are reloaded; these changes to the config file take effect on restart",
			"changed", changed)
	}
}

// needRestart names what changed from started to now that a SIGHUP does
// not apply: every section but auth and resp.redirect, and the audit key
// file.
func needRestart(started, now *config.File) []string {
	var changed []string
	for name, same := range map[string]bool{
		"ring":                   reflect.DeepEqual(started.Ring, now.Ring),
		"backends":               reflect.DeepEqual(started.Backends, now.Backends),
		"namespaces":             reflect.DeepEqual(started.Namespaces, now.Namespaces),
		"auth.audit_key_file":    auditKeyFile(started) == auditKeyFile(now),
		"resp.default_namespace": started.RESP.DefaultNamespace == now.RESP.DefaultNamespace,
		"prewarm":                reflect.DeepEqual(started.Prewarm, now.Prewarm),
	} {
		if !same {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	return changed
}

func auditKeyFile(f *config.File) string {
	if f.Auth == nil {
		return ""
	}
	return f.Auth.AuditKeyFile
}
