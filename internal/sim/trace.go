package sim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strconv"
	"strings"

	"github.com/ringcache/ringcache/internal/store"
)

// Errors of trace input; returned wrapped with details.
var (
	// ErrEmptyTrace reports a trace without requests.
	ErrEmptyTrace = errors.New("trace has no requests")
	// ErrBadTrace reports a trace line that is not "key" or "key size".
	ErrBadTrace = errors.New("bad trace line")
)

// maxLine bounds one trace line, key and size included.
const maxLine = 1 << 20

// Trace is a request sequence ready to replay, built by ReadTrace or Zipf.
// It is read-only once built and may be replayed by several goroutines at
// once.
type Trace struct {
	// Request i asks for key number keys[i] and, on a miss, inserts an
	// entry weighing weights[i] bytes as the store weighs it.
	keys    []uint32
	weights []uint32
	// distinct counts the keys; firstWeights sums the weight of each key's
	// first request.
	distinct     int
	firstWeights uint64
}

// Len returns the number of requests.
func (t *Trace) Len() int { return len(t.keys) }

// Distinct returns the number of distinct keys.
func (t *Trace) Distinct() int { return t.distinct }

// MeanEntryBytes returns the mean store weight of a distinct key's entry
// (taken at its first request), which converts a size in entries to bytes.
func (t *Trace) MeanEntryBytes() float64 {
	if t.distinct == 0 {
		return 0
	}
	return float64(t.firstWeights) / float64(t.distinct)
}

// Weight returns what an entry costs in the store (store.Charge).
// prefixBytes is what the node adds to every key (the namespace name and a
// separator byte).
func Weight(prefixBytes, keyBytes int, valueBytes uint64) (uint32, error) {
	w := uint64(prefixBytes) + uint64(keyBytes) + valueBytes + store.EntryOverhead
	if w > math.MaxUint32-8192 {
		return 0, fmt.Errorf("entry of %d bytes is too large for the store (max %d)", w, uint64(math.MaxUint32-8192))
	}
	return store.Charge(prefixBytes+keyBytes, int(valueBytes)), nil
}

// TraceOptions tunes ReadTrace.
type TraceOptions struct {
	// ValueSize is the value size in bytes of a new key on a line without
	// one.
	ValueSize uint64
	// PrefixBytes is added to every key's length (see Weight).
	PrefixBytes int
}

// ReadTrace reads a trace of one request per line: "key" or "key size",
// size being the value's bytes. A line without a size reuses the key's last
// one, or TraceOptions.ValueSize for a new key. Keys cannot contain spaces
// or tabs; blank lines are skipped.
func ReadTrace(r io.Reader, opts TraceOptions) (*Trace, error) {
	type keyState struct{ id, weight uint32 }
	t := &Trace{}
	seen := make(map[string]keyState)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) > 2 {
			return nil, fmt.Errorf("%w %d: want \"key\" or \"key size\", got %d fields", ErrBadTrace, line, len(fields))
		}
		key := fields[0]
		k, ok := seen[key]
		if !ok || len(fields) == 2 {
			value := opts.ValueSize
			if len(fields) == 2 {
				v, err := strconv.ParseUint(fields[1], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%w %d: size %q is not a number of bytes", ErrBadTrace, line, fields[1])
				}
				value = v
			}
			w, err := Weight(opts.PrefixBytes, len(key), value)
			if err != nil {
				return nil, fmt.Errorf("%w %d: %v", ErrBadTrace, line, err)
			}
			k.weight = w
		}
		if !ok {
			if len(seen) == math.MaxUint32 {
				return nil, fmt.Errorf("%w %d: more than %d distinct keys", ErrBadTrace, line, uint64(math.MaxUint32))
			}
			k.id = uint32(len(seen))
			t.distinct++
			t.firstWeights += uint64(k.weight)
		}
		seen[key] = k
		t.keys = append(t.keys, k.id)
		t.weights = append(t.weights, k.weight)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%w: a line is longer than %d bytes", ErrBadTrace, maxLine)
		}
		return nil, fmt.Errorf("reading trace: %w", err)
	}
	if t.Len() == 0 {
		return nil, ErrEmptyTrace
	}
	return t, nil
}

// ZipfConfig describes a generated trace whose key popularity follows a Zipf
// law: key k (0 the most popular) is asked with probability ∝ 1/(1+k)^S.
// Keys are named "key:<k>" as `ringcachectl bench` names them.
type ZipfConfig struct {
	// S is the exponent, > 1; larger means more skew.
	S float64
	// Keys is the size of the key space.
	Keys uint64
	// Requests is the trace length.
	Requests int
	// ValueSize is every value's size in bytes.
	ValueSize uint64
	// PrefixBytes is added to every key's length (see Weight).
	PrefixBytes int
	// Seed makes the trace repeatable.
	Seed int64
}

// Validate reports the first invalid field.
func (c ZipfConfig) Validate() error {
	switch {
	case !(c.S > 1) || math.IsInf(c.S, 0):
		return fmt.Errorf("zipf exponent must be greater than 1, got %g", c.S)
	case c.Keys == 0:
		return errors.New("zipf key space must have at least 1 key")
	case c.Keys > math.MaxUint32:
		return fmt.Errorf("zipf key space must have at most %d keys, got %d", uint64(math.MaxUint32), c.Keys)
	case c.Requests <= 0:
		return fmt.Errorf("zipf requests must be positive, got %d", c.Requests)
	case c.PrefixBytes < 0:
		return fmt.Errorf("prefix bytes must not be negative, got %d", c.PrefixBytes)
	}
	_, err := Weight(c.PrefixBytes, 0, c.ValueSize)
	return err
}

// Zipf generates the trace c describes, with math/rand's Zipf generator.
func Zipf(c ZipfConfig) (*Trace, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	z := rand.NewZipf(rand.New(rand.NewSource(c.Seed)), c.S, 1, c.Keys-1)
	t := &Trace{keys: make([]uint32, c.Requests), weights: make([]uint32, c.Requests)}
	seen := make([]bool, c.Keys)
	for i := range t.keys {
		k := z.Uint64()
		w, err := Weight(c.PrefixBytes, len("key:")+digits(k), c.ValueSize)
		if err != nil {
			return nil, err
		}
		t.keys[i], t.weights[i] = uint32(k), w
		if !seen[k] {
			seen[k] = true
			t.distinct++
			t.firstWeights += uint64(w)
		}
	}
	return t, nil
}

// digits returns the length of k in decimal.
func digits(k uint64) int {
	n := 1
	for ; k >= 10; k /= 10 {
		n++
	}
	return n
}
