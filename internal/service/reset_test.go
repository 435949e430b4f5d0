package service

import (
	"errors"
	"testing"
)

func TestHub_ResetEndsTheSubscriptionsThatWatchTheNamespace(t *testing.T) {
	var h Hub
	sub := func(ns ...string) *subscriber {
		s, err := h.subscribe(ns, false)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	all, users, orders := sub(), sub("users"), sub("orders")
	// A waiting reader is woken by the reset.
	_, wait, _, err := h.read(users, invalMaxBatch)
	if err != nil || wait == nil {
		t.Fatalf("read on an empty log = %v, %v; want a wait", wait, err)
	}
	if n := h.Reset("users"); n != 2 {
		t.Fatalf("Reset ended %d subscriptions, want 2 (all and users)", n)
	}
	select {
	case <-wait:
	default:
		t.Fatal("Reset did not wake a waiting reader")
	}
	for name, s := range map[string]*subscriber{"all": all, "users": users} {
		if _, _, _, err := h.read(s, invalMaxBatch); !errors.Is(err, errReset) {
			t.Errorf("the %s subscription read %v after a reset, want errReset", name, err)
		}
	}
	h.Publish("orders", "k")
	if msg, _, _, err := h.read(orders, invalMaxBatch); err != nil || len(msg) == 0 {
		t.Errorf("a subscription of another namespace: %d bytes, %v; want its change", len(msg), err)
	}
	h.Reset("users") // twice: harmless
	for _, s := range []*subscriber{all, users, orders} {
		h.unsubscribe(s)
	}
	if n := h.Reset("users"); n != 0 {
		t.Fatalf("Reset ended %d subscriptions after all left", n)
	}
}
