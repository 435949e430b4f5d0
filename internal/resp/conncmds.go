package resp

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringcache/ringcache/internal/auth"
)

func itoa(n int) string { return strconv.Itoa(n) }

func cmdPing(c *conn, argv [][]byte) {
	switch len(argv) {
	case 1:
		c.replySimple("PONG")
	case 2:
		msg := string(argv[1])
		c.reply(func(w *writer) { w.bulkString(msg) })
	default:
		c.replyErr(errArity("ping"))
	}
}

func cmdEcho(c *conn, argv [][]byte) {
	msg := string(argv[1])
	c.reply(func(w *writer) { w.bulkString(msg) })
}

func cmdQuit(c *conn, _ [][]byte) {
	c.replySimple("OK")
	c.quit = true
}

func cmdSelect(c *conn, argv [][]byte) {
	switch v, ok := integer(argv[1]); {
	case !ok:
		c.replyErr(errNotInteger)
	case v != 0:
		c.replyErr(errDBIndex)
	default:
		c.replySimple("OK")
	}
}

func cmdDBSize(c *conn, _ [][]byte) {
	c.execute() // count what the commands before it wrote
	n := c.s.cfg.Stats().Keys
	c.reply(func(w *writer) { w.int(int64(n)) })
}

// cmdFlush is FLUSHDB and FLUSHALL: admin only. Both empty every
// namespace on every member (one database holds every namespace the door
// reaches), in constant time per node; pending write-behind writes are
// kept. SYNC and ASYNC are accepted: the flush is done when the reply is
// sent either way.
func cmdFlush(c *conn, argv [][]byte) {
	if len(argv) > 2 || len(argv) == 2 && !is(argv[1], "ASYNC") && !is(argv[1], "SYNC") {
		c.replyErr(errSyntax)
		return
	}
	if a := c.s.cfg.Auth; a != nil {
		if err := a.Authorize(c.principal, auth.RoleAdmin, ""); err != nil {
			c.replyErr(errorReply(err))
			return
		}
	}
	if c.s.cfg.Flush == nil {
		c.replyErr("ERR " + strings.ToUpper(c.lastCmd) + " is not available on this server")
		return
	}
	c.execute() // the commands before it run before it, as in Redis
	ctx, cancel := context.WithTimeout(c.ctx, flushTimeout)
	defer cancel()
	if err := c.s.cfg.Flush(ctx); err != nil {
		c.replyErr("ERR " + strings.ToUpper(c.lastCmd) + " failed: " + err.Error() + "; a flush is idempotent: run it again")
		return
	}
	c.replySimple("OK")
}

// flushTimeout bounds a cluster-wide FLUSHDB.
const flushTimeout = 10 * time.Second

// authenticate identifies the caller of AUTH or HELLO AUTH by its token
// (the password); a user name, when given, must be "default" or the
// principal's. It returns the error reply, or "". Without authentication,
// as on a Redis whose default user has no password, "default" with any
// password is accepted (clients given redis://default:pw@host send it) and
// a password alone is an error.
func (c *conn) authenticate(user, token []byte) string {
	a := c.s.cfg.Auth
	if a == nil || !a.Enabled() {
		switch {
		case user == nil:
			return errNoPassword
		case string(user) != "default":
			return errWrongPass
		}
		return ""
	}
	p, err := a.Identify(auth.Credentials{Token: string(token)})
	if err != nil || p.Kind != auth.Token {
		return errWrongPass
	}
	if user != nil && string(user) != "default" && string(user) != p.Name {
		return errWrongPass
	}
	c.execute() // the commands before AUTH run as the previous principal
	c.principal = p
	return ""
}

func cmdAuth(c *conn, argv [][]byte) {
	var user []byte
	switch len(argv) {
	case 2:
	case 3:
		user = argv[1]
	default:
		c.replyErr(errSyntax)
		return
	}
	if msg := c.authenticate(user, argv[len(argv)-1]); msg != "" {
		c.replyErr(msg)
		return
	}
	c.replySimple("OK")
}

