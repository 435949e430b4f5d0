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
            runs.append(json.load(fh))
    if not runs:
        sys.exit(f"no results for {name} in {out}")
    return sorted(runs, key=lambda r: r["ops_per_sec"])


def median(name):
    runs = rounds(name)
    return runs[len(runs) // 2]


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "-"


env = os.path.join(out, "environment.txt")
if os.path.exists(env):
    print(open(env).read().strip())
print("\n# throughput and latency (100-byte values, 100k keys, uniform)")
print("(median round by ops/s; the ops/s of every round in brackets)")
print(f"{'run':<30}{'ops/s':>9}{'p50 us':>8}{'p99 us':>8}{'errors':>7}{'calls/frame':>12}   rounds")
for mix in ("0.9", "1.0", "1caller"):
    for target in ("ringcache", "ringcache-unary", "redis"):
        name = f"{target}-{mix}"
        r, all_rounds = median(name), rounds(name)
        label = f"{target} {'90/10' if mix == '0.9' else '100/0' if mix == '1.0' else '1 caller 90/10'}"
        per_frame = f"{r['calls_per_frame']:.1f}" if r.get("calls_per_frame") else "-"
        each = ", ".join(f"{x['ops_per_sec']:.0f}" for x in all_rounds)
        errors = sum(x["errors"] for x in all_rounds)
        print(f"{label:<30}{r['ops_per_sec']:>9.0f}{r['p50_us']:>8.0f}{r['p99_us']:>8.0f}{errors:>7}{per_frame:>12}   [{each}]")

print("\n# ringcache / redis")
for mix, label in (("0.9", "throughput 50 callers 90/10"), ("1.0", "throughput 50 callers 100/0")):
    rc, rd = median(f"ringcache-{mix}"), median(f"redis-{mix}")
    print(f"{label:<34}{ratio(rc['ops_per_sec'], rd['ops_per_sec']):>8}   (target >= 1.0x)")
rc, rd = median("ringcache-1caller"), median("redis-1caller")
print(f"{'p50 latency 1 caller':<34}{ratio(rc['p50_us'], rd['p50_us']):>8}   (target <= 2.0x)")

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
