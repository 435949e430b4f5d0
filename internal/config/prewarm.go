package config

import "fmt"

// Prewarm configures the hot-key list a node keeps in its data directory
// and the warm of it after a restart (ringcached --prewarm-budget,
// --prewarm-rate, --hot-keys-interval, --hot-keys-max, which win over these
// keys when given). Unset fields take the node's defaults.
type Prewarm struct {
	// Budget bounds how long readiness waits for the warm after the node
	// has joined; 0 turns the warm off (the list is still kept).
	Budget *Duration `yaml:"budget"`
	// Rate bounds the keys warmed per second.
	Rate float64 `yaml:"rate"`
	// Interval is how often the list is written (and at every stop).
	Interval Duration `yaml:"interval"`
	// MaxKeys bounds the list.
	MaxKeys int `yaml:"max_keys"`
}

func (f *File) validatePrewarm() error {
	p := f.Prewarm
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...))
	}
	switch {
	case p.Budget != nil && *p.Budget < 0:
		return bad("prewarm.budget", "must not be negative, got %v", p.Budget.Std())
	case p.Rate < 0 || p.Rate != p.Rate:
		return bad("prewarm.rate", "must be a positive number of keys per second, got %v", p.Rate)
	case p.Interval < 0:
		return bad("prewarm.interval", "must not be negative, got %v", p.Interval.Std())
	case p.MaxKeys < 0:
		return bad("prewarm.max_keys", "must not be negative, got %d", p.MaxKeys)
	}
	return nil
}
