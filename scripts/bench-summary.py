#!/usr/bin/env python3
"""Summarise the JSON results of scripts/bench-compare.sh (argument: their directory)."""
import glob
import json
import os
import sys

out = sys.argv[1]


def load(name):
    with open(os.path.join(out, name + ".json")) as f:
        return json.load(f)


def rounds(name):
    """All rounds of a throughput run, sorted by ops/s."""
    runs = []
    for f in sorted(glob.glob(os.path.join(out, name + ".*.json"))):
        with open(f) as fh:
            r = json.load(fh)
        r["_round"] = f[len(os.path.join(out, name)) + 1:-len(".json")]
        runs.append(r)
    if not runs:
        sys.exit(f"no results for {name} in {out}")
    return sorted(runs, key=lambda r: r["ops_per_sec"])


def median(name):
    runs = rounds(name)
    return runs[len(runs) // 2]


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def read_pair(path):
    """The two numbers of a .cpu ("ticks hz") or .client ("user system") file, or None."""
    if not os.path.exists(path):
        return None
    fields = open(path).read().split()
    return float(fields[-2]), float(fields[-1])


def run_ops(r):
    """Operations of run r, the prefill's Sets included (the CPU figures cover it)."""
    return r["ops"] + (r["keys"] if r.get("prefilled", True) else 0)


def cpu_us_per_op(name, r):
    """Server CPU microseconds per operation of run r (a round of name), or None."""
    pair, ops = read_pair(os.path.join(out, f"{name}.{r['_round']}.cpu")), run_ops(r)
    return 1e6 * pair[0] / pair[1] / ops if pair and ops else None


def client_us_per_op(name, r):
    """Client (ringcachectl and ringcachectl-bench) CPU microseconds per operation, or None."""
    pair, ops = read_pair(os.path.join(out, f"{name}.{r['_round']}.client")), run_ops(r)
    return 1e6 * (pair[0] + pair[1]) / ops if pair and ops else None


def syscalls_per_op(name, r):
    """The servers' read and write system calls per operation of run r, or None."""
    pair, ops = read_pair(os.path.join(out, f"{name}.{r['_round']}.sys")), run_ops(r)
    return (pair[0] + pair[1]) / ops if pair and ops else None


def forwards_per_op(name, r):
    """Operations the nodes forwarded per operation of run r, or None."""
    path = os.path.join(out, f"{name}.{r['_round']}.fwd")
    if not os.path.exists(path) or not run_ops(r):
        return None
    return int(open(path).read()) / run_ops(r)


def fmt_cpu(v):
    return f"{v:.1f}" if v is not None else "-"


def have(name):
    return bool(glob.glob(os.path.join(out, name + ".*.json")))


env = os.path.join(out, "environment.txt")
if os.path.exists(env):
    print(open(env).read().strip())
print("\n# throughput and latency (100-byte values, 100k keys, uniform)")
print("(median round by ops/s; the ops/s of every round in brackets)")
print("(redis: Redis through rueidis; redis-goredis: through go-redis; redis-cluster: the 3-shard")
print(" Redis Cluster through rueidis in cluster mode; resp: ringcache's RESP door through rueidis,")
print(" standalone at node 1; resp-cluster: rueidis in cluster mode; solo, solo-resp: one node on")
print(" its own, through the Go client and through its RESP door with rueidis. srv CPU: server CPU")
print(" microseconds per operation, the three nodes or shards summed; cli CPU: the load generator's;")
print(" srv sc/op: the servers' read and write system calls per operation; fwd/op: operations the")
print(" nodes forwarded to an owner, per operation)")
print(f"{'run':<34}{'ops/s':>9}{'p50 us':>8}{'p99 us':>8}{'srv CPU':>8}{'cli CPU':>8}{'sc/op':>7}{'fwd/op':>7}{'errors':>7}{'calls/frame':>12}   rounds")
TARGETS = ("ringcache", "ringcache-unary", "redis", "redis-goredis", "redis-cluster", "resp", "resp-cluster",
           "solo", "solo-resp")
for mix in ("0.9", "1.0", "1caller"):
    for target in TARGETS:
        name = f"{target}-{mix}"
        if not have(name):
            continue
        r, all_rounds = median(name), rounds(name)
        label = f"{target} {'90/10' if mix == '0.9' else '100/0' if mix == '1.0' else '1 caller 90/10'}"
        per_frame = f"{r['calls_per_frame']:.1f}" if r.get("calls_per_frame") else "-"
        each = ", ".join(f"{x['ops_per_sec']:.0f}" for x in all_rounds)
        errors = sum(x["errors"] for x in all_rounds)
        fwd = forwards_per_op(name, r)
        print(f"{label:<34}{r['ops_per_sec']:>9.0f}{r['p50_us']:>8.0f}{r['p99_us']:>8.0f}"
              f"{fmt_cpu(cpu_us_per_op(name, r)):>8}{fmt_cpu(client_us_per_op(name, r)):>8}"
              f"{f'{sc:.2f}' if (sc := syscalls_per_op(name, r)) is not None else '-':>7}"
              f"{f'{fwd:.2f}' if fwd is not None else '-':>7}{errors:>7}{per_frame:>12}   [{each}]")


def compare(label, ours, theirs, target=True):
    """One line of ratios, run ours over run theirs (medians): ops/s, server and client CPU per op."""
    if not (have(ours) and have(theirs)):
        return
    a, b = median(ours), median(theirs)
    t1, t2 = (" (target >= 1.0x)", " (target <= 1.0x)") if target else ("", "")
    print(f"{label:<48} ops/s {ratio(a['ops_per_sec'], b['ops_per_sec']):>6}{t1:<19}"
          f"srv CPU/op {ratio(cpu_us_per_op(ours, a), cpu_us_per_op(theirs, b)):>6}{t2:<19}"
          f"cli CPU/op {ratio(client_us_per_op(ours, a), client_us_per_op(theirs, b)):>6}")


print("\n# ratios at 50 callers (medians; CPU per op: lower is better)")
for mix, mixl in (("0.9", "90/10"), ("1.0", "100/0")):
    compare(f"Go client / Redis+rueidis, {mixl}", f"ringcache-{mix}", f"redis-{mix}")
compare("RESP door cluster mode / Redis+rueidis, 90/10", "resp-cluster-0.9", "redis-0.9")
compare("RESP door cluster mode / Redis Cluster, 90/10", "resp-cluster-0.9", "redis-cluster-0.9")
for mix, mixl in (("0.9", "90/10"), ("1.0", "100/0")):
    compare(f"RESP door standalone / Redis+rueidis, {mixl}", f"resp-{mix}", f"redis-{mix}", target=False)
compare("Redis Cluster / Redis, 90/10 (no target)", "redis-cluster-0.9", "redis-0.9", target=False)
compare("one node, Go client / Redis+rueidis, 90/10", "solo-0.9", "redis-0.9", target=False)
compare("one node, RESP door / Redis+rueidis, 90/10", "solo-resp-0.9", "redis-0.9", target=False)

print("\n# p50 latency, 1 caller, 90/10 (medians)")
for ours, theirs, label, note in (
        ("ringcache-1caller", "redis-1caller", "Go client / Redis+rueidis", ""),
        ("resp-cluster-1caller", "redis-1caller", "RESP door cluster mode / Redis", "   (target <= 1.5x: keys go to their owner)"),
        ("resp-cluster-1caller", "redis-cluster-1caller", "RESP door cluster mode / Redis Cluster", ""),
        ("resp-1caller", "redis-1caller", "RESP door standalone / Redis", "   (node 1 forwards 2/3 of keys)")):
    if have(ours) and have(theirs):
        print(f"{label:<48} {ratio(median(ours)['p50_us'], median(theirs)['p50_us']):>6}{note}")

csvs = sorted(glob.glob(os.path.join(out, "rb-*.csv")))
if csvs:
    print("\n# redis-benchmark -c 50, 100-byte values, 100k keys (requests/s; CPU us/op, server and client)")
    print("(redis-cluster and resp-cluster: redis-benchmark --cluster; resp: the door at node 1)")
    print(f"{'run':<20}{'SET rps':>10}{'GET rps':>10}{'srv CPU':>9}{'cli CPU':>9}{'fwd/op':>8}")
    for path in csvs:
        name = os.path.basename(path)[:-4]
        rps = {}
        for line in open(path):
            cols = [c.strip('"') for c in line.strip().split(",")]
            if len(cols) > 1 and cols[0] in ("SET", "GET"):
                rps[cols[0]] = float(cols[1])
        n = 2 * min(200000 * (16 if name.endswith("P16") else 1), 2000000)
        srv, cli = read_pair(os.path.join(out, name + ".cpu")), read_pair(os.path.join(out, name + ".client"))
        fpath = os.path.join(out, name + ".fwd")
        fwd = f"{int(open(fpath).read()) / n:.2f}" if os.path.exists(fpath) else "-"
        print(f"{name[3:]:<20}{rps.get('SET', 0):>10.0f}{rps.get('GET', 0):>10.0f}"
              f"{fmt_cpu(1e6 * srv[0] / srv[1] / n if srv and rps else None):>9}"
              f"{fmt_cpu(1e6 * (cli[0] + cli[1]) / n if cli and rps else None):>9}{fwd:>8}")

s = load("stampede")
print(f"\n# stampede: {s['concurrency']} concurrent Gets of one cold key over {s['nodes']} nodes")
print(f"ringcache read-through: {s['ringcache_loads']} database load(s) in {s['ringcache_ms']:.1f} ms   (target: exactly 1)")
if s.get("naive_loads") is not None:
    print(f"naive cache-aside:      {s['naive_loads']} database queries in {s['naive_ms']:.1f} ms")

mr, mx = load("memory-ringcache"), load("memory-redis")
print(f"\n# memory per entry ({mr['entries']} entries, {mr['value_size']}-byte values)")
print(f"{'':<12}{'heap B/entry':>14}{'RSS B/entry':>13}{'not retained':>14}")
for m in (mr, mx):
    print(f"{m['target']:<12}{m['heap_bytes_per_entry']:>14.1f}{m['rss_bytes_per_entry']:>13.1f}{m['entries_not_retained']:>14}")
print(f"ringcache/redis heap: {ratio(mr['heap_bytes_per_entry'], mx['heap_bytes_per_entry'])}, "
      f"RSS: {ratio(mr['rss_bytes_per_entry'], mx['rss_bytes_per_entry'])}   (target <= 1.5x)")
