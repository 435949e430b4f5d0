package service

import (
	"errors"
	"fmt"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/ringcache/ringcache/internal/reason"
	pb "github.com/ringcache/ringcache/proto/ringcache/v1"
)

// keys decodes a message read from the hub.
func keys(t *testing.T, msg invalidations) []string {
	t.Helper()
	var resp pb.WatchInvalidationsResponse
	if err := proto.Unmarshal(msg, &resp); err != nil {
		t.Fatalf("a hub message does not decode: %v", err)
	}
	var out []string
	for _, k := range resp.Keys {
		out = append(out, k.Namespace+"/"+k.Key)
	}
	return out
}

func TestHub_SubscriberReadsItsNamespacesInOrder(t *testing.T) {
	var h Hub
	h.Publish("users", "before") // nobody subscribed: not kept
	if st := h.Stats(); st.BacklogBytes != 0 {
		t.Fatalf("a change with no subscriber was kept: %+v", st)
	}
	all, err := h.subscribe(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	some, err := h.subscribe([]string{"orders"}, false)
	if err != nil {
		t.Fatal(err)
	}
	msg, wait, _, err := h.read(all, invalMaxBatch)
	if err != nil || msg != nil || wait == nil {
		t.Fatalf("read with nothing new = %q, %v, %v; want a channel to wait on", msg, wait, err)
	}
	h.Publish("users", "u1")
	h.Publish("orders", "o1")
	h.Publish("users", "u2")
	select {
	case <-wait:
	default:
		t.Fatal("the wait channel was not closed by a change")
	}
	msg, _, more, err := h.read(all, 2)
	if got := keys(t, msg); fmt.Sprint(got) != "[users/u1 orders/o1]" || !more || err != nil {
		t.Fatalf("first read = %v (more %v, %v), want [users/u1 orders/o1] with more", got, more, err)
	}
	msg, _, more, err = h.read(all, 2)
	if got := keys(t, msg); fmt.Sprint(got) != "[users/u2]" || more || err != nil {
		t.Fatalf("second read = %v (more %v, %v), want [users/u2]", got, more, err)
	}
	msg, _, _, err = h.read(some, invalMaxBatch)
	if got := keys(t, msg); fmt.Sprint(got) != "[orders/o1]" || err != nil {
		t.Fatalf("namespace-filtered read = %v, %v; want [orders/o1]", got, err)
	}
	h.unsubscribe(all)
	h.unsubscribe(some)
	if st := h.Stats(); st.Subscribers != 0 || st.BacklogBytes != 0 {
		t.Fatalf("after the last subscriber left: %+v, want no subscribers and an empty log", st)
	}
}

func TestHub_SubscribersOverTheBoundRefusedPeersAdmitted(t *testing.T) {
	h := Hub{MaxSubscribers: 2}
	for range 2 {
		if _, err := h.subscribe(nil, false); err != nil {
			t.Fatal(err)
		}
	}
	_, err := h.subscribe(nil, false)
	if status.Code(err) != codes.ResourceExhausted || reason.RetryDelay(err) <= 0 {
		t.Fatalf("third subscriber: %v; want RESOURCE_EXHAUSTED with a retry delay", err)
	}
	if _, err := h.subscribe(nil, true); err != nil {
		t.Fatalf("a peer over the bound: %v; peers are always admitted", err)
	}
	if st := h.Stats(); st.Subscribers != 3 || st.Refused != 1 {
		t.Fatalf("stats %+v, want 3 subscribers and 1 refused", st)
	}
}

// A subscriber that does not read is dropped once the log has moved past
// it, and the log stays within its bound meanwhile however many changes
// come.
func TestHub_SlowSubscriberDroppedLogBounded(t *testing.T) {
	const bound = 4 << 10
	h := Hub{MaxBacklogBytes: bound}
	slow, _ := h.subscribe(nil, false)
	fast, _ := h.subscribe(nil, false)
	for i := range 10000 {
		h.Publish("users", fmt.Sprintf("key-%d", i))
		if b := h.Stats().BacklogBytes; b > bound {
			t.Fatalf("log holds %d bytes, over its bound of %d", b, bound)
		}
		if i%10 == 0 {
			for more := true; more; {
				var err error
				if _, _, more, err = h.read(fast, invalMaxBatch); err != nil {
					t.Fatalf("a subscriber that keeps up was dropped: %v", err)
				}
			}
		}
	}
	_, _, _, err := h.read(slow, invalMaxBatch)
	if !errors.Is(err, errFellBehind) || status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("slow subscriber's read: %v, want errFellBehind (RESOURCE_EXHAUSTED)", err)
	}
	if st := h.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v, want 1 dropped", st)
	}
}

