package control

import (
	"testing"

	"golvs/internal/service"
)

// Changed is closed by every publication, and only then: a follower that
// takes the channel before the snapshot misses nothing.
func TestChangedClosesOnEveryPublish(t *testing.T) {
	c, _ := newControl(t)
	closed := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
	k := web
	steps := []struct {
		name string
		op   func() error
	}{
		{"add service", func() error { return c.AddService(k, service.Config{Sched: "rr"}) }},
		{"add dest", func() error { return c.AddDest(k, rs1, 80, masq1) }},
		{"edit dest", func() error { return c.EditDest(k, rs1, 80, service.DestConfig{Fwd: service.Route, Weight: 2}) }},
		{"edit service", func() error { return c.EditService(k, service.Config{Sched: "wrr"}) }},
		{"delete dest", func() error { return c.DeleteDest(k, rs1, 80) }},
		{"delete service", func() error { return c.DeleteService(k) }},
		{"flush", func() error { c.Flush(); return nil }},
	}
	for _, st := range steps {
		ch := c.Changed()
		before := c.Snapshot()
		if closed(ch) {
			t.Fatalf("%s: closed before the change", st.name)
		}
		mustOK(t, st.op())
		if !closed(ch) {
			t.Errorf("%s: not closed after the change", st.name)
		}
		if c.Snapshot() == before {
			t.Errorf("%s: same snapshot", st.name)
		}
		if closed(c.Changed()) {
			t.Errorf("%s: the next channel is already closed", st.name)
		}
	}
	// A failed operation publishes nothing.
	ch := c.Changed()
	if err := c.DeleteService(k); err == nil {
		t.Fatal("deleting a missing service succeeded")
	}
	if closed(ch) {
		t.Error("closed by a failed operation")
	}
}
