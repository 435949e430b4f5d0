// Package prometheus holds no code: the directory carries ringcache's
// Prometheus rules (alerts.yaml) and Grafana dashboard (dashboard.json), and
// its test checks both the way promtool would, against the metric names the
// nodes export.
package prometheus
