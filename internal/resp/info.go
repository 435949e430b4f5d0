package resp

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
)

// cmdInfo is INFO [section ...]: the sections server, clients, memory,
// stats, keyspace and cluster, with fields named as Redis names them so
// that redis_exporter and alert rules written for Redis read them.
func cmdInfo(c *conn, argv [][]byte) {
	want := map[string]bool{}
	for _, a := range argv[1:] {
		s := strings.ToLower(string(a))
		if s == "all" || s == "everything" || s == "default" {
			want = map[string]bool{}
			break
		}
		want[s] = true
	}
	c.execute() // the counters include the commands before it
	text := c.s.info(want)
	c.reply(func(w *writer) { w.verbatim(text) })
}

// info renders the sections in want (all when empty).
func (s *Server) info(want map[string]bool) string {
	var b strings.Builder
	section := func(name string, fields ...any) {
		if len(want) > 0 && !want[strings.ToLower(name)] {
			return
		}
		if b.Len() > 0 {
			b.WriteString("\r\n")
		}
		b.WriteString("# " + name + "\r\n")
		for i := 0; i+1 < len(fields); i += 2 {
			fmt.Fprintf(&b, "%s:%v\r\n", fields[i], fields[i+1])
		}
	}
	now := s.cfg.Now()
	uptime := int64(now.Sub(s.started).Seconds())
	port := ""
	s.mu.Lock()
	if len(s.lis) > 0 {
		_, port, _ = net.SplitHostPort(s.lis[0].Addr().String())
	}
	s.mu.Unlock()
	mode := "standalone"
	if s.cfg.Topology != nil {
		mode = "cluster"
	}
	st := s.cfg.Stats()
	var hits, misses uint64
	for _, ns := range s.cfg.Engine.NamespaceStats() {
		hits += ns.Hits
		misses += ns.Misses
	}
	var ms runtime.MemStats
	if len(want) == 0 || want["memory"] {
		runtime.ReadMemStats(&ms)
	}
	section("Server",
		"redis_version", redisVersion,
		"ringcache_version", s.cfg.Version,
		"redis_mode", mode,
		"os", runtime.GOOS,
		"arch_bits", 64,
		"process_id", os.Getpid(),
		"run_id", NodeID(s.cfg.Name),
		"tcp_port", port,
		"uptime_in_seconds", uptime,
		"uptime_in_days", uptime/86400,
	)
	section("Clients",
		"connected_clients", s.stats.conns.Load(),
		"maxclients", s.cfg.MaxConns,
		"blocked_clients", 0,
	)
	section("Memory",
		"used_memory", st.UsedMemory,
		"used_memory_human", human(st.UsedMemory),
		"used_memory_rss", ms.Sys,
		"maxmemory", st.MaxMemory,
		"maxmemory_human", human(st.MaxMemory),
		"maxmemory_policy", "allkeys-lfu",
	)
	section("Stats",
		"total_connections_received", s.stats.received.Load(),
		"total_commands_processed", s.stats.commands.Load(),
		"rejected_connections", s.stats.rejected.Load(),
		"expired_keys", 0,
		"evicted_keys", st.Evictions,
		"keyspace_hits", hits,
		"keyspace_misses", misses,
	)
	// Every node is a primary of its keys; replicas of write-behind
	// records are not Redis replicas. redis_exporter labels by role.
	section("Replication",
		"role", "master",
		"connected_slaves", 0,
	)
	if len(want) == 0 || want["cluster"] {
		enabled := 0
		if s.cfg.Topology != nil {
			enabled = 1
		}
		section("Cluster", "cluster_enabled", enabled)
	}
	if len(want) == 0 || want["keyspace"] {
		if st.Keys > 0 {
			section("Keyspace", "db0", fmt.Sprintf("keys=%d,expires=%d,avg_ttl=0", st.Keys, st.Keys))
		} else {
			section("Keyspace")
		}
	}
	return b.String()
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2fK", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
