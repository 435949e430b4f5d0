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
	for (k = 1; k <= nrows; k++) {
		n = order[k]
		c = n
		sub(/^BenchmarkCoalescing_100kSetsOver1kKeys\//, "", c)
		printf "rows written per 100k Sets over 1k keys, %s: %d flushed, %d counted by PostgreSQL\n", c, rows[n], pgrows[n]
	}
}
