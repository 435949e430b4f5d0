package nodemetrics

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/ringcache/ringcache/internal/prewarm"
)

// Prewarm is the part of the warm after a restart: prewarm_keys{outcome}.
func Prewarm(stats func() prewarm.Stats) Part {
	return func(k *Kit) func(metric.Observer) {
		keys := k.Counter("prewarm_keys",
			"Keys of the hot-key list the warm after a restart tried, by outcome: pending (a write-behind write, this node's or a previous owner's), database, held (already in memory), not_owned, skipped, failed.")
		outcome := func(s string) metric.ObserveOption {
			return metric.WithAttributeSet(attribute.NewSet(attribute.String("outcome", s)))
		}
		pending, database, held, notOwned, skipped, failed := outcome("pending"), outcome("database"), outcome("held"), outcome("not_owned"), outcome("skipped"), outcome("failed")
		return func(o metric.Observer) {
			s := stats()
			o.ObserveInt64(keys, int64(s.FromPending), pending)
			o.ObserveInt64(keys, int64(s.FromDatabase), database)
			o.ObserveInt64(keys, int64(s.Held), held)
			o.ObserveInt64(keys, int64(s.NotOwned), notOwned)
			o.ObserveInt64(keys, int64(s.Skipped), skipped)
			o.ObserveInt64(keys, int64(s.Failed), failed)
		}
	}
}
