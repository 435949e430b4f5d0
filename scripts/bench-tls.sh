#!/usr/bin/env bash
# bench-tls.sh — what mutual TLS and per-namespace ACLs cost: pipelined
# throughput of a secure 3-node cluster against a plaintext one (issue 11).
# `make bench-tls` builds the binaries and runs it; BENCHMARKS.md shows its
# output ("mTLS and ACLs against plaintext").
#
# Two clusters of 3 nodes on free loopback ports, never at once (they would
# compete for the machine's cores), with the same namespaces:
#   plain   no TLS, no auth: section;
#   secure  TLS 1.3 with client certificates required (--tls-require-client-cert),
#           gossip encrypted (--gossip-key-file), and an auth: section: the
#           client's certificate names principal "bench", granted read and
#           write on namespace bench only; "ops" (admin) checks membership;
#           node certificates ("n*") hold the peer role.
# Certificates come from `ringcachectl certs`, in a temporary directory.
# Each round starts the plain cluster, runs `ringcachectl bench` (CONCURRENCY
# callers through Pipeline streams, 90/10 Gets/Sets, 100-byte values, 100k
# keys) for DURATION, stops it, then does the same with the secure cluster;
# REPEAT rounds interleave the two, so a slow moment of the shared machine
# does not fall on one side only. Beside each run: the nodes' CPU time per
# operation (utime+stime from /proc, three nodes summed, the prefill's Sets
# counted as operations) and the load generator's (from /usr/bin/time).
# The summary prints every round, the medians and the ratio secure/plain.
# Results stay as JSON in $OUT (default bench-results/tls/).
#
# Each node runs with GOMAXPROCS=$NODE_GOMAXPROCS (default 1), as in
# bench-compare.sh; NODE_GOMAXPROCS= (empty) runs them with Go's default.
#
# Environment: DURATION (10s), REPEAT (3), CONCURRENCY (50), OUT,
# NODE_GOMAXPROCS, PPROF (non-empty: nodes serve /debug/pprof on their admin
# port, for profiling by hand while a round runs).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
REPEAT=${REPEAT:-3}
CONCURRENCY=${CONCURRENCY:-50}
NODE_GOMAXPROCS=${NODE_GOMAXPROCS-1}
OUT=${OUT:-bench-results/tls}
PPROF=${PPROF:-}
CTL=bin/ringcachectl # runs bin/ringcachectl-bench for `bench`
DAEMON=bin/ringcached

