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


def cpu_us_per_op(name, r):
    """Server CPU microseconds per operation of run r (a round of name), or None."""
    path = os.path.join(out, f"{name}.{r['_round']}.cpu")
    if not os.path.exists(path):
        return None
    ticks, hz = (int(x) for x in open(path).read().split())
    ops = r["ops"] + (r["keys"] if r.get("prefilled", True) else 0)
    return 1e6 * ticks / hz / ops if ops else None


def fmt_cpu(v):
    return f"{v:.1f}" if v is not None else "-"


env = os.path.join(out, "environment.txt")
if os.path.exists(env):
    print(open(env).read().strip())
print("\n# throughput and latency (100-byte values, 100k keys, uniform)")
print("(median round by ops/s; the ops/s of every round in brackets)")
print("(redis: Redis through rueidis; redis-goredis: through go-redis; resp: ringcache's RESP door")
print(" through rueidis, standalone at node 1; resp-cluster: rueidis in cluster mode; CPU: server")
print(" CPU microseconds per operation, the three nodes summed)")
print(f"{'run':<34}{'ops/s':>9}{'p50 us':>8}{'p99 us':>8}{'CPU us/op':>10}{'errors':>7}{'calls/frame':>12}   rounds")
TARGETS = ("ringcache", "ringcache-unary", "redis", "redis-goredis", "resp", "resp-cluster")
for mix in ("0.9", "1.0", "1caller"):
    for target in TARGETS:
        name = f"{target}-{mix}"
        if not glob.glob(os.path.join(out, name + ".*.json")):
            continue
        r, all_rounds = median(name), rounds(name)
        label = f"{target} {'90/10' if mix == '0.9' else '100/0' if mix == '1.0' else '1 caller 90/10'}"
        per_frame = f"{r['calls_per_frame']:.1f}" if r.get("calls_per_frame") else "-"
        each = ", ".join(f"{x['ops_per_sec']:.0f}" for x in all_rounds)
        errors = sum(x["errors"] for x in all_rounds)
        print(f"{label:<34}{r['ops_per_sec']:>9.0f}{r['p50_us']:>8.0f}{r['p99_us']:>8.0f}{fmt_cpu(cpu_us_per_op(name, r)):>10}{errors:>7}{per_frame:>12}   [{each}]")


def have(name):
    return bool(glob.glob(os.path.join(out, name + ".*.json")))


print("\n# against Redis through rueidis, 50 callers")
for ours, label in (("ringcache", "ringcache (Go client)"), ("resp", "RESP door, rueidis standalone"), ("resp-cluster", "RESP door, rueidis cluster mode")):
    for mix in ("0.9", "1.0"):
        if not have(f"{ours}-{mix}"):
            continue
        rc, rd = median(f"{ours}-{mix}"), median(f"redis-{mix}")
        mixl = "90/10" if mix == "0.9" else "100/0"
        print(f"{label + ' ' + mixl:<44} ops/s {ratio(rc['ops_per_sec'], rd['ops_per_sec']):>7} (target >= 1.0x)"
              f"   CPU/op {ratio(cpu_us_per_op(f'{ours}-{mix}', rc), cpu_us_per_op(f'redis-{mix}', rd)):>7} (target <= 1.0x)")
rc, rd = median("ringcache-1caller"), median("redis-1caller")
print(f"{'p50 latency 1 caller, Go client':<44} {ratio(rc['p50_us'], rd['p50_us']):>7}")
if have("resp-1caller"):
    rc = median("resp-1caller")
    print(f"{'p50 latency 1 caller, RESP door':<44} {ratio(rc['p50_us'], rd['p50_us']):>7}   (target <= 1.5x on an owner-routed key;")
    print(f"{'':<44}          this run is standalone through node 1: 2/3 of keys forwarded)")

csvs = sorted(glob.glob(os.path.join(out, "rb-*.csv")))
if csvs:
    print("\n# redis-benchmark -c 50, 100-byte values, 100k keys (requests/s; server CPU us/op)")
    print(f"{'run':<16}{'SET rps':>10}{'GET rps':>10}{'CPU us/op':>10}")
    for path in csvs:
        name = os.path.basename(path)[:-4]
        rps = {}
        for line in open(path):
            cols = [c.strip('"') for c in line.strip().split(",")]
            if len(cols) > 1 and cols[0] in ("SET", "GET"):
                rps[cols[0]] = float(cols[1])
        cpu = None
        cpath = os.path.join(out, name + ".cpu")
        if os.path.exists(cpath) and rps:
            ticks, hz = (int(x) for x in open(cpath).read().split())
            n = 200000 * (16 if name.endswith("P16") else 1)
            cpu = 1e6 * ticks / hz / (2 * min(n, 2000000))
        print(f"{name[3:]:<16}{rps.get('SET', 0):>10.0f}{rps.get('GET', 0):>10.0f}{fmt_cpu(cpu):>10}")

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
