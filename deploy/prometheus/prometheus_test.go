package prometheus_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
)

// histogramBucket is the otelgrpc RPC latency histogram as Prometheus sees
// it. One recording rule of alerts.yaml names it; every other rule and the
// dashboard use what that rule records, so a rename is a one-line fix.
const histogramBucket = "ringcache_rpc_server_call_duration_seconds_bucket"

// exportedMetrics are the series a ringcached exports, with their labels
// besides instance and job. Keep it in step with the exporter.
var exportedMetrics = map[string][]string{
	"ringcache_gets_total":                         {"namespace"},
	"ringcache_hits_total":                         {"namespace"},
	"ringcache_misses_total":                       {"namespace"},
	"ringcache_negative_hits_total":                {"namespace"},
	"ringcache_backend_loads_total":                {"namespace"},
	"ringcache_backend_loads_deduplicated_total":   {"namespace"},
	"ringcache_backend_load_errors_total":          {"namespace"},
	"ringcache_sets_total":                         {"namespace"},
	"ringcache_deletes_total":                      {"namespace"},
	"ringcache_write_errors_total":                 {"namespace"},
	"ringcache_backpressure_total":                 {"namespace"},
	"ringcache_refreshes_total":                    {"namespace"},
	"ringcache_pending_hits_total":                 {"namespace"},
	"ringcache_forwards_total":                     nil,
	"ringcache_forward_errors_total":               nil,
	"ringcache_forwarded_in_total":                 nil,
	"ringcache_store_evictions_total":              nil,
	"ringcache_store_bytes":                        nil,
	"ringcache_store_max_bytes":                    nil,
	"ringcache_store_entries":                      nil,
	"ringcache_connected_clients":                  nil,
	"ringcache_members":                            {"state"},
	"ringcache_ring_changes_total":                 nil,
	"ringcache_ring_partitions":                    nil,
	"ringcache_journal_pending":                    nil,
	"ringcache_journal_pending_bytes":              nil,
	"ringcache_journal_max_pending":                nil,
	"ringcache_journal_oldest_pending_age_seconds": nil,
	"ringcache_journal_dead_letters":               nil,
	"ringcache_journal_flushed_total":              nil,
	"ringcache_journal_flush_errors_total":         nil,
	"ringcache_pipeline_frames_total":              nil,
	"ringcache_pipeline_ops_total":                 nil,
	"ringcache_pipeline_waits_total":               nil,
	"ringcache_hot_cache_hits_total":               nil,
	"ringcache_hot_cache_fills_total":              nil,
	"ringcache_hot_cache_invalidations_total":      nil,
	"ringcache_hot_cache_resets_total":             nil,
	"ringcache_connections_refused_total":          nil,
	"ringcache_accept_errors_total":                nil,
	"ringcache_watch_dropped_total":                nil,
	"ringcache_stream_send_timeouts_total":         nil,
	"ringcache_under_replicated_writes_total":      nil,
	"ringcache_replication_failures_total":         nil,
	"ringcache_replication_in_sync":                nil,
	// otelgrpc's current semantic conventions label rpc_method
	// "ringcache.v1.Cache/Get" and no rpc_service; the old ones
	// rpc_service "ringcache.v1.Cache" and rpc_method "Get".
	histogramBucket: {"rpc_service", "rpc_method", "rpc_system_name", "rpc_response_status_code", "le"},
}

var severities = []string{"critical", "warning", "info"}

func newParser() parser.Parser { return parser.NewParser(parser.Options{}) }

// loadRules parses alerts.yaml as promtool check rules does, failing the
// test on any error.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile("alerts.yaml", false, model.UTF8Validation, newParser(), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

// selectors returns the vector selectors of expr, which must parse.
func selectors(t *testing.T, where, expr string) []*parser.VectorSelector {
	t.Helper()
	e, err := newParser().ParseExpr(expr)
	if err != nil {
		t.Fatalf("%s: %v\n%s", where, err, expr)
	}
	var vs []*parser.VectorSelector
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if v, ok := n.(*parser.VectorSelector); ok {
			vs = append(vs, v)
		}
		return nil
	})
	if len(vs) == 0 {
		t.Errorf("%s selects no series: %s", where, expr)
	}
	return vs
}