// Publish costs the same with 10,000 subscribers as with one: it allocates
// the change once and touches no subscriber.
func TestHub_PublishCostDoesNotGrowWithSubscribers(t *testing.T) {
	allocs := func(subscribers int) float64 {
		var h Hub
		for range subscribers {
			h.subscribe(nil, false)
		}
		h.Publish("users", "warm-up")
		return testing.AllocsPerRun(1000, func() { h.Publish("users", "key") })
	}
	one, many := allocs(1), allocs(10000)
	if many > one {
		t.Fatalf("Publish allocates %.1f times with 10,000 subscribers, %.1f with one", many, one)
	}
}

func BenchmarkHub_Publish(b *testing.B) {
	for _, subs := range []int{0, 1, 1000, 10000} {
		b.Run(fmt.Sprintf("subscribers=%d", subs), func(b *testing.B) {
			h := Hub{MaxSubscribers: -1}
			for range subs {
				h.subscribe(nil, false)
			}
			for i := 0; b.Loop(); i++ {
				h.Publish("users", "key")
			}
		})
	}
}

// FuzzEncodeChange checks that a change encoded once for every subscriber
// decodes, alone or concatenated, to the namespace and key it was made of.
func FuzzEncodeChange(f *testing.F) {
	f.Add("users", "u1", "orders", "")
	f.Add("", "", "ns", string(make([]byte, 300)))
	f.Fuzz(func(t *testing.T, ns1, key1, ns2, key2 string) {
		msg := append(encodeChange(ns1, key1), encodeChange(ns2, key2)...)
		var resp pb.WatchInvalidationsResponse
		if err := (proto.UnmarshalOptions{}).Unmarshal(msg, &resp); err != nil {
			if !utf8Valid(ns1, key1, ns2, key2) {
				return // proto3 strings must be UTF-8; the engine admits no other keys
			}
			t.Fatalf("does not decode: %v", err)
		}
		if len(resp.Keys) != 2 || resp.Keys[0].Namespace != ns1 || resp.Keys[0].Key != key1 ||
			resp.Keys[1].Namespace != ns2 || resp.Keys[1].Key != key2 {
			t.Fatalf("decoded %v, want [%q/%q %q/%q]", resp.Keys, ns1, key1, ns2, key2)
		}
	})
}

func utf8Valid(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// A subscriber to a quiet namespace reads past a long stretch of other
// namespaces' changes a bounded stretch at a time, and finds its own.
func TestHub_QuietNamespaceReadInBoundedStretches(t *testing.T) {
	var h Hub
	quiet, _ := h.subscribe([]string{"quiet"}, false)
	for i := range 3 * readScan {
		h.Publish("busy", fmt.Sprint(i))
	}
	h.Publish("quiet", "q")
	var got []string
	reads := 0
	for more := true; more; reads++ {
		msg, _, m, err := h.read(quiet, invalMaxBatch)
		if err != nil {
			t.Fatal(err)
		}
		more = m
		if len(msg) > 0 {
			got = append(got, keys(t, msg)...)
		}
	}
	if fmt.Sprint(got) != "[quiet/q]" || reads < 3 {
		t.Fatalf("read %v in %d reads, want [quiet/q] in at least 3", got, reads)
	}
}
