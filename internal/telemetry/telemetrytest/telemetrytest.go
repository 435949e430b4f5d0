// Package telemetrytest reads Prometheus expositions in tests: parse a
// /metrics body with the Prometheus text parser and look values up by name
// and labels.
package telemetrytest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Families is a parsed exposition, by metric family name.
type Families map[string]*dto.MetricFamily

// Parse parses the Prometheus text format.
func Parse(r io.Reader) (Families, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(r)
	return Families(mfs), err
}

// ScrapeHandler GETs /metrics from h and parses it.
func ScrapeHandler(h http.Handler) (Families, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return Parse(rec.Body)
}

// ScrapeURL GETs url (a /metrics address) and parses it.
func ScrapeURL(c *http.Client, url string) (Families, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("GET %s: %s %s", url, resp.Status, b)
	}
	return Parse(resp.Body)
}

// Sum adds the values of every series of family name whose labels include
// labels (pairs: name, value, name, value...). A histogram contributes its
// sample count. found is false when no series matched.
func (f Families) Sum(name string, labels ...string) (sum float64, found bool) {
	mf, ok := f[name]
	if !ok {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.Counter.GetValue()
		case m.Gauge != nil:
			sum += m.Gauge.GetValue()
		case m.Untyped != nil:
			sum += m.Untyped.GetValue()
		case m.Histogram != nil:
			sum += float64(m.Histogram.GetSampleCount())
		}
	}
	return sum, found
}

// Type returns the type of family name, or "" when it is absent.
func (f Families) Type(name string) string {
	if mf, ok := f[name]; ok {
		return strings.ToLower(mf.GetType().String())
	}
	return ""
}

// LabelNames returns the sorted label names of family name's first series.
func (f Families) LabelNames(name string) []string {
	mf, ok := f[name]
	if !ok || len(mf.GetMetric()) == 0 {
		return nil
	}
	var out []string
	for _, lp := range mf.GetMetric()[0].GetLabel() {
		out = append(out, lp.GetName())
	}
	sort.Strings(out)
	return out
}

// Names returns the sorted family names.
func (f Families) Names() []string {
	out := make([]string, 0, len(f))
	for n := range f {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == pairs[i] && lp.GetValue() == pairs[i+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
