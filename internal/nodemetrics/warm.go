package nodemetrics

import (
	"go.opentelemetry.io/otel/metric"

	"github.com/ringcache/ringcache/internal/engine"
)

// Warm is the part of the warm hand-over of cached entries when
// partitions change owner (engine.WarmStats).
func Warm(stats func() engine.WarmStats) Part {
	return func(k *Kit) func(metric.Observer) {
		counter := k.Counter
		in := counter("handover_entries_in", "Cached entries received from previous owners of partitions this node gained (warm hand-over).")
		inBytes := counter("handover_bytes_in", "Bytes of the cached entries received from previous owners.")
		out := counter("handover_entries_out", "Cached entries sent to new owners of partitions this node lost.")
		outBytes := counter("handover_bytes_out", "Bytes of the cached entries sent to new owners.")
		misses := counter("handover_misses_served", "Misses on partitions this node just gained answered by the previous owner instead of the database.")
		lookups := counter("handover_lookups_served", "New owners' misses this node answered from the entries it held for them.")
		dropped := counter("handover_dropped", "Entries of lost partitions not held for their new owner because the hand-over bound was full.")
		held := k.Gauge("handover_held_bytes", "Bytes of cached entries held for new owners to pull.", "By")
		return func(o metric.Observer) {
			st := stats()
			o.ObserveInt64(in, int64(st.EntriesIn))
			o.ObserveInt64(inBytes, int64(st.BytesIn))
			o.ObserveInt64(out, int64(st.EntriesOut))
			o.ObserveInt64(outBytes, int64(st.BytesOut))
			o.ObserveInt64(misses, int64(st.MissesServed))
			o.ObserveInt64(lookups, int64(st.LookupsServed))
			o.ObserveInt64(dropped, int64(st.Dropped))
			o.ObserveInt64(held, st.HeldBytes)
		}
	}
}
