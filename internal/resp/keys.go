package resp

import (
	"bytes"
	"math"
	"time"

	"github.com/ringcache/ringcache/internal/engine"
)

// maxTTL stands for lifetimes longer than a time.Duration holds; the
// store treats them as no expiry anyway.
const maxTTL = 100 * 365 * 24 * time.Hour

func cmdGet(c *conn, argv [][]byte) {
	if c.redirected(argv[1:2]) {
		return
	}
	ns, k := c.key(argv[1])
	c.addOps([]engine.Op{{Kind: engine.Get, Namespace: ns, Key: k}}, replyBulk, nil)
}

// expiry parses an expire argument of unit (EX: time.Second, PX:
// time.Millisecond; abs for EXAT and PXAT) into a lifetime from now. It
// returns the error reply when the argument is not a valid expire time, as
// Redis words it for cmd.
func (c *conn) expiry(arg []byte, unit time.Duration, abs bool, cmd string) (time.Duration, string) {
	v, ok := integer(arg)
	if !ok {
		return 0, errNotInteger
	}
	if v <= 0 || unit == time.Second && v > math.MaxInt64/1000 {
		return 0, errExpire(cmd)
	}
	if abs {
		at := time.UnixMilli(v)
		if unit == time.Second {
			at = time.Unix(v, 0)
		}
		return max(at.Sub(c.s.cfg.Now()), time.Nanosecond), "" // in the past: expires at once
	}
	ms := v
	if unit == time.Second {
		ms *= 1000
	}
	if ms > math.MaxInt64-c.s.cfg.Now().UnixMilli() { // Redis's own bound: now + ttl in ms must fit
		return 0, errExpire(cmd)
	}
	if v > int64(maxTTL/unit) {
		return maxTTL, ""
	}
	return time.Duration(v) * unit, ""
}

func cmdSet(c *conn, argv [][]byte) {
	var flags engine.Flags
	var ttl time.Duration
	var nx, xx, get, keep, exp bool
	for i := 3; i < len(argv); i++ {
		a := argv[i]
		switch {
		case is(a, "NX"):
			nx = true
		case is(a, "XX"):
			xx = true
		case is(a, "GET"):
			get = true
		case is(a, "KEEPTTL"):
			keep = true
		case is(a, "EX") || is(a, "PX") || is(a, "EXAT") || is(a, "PXAT"):
			if exp || i+1 >= len(argv) {
				c.replyErr(errSyntax)
				return
			}
			unit := time.Second
			if a[0] == 'p' || a[0] == 'P' {
				unit = time.Millisecond
			}
			var msg string
			if ttl, msg = c.expiry(argv[i+1], unit, len(a) == 4, "set"); msg != "" {
				c.replyErr(msg)
				return
			}
			exp = true
			i++
		default:
			c.replyErr(errSyntax)
			return
		}
	}
	if nx && xx || keep && exp {
		c.replyErr(errSyntax)
		return
	}
	if c.redirected(argv[1:2]) {
		return
	}
	ns, k := c.key(argv[1])
	op := engine.Op{Kind: engine.Set, Namespace: ns, Key: k, Value: bytes.Clone(argv[2]), TTL: ttl}
	if !nx && !xx && !get && !keep {
		c.addOps([]engine.Op{op}, replyOK, nil)
		return
	}
	op.Kind = engine.SetIf
	for _, f := range []struct {
		on bool
		f  engine.Flags
	}{{nx, engine.NX}, {xx, engine.XX}, {keep, engine.KeepTTL}, {get, engine.ReturnOld}} {
		if f.on {
			flags |= f.f
		}
	}
	op.Flags = flags
	c.addOps([]engine.Op{op}, replyFunc, func(w *writer, rs []engine.Result) {
		r := rs[0]
		switch {
		case r.Err != nil:
			w.err(errorReply(r.Err))
		case get:
			w.bulkOrNull(r.Value, r.Found)
		case nx && r.Found || xx && !r.Found:
			w.null()
		default:
			w.ok()
		}
	})
}