// cmdHello is HELLO [protover [AUTH user pass] [SETNAME name]].
func cmdHello(c *conn, argv [][]byte) {
	proto := c.w.proto
	if len(argv) > 1 {
		v, ok := integer(argv[1])
		if !ok {
			c.replyErr(errProtoNotInt)
			return
		}
		if v != 2 && v != 3 {
			c.replyErr(errNoProto)
			return
		}
		proto = int(v)
	}
	var user, pass, name []byte
	for i := 2; i < len(argv); i++ {
		switch {
		case is(argv[i], "AUTH") && i+2 < len(argv):
			user, pass = argv[i+1], argv[i+2]
			i += 2
		case is(argv[i], "SETNAME") && i+1 < len(argv):
			name = argv[i+1]
			i++
		default:
			c.replyErr(fmt.Sprintf("ERR Syntax error in HELLO option '%.128s'", argv[i]))
			return
		}
	}
	if pass != nil {
		if msg := c.authenticate(user, pass); msg != "" {
			c.replyErr(msg)
			return
		}
	}
	if name != nil {
		if msg := validName(name); msg != "" {
			c.replyErr(msg)
			return
		}
		c.name = string(name)
	}
	c.execute() // earlier replies in the earlier protocol
	c.w.proto = proto
	mode := "standalone"
	if c.s.cfg.Topology != nil {
		mode = "cluster"
	}
	id := c.id
	c.reply(func(w *writer) {
		w.mapHeader(7)
		w.bulkString("server")
		w.bulkString("ringcache")
		w.bulkString("version")
		w.bulkString(redisVersion)
		w.bulkString("proto")
		w.int(int64(proto))
		w.bulkString("id")
		w.int(id)
		w.bulkString("mode")
		w.bulkString(mode)
		w.bulkString("role")
		w.bulkString("master")
		w.bulkString("modules")
		w.array(0)
	})
}

// redisVersion is the Redis version whose commands the door answers as
// Redis does (HELLO, INFO's redis_version).
const redisVersion = "7.2.0"

// validName checks a client name as Redis does.
func validName(name []byte) string {
	for _, b := range name {
		if b < '!' || b > '~' {
			return "ERR Client names cannot contain spaces, newlines or special characters."
		}
	}
	return ""
}

func cmdClient(c *conn, argv [][]byte) {
	sub := argv[1]
	arity := func(n int, name string) bool {
		if len(argv) != n {
			c.replyErr(errArity("client|" + name))
			return false
		}
		return true
	}
	switch {
	case is(sub, "SETNAME"):
		if !arity(3, "setname") {
			return
		}
		if msg := validName(argv[2]); msg != "" {
			c.replyErr(msg)
			return
		}
		c.name = string(argv[2])
		c.replySimple("OK")
	case is(sub, "GETNAME"):
		if !arity(2, "getname") {
			return
		}
		name := c.name
		c.reply(func(w *writer) { w.bulkOrNull([]byte(name), name != "") })
	case is(sub, "ID"):
		if !arity(2, "id") {
			return
		}
		id := c.id
		c.reply(func(w *writer) { w.int(id) })
	case is(sub, "SETINFO"):
		if !arity(4, "setinfo") {
			return
		}
		v := string(argv[3])
		if strings.ContainsAny(v, " \r\n") {
			c.replyErr("ERR " + string(argv[2]) + " cannot contain spaces, newlines or special characters.")
			return
		}
		switch {
		case is(argv[2], "LIB-NAME"):
			c.libName = v
		case is(argv[2], "LIB-VER"):
			c.libVer = v
		default:
			c.replyErr(fmt.Sprintf("ERR Unrecognized option '%.128s'", argv[2]))
			return
		}
		c.replySimple("OK")
	case is(sub, "INFO"):
		if !arity(2, "info") {
			return
		}
		line := c.info() + "\n"
		c.reply(func(w *writer) { w.verbatim(line) })
	case is(sub, "LIST"):
		var b strings.Builder
		for _, line := range c.s.clientLines() {
			b.WriteString(line)
			b.WriteByte('\n')
		}
		list := b.String()
		c.reply(func(w *writer) { w.verbatim(list) })
	default:
		c.replyErr(errSubcommand(sub, "CLIENT"))
	}
}

