package resp

import (
	"fmt"
	"time"

	"github.com/ringcache/ringcache/internal/engine"
	"github.com/ringcache/ringcache/internal/reason"
)

// errorReply turns an op's error into a Redis error reply, its code chosen
// by the error's reason (engine.Status), never by its text:
//
//	UNAUTHENTICATED                          NOAUTH
//	PERMISSION_DENIED                        NOPERM
//	RATE_LIMITED                             BUSY     (the caller is over its own rate: slow down)
//	BACKPRESSURE, NODE_NOT_READY             TRYAGAIN (transient: retry shortly, or on another node)
//	OWNER_UNREACHABLE, OWNER_CONNECTION_LOST CLUSTERDOWN (the key's owner is out of reach)
//	anything else                            ERR
//
// The message is the engine's, and says what to do; a retry delay, when
// known, is appended.
func errorReply(err error) string {
	st := engine.Status(err)
	code := "ERR"
	switch reason.Of(st.Err()) {
	case reason.Unauthenticated:
		code = "NOAUTH"
	case reason.PermissionDenied:
		code = "NOPERM"
	case reason.RateLimited:
		code = "BUSY"
	case reason.Backpressure, reason.NodeNotReady:
		code = "TRYAGAIN"
	case reason.OwnerUnreachable, reason.OwnerConnectionLost:
		code = "CLUSTERDOWN"
	}
	msg := code + " " + st.Message()
	if d := reason.RetryDelay(st.Err()); d > 0 && code != "BUSY" {
		msg += fmt.Sprintf(" (retry after %s)", d.Round(time.Millisecond))
	}
	return msg
}

// Redis's own error texts, for the errors the door itself finds.
const (
	errSyntax      = "ERR syntax error"
	errNotInteger  = "ERR value is not an integer or out of range"
	errWrongPass   = "WRONGPASS invalid username-password pair or user is disabled."
	errNoAuth      = "NOAUTH Authentication required."
	errNoPassword  = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
	errDBIndex     = "ERR DB index is out of range"
	errNoProto     = "NOPROTO unsupported protocol version"
	errProtoNotInt = "ERR Protocol version is not an integer or out of range"
	errClusterOff  = "ERR This instance has cluster support disabled"
	errCrossSlot   = "CROSSSLOT Keys in request don't hash to the same slot"
)

func errArity(name string) string {
	return "ERR wrong number of arguments for '" + name + "' command"
}

func errExpire(cmd string) string {
	return "ERR invalid expire time in '" + cmd + "' command"
}

func errSubcommand(sub []byte, cmd string) string {
	return fmt.Sprintf("ERR unknown subcommand '%.128s'. Try %s HELP.", sub, cmd)
}

// errUnknown is Redis's reply to an unknown command: its name and the
// first arguments, up to 128 bytes.
func errUnknown(argv [][]byte) string {
	args := make([]byte, 0, 64)
	for _, a := range argv[1:] {
		if len(args) >= 128 {
			break
		}
		args = fmt.Appendf(args, "'%.*s' ", 128-len(args), a)
	}
	return fmt.Sprintf("ERR unknown command '%.128s', with args beginning with: %s", argv[0], args)
}
