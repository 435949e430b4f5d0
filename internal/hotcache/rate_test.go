package hotcache

import (
	"fmt"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

func TestRateSketch_KeyAtTheRateIsHot(t *testing.T) {
	r := newRateSketch(100, time.Second) // 100 per window
	h := xxhash.Sum64String("hot")
	for i := 1; i < 100; i++ {
		if r.add(h, 0) {
			t.Fatalf("hot after %d requests, want 100", i)
		}
	}
	if !r.add(h, 0) {
		t.Fatal("not hot after 100 requests in one window")
	}
}

func TestRateSketch_ManyColdKeysStayCold(t *testing.T) {
	r := newRateSketch(100, time.Second)
	// 200,000 distinct keys in one window, 24 per counter on average:
	// none may pass for a key at 100.
	for i := range 200_000 {
		if r.add(xxhash.Sum64String(fmt.Sprint("cold-", i)), 0) {
			t.Fatalf("cold key %d looks hot", i)
		}
	}
}

func TestRateSketch_SlidingWindow(t *testing.T) {
	sec := int64(time.Second)
	r := newRateSketch(100, time.Second)
	h := xxhash.Sum64String("k")
	for range 100 {
		r.add(h, 0)
	}
	r.rotate(sec)
	// At the start of the next window the previous one counts whole.
	if !r.add(h, sec) {
		t.Fatal("a key hot in the previous window is cold at once")
	}
	// Late in it, it counts for little: 1 + 100·0.1 < 100.
	r2 := newRateSketch(100, time.Second)
	for range 100 {
		r2.add(h, 0)
	}
	r2.rotate(sec)
	if r2.add(h, sec+9*sec/10) {
		t.Fatal("a key idle for most of a window is still hot")
	}
	// Two rotations without requests forget the key.
	r2.rotate(2 * sec)
	r2.rotate(3 * sec)
	if r2.add(h, 3*sec) {
		t.Fatal("a key idle for two windows is still hot")
	}
}

func TestRateSketch_CountsAreCapped(t *testing.T) {
	r := newRateSketch(100, time.Second)
	h := xxhash.Sum64String("k")
	for range 10_000 {
		r.add(h, 0)
	}
	if c := r.tables[r.cur.Load()].count(slots(h)); c != r.cap {
		t.Fatalf("count %d, want the cap %d", c, r.cap)
	}
}

func BenchmarkRateSketch_Add(b *testing.B) {
	r := newRateSketch(100, time.Second)
	hashes := make([]uint64, 4096)
	for i := range hashes {
		hashes[i] = xxhash.Sum64String(fmt.Sprint("key-", i))
	}
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.add(hashes[i%len(hashes)], 0)
			i++
		}
	})
}

func BenchmarkRateSketch_AddOneHotKey(b *testing.B) {
	r := newRateSketch(100, time.Second)
	h := xxhash.Sum64String("hot")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.add(h, 0)
		}
	})
}
