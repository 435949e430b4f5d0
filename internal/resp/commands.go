package resp

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
)

// command is one entry of the command table.
type command struct {
	name string // lower case, as Redis names it in errors
	// arity is Redis's: n means exactly n arguments (the name included),
	// -n at least n.
	arity int
	flags []string // COMMAND INFO's flags
	// firstKey, lastKey and step say where the keys are, as COMMAND INFO
	// tells cluster clients (lastKey -1: the last argument).
	firstKey, lastKey, step int
	run                     func(c *conn, argv [][]byte)
	method                  string // the audit log's method: "RESP GET"
	noAuth                  bool   // flag no_auth: served before AUTH
}

// commandTable returns the commands the door serves, by lower-case name.
func commandTable() map[string]*command {
	t := map[string]*command{}
	add := func(name string, arity int, flags string, first, last, step int, run func(*conn, [][]byte)) {
		var fl []string
		if flags != "" {
			fl = bytes2strings(bytes.Fields([]byte(flags)))
		}
		t[name] = &command{name: name, arity: arity, flags: fl, firstKey: first, lastKey: last, step: step, run: run, method: "RESP " + strings.ToUpper(name),
			noAuth: slices.Contains(fl, "no_auth")}
	}
	// Keys.
	add("get", 2, "readonly fast", 1, 1, 1, cmdGet)
	add("set", -3, "write denyoom", 1, 1, 1, cmdSet)
	add("setex", 4, "write denyoom", 1, 1, 1, cmdSetEx)
	add("psetex", 4, "write denyoom", 1, 1, 1, cmdSetEx)
	add("getdel", 2, "write fast", 1, 1, 1, cmdGetDel)
	add("getex", -2, "write fast", 1, 1, 1, cmdGetEx)
	add("del", -2, "write", 1, -1, 1, cmdDel)
	add("unlink", -2, "write fast", 1, -1, 1, cmdDel)
	add("exists", -2, "readonly fast", 1, -1, 1, cmdExists)
	add("mget", -2, "readonly fast", 1, -1, 1, cmdMGet)
	add("mset", -3, "write denyoom", 1, -1, 2, cmdMSet)
	add("expire", -3, "write fast", 1, 1, 1, cmdExpire)
	add("pexpire", -3, "write fast", 1, 1, 1, cmdExpire)
	add("ttl", 2, "readonly fast", 1, 1, 1, cmdTTL)
	add("pttl", 2, "readonly fast", 1, 1, 1, cmdTTL)
	// Server and connection.
	add("dbsize", 1, "readonly fast", 0, 0, 0, cmdDBSize)
	add("flushdb", -1, "write", 0, 0, 0, cmdFlush)
	add("flushall", -1, "write", 0, 0, 0, cmdFlush)
	add("info", -1, "loading stale", 0, 0, 0, cmdInfo)
	add("ping", -1, "fast stale", 0, 0, 0, cmdPing)
	add("echo", 2, "fast", 0, 0, 0, cmdEcho)
	add("hello", -1, "noscript loading stale fast no_auth", 0, 0, 0, cmdHello)
	add("auth", -2, "noscript loading stale fast no_auth", 0, 0, 0, cmdAuth)
	add("quit", -1, "noscript loading stale fast no_auth", 0, 0, 0, cmdQuit)
	add("select", 2, "loading stale fast", 0, 0, 0, cmdSelect)
	add("client", -2, "loading stale", 0, 0, 0, cmdClient)
	add("command", -1, "loading stale", 0, 0, 0, cmdCommand)
	// Cluster.
	add("cluster", -2, "", 0, 0, 0, cmdCluster)
	add("readonly", 1, "loading stale fast", 0, 0, 0, cmdClusterMode)
	add("readwrite", 1, "loading stale fast", 0, 0, 0, cmdClusterMode)
	add("asking", 1, "fast", 0, 0, 0, cmdClusterMode)
	return t
}

func bytes2strings(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

// lookup returns the command named name (any case), or nil.
func (s *Server) lookup(name []byte) *command {
	var buf [24]byte
	if len(name) > len(buf) {
		return nil
	}
	n := copy(buf[:], name)
	lower(buf[:n])
	return s.commands[string(buf[:n])]
}

func lower(b []byte) {
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
}

// is reports whether arg is word, ignoring case; word is upper case.
func is(arg []byte, word string) bool {
	if len(arg) != len(word) {
		return false
	}
	for i := range len(arg) {
		c := arg[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != word[i] {
			return false
		}
	}
	return true
}

// dispatch runs one command: it queues its reply, and its ops if it has
// any, in the connection's batch.
func (c *conn) dispatch(argv [][]byte) {
	c.s.stats.commands.Add(1)
	cmd := c.s.lookup(argv[0])
	if cmd == nil {
		c.replyErr(errUnknown(argv))
		return
	}
	if cmd.arity > 0 && len(argv) != cmd.arity || cmd.arity < 0 && len(argv) < -cmd.arity {
		c.replyErr(errArity(cmd.name))
		return
	}
	if a := c.s.cfg.Auth; a != nil && !cmd.noAuth && a.MustAuthenticate(c.principal) {
		c.replyErr(errNoAuth) // as Redis: after the name and arity, before anything else
		return
	}
	c.lastCmd, c.method = cmd.name, cmd.method
	cmd.run(c, argv)
}

// key returns the namespace and key a Redis key addresses: "NS:KEY" is KEY
// of namespace NS when NS is configured and not the default namespace; any
// other key is a key of the default namespace, whole. The default
// namespace's own prefix is kept: were "default:x" the key "x", it would
// have two Redis spellings in two slots, and a cluster client sending the
// prefixed one would land on a node that does not own it.
func (c *conn) key(k []byte) (ns, key string) {
	if i := bytes.IndexByte(k, ':'); i > 0 {
		if name, ok := c.s.namespaces[string(k[:i])]; ok && name != c.s.cfg.DefaultNamespace {
			return name, string(k[i+1:])
		}
	}
	return c.s.cfg.DefaultNamespace, string(k)
}

// integer parses a Redis integer argument.
func integer(b []byte) (int64, bool) {
	v, err := strconv.ParseInt(string(b), 10, 64)
	return v, err == nil
}
