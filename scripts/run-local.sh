#!/usr/bin/env bash
# run-local.sh — start a local 3-node ringcache cluster on loopback, backed by
# the embedded SQLite database with 1000 demo users. `make run` builds
# bin/ringcached and bin/ringcachectl, then runs this script.
#
#   nodes   n1, n2, n3: gRPC 127.0.0.1:7101-7103, gossip 127.0.0.1:7201-7203,
#           Redis door (RESP) 127.0.0.1:6401-6403
#   config  ringcache.example.yaml (namespaces users and sessions)
#   data    ./data/app.db (shared SQLite file), ./data/n1..n3, logs ./data/n1..n3.log
#
# Ctrl-C (SIGINT, SIGTERM or SIGHUP to this script) stops the nodes gracefully: each
# leaves the cluster and exits. If startup fails, the nodes started so far are
# stopped and the end of their logs is printed.
#
# Environment: GO (go command, default go), RINGCACHE_CONFIG (default
# ringcache.example.yaml; the Redis doors are opened, so it needs a namespace
# "default" or resp.default_namespace), STARTUP_TIMEOUT (seconds, default 20).
#
# Written for bash 3.2 too (the macOS /bin/bash): no wait -n, no mapfile.
set -euo pipefail

cd "$(dirname "$0")/.."

GO=${GO:-go}
CONFIG=${RINGCACHE_CONFIG:-ringcache.example.yaml}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-20}
STOP_TIMEOUT=30 # seconds a node may take to leave before it is killed
DATA=data
DAEMON=bin/ringcached
CTL=bin/ringcachectl
NAMES=(n1 n2 n3)
GRPC_PORTS=(7101 7102 7103)
GOSSIP_PORTS=(7201 7202 7203)
ADMIN_PORTS=(7301 7302 7303)
RESP_PORTS=(6401 6402 6403)
JOIN=127.0.0.1:7201,127.0.0.1:7202,127.0.0.1:7203

PIDS=()     # pids of the nodes this script started, index-aligned with NAMES ("" once reaped)
SLEEP_PID="" # the idle loop's sleep

say() { printf '%s\n' "run-local: $*"; }
die() {
	printf '%s\n' "run-local: error: $*" >&2
	exit 1
}

# port_user PROTO PORT prints what holds 127.0.0.1:PORT (tcp listen or udp
# bind), or nothing when the port is free.
port_user() {
	local proto=$1 port=$2 out=""
	if command -v ss >/dev/null 2>&1; then
		if [ "$proto" = tcp ]; then
			out=$(ss -Hltnp "sport = :$port" 2>/dev/null || true)
		else
			out=$(ss -Hlunp "sport = :$port" 2>/dev/null || true)
		fi
	elif command -v lsof >/dev/null 2>&1; then
		if [ "$proto" = tcp ]; then
			out=$(lsof -nP -iTCP:"$port" -sTCP:LISTEN 2>/dev/null | tail -n +2 || true)
		else
			out=$(lsof -nP -iUDP:"$port" 2>/dev/null | tail -n +2 || true)
		fi
	elif [ "$proto" = tcp ]; then
		# Last resort: something accepts connections on the port.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			out="a process accepts TCP connections on 127.0.0.1:$port"
		fi
	fi
	printf '%s' "$out"
}

