package vrrpd

import (
	"context"
	"runtime"
	"testing"
	"time"

	"golvs/internal/keepalived"
)

// TestNewClose: a daemon on the host (the link watcher's rtnetlink
// subscription, no instance) starts, takes an empty configuration and
// stops, three times, leaving no goroutine behind.
func TestNewClose(t *testing.T) {
	before := runtime.NumGoroutine()
	for range 3 {
		d, err := New(Options{Log: testLogger(t, "host")})
		if err != nil {
			t.Skipf("skipped: no rtnetlink here: %v", err)
		}
		if err := d.Apply(&keepalived.Config{}); err != nil {
			t.Fatal(err)
		}
		if st := d.Status(); len(st) != 0 {
			t.Errorf("status %v, want none", st)
		}
		if err := d.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(context.Background()); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	// The netlink library's reader goroutines end when their socket is
	// closed: give them a moment.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
