// Package clock provides the injected monotonic time source that every
// time-driven part of GoLVS reads (connection expiry, schedulers with
// expiring state, rate estimation), so tests can step time by hand.
//
// Times are int64 nanoseconds on a monotonic scale with an arbitrary origin;
// only differences are meaningful. The kernel counterpart is jiffies.
package clock

import (
	"sync/atomic"
	"time"
)

// Clock is a monotonic time source.
type Clock interface {
	// Nanotime returns monotonic nanoseconds. It never goes backwards.
	Nanotime() int64
}

// Real is the system's monotonic clock. The zero value is ready to use.
type Real struct{}

var start = time.Now()

// Nanotime implements Clock.
func (Real) Nanotime() int64 { return int64(time.Since(start)) }

// Manual is a clock that moves only when told to. It is safe for concurrent
// use. The zero value starts at 0.
type Manual struct {
	now atomic.Int64
}

// NewManual returns a manual clock set to start.
func NewManual(start time.Duration) *Manual {
	m := &Manual{}
	m.now.Store(int64(start))
	return m
}

// Nanotime implements Clock.
func (m *Manual) Nanotime() int64 { return m.now.Load() }

// Advance moves the clock forward by d (d < 0 is ignored: monotonic).
func (m *Manual) Advance(d time.Duration) {
	if d > 0 {
		m.now.Add(int64(d))
	}
}

// Set moves the clock to t if t is later than now.
func (m *Manual) Set(t time.Duration) {
	for {
		cur := m.now.Load()
		if int64(t) <= cur || m.now.CompareAndSwap(cur, int64(t)) {
			return
		}
	}
}