// cmdSetEx is SETEX key seconds value and PSETEX key milliseconds value.
func cmdSetEx(c *conn, argv [][]byte) {
	name, unit := "setex", time.Second
	if is(argv[0], "PSETEX") {
		name, unit = "psetex", time.Millisecond
	}
	ttl, msg := c.expiry(argv[2], unit, false, name)
	if msg != "" {
		c.replyErr(msg)
		return
	}
	if c.redirected(argv[1:2]) {
		return
	}
	ns, k := c.key(argv[1])
	c.addOps([]engine.Op{{Kind: engine.Set, Namespace: ns, Key: k, Value: bytes.Clone(argv[3]), TTL: ttl}}, replyOK, nil)
}

func cmdGetDel(c *conn, argv [][]byte) {
	if c.redirected(argv[1:2]) {
		return
	}
	ns, k := c.key(argv[1])
	c.addOps([]engine.Op{{Kind: engine.GetDel, Namespace: ns, Key: k}}, replyBulk, nil)
}

// cmdGetEx is GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST].
func cmdGetEx(c *conn, argv [][]byte) {
	var ttl time.Duration
	set := false
	for i := 2; i < len(argv); i++ {
		a := argv[i]
		switch {
		case is(a, "PERSIST") && !set:
			set = true
		case (is(a, "EX") || is(a, "PX") || is(a, "EXAT") || is(a, "PXAT")) && !set && i+1 < len(argv):
			unit := time.Second
			if a[0] == 'p' || a[0] == 'P' {
				unit = time.Millisecond
			}
			var msg string
			if ttl, msg = c.expiry(argv[i+1], unit, len(a) == 4, "getex"); msg != "" {
				c.replyErr(msg)
				return
			}
			set = true
			i++
		default:
			c.replyErr(errSyntax)
			return
		}
	}
	if c.redirected(argv[1:2]) {
		return
	}
	ns, k := c.key(argv[1])
	op := engine.Op{Kind: engine.Get, Namespace: ns, Key: k}
	if set {
		op = engine.Op{Kind: engine.Expire, Namespace: ns, Key: k, TTL: ttl, Flags: engine.ReturnOld}
	}
	c.addOps([]engine.Op{op}, replyBulk, nil)
}

// cmdDel is DEL and UNLINK: the reply counts the keys that existed, as the
// owner's memory and write-behind journal know them (a key only in the
// database of a read-through namespace is deleted there but not counted).
func cmdDel(c *conn, argv [][]byte) {
	keys := argv[1:]
	if len(keys) > c.s.cfg.MaxBatch {
		c.replyErr(errTooManyKeys(len(keys), c.s.cfg.MaxBatch))
		return
	}
	if c.redirected(keys) {
		return
	}
	ops := make([]engine.Op, 0, len(keys))
	seen := map[string]bool{}
	for _, key := range keys {
		if len(keys) > 1 {
			if seen[string(key)] {
				continue // deleted once; the second would find nothing
			}
			seen[string(key)] = true
		}
		ns, k := c.key(key)
		ops = append(ops, engine.Op{Kind: engine.GetDel, Namespace: ns, Key: k, Flags: engine.MemoryOnly})
	}
	c.addOps(ops, replyFunc, replyCount)
}

func cmdExists(c *conn, argv [][]byte) {
	keys := argv[1:]
	if len(keys) > c.s.cfg.MaxBatch {
		c.replyErr(errTooManyKeys(len(keys), c.s.cfg.MaxBatch))
		return
	}
	if c.redirected(keys) {
		return
	}
	ops := make([]engine.Op, len(keys))
	for i, key := range keys {
		ns, k := c.key(key)
		ops[i] = engine.Op{Kind: engine.Get, Namespace: ns, Key: k}
	}
	c.addOps(ops, replyFunc, replyCount)
}

// replyCount answers with the number of results found, or the first error.
func replyCount(w *writer, rs []engine.Result) {
	if err := firstErr(rs); err != nil {
		w.err(errorReply(err))
		return
	}
	n := 0
	for _, r := range rs {
		if r.Found {
			n++
		}
	}
	w.int(int64(n))
}