say() { printf 'bench-tls: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

command -v python3 >/dev/null || die "python3 is needed for free ports and the summary"
[ -x /usr/bin/time ] || die "/usr/bin/time is needed for the client's CPU time (apt-get install time)"
[ -x "$CTL" ] && [ -x "$CTL-bench" ] && [ -x "$DAEMON" ] || die "run 'make build' first"

TMP=$(mktemp -d)
NODE_PIDS=()
stop_cluster() {
	local pid
	for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${NODE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	NODE_PIDS=()
}
cleanup() {
	stop_cluster
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# 9 free loopback ports: gRPC, gossip and admin of 3 nodes. The kernel picks
# them; both clusters use them in turn. Gossip needs the UDP port free too.
read -r -a PORTS <<<"$(python3 scripts/free-ports.py 9)"
GRPC_PORTS=("${PORTS[@]:0:3}")
GOSSIP_PORTS=("${PORTS[@]:3:3}")
ADMIN_PORTS=("${PORTS[@]:6:3}")
ADDR=127.0.0.1:${GRPC_PORTS[0]}

# The configs: the same namespaces; the secure one adds the auth: section.
cat >"$TMP/plain.yaml" <<'EOF'
namespaces:
  bench: {read: aside, write: aside, ttl: 1h}
EOF
cat "$TMP/plain.yaml" - >"$TMP/secure.yaml" <<'EOF'
auth:
  principals:
    bench: {namespaces: {bench: [read, write]}}
    ops:   {admin: true}
    "n*":  {peer: true}
  anonymous: {namespaces: {}}
EOF

CERTS=$TMP/certs
"$CTL" certs ca --dir "$CERTS" >/dev/null
for i in 1 2 3; do "$CTL" certs node "n$i" --dir "$CERTS" --host 127.0.0.1 >/dev/null; done
"$CTL" certs client bench --dir "$CERTS" >/dev/null
"$CTL" certs client ops --dir "$CERTS" >/dev/null
head -c 32 /dev/urandom | base64 >"$CERTS/gossip.key"
client_flags() { # mode principal
	[ "$1" = secure ] && echo "--tls-ca $CERTS/ca.crt --tls-cert $CERTS/client.$2.crt --tls-key $CERTS/client.$2.key"
	return 0
}

ready_all() {
	local port
	for port in "${ADMIN_PORTS[@]}"; do
		curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" || return 1
	done
}

start_cluster() { # plain|secure
	local mode=$1 i alive extra join
	join=$(printf '127.0.0.1:%s,' "${GOSSIP_PORTS[@]}")
	for i in 0 1 2; do
		extra=()
		[ "$mode" = secure ] && extra=(--tls-cert "$CERTS/node.n$((i + 1)).crt" --tls-key "$CERTS/node.n$((i + 1)).key"
			--tls-client-ca "$CERTS/ca.crt" --tls-require-client-cert --gossip-key-file "$CERTS/gossip.key")
		[ -n "$PPROF" ] && extra+=(--pprof)
		rm -rf "$TMP/n$((i + 1))"
		GOMAXPROCS=$NODE_GOMAXPROCS "$DAEMON" --name "n$((i + 1))" --grpc-addr "127.0.0.1:${GRPC_PORTS[$i]}" \
			--gossip-addr "127.0.0.1:${GOSSIP_PORTS[$i]}" --admin-addr "127.0.0.1:${ADMIN_PORTS[$i]}" \
			--join "${join%,}" --gossip-preset local --data-dir "$TMP/n$((i + 1))" \
			--config "$TMP/$mode.yaml" --max-memory 2GiB "${extra[@]}" >"$TMP/$mode.n$((i + 1)).log" 2>&1 &
		NODE_PIDS+=($!)
	done
	for _ in $(seq 1 200); do
		# shellcheck disable=SC2046
		alive=$("$CTL" --addr "$ADDR" --timeout 1s $(client_flags "$mode" ops) members -o json 2>/dev/null | grep -c '"state": "alive"' || true)
		# Ready too (/readyz 200: every node routes by a table that counts it).
		[ "$alive" = 3 ] && ready_all && return 0
		sleep 0.1
	done
	tail -n 20 "$TMP/$mode".n*.log >&2
	die "the $mode cluster did not form"
}

cpu_ticks() { # PID...: CPU time (utime+stime, clock ticks) the processes have used
	local pid total=0
	for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
	echo "$total"
}

bench() { # plain|secure
	local mode=$1 before
	say "$mode (round $round of $REPEAT)"
	start_cluster "$mode"
	# The ACLs must be in force, or this measures TLS alone: bench may not call Admin.
	# shellcheck disable=SC2046
	if [ "$mode" = secure ] && "$CTL" --addr "$ADDR" $(client_flags secure bench) members >/dev/null 2>&1; then
		die "principal bench could list members: the auth: section is not in force"
	fi
	before=$(cpu_ticks "${NODE_PIDS[@]}")
	# shellcheck disable=SC2046
	/usr/bin/time -f '%U %S' -o "$OUT/$mode.$round.client" \
		"$CTL" --addr "$ADDR" $(client_flags "$mode" bench) bench --progress=false --duration "$DURATION" \
		--namespace bench --concurrency "$CONCURRENCY" --read-ratio 0.9 --value-size 100 -o json >"$OUT/$mode.$round.json"
	echo $(($(cpu_ticks "${NODE_PIDS[@]}") - before)) "$(getconf CLK_TCK)" >"$OUT/$mode.$round.cpu"
	stop_cluster
}

mkdir -p "$OUT"
rm -f "$OUT"/*.json "$OUT"/*.cpu "$OUT"/*.client
for round in $(seq 1 "$REPEAT"); do
	bench plain
	bench secure
done
echo "nodes ran with GOMAXPROCS=${NODE_GOMAXPROCS:-default} on $(nproc) cores; load average before the summary: $(cut -d' ' -f1-3 /proc/loadavg)" >"$OUT/environment.txt"

python3 - "$OUT" <<'EOF'
import json, os, statistics, sys
out = sys.argv[1]
print(open(os.path.join(out, "environment.txt")).read().strip())
def rounds(mode):
    runs, i = [], 1
    while os.path.exists(p := os.path.join(out, f"{mode}.{i}.json")):
        r = json.load(open(p))
        ops = r["ops"] + (r["keys"] if r.get("prefilled", True) else 0)
        ticks, hz = (int(x) for x in open(os.path.join(out, f"{mode}.{i}.cpu")).read().split())
        user, sys_ = (float(x) for x in open(os.path.join(out, f"{mode}.{i}.client")).read().split()[-2:])
        r["node_us"] = 1e6 * ticks / hz / ops
        r["client_us"] = 1e6 * (user + sys_) / ops
        runs.append(r)
        i += 1
    return runs
cols = ("ops_per_sec", "p50_us", "p99_us", "node_us", "client_us")
print(f"{'run':<10}{'round':>6}{'ops/s':>10}{'p50 us':>8}{'p99 us':>8}{'node CPU us/op':>16}{'client CPU us/op':>18}{'errors':>8}")
med = {}
for mode in ("plain", "secure"):
    runs = rounds(mode)
    for i, r in enumerate(runs, 1):
        print(f"{mode:<10}{i:>6}{r['ops_per_sec']:>10.0f}{r['p50_us']:>8.0f}{r['p99_us']:>8.0f}{r['node_us']:>16.1f}{r['client_us']:>18.1f}{r['errors']:>8}")
    med[mode] = {c: statistics.median(r[c] for r in runs) for c in cols}
    m = med[mode]
    print(f"{mode:<10}{'median':>6}{m['ops_per_sec']:>10.0f}{m['p50_us']:>8.0f}{m['p99_us']:>8.0f}{m['node_us']:>16.1f}{m['client_us']:>18.1f}")
ratio = med["secure"]["ops_per_sec"] / med["plain"]["ops_per_sec"]
print(f"\nsecure/plain throughput (medians): {ratio:.2f}x (target >= 0.85x: {'met' if ratio >= 0.85 else 'NOT met'})")
print(f"secure/plain CPU per op: nodes {med['secure']['node_us'] / med['plain']['node_us']:.2f}x, client {med['secure']['client_us'] / med['plain']['client_us']:.2f}x")
EOF
