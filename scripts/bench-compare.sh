#!/usr/bin/env bash
# bench-compare.sh — ringcache beside Redis on this machine, in one run.
# `make bench-compare` builds the binaries and runs it; BENCHMARKS.md shows
# its output and explains each figure.
#
# It starts, on loopback ports the kernel picks (so a second run, or a
# cluster someone started by hand on fixed ports, never answers in place of
# this run's servers):
#   - redis-server (the Debian package: apt-get install redis-server);
#   - a 3-shard Redis Cluster: three redis-server processes in cluster mode
#     (no persistence, no replicas), joined by `redis-cli --cluster create`;
#   - a 3-node ringcache cluster (config scripts/bench-compare.yaml, data in
#     a temporary directory), its RESP door open on every node;
#   - one more ringcache node on its own (a cluster of one, the same config
#     and GOMAXPROCS), the like of the one Redis: one server process each;
# then measures with `ringcachectl bench`:
#   1. throughput and latency (REPEAT rounds, median reported), 50 callers,
#      90/10 and 100/0 read mixes, 100 B values, 100k keys: ringcache
#      (Pipeline streams), ringcache with one RPC per call (--unary), Redis
#      through rueidis (auto-pipelining) and through go-redis (one connection
#      per caller), and ringcache's RESP door through rueidis, standalone
#      (node 1 forwards) and in cluster mode (redis-cluster://: rueidis reads
#      CLUSTER SLOTS and sends each key to its owner); at 90/10 also the
#      Redis Cluster through rueidis in cluster mode, the same client as the
#      door's cluster-mode run; and at 90/10 the node on its own, through the
#      Go client (solo) and through its RESP door with rueidis (solo-resp):
#      one server process against one Redis, where the 3-node runs split the
#      load over three processes on two cores;
#   2. latency with 1 caller, 90/10: the same targets but go-redis
#      (resp-cluster-1caller is the door on owner-routed keys);
#   2b. redis-benchmark -c 50 -P 1 and -P 16 (GET and SET, 100 B, 100k keys)
#      against Redis and the RESP door at node 1, and with --cluster against
#      the Redis Cluster and the RESP door: redis-benchmark reads CLUSTER
#      NODES, gives each client one master and puts in its keys a hash tag of
#      a slot that master owns. Against the door it warns that it could not
#      fetch the node's CONFIG (CONFIG GET is not served); harmless: it only
#      prints the save and appendonly settings.
#   Beside every run: the servers' CPU time per operation (utime+stime from
#   /proc/PID/stat, the three nodes or the three Redis Cluster shards
#   summed), the steadier figure on a shared machine; their read and write
#   system calls per operation (syscr and syscw from /proc/PID/io); the client's (from
#   /usr/bin/time: ringcachectl with the ringcachectl-bench it runs and waits
#   for, or redis-benchmark), since on two cores the client competes with the
#   servers; and for runs against ringcache, the operations the nodes
#   forwarded to an owner (the engine's forwards counter, summed). Per op
#   figures count the prefill of a run's keys as operations.
#   3. the stampede: database loads for 1,000 concurrent Gets of a cold key
#      over the 3 nodes, read-through vs. naive cache-aside;
#   4. memory per entry: 1M entries of 100 B, ringcache vs. Redis.
# and prints a summary with the ringcache/Redis ratios. Every result is also
# kept in $OUT (default bench-results/): JSON or CSV, and NAME.cpu (server
# ticks and ticks per second), NAME.client (client user and system seconds),
# NAME.sys (server read and write system calls), NAME.fwd (forwards).
#
# The three nodes share this machine's cores with Redis and the load
# generator; each node runs with GOMAXPROCS=$NODE_GOMAXPROCS (default 1), as
# a container limited to one CPU would (Go sizes GOMAXPROCS from the cgroup
# limit): three Go runtimes each spinning two Ps on two cores steal CPU from
# one another. NODE_GOMAXPROCS= (empty) runs them with Go's default. The
# Redis servers are single-threaded; all of them stay up, idle but for their
# timers and the cluster bus while another target is measured.
#
# Environment: DURATION (each throughput run, default 10s), REPEAT (rounds of
# the throughput and latency runs, default 3), CONCURRENCY (50),
# ENTRIES (memory run, 1000000), OUT, REDIS_SERVER (redis-server binary),
# NODE_GOMAXPROCS.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-3}
CONCURRENCY=${CONCURRENCY:-50}
ENTRIES=${ENTRIES:-1000000}
NODE_GOMAXPROCS=${NODE_GOMAXPROCS-1}
OUT=${OUT:-bench-results}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
CTL=bin/ringcachectl # runs bin/ringcachectl-bench for `bench`
DAEMON=bin/ringcached

