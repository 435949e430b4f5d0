package config

import (
	"fmt"
	"math"

	"go.yaml.in/yaml/v3"
)

// Refresh modes of a namespace.
const (
	RefreshOff       = "off"
	RefreshThreshold = "threshold"
	RefreshXFetch    = "xfetch"
)

// DefaultXFetchBeta is the β of `refresh: xfetch` when none is given.
const DefaultXFetchBeta = 1.0

// Refresh is how a read-through namespace reloads hot entries before they
// expire. Written as a mode alone or as a mapping:
//
//	refresh: xfetch                          # probabilistic early refresh, beta 1
//	refresh: {mode: xfetch, beta: 2}         # beta > 1 refreshes earlier
//	refresh: {mode: threshold, ahead: 0.8}   # the same as refresh_ahead: 0.8
//	refresh: off
//
// threshold reloads an entry read after ahead × its TTL. xfetch reloads an
// entry read with life L left, whose last load took Δ, with probability
// e^(−L/(Δ·beta)): once, shortly before expiry (Vattani et al., "Optimal
// Probabilistic Cache Stampede Prevention").
type Refresh struct {
	Mode  string  `yaml:"mode"`  // off | threshold | xfetch; empty: refresh_ahead decides
	Ahead float64 `yaml:"ahead"` // threshold: the fraction of the TTL, in (0, 1)
	Beta  float64 `yaml:"beta"`  // xfetch: β > 0; default 1
}

// UnmarshalYAML implements yaml.Unmarshaler: a scalar is the mode, a
// mapping may hold mode, ahead and beta and nothing else.
func (r *Refresh) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&r.Mode)
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: refresh must be a mode (off, threshold, xfetch) or a mapping {mode, ahead, beta}", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var err error
		switch k.Value {
		case "mode":
			err = v.Decode(&r.Mode)
		case "ahead":
			err = v.Decode(&r.Ahead)
		case "beta":
			err = v.Decode(&r.Beta)
		default:
			return fmt.Errorf("line %d: refresh.%s: unknown key (use mode, ahead, beta)", k.Line, k.Value)
		}
		if err != nil {
			return fmt.Errorf("line %d: refresh.%s: %w", k.Line, k.Value, err)
		}
	}
	return nil
}

// RefreshPolicy resolves refresh and refresh_ahead into the namespace
// policy's RefreshAhead and XFetchBeta (at most one non-zero). The file
// must have passed Validate.
func (n Namespace) RefreshPolicy() (ahead, beta float64) {
	switch n.Refresh.Mode {
	case RefreshXFetch:
		if n.Refresh.Beta == 0 {
			return 0, DefaultXFetchBeta
		}
		return 0, n.Refresh.Beta
	case RefreshThreshold:
		return n.Refresh.Ahead, 0
	case RefreshOff:
		return 0, 0
	}
	return n.RefreshAhead, 0
}

// validateRefresh checks refresh and refresh_ahead of the namespace at
// field.
func (n Namespace) validateRefresh(bad func(field, format string, args ...any) error, field string) error {
	r := n.Refresh
	if n.RefreshAhead < 0 || n.RefreshAhead >= 1 {
		return bad(field+".refresh_ahead", "must be in [0, 1), got %g", n.RefreshAhead)
	}
	if r != (Refresh{}) && n.RefreshAhead != 0 {
		return bad(field+".refresh", "and refresh_ahead both set; refresh_ahead: X is short for refresh: {mode: threshold, ahead: X}: keep one")
	}
	switch r.Mode {
	case "", RefreshOff:
		if r.Ahead != 0 || r.Beta != 0 {
			return bad(field+".refresh.mode", "is required with ahead or beta (threshold or xfetch)")
		}
	case RefreshThreshold:
		if !(r.Ahead > 0 && r.Ahead < 1) {
			return bad(field+".refresh.ahead", "must be in (0, 1) for mode threshold, got %g", r.Ahead)
		}
		if r.Beta != 0 {
			return bad(field+".refresh.beta", "is for mode xfetch, not threshold")
		}
	case RefreshXFetch:
		if r.Beta < 0 || r.Beta > 100 || math.IsNaN(r.Beta) {
			return bad(field+".refresh.beta", "must be in (0, 100] (1 is the usual choice), got %g", r.Beta)
		}
		if r.Ahead != 0 {
			return bad(field+".refresh.ahead", "is for mode threshold, not xfetch")
		}
	default:
		return bad(field+".refresh.mode", "%q is not a refresh mode (use off, threshold or xfetch)", r.Mode)
	}
	if ahead, beta := n.RefreshPolicy(); (ahead > 0 || beta > 0) && n.Read != ModeThrough {
		f := field + ".refresh"
		if n.RefreshAhead > 0 {
			f = field + ".refresh_ahead"
		}
		return bad(f, "needs read: through (only loaded entries can be reloaded)")
	}
	return nil
}