check_ports() {
	local busy="" i u
	for i in 0 1 2; do
		u=$(port_user tcp "${GRPC_PORTS[$i]}")
		[ -z "$u" ] || busy="$busy  gRPC port ${GRPC_PORTS[$i]}/tcp: $u"$'\n'
		u=$(port_user tcp "${GOSSIP_PORTS[$i]}")
		[ -z "$u" ] || busy="$busy  gossip port ${GOSSIP_PORTS[$i]}/tcp: $u"$'\n'
		u=$(port_user udp "${GOSSIP_PORTS[$i]}")
		[ -z "$u" ] || busy="$busy  gossip port ${GOSSIP_PORTS[$i]}/udp: $u"$'\n'
		u=$(port_user tcp "${ADMIN_PORTS[$i]}")
		[ -z "$u" ] || busy="$busy  admin port ${ADMIN_PORTS[$i]}/tcp: $u"$'\n'
		u=$(port_user tcp "${RESP_PORTS[$i]}")
		[ -z "$u" ] || busy="$busy  Redis port ${RESP_PORTS[$i]}/tcp: $u"$'\n'
	done
	if [ -n "$busy" ]; then
		printf '%s\n%s%s\n' "run-local: error: ports needed by the local cluster are in use:" "$busy" \
			"Is another 'make run' still running? Stop it (Ctrl-C in its terminal) or free the ports." >&2
		exit 1
	fi
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

show_logs() {
	local n
	for n in "${NAMES[@]}"; do
		if [ -f "$DATA/$n.log" ]; then
			printf '\n--- last lines of %s ---\n' "$DATA/$n.log" >&2
			tail -n 20 "$DATA/$n.log" >&2
		fi
	done
}

# stop_nodes sends SIGTERM to every node still running, waits for each to
# exit (SIGKILL after STOP_TIMEOUT) and reports its exit status.
stop_nodes() {
	local i pid deadline rc
	[ "${#PIDS[@]}" -gt 0 ] || return 0
	for pid in "${PIDS[@]}"; do
		if alive "$pid"; then kill -TERM "$pid" 2>/dev/null || true; fi
	done
	deadline=$((SECONDS + STOP_TIMEOUT))
	for i in "${!PIDS[@]}"; do
		pid=${PIDS[$i]}
		[ -n "$pid" ] || continue
		while alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
		if alive "$pid"; then
			say "${NAMES[$i]} (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rc=0
		wait "$pid" 2>/dev/null || rc=$?
		say "${NAMES[$i]} (pid $pid) stopped, exit status $rc"
	done
	PIDS=()
}

on_exit() {
	local rc=$?
	trap - EXIT INT TERM HUP
	if [ "${#PIDS[@]}" -gt 0 ]; then
		say "stopping the nodes this script started"
		stop_nodes
	fi
	exit "$rc"
}

on_signal() {
	trap - INT TERM HUP
	if [ -n "$SLEEP_PID" ]; then kill "$SLEEP_PID" 2>/dev/null || true; fi
	printf '\n'
	say "stopping the cluster (SIGTERM to the nodes; each leaves the cluster, then exits)"
	stop_nodes
	say "all nodes stopped; data and logs are kept in $DATA/ ('make clean' removes them)"
	exit 0
}

trap on_exit EXIT
trap on_signal INT TERM HUP

# --- preflight ----------------------------------------------------------------
[ -x "$DAEMON" ] && [ -x "$CTL" ] || die "$DAEMON and $CTL are missing: run 'make run' (or 'make build' first)"
[ -f "$CONFIG" ] || die "config file $CONFIG not found"
command -v "$GO" >/dev/null 2>&1 || die "the go command ($GO) is needed to seed the demo database"
check_ports

# --- demo data ----------------------------------------------------------------
mkdir -p "$DATA/n1" "$DATA/n2" "$DATA/n3"
say "seeding $DATA/app.db with 1000 demo users"
"$GO" run ./internal/tools/demoseed -db "$DATA/app.db" -rows 1000

# --- nodes --------------------------------------------------------------------
for i in 0 1 2; do
	n=${NAMES[$i]}
	# setsid: a Ctrl-C in the terminal reaches only this script, which then
	# sends each node one SIGTERM (a second signal would cut its drain short).
	setsid "$DAEMON" --name "$n" \
		--grpc-addr "127.0.0.1:${GRPC_PORTS[$i]}" \
		--gossip-addr "127.0.0.1:${GOSSIP_PORTS[$i]}" \
		--admin-addr "127.0.0.1:${ADMIN_PORTS[$i]}" \
		--resp-addr "127.0.0.1:${RESP_PORTS[$i]}" \
		--join "$JOIN" \
		--gossip-preset local \
		--data-dir "$DATA/$n" \
		--config "$CONFIG" \
		</dev/null >"$DATA/$n.log" 2>&1 &
	PIDS+=("$!")
	say "started $n (pid $!): gRPC 127.0.0.1:${GRPC_PORTS[$i]}, Redis 127.0.0.1:${RESP_PORTS[$i]}, gossip 127.0.0.1:${GOSSIP_PORTS[$i]}, metrics http://127.0.0.1:${ADMIN_PORTS[$i]}/metrics, log $DATA/$n.log"
done

# alive_members PORT prints how many members the node at PORT lists as alive
# (0 when it does not answer yet).
alive_members() {
	local out
	out=$("$CTL" --addr "127.0.0.1:$1" --timeout 1s members -o json 2>/dev/null) || {
		echo 0
		return
	}
	printf '%s\n' "$out" | grep -c '"state": *"alive"' || true
}

say "waiting up to ${STARTUP_TIMEOUT}s for every node to see 3 alive members"
deadline=$((SECONDS + STARTUP_TIMEOUT))
while :; do
	for i in 0 1 2; do
		if ! alive "${PIDS[$i]}"; then
			show_logs
			die "${NAMES[$i]} exited during startup (see $DATA/${NAMES[$i]}.log above)"
		fi
	done
	ready=0
	for port in "${GRPC_PORTS[@]}"; do
		if [ "$(alive_members "$port")" = 3 ]; then ready=$((ready + 1)); fi
	done
	if [ "$ready" = 3 ]; then break; fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		show_logs
		die "the cluster did not form within ${STARTUP_TIMEOUT}s ($ready of 3 nodes see 3 alive members); logs above"
	fi
	sleep 0.2
done

# --- banner -------------------------------------------------------------------
cat <<EOF

ringcache: 3-node cluster up on loopback (config $CONFIG, data in $DATA/)

$("$CTL" --addr 127.0.0.1:7101 members)

Try it (any node answers for any key; --addr picks the node, default 127.0.0.1:7101):
  $CTL get users 42                      # read-through: loaded once from $DATA/app.db by the owner
  $CTL locate users 42                   # partition and owner node of a key
  $CTL set sessions abc hello --ttl 10m  # pure cache namespace, no database
  $CTL get sessions abc
  $CTL --addr 127.0.0.1:7103 get sessions abc
  $CTL set orders 7 '{"total":42}'       # write-behind: fsync'd to the owner's journal, flushed to app.db
  $CTL get orders 7
  $CTL journal                           # write-behind backlog of every node
  $CTL stats                             # counters of every node (gets, hits, loads, forwards)
  $CTL top                               # live per-node rates (Ctrl-C to leave)
  curl -s 127.0.0.1:7301/metrics | grep ^ringcache_gets   # Prometheus metrics (admin ports 7301-7303)
  $CTL ring                              # partition shares of the nodes
  $CTL members -o json                   # -o json works on every command

gRPC with grpcurl (server reflection, no .proto needed;
install: go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4):
  grpcurl -plaintext 127.0.0.1:7101 list
  grpcurl -plaintext 127.0.0.1:7101 grpc.health.v1.Health/Check
  grpcurl -plaintext -d '{"namespace":"users","key":"42"}' 127.0.0.1:7102 ringcache.v1.Cache/Get
  grpcurl -plaintext -d '{"namespace":"sessions","key":"abc","value":"aGVsbG8=","ttl":"600s"}' 127.0.0.1:7103 ringcache.v1.Cache/Set
Values are proto3 bytes, so grpcurl shows and takes them base64-encoded
("aGVsbG8=" is "hello"); decode with: ... | jq -r .value | base64 -d

Redis clients (the Redis doors are on 127.0.0.1:6401-6403):
  redis-cli -p 6401 GET users:42                 # namespace users, key 42: read-through
  redis-cli -p 6402 SET greeting hello EX 600     # no namespace prefix: namespace sessions
  redis-cli -p 6403 GET greeting                  # any node serves any key (it forwards)
  /usr/bin/python3 examples/python/redis_cluster.py   # redis-py's RedisCluster
  node examples/node/redis-cluster.js                 # ioredis's Cluster (npm ci --prefix examples/node)

Logs: $DATA/n1.log $DATA/n2.log $DATA/n3.log    Press Ctrl-C to stop the cluster.
EOF

# --- run until a signal, or until a node dies -----------------------------------
while :; do
	for i in 0 1 2; do
		if ! alive "${PIDS[$i]}"; then
			pid=${PIDS[$i]}
			rc=0
			wait "$pid" 2>/dev/null || rc=$?
			PIDS[$i]=""
			show_logs
			die "${NAMES[$i]} (pid $pid) exited unexpectedly with status $rc; stopping the others"
		fi
	done
	# sleep in the background so a signal interrupts the wait at once.
	sleep 1 &
	SLEEP_PID=$!
	wait "$SLEEP_PID" 2>/dev/null || true
	SLEEP_PID=""
done
