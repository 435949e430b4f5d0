# summary.awk reads the output of the internal/bench benchmarks and prints
# the ratios the write-path targets are stated in (see docs/benchmarks.md).
# Usage: awk -f internal/bench/summary.awk bench-output.txt

/^Benchmark/ {
	name = $1
	sub(/-[0-9]+$/, "", name)
	for (i = 2; i < NF; i++) {
		if ($(i + 1) == "sets/s") rate[name] = $i
		if ($(i + 1) == "rows-flushed") { rows[name] = $i; order[++nrows] = name }
		if ($(i + 1) == "pg-row-writes") pgrows[name] = $i
		if ($(i + 1) == "repl-p50-ms") rp50[name] = $i
		if ($(i + 1) == "repl-p99-ms") rp99[name] = $i
		if ($(i + 1) == "p50-ms") p50[name] = $i
		if ($(i + 1) == "p99-ms") p99[name] = $i
	}
}

function ratio(a, b) { return (a in rate && b in rate && rate[b] > 0) ? sprintf("%.2fx", rate[a] / rate[b]) : "n/a" }

END {
	wb = "BenchmarkSet_WriteBehind"; wt = "BenchmarkSet_WriteThrough"; co = "BenchmarkSet_CacheOnly"
	print ""
	print "== write path: ratios vs targets =="
	printf "Set/s: cache-only %s, write-behind %s, write-through %s, write-through (pool 50) %s\n",
		rate[co], rate[wb], rate[wt], rate[wt "_Pool50"]
	printf "write-behind / write-through:          %s (target >= 10x)\n", ratio(wb, wt)
	printf "write-behind / write-through, pool 50: %s\n", ratio(wb, wt "_Pool50")
	printf "write-behind / cache-only:             %s (target >= 0.5x)\n", ratio(wb, co)
	r1 = "BenchmarkReplication_WriteBehind/replicas=1"; r2 = "BenchmarkReplication_WriteBehind/replicas=2"
	if (r1 in rate && r2 in rate) {
		printf "write-behind, 2 nodes: replicas 1 %s Sets/s (p50 %s ms, p99 %s ms), replicas 2 %s Sets/s (p50 %s ms, p99 %s ms)\n",
			rate[r1], p50[r1], p99[r1], rate[r2], p50[r2], p99[r2]
		printf "replicas 2 / replicas 1:                %s (target >= 0.7x); replication round trip p50 %s ms, p99 %s ms\n",
			ratio(r2, r1), rp50[r2], rp99[r2]
	}
	for (k = 1; k <= nrows; k++) {
		n = order[k]
		c = n
		sub(/^BenchmarkCoalescing_100kSetsOver1kKeys\//, "", c)
		printf "rows written per 100k Sets over 1k keys, %s: %d flushed, %d counted by PostgreSQL\n", c, rows[n], pgrows[n]
	}
}
