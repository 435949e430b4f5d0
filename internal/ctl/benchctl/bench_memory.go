package benchctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/ringcache/ringcache/internal/ctl"
	"github.com/ringcache/ringcache/internal/loadgen"
)

type memoryOptions struct {
	target      string
	namespace   string
	adminAddrs  string
	entries     int
	valueSize   int
	concurrency int
}

// memorySample is the memory of a target at one moment, summed over nodes.
type memorySample struct {
	// HeapBytes is the Go heap in use after a forced GC (ringcache) or
	// used_memory (Redis): what the allocator holds for live data.
	HeapBytes uint64 `json:"heap_bytes"`
	// RSSBytes is the resident memory of the processes.
	RSSBytes uint64 `json:"rss_bytes"`
	// Entries is the number of keys held.
	Entries uint64 `json:"entries"`
}

// memoryResult is what `bench memory` prints.
type memoryResult struct {
	Target             string       `json:"target"`
	Entries            int          `json:"entries"`
	ValueSize          int          `json:"value_size"`
	Before             memorySample `json:"before"`
	After              memorySample `json:"after"`
	HeapBytesPerEntry  float64      `json:"heap_bytes_per_entry"`
	RSSBytesPerEntry   float64      `json:"rss_bytes_per_entry"`
	FillSeconds        float64      `json:"fill_seconds"`
	EntriesNotRetained int64        `json:"entries_not_retained"`
}

func newMemoryCommand(g *ctl.Globals) *cobra.Command {
	m := &memoryOptions{}
	cmd := &cobra.Command{
		Use:   "memory",
		Short: "Measure the memory one cached entry costs",
		Long: "memory measures the target's memory, Sets --entries fresh keys of\n" +
			"--value-size bytes, measures again and divides the growth by the entries.\n\n" +
			"For the cluster of --addr, heap is the Go heap after a forced GC (read from\n" +
			"each node's /debug/pprof/heap?gc=1 at --admin-addrs) and rss the nodes'\n" +
			"process_resident_memory_bytes; for --target redis://… they are INFO\n" +
			"memory's used_memory and used_memory_rss. The namespace must hold that many\n" +
			"entries without evicting (its ttl long enough, --max-memory large enough):\n" +
			"the report counts entries that were not retained.",
		Example: "  ringcachectl bench memory --namespace sessions --entries 1000000 --admin-addrs 127.0.0.1:7301,127.0.0.1:7302,127.0.0.1:7303\n" +
			"  ringcachectl bench memory --target redis://127.0.0.1:6379 --entries 1000000",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runMemory(cmd.Context(), g, cmd.OutOrStdout(), m)
		},
	}
	f := cmd.Flags()
	f.StringVar(&m.target, "target", "", "redis://host:port to measure a Redis server instead of the cluster at --addr")
	f.StringVar(&m.namespace, "namespace", "sessions", "namespace to fill (a Redis key prefix with --target redis://…)")
	f.StringVar(&m.adminAddrs, "admin-addrs", "", "comma-separated --admin-addr of every node (cluster only)")
	f.IntVar(&m.entries, "entries", 1_000_000, "entries to add")
	f.IntVar(&m.valueSize, "value-size", 100, "bytes per value")
	f.IntVar(&m.concurrency, "concurrency", 50, "concurrent Sets while filling")
	return cmd
}