// checkSelector fails unless v selects a series the nodes export (or a rule
// of alerts.yaml records) by name, with label matchers the series can carry.
func checkSelector(t *testing.T, where string, v *parser.VectorSelector, recorded map[string]bool) {
	t.Helper()
	if v.Name == "" {
		t.Errorf("%s: selector %s has no metric name", where, v)
		return
	}
	if recorded[v.Name] {
		return
	}
	lbls, ok := exportedMetrics[v.Name]
	if !ok {
		t.Errorf("%s: unknown metric %q", where, v.Name)
		return
	}
	for _, m := range v.LabelMatchers {
		if m.Name != labels.MetricName && m.Name != "instance" && m.Name != "job" && !slices.Contains(lbls, m.Name) {
			t.Errorf("%s: %s has no label %q", where, v.Name, m.Name)
		}
	}
}

// recordedNames returns the names of the series the rules record.
func recordedNames(groups *rulefmt.RuleGroups) map[string]bool {
	recorded := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	return recorded
}

func TestRules(t *testing.T) {
	groups := loadRules(t)
	recorded := recordedNames(groups)
	alerts := map[string]bool{}
	histogramUses := 0
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := g.Name + "/" + r.Record + r.Alert
			for _, v := range selectors(t, where, r.Expr) {
				checkSelector(t, where, v, recorded)
				if v.Name == histogramBucket {
					histogramUses++
				}
			}
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; !slices.Contains(severities, s) {
				t.Errorf("%s: severity %q, want one of %v", where, s, severities)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", where, a)
				}
			}
			if !strings.Contains(r.Annotations["summary"]+r.Annotations["description"], "$labels") {
				t.Errorf("%s: summary and description do not name any of its $labels", where)
			}
		}
	}
	if histogramUses != 1 {
		t.Errorf("alerts.yaml selects %s %d times, want 1 (one recording rule the others build on)", histogramBucket, histogramUses)
	}
	for _, a := range []string{
		"RingcacheLowHitRate", "RingcacheMemoryHigh", "RingcacheJournalLag", "RingcacheJournalNearlyFull",
		"RingcacheJournalFlushErrors", "RingcacheJournalDeadLetters", "RingcacheMemberDead",
		"RingcacheMembersMissing", "RingcacheHighLatency", "RingcacheBackpressure", "RingcacheBackendLoadErrors",
	} {
		if !alerts[a] {
			t.Errorf("alert %s is missing", a)
		}
	}
}

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	Panels     []panel         `json:"panels"` // of a collapsed row
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// grafanaVar matches a Grafana variable: $name, ${name} or ${name:format}.
var grafanaVar = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)

// expandVars replaces Grafana variables so that expr is PromQL: interval
// variables by a duration, the others by a plain value.
func expandVars(expr string) string {
	return grafanaVar.ReplaceAllStringFunc(expr, func(v string) string {
		if strings.Contains(v, "__") && strings.Contains(v, "interval") || strings.Contains(v, "__range") {
			return "5m"
		}
		return "x"
	})
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("dashboard.json is not valid JSON: %v", err)
	}
	return d
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	recorded := recordedNames(loadRules(t))
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(map[string]any)
		query, _ := q["query"].(string)
		if m := regexp.MustCompile(`^label_values\((.*),\s*\w+\)$`).FindStringSubmatch(query); m != nil {
			for _, s := range selectors(t, "variable "+v.Name, expandVars(m[1])) {
				checkSelector(t, "variable "+v.Name, s, nil)
			}
		} else {
			t.Errorf("variable %s: query %q is not label_values(selector, label)", v.Name, query)
		}
	}
	for _, v := range []string{"datasource", "instance", "namespace"} {
		if !vars[v] {
			t.Errorf("no %s variable", v)
		}
	}

	ids := map[int]string{}
	exprs := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := "panel " + p.Title
			if p.ID == 0 {
				t.Errorf("%s has no id", where)
			} else if other, dup := ids[p.ID]; dup {
				t.Errorf("%s and panel %s share id %d", where, other, p.ID)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if !strings.Contains(string(p.Datasource), "${datasource}") {
				t.Errorf("%s: datasource %s, want the ${datasource} variable", where, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s has no targets", where)
			}
			for _, tg := range p.Targets {
				exprs++
				for _, v := range selectors(t, where, expandVars(tg.Expr)) {
					checkSelector(t, where+" "+tg.RefID, v, recorded)
					if v.Name == histogramBucket {
						t.Errorf("%s %s: selects %s; use the series alerts.yaml records from it", where, tg.RefID, histogramBucket)
					}
				}
			}
		}
	}
	walk(d.Panels)
	if exprs == 0 {
		t.Error("the dashboard has no expr")
	}
}
