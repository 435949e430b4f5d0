package service

import "testing"

func TestHub_ResetEndsTheSubscriptionsThatWatchTheNamespace(t *testing.T) {
	var h Hub
	all, users, orders := h.subscribe(nil), h.subscribe([]string{"users"}), h.subscribe([]string{"orders"})
	if n := h.Reset("users"); n != 2 {
		t.Fatalf("Reset ended %d subscriptions, want 2 (all and users)", n)
	}
	for name, s := range map[string]*invalSub{"all": all, "users": users} {
		select {
		case <-s.reset:
		default:
			t.Errorf("the %s subscription was not reset", name)
		}
	}
	select {
	case <-orders.reset:
		t.Error("a subscription of another namespace was reset")
	default:
	}
	h.Reset("users") // twice: no panic on a closed channel
}