func runMemory(ctx context.Context, g *ctl.Globals, w io.Writer, m *memoryOptions) error {
	if m.entries < 1 || m.valueSize < 0 || m.concurrency < 1 {
		return fmt.Errorf("--entries and --concurrency must be at least 1 and --value-size not negative")
	}
	redisTarget := m.target != ""
	admins := splitList(m.adminAddrs)
	if !redisTarget && len(admins) == 0 {
		return fmt.Errorf("--admin-addrs is required for the cluster: the nodes' admin addresses, where /debug/pprof and /metrics are served")
	}
	target, name, err := openTarget(g, m.target, loadgen.ClientGoRedis, m.namespace, m.concurrency, false) // go-redis: its INFO reads the memory
	if err != nil {
		return err
	}
	if redisTarget {
		name = "redis"
	}
	defer target.Close()
	sample := func() (memorySample, error) {
		if r, ok := target.(*loadgen.Redis); ok {
			return redisMemory(ctx, r.Client())
		}
		return clusterMemory(ctx, g, admins)
	}

	res := &memoryResult{Target: name, Entries: m.entries, ValueSize: m.valueSize}
	if res.Before, err = sample(); err != nil {
		return err
	}
	value := make([]byte, m.valueSize)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	prefix := "mem-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"
	t0 := time.Now()
	if err := loadgen.Fill(ctx, target, prefix, m.entries, value, m.concurrency); err != nil {
		return err
	}
	res.FillSeconds = time.Since(t0).Seconds()
	if res.After, err = sample(); err != nil {
		return err
	}
	n := float64(m.entries)
	res.HeapBytesPerEntry = (float64(res.After.HeapBytes) - float64(res.Before.HeapBytes)) / n
	res.RSSBytesPerEntry = (float64(res.After.RSSBytes) - float64(res.Before.RSSBytes)) / n
	res.EntriesNotRetained = int64(m.entries) - (int64(res.After.Entries) - int64(res.Before.Entries))
	return g.Render(w, res, func(w io.Writer) error {
		t := ctl.NewTable(w, "TARGET", "ENTRIES", "VALUE B", "HEAP B/ENTRY", "RSS B/ENTRY", "NOT RETAINED", "FILL s")
		t.Row(res.Target, res.Entries, res.ValueSize, fmt.Sprintf("%.1f", res.HeapBytesPerEntry), fmt.Sprintf("%.1f", res.RSSBytesPerEntry),
			res.EntriesNotRetained, fmt.Sprintf("%.1f", res.FillSeconds))
		return t.Flush()
	})
}

// clusterMemory sums the live heap and RSS of the nodes at admins, and their
// store entries.
func clusterMemory(ctx context.Context, g *ctl.Globals, admins []string) (memorySample, error) {
	var s memorySample
	hc := &http.Client{Timeout: 30 * time.Second}
	for _, a := range admins {
		heap, err := scrape(ctx, hc, "http://"+a+"/debug/pprof/heap?gc=1&debug=1", "# HeapAlloc = ")
		if errors.Is(err, errNotFound) {
			return s, fmt.Errorf("%w: start the nodes with --pprof, which serves the heap profile this reads", err)
		}
		if err != nil {
			return s, err
		}
		rss, err := scrape(ctx, hc, "http://"+a+"/metrics", "process_resident_memory_bytes ")
		if err != nil {
			return s, err
		}
		s.HeapBytes += heap
		s.RSSBytes += rss
	}
	stats, err := g.Stats(ctx)
	if err != nil {
		return s, err
	}
	for _, st := range stats {
		s.Entries += st.GetStore().GetEntries()
	}
	return s, nil
}

// scrape fetches url and returns the number after the first line starting
// with prefix.
func scrape(ctx context.Context, hc *http.Client, url, prefix string) (uint64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("admin endpoint: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return 0, fmt.Errorf("GET %s: %w", url, errNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				return 0, fmt.Errorf("GET %s: %q is not a number", url, v)
			}
			return uint64(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	return 0, fmt.Errorf("GET %s: no line starts with %q", url, prefix)
}

// errNotFound is an admin endpoint's 404.
var errNotFound = errors.New("404 Not Found")

// redisMemory reads INFO memory and DBSIZE.
func redisMemory(ctx context.Context, c *redis.Client) (memorySample, error) {
	var s memorySample
	info, err := c.Info(ctx, "memory").Result()
	if err != nil {
		return s, fmt.Errorf("redis INFO memory: %w", err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_memory":
			s.HeapBytes, _ = strconv.ParseUint(v, 10, 64)
		case "used_memory_rss":
			s.RSSBytes, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	n, err := c.DBSize(ctx).Result()
	if err != nil {
		return s, fmt.Errorf("redis DBSIZE: %w", err)
	}
	s.Entries = uint64(n)
	return s, nil
}
