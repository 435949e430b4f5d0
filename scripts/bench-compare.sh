#!/usr/bin/env bash
# bench-compare.sh — ringcache beside Redis on this machine, in one run.
# `make bench-compare` builds the binaries and runs it; BENCHMARKS.md shows
# its output and explains each figure.
#
# It starts redis-server (the Debian package: apt-get install redis-server)
# and a 3-node ringcache cluster on loopback (config scripts/bench-compare.yaml,
# data in a temporary directory), then measures with `ringcachectl bench`:
#   1. throughput and latency (REPEAT rounds, median reported), 50 callers, 90/10 and 100/0 read mixes, 100 B
#      values, 100k keys: ringcache (Pipeline streams), ringcache with one RPC
#      per call (--unary), Redis through rueidis (auto-pipelining) and through
#      go-redis (one connection per caller), and ringcache's RESP door through
#      rueidis, standalone (node 1 forwards) and in cluster mode
#      (redis-cluster://: rueidis reads CLUSTER SLOTS and sends each key to
#      its owner);
#   2. latency with 1 caller, 90/10;
#   2b. redis-benchmark -c 50 -P 1 and -P 16 (GET and SET, 100 B, 100k keys)
#      against Redis and the RESP door;
#   Beside every run, the servers' CPU time per operation (utime+stime from
#   /proc/PID/stat; the three nodes summed), the steadier figure on a shared
#   machine. It includes the prefill of a run's keys, counted as operations.
#   3. the stampede: database loads for 1,000 concurrent Gets of a cold key
#      over the 3 nodes, read-through vs. naive cache-aside;
#   4. memory per entry: 1M entries of 100 B, ringcache vs. Redis.
# and prints a summary with the ringcache/Redis ratios. Every result is also
# kept as JSON in $OUT (default bench-results/).
#
# The three nodes share this machine's cores with Redis and the load
# generator; each node runs with GOMAXPROCS=$NODE_GOMAXPROCS (default 1), as
# a container limited to one CPU would (Go sizes GOMAXPROCS from the cgroup
# limit): three Go runtimes each spinning two Ps on two cores steal CPU from
# one another. NODE_GOMAXPROCS= (empty) runs them with Go's default.
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
REDIS_PORT=6391
RESP_PORTS=(6401 6402 6403)
GRPC_PORTS=(7121 7122 7123)
GOSSIP_PORTS=(7221 7222 7223)
ADMIN_PORTS=(7321 7322 7323)

say() { printf 'bench-compare: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

command -v "$REDIS_SERVER" >/dev/null || die "$REDIS_SERVER not found: install the Debian package (apt-get install redis-server)"
command -v python3 >/dev/null || die "python3 is needed for the summary"
command -v redis-benchmark >/dev/null || die "redis-benchmark not found: install the Debian package (apt-get install redis-tools)"
[ -x "$CTL" ] && [ -x "$CTL-bench" ] && [ -x "$DAEMON" ] || die "run 'make build' first"

TMP=$(mktemp -d)
PIDS=()
cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

mkdir -p "$OUT"
sed "s#@DB@#$TMP/app.db#" scripts/bench-compare.yaml >"$TMP/ringcache.yaml"
go run ./internal/tools/demoseed -db "$TMP/app.db" -rows 1000 >/dev/null

"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no >"$TMP/redis.log" 2>&1 &
PIDS+=($!)
REDIS_PID=$!
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

ADDR=127.0.0.1:${GRPC_PORTS[0]}
REDIS=redis://127.0.0.1:$REDIS_PORT
RESP=redis://127.0.0.1:${RESP_PORTS[0]}
RESP_CLUSTER=redis-cluster://127.0.0.1:${RESP_PORTS[0]}
say "waiting for the cluster and Redis"
for _ in $(seq 1 200); do
	alive=$("$CTL" --addr "$ADDR" --timeout 1s members -o json 2>/dev/null | grep -c '"state": "alive"' || true)
	if [ "$alive" = 3 ] && (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null; then break; fi
	sleep 0.1
done
[ "$alive" = 3 ] || {
	tail -n 20 "$TMP"/n*.log >&2
	die "the cluster did not form"
}

# cpu_ticks PID... prints the CPU time (utime+stime, clock ticks) the
# processes have used.
cpu_ticks() {
	local pid total=0
	for pid in "$@"; do
		total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
	done
	echo "$total"
}
# server_pids NAME: the server processes a run named NAME loads.
server_pids() {
	case $1 in
	redis*) echo "$REDIS_PID" ;;
	*) echo "${NODE_PIDS[*]}" ;;
	esac
}
bench() { # name args...
	local name=$1 before
	shift
	say "$name (round $round of $REPEAT)"
	# shellcheck disable=SC2046
	before=$(cpu_ticks $(server_pids "$name"))
	"$CTL" --addr "$ADDR" bench --progress=false --duration "$DURATION" --namespace bench -o json "$@" >"$OUT/$name.$round.json"
	# shellcheck disable=SC2046
	echo $(($(cpu_ticks $(server_pids "$name")) - before)) "$(getconf CLK_TCK)" >"$OUT/$name.$round.cpu"
}
rm -f "$OUT"/*.json "$OUT"/*.cpu "$OUT"/*.csv
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
	bench ringcache-1caller --concurrency 1 --read-ratio 0.9
	bench ringcache-unary-1caller --concurrency 1 --read-ratio 0.9 --unary
	bench redis-1caller --concurrency 1 --read-ratio 0.9 --target "$REDIS"
	bench resp-1caller --concurrency 1 --read-ratio 0.9 --target "$RESP"
done

say "redis-benchmark"
for target in redis resp; do
	port=$REDIS_PORT
	[ "$target" = resp ] && port=${RESP_PORTS[0]}
	for p in 1 16; do
		say "redis-benchmark $target -c 50 -P $p"
		# shellcheck disable=SC2046
		before=$(cpu_ticks $(server_pids "$target"))
		redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P "$p" -n $((200000 * p < 2000000 ? 200000 * p : 2000000)) -d 100 -r 100000 -t set,get --csv >"$OUT/rb-$target-P$p.csv"
		# shellcheck disable=SC2046
		echo $(($(cpu_ticks $(server_pids "$target")) - before)) "$(getconf CLK_TCK)" >"$OUT/rb-$target-P$p.cpu"
	done
done

say "stampede"
"$CTL" --addr "$ADDR" bench stampede --namespace users --key 42 --concurrency 1000 \
	--config "$TMP/ringcache.yaml" --naive-namespace sessions -o json >"$OUT/stampede.json"

say "memory ($ENTRIES entries)"
admins=$(printf '127.0.0.1:%s,' "${ADMIN_PORTS[@]}")
"$CTL" --addr "$ADDR" bench memory --namespace mem --entries "$ENTRIES" --admin-addrs "${admins%,}" -o json >"$OUT/memory-ringcache.json"
"$CTL" bench memory --namespace mem --entries "$ENTRIES" --target "$REDIS" -o json >"$OUT/memory-redis.json"

echo "nodes ran with GOMAXPROCS=${NODE_GOMAXPROCS:-default} on $(nproc) cores; $(redis-server --version | cut -d' ' -f1-3)" >"$OUT/environment.txt"
python3 scripts/bench-summary.py "$OUT"