func cmdMGet(c *conn, argv [][]byte) {
	keys := argv[1:]
	if len(keys) > c.s.cfg.MaxBatch {
		c.replyErr(errTooManyKeys(len(keys), c.s.cfg.MaxBatch))
		return
	}
	if c.redirected(keys) {
		return
	}
	ops := make([]engine.Op, len(keys))
	for i, key := range keys {
		ns, k := c.key(key)
		ops[i] = engine.Op{Kind: engine.Get, Namespace: ns, Key: k}
	}
	c.addOps(ops, replyFunc, func(w *writer, rs []engine.Result) {
		if err := firstErr(rs); err != nil {
			w.err(errorReply(err))
			return
		}
		w.array(len(rs))
		for _, r := range rs {
			w.bulkOrNull(r.Value, r.Found)
		}
	})
}

func cmdMSet(c *conn, argv [][]byte) {
	if len(argv)%2 == 0 {
		c.replyErr(errArity("mset"))
		return
	}
	n := (len(argv) - 1) / 2
	if n > c.s.cfg.MaxBatch {
		c.replyErr(errTooManyKeys(n, c.s.cfg.MaxBatch))
		return
	}
	keys := make([][]byte, 0, n)
	for i := 1; i < len(argv); i += 2 {
		keys = append(keys, argv[i])
	}
	if c.redirected(keys) {
		return
	}
	ops := make([]engine.Op, 0, n)
	at := map[string]int{} // a key given twice takes its last value, as in Redis
	for i := 1; i < len(argv); i += 2 {
		ns, k := c.key(argv[i])
		op := engine.Op{Kind: engine.Set, Namespace: ns, Key: k, Value: bytes.Clone(argv[i+1])}
		if j, dup := at[string(argv[i])]; dup {
			ops[j] = op
			continue
		}
		if n > 1 {
			at[string(argv[i])] = len(ops)
		}
		ops = append(ops, op)
	}
	c.addOps(ops, replyOK, nil)
}

// cmdExpire is EXPIRE key seconds and PEXPIRE key milliseconds. A
// lifetime of 0 or less deletes the key, as in Redis.
func cmdExpire(c *conn, argv [][]byte) {
	name, unit := "expire", time.Second
	if is(argv[0], "PEXPIRE") {
		name, unit = "pexpire", time.Millisecond
	}
	v, ok := integer(argv[2])
	if !ok {
		c.replyErr(errNotInteger)
		return
	}
	if len(argv) > 3 {
		a := argv[3]
		if len(argv) == 4 && (is(a, "NX") || is(a, "XX") || is(a, "GT") || is(a, "LT")) {
			c.replyErr("ERR " + string(bytes.ToUpper(a)) + " is not supported by ringcache's " + name + " (NX, XX, GT and LT are not)")
			return
		}
		c.replyErr("ERR Unsupported option " + string(a))
		return
	}
	if unit == time.Second && v > math.MaxInt64/1000 || v < math.MinInt64/1000 {
		c.replyErr(errExpire(name))
		return
	}
	if c.redirected(argv[1:2]) {
		return
	}
	ns, k := c.key(argv[1])
	op := engine.Op{Kind: engine.Expire, Namespace: ns, Key: k, TTL: maxTTL}
	switch {
	case v <= 0:
		op = engine.Op{Kind: engine.GetDel, Namespace: ns, Key: k, Flags: engine.MemoryOnly}
	case v <= int64(maxTTL/unit):
		op.TTL = time.Duration(v) * unit
	}
	c.addOps([]engine.Op{op}, replyFunc, replyCount)
}

// cmdTTL is TTL and PTTL: -2 when the key does not exist, -1 when it never
// expires.
func cmdTTL(c *conn, argv [][]byte) {
	ms := is(argv[0], "PTTL")
	if c.redirected(argv[1:2]) {
		return
	}
	ns, k := c.key(argv[1])
	c.addOps([]engine.Op{{Kind: engine.TTL, Namespace: ns, Key: k}}, replyFunc, func(w *writer, rs []engine.Result) {
		r := rs[0]
		switch {
		case r.Err != nil:
			w.err(errorReply(r.Err))
		case !r.Found:
			w.int(-2)
		case r.TTL <= 0:
			w.int(-1)
		case ms:
			w.int(r.TTL.Milliseconds())
		default:
			w.int((r.TTL.Milliseconds() + 500) / 1000)
		}
	})
}

func errTooManyKeys(n, limit int) string {
	return "ERR " + itoa(n) + " keys in one command; ringcache allows at most " + itoa(limit)
}