say() { printf 'bench-compare: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

command -v "$REDIS_SERVER" >/dev/null || die "$REDIS_SERVER not found: install the Debian package (apt-get install redis-server)"
command -v python3 >/dev/null || die "python3 is needed for free ports and the summary"
{ command -v redis-benchmark && command -v redis-cli; } >/dev/null ||
	die "redis-benchmark or redis-cli not found: install the Debian package (apt-get install redis-tools)"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for the client's CPU time (apt-get install time)"
{ [ -x "$CTL" ] && [ -x "$CTL-bench" ] && [ -x "$DAEMON" ]; } || die "run 'make build' first"

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# 23 free loopback ports, TCP and UDP (gossip needs both), picked by the
# kernel: Redis; the Redis Cluster's 3 client and 3 bus ports; the nodes'
# gRPC, gossip, admin and RESP ports; the solo node's four.
read -r -a PORTS <<<"$(python3 scripts/free-ports.py 23)"
REDIS_PORT=${PORTS[0]}
RC_PORTS=("${PORTS[@]:1:3}")
RC_BUS_PORTS=("${PORTS[@]:4:3}")
GRPC_PORTS=("${PORTS[@]:7:3}")
GOSSIP_PORTS=("${PORTS[@]:10:3}")
ADMIN_PORTS=("${PORTS[@]:13:3}")
RESP_PORTS=("${PORTS[@]:16:3}")
SOLO_PORTS=("${PORTS[@]:19:4}") # gRPC, gossip, admin, RESP

mkdir -p "$OUT"
sed "s#@DB@#$TMP/app.db#" scripts/bench-compare.yaml >"$TMP/ringcache.yaml"
go run ./internal/tools/demoseed -db "$TMP/app.db" -rows 1000 >/dev/null

"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
REDIS_PID=$!
RC_PIDS=()
for i in 0 1 2; do
	"$REDIS_SERVER" --port "${RC_PORTS[$i]}" --cluster-port "${RC_BUS_PORTS[$i]}" --bind 127.0.0.1 \
		--cluster-enabled yes --cluster-config-file "$TMP/nodes-$((i + 1)).conf" --dir "$TMP" \
		--save '' --appendonly no >"$TMP/redis-cluster-$((i + 1)).log" 2>&1 &
	PIDS+=($!)
	RC_PIDS+=($!)
done
NODE_PIDS=()
join=$(printf '127.0.0.1:%s,' "${GOSSIP_PORTS[@]}")
for i in 0 1 2; do
	GOMAXPROCS=$NODE_GOMAXPROCS "$DAEMON" --name "n$((i + 1))" --grpc-addr "127.0.0.1:${GRPC_PORTS[$i]}" \
		--gossip-addr "127.0.0.1:${GOSSIP_PORTS[$i]}" --admin-addr "127.0.0.1:${ADMIN_PORTS[$i]}" \
		--join "${join%,}" --gossip-preset local --data-dir "$TMP/n$((i + 1))" \
		--config "$TMP/ringcache.yaml" --max-memory 2GiB --pprof --resp-addr "127.0.0.1:${RESP_PORTS[$i]}" >"$TMP/n$((i + 1)).log" 2>&1 &
	PIDS+=($!)
	NODE_PIDS+=($!)
done
GOMAXPROCS=$NODE_GOMAXPROCS "$DAEMON" --name solo --grpc-addr "127.0.0.1:${SOLO_PORTS[0]}" \
	--gossip-addr "127.0.0.1:${SOLO_PORTS[1]}" --admin-addr "127.0.0.1:${SOLO_PORTS[2]}" \
	--bootstrap-alone --bootstrap-timeout 1s --gossip-preset local --data-dir "$TMP/solo" \
	--config "$TMP/ringcache.yaml" --max-memory 2GiB --resp-addr "127.0.0.1:${SOLO_PORTS[3]}" >"$TMP/solo.log" 2>&1 &
PIDS+=($!)
SOLO_PID=$!

ADDR=127.0.0.1:${GRPC_PORTS[0]}
REDIS=redis://127.0.0.1:$REDIS_PORT
RESP=redis://127.0.0.1:${RESP_PORTS[0]}
RESP_CLUSTER=redis-cluster://127.0.0.1:${RESP_PORTS[0]}
SOLO=127.0.0.1:${SOLO_PORTS[0]}
SOLO_RESP=redis://127.0.0.1:${SOLO_PORTS[3]}
RC_ADDRS=()
for port in "${RC_PORTS[@]}"; do RC_ADDRS+=("127.0.0.1:$port"); done
rc=$(printf '%s,' "${RC_ADDRS[@]}")
REDIS_CLUSTER=redis-cluster://${rc%,}

# running PID...: fails, with the end of every log, when one of the
# processes has exited (a port taken after all, a bad flag).
running() {
	local pid
	for pid in "$@"; do
		kill -0 "$pid" 2>/dev/null && continue
		tail -n 5 "$TMP"/*.log >&2
		die "process $pid exited (logs above)"
	done
}
# redis_up PORT...: every redis-server at PORT answers PING.
redis_up() {
	local port
	for port in "$@"; do
		[ "$(redis-cli -p "$port" ping 2>/dev/null)" = PONG ] || return 1
	done
}
# cluster_ok PORT...: every Redis Cluster node at PORT says cluster_state:ok.
cluster_ok() {
	local port
	for port in "$@"; do
		redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
	done
}

# all_ready: every node is ready (/readyz 200: it routes by a table that
# counts it), not only alive in gossip.
all_ready() {
	local port
	for port in "${ADMIN_PORTS[@]}" "${SOLO_PORTS[2]}"; do
		curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" || return 1
	done
}

say "waiting for the cluster, Redis and the Redis Cluster's nodes"
members=0
for _ in $(seq 1 200); do
	running "${PIDS[@]}"
	members=$("$CTL" --addr "$ADDR" --timeout 1s members -o json 2>/dev/null | grep -c '"state": "alive"' || true)
	if [ "$members" = 3 ] && all_ready && redis_up "$REDIS_PORT" "${RC_PORTS[@]}"; then break; fi
	sleep 0.1
done
if [ "$members" != 3 ] || ! all_ready || ! redis_up "$REDIS_PORT" "${RC_PORTS[@]}"; then
	tail -n 20 "$TMP"/*.log >&2
	die "the cluster did not form, or a Redis server did not answer"
fi
redis-cli --cluster create "${RC_ADDRS[@]}" --cluster-replicas 0 --cluster-yes >"$TMP/redis-cluster-create.log" 2>&1 || {
	cat "$TMP/redis-cluster-create.log" >&2
	die "redis-cli --cluster create failed"
}
for _ in $(seq 1 200); do
	cluster_ok "${RC_PORTS[@]}" && break
	running "${RC_PIDS[@]}"
	sleep 0.1
done
cluster_ok "${RC_PORTS[@]}" || die "the Redis Cluster did not reach cluster_state:ok"
say "ringcache gRPC ${GRPC_PORTS[*]}, RESP ${RESP_PORTS[*]}, admin/pprof ${ADMIN_PORTS[*]}; Redis $REDIS_PORT; Redis Cluster ${RC_PORTS[*]}"

# cpu_ticks PID... prints the CPU time (utime+stime, clock ticks) the
# processes have used.
cpu_ticks() {
	local pid total=0
	for pid in "$@"; do
		total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	echo "$total"
}
# io_calls PID... prints the read-type and write-type system calls
# (syscr, syscw from /proc/PID/io) the processes have made.
io_calls() {
	local pid r=0 w=0
	for pid in "$@"; do
		r=$((r + $(awk '/^syscr:/ {print $2}' "/proc/$pid/io")))
		w=$((w + $(awk '/^syscw:/ {print $2}' "/proc/$pid/io")))
	done
	echo "$r $w"
}
# server_pids NAME: the server processes a run named NAME loads.
server_pids() {
	case $1 in
	redis-cluster* | rb-redis-cluster*) echo "${RC_PIDS[*]}" ;;
	redis* | rb-redis*) echo "$REDIS_PID" ;;
	solo*) echo "$SOLO_PID" ;;
	*) echo "${NODE_PIDS[*]}" ;;
	esac
}
# forwards: the operations the nodes have forwarded to an owner, summed.
forwards() {
	"$CTL" --addr "$ADDR" --timeout 5s stats -o json |
		python3 -c 'import json, sys; print(sum(n["forwards"] for n in json.load(sys.stdin)))'
}
# measure NAME COMMAND...: runs COMMAND, its output to $OUT/NAME.out, and
# keeps the server CPU it caused in NAME.cpu ("ticks ticks-per-second"), the
# client's (COMMAND and the children it waited for: user and system seconds)
# in NAME.client, the servers' read and write system calls in NAME.sys
# ("reads writes") and, for runs against ringcache, the nodes' forwards in
# NAME.fwd.
measure() {
	local name=$1 before fwd= io_before io_after
	shift
	case $name in redis* | rb-redis* | solo*) ;; *) fwd=$(forwards) ;; esac
	# shellcheck disable=SC2046
	before=$(cpu_ticks $(server_pids "$name"))
	# shellcheck disable=SC2046
	io_before=$(io_calls $(server_pids "$name"))
	/usr/bin/time -f '%U %S' -o "$OUT/$name.client" "$@" >"$OUT/$name.out"
	# shellcheck disable=SC2046
	echo $(($(cpu_ticks $(server_pids "$name")) - before)) "$(getconf CLK_TCK)" >"$OUT/$name.cpu"
	# shellcheck disable=SC2046
	io_after=$(io_calls $(server_pids "$name"))
	echo $((${io_after% *} - ${io_before% *})) $((${io_after#* } - ${io_before#* })) >"$OUT/$name.sys"
	if [ -n "$fwd" ]; then echo $(($(forwards) - fwd)) >"$OUT/$name.fwd"; fi
}
bench() { # name args...
	local name=$1
	shift
	say "$name (round $round of $REPEAT)"
	measure "$name.$round" "$CTL" --addr "$ADDR" bench --progress=false --duration "$DURATION" --namespace bench -o json "$@"
	mv "$OUT/$name.$round.out" "$OUT/$name.$round.json"
}
rm -f "$OUT"/*.json "$OUT"/*.cpu "$OUT"/*.csv "$OUT"/*.client "$OUT"/*.fwd "$OUT"/*.sys "$OUT"/*.out
# Rounds interleave the targets, so a slow moment of the machine does not
# fall on one target only; the summary reports each run's median round.
for round in $(seq 1 "$REPEAT"); do
	for mix in 0.9 1.0; do
		bench "ringcache-$mix" --concurrency "$CONCURRENCY" --read-ratio "$mix"
		bench "ringcache-unary-$mix" --concurrency "$CONCURRENCY" --read-ratio "$mix" --unary
		bench "redis-$mix" --concurrency "$CONCURRENCY" --read-ratio "$mix" --target "$REDIS"
		bench "resp-$mix" --concurrency "$CONCURRENCY" --read-ratio "$mix" --target "$RESP"
	done
	bench redis-goredis-0.9 --concurrency "$CONCURRENCY" --read-ratio 0.9 --target "$REDIS" --redis-client go-redis
	bench resp-cluster-0.9 --concurrency "$CONCURRENCY" --read-ratio 0.9 --target "$RESP_CLUSTER"
	bench redis-cluster-0.9 --concurrency "$CONCURRENCY" --read-ratio 0.9 --target "$REDIS_CLUSTER"
	bench solo-0.9 --addr "$SOLO" --concurrency "$CONCURRENCY" --read-ratio 0.9
	bench solo-resp-0.9 --addr "$SOLO" --concurrency "$CONCURRENCY" --read-ratio 0.9 --target "$SOLO_RESP"
	bench ringcache-1caller --concurrency 1 --read-ratio 0.9
	bench ringcache-unary-1caller --concurrency 1 --read-ratio 0.9 --unary
	bench redis-1caller --concurrency 1 --read-ratio 0.9 --target "$REDIS"
	bench resp-1caller --concurrency 1 --read-ratio 0.9 --target "$RESP"
	bench resp-cluster-1caller --concurrency 1 --read-ratio 0.9 --target "$RESP_CLUSTER"
	bench redis-cluster-1caller --concurrency 1 --read-ratio 0.9 --target "$REDIS_CLUSTER"
done

say "redis-benchmark"
# -n is the requests of each test (SET, then GET): 200k per pipelined
# request, at most 2M.
for target in redis resp redis-cluster resp-cluster; do
	case $target in
	redis) rb=(-p "$REDIS_PORT") ;;
	resp) rb=(-p "${RESP_PORTS[0]}") ;;
	redis-cluster) rb=(--cluster -p "${RC_PORTS[0]}") ;;
	resp-cluster) rb=(--cluster -p "${RESP_PORTS[0]}") ;;
	esac
	for p in 1 16; do
		say "redis-benchmark $target -c 50 -P $p"
		measure "rb-$target-P$p" redis-benchmark -h 127.0.0.1 "${rb[@]}" -c 50 -P "$p" \
			-n $((200000 * p < 2000000 ? 200000 * p : 2000000)) -d 100 -r 100000 -t set,get --csv
		mv "$OUT/rb-$target-P$p.out" "$OUT/rb-$target-P$p.csv"
	done
done

say "stampede"
"$CTL" --addr "$ADDR" bench stampede --namespace users --key 42 --concurrency 1000 \
	--config "$TMP/ringcache.yaml" --naive-namespace sessions -o json >"$OUT/stampede.json"

say "memory ($ENTRIES entries)"
admins=$(printf '127.0.0.1:%s,' "${ADMIN_PORTS[@]}")
"$CTL" --addr "$ADDR" bench memory --namespace mem --entries "$ENTRIES" --admin-addrs "${admins%,}" -o json >"$OUT/memory-ringcache.json"
"$CTL" bench memory --namespace mem --entries "$ENTRIES" --target "$REDIS" -o json >"$OUT/memory-redis.json"

echo "nodes ran with GOMAXPROCS=${NODE_GOMAXPROCS:-default} on $(nproc) cores; $("$REDIS_SERVER" --version | cut -d' ' -f1-3)" >"$OUT/environment.txt"
python3 scripts/bench-summary.py "$OUT"