// info is the connection's line of CLIENT INFO and CLIENT LIST.
func (c *conn) info() string {
	age := int64(c.s.cfg.Now().Sub(c.created).Seconds())
	return fmt.Sprintf("id=%d addr=%s laddr=%s fd=0 name=%s age=%d idle=0 flags=N db=0 sub=0 psub=0 ssub=0 multi=-1 cmd=%s user=%s resp=%d lib-name=%s lib-ver=%s",
		c.id, c.remote, c.nc.LocalAddr(), c.name, age, c.lastCmd, principalName(c.principal), c.w.proto, c.libName, c.libVer)
}

func principalName(p auth.Principal) string {
	if p.Kind == auth.Anonymous {
		return "default"
	}
	return strings.ReplaceAll(p.Name, " ", "_")
}

// clientLines returns CLIENT INFO lines of every connection. It reads
// other connections' fields without their goroutines' synchronization,
// as Redis's CLIENT LIST is a snapshot too; only stable fields are read.
func (s *Server) clientLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.conns))
	for c := range s.conns {
		out = append(out, fmt.Sprintf("id=%d addr=%s", c.id, c.remote))
	}
	slices.Sort(out)
	return out
}

// cmdCommand is COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS and
// COMMAND LIST: enough for redis-cli and for cluster clients that look up
// where a command's keys are.
func cmdCommand(c *conn, argv [][]byte) {
	names := make([]string, 0, len(c.s.commands))
	for n := range c.s.commands {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(argv) == 1 {
		c.reply(func(w *writer) {
			w.array(len(names))
			for _, n := range names {
				c.s.commands[n].writeInfo(w)
			}
		})
		return
	}
	sub := argv[1]
	switch {
	case is(sub, "COUNT"):
		c.reply(func(w *writer) { w.int(int64(len(names))) })
	case is(sub, "LIST"):
		c.reply(func(w *writer) { w.strings(names...) })
	case is(sub, "INFO"):
		cmds := make([]*command, len(argv)-2)
		for i, a := range argv[2:] {
			cmds[i] = c.s.lookup(a)
		}
		if len(argv) == 2 {
			for _, n := range names {
				cmds = append(cmds, c.s.commands[n])
			}
		}
		c.reply(func(w *writer) {
			w.array(len(cmds))
			for _, cmd := range cmds {
				if cmd == nil {
					w.null() // Redis 7 answers a null bulk for an unknown name
					continue
				}
				cmd.writeInfo(w)
			}
		})
	case is(sub, "DOCS"):
		// No documentation: redis-cli then shows no hints, which is all it
		// needs.
		c.reply(func(w *writer) { w.mapHeader(0) })
	default:
		c.replyErr(errSubcommand(sub, "COMMAND"))
	}
}

// writeInfo writes the command's COMMAND INFO entry, as Redis 7 does.
func (cmd *command) writeInfo(w *writer) {
	w.array(10)
	w.bulkString(cmd.name)
	w.int(int64(cmd.arity))
	w.setHeader(len(cmd.flags))
	for _, f := range cmd.flags {
		w.simple(f)
	}
	w.int(int64(cmd.firstKey))
	w.int(int64(cmd.lastKey))
	w.int(int64(cmd.step))
	w.setHeader(0) // ACL categories
	w.array(0)     // tips
	w.array(0)     // key specs
	w.array(0)     // subcommands
}
