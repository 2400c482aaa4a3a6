package sched

import (
	"fmt"
	"net/netip"
	"testing"

	"golvs/internal/service"
)

// The benchmarks of lc, wlc, sed, nq, lblc and lblcr: each iteration
// schedules a new connection, binds it to the chosen dest, and unbinds the
// oldest of a window of live connections, so the index sees two load
// changes per connection as on a real director. BenchmarkScheduleKernelScan
// runs the same loop over the kernel's linear scan (the references) for
// comparison.

// benchLoadSizes are the numbers of real servers per service.
var benchLoadSizes = []int{10, 100, 1000, 10000}

// benchConnsPerDest is the window of live connections per dest: a few
// each, so that loads and ties keep changing.
const benchConnsPerDest = 4

// benchLocalityAddrs is the number of destination addresses the lblc and
// lblcr benchmarks cycle through: mostly hits, as for a cache cluster.
const benchLocalityAddrs = 1024

// benchDests returns n dests with weights 1..10 in kernel order.
func benchDests(n int) []*service.Dest {
	list := make([]*service.Dest, n)
	for i := range list {
		list[n-1-i] = newTestDest(i, int32(1+i%10))
	}
	return list
}

func benchSchedule(b *testing.B, s service.Scheduler, n int) {
	list := benchDests(n)
	if err := s.Init(list); err != nil {
		b.Fatal(err)
	}
	pkts := make([]service.Packet, benchLocalityAddrs)
	for i := range pkts {
		pkts[i].Dst = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		pkts[i].Proto = service.ProtoTCP
	}
	type conn struct {
		d      *service.Dest
		active bool
	}
	window := make([]conn, n*benchConnsPerDest)
	next := 0
	step := func(i int) {
		d := s.Schedule(list, &pkts[i%benchLocalityAddrs])
		if d == nil {
			b.Fatal("no destination")
		}
		active := i%2 == 0 // half active, half inactive (or in TIME_WAIT)
		d.Bind(false, !active)
		if old := window[next]; old.d != nil {
			old.d.Unbind(false, !old.active)
		}
		window[next] = conn{d, active}
		next = (next + 1) % len(window)
	}
	for i := range window {
		step(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		step(i)
	}
}

func BenchmarkSchedule(b *testing.B) {
	scheds := []struct {
		name string
		mk   func() service.Scheduler
	}{
		{"lc", func() service.Scheduler { return NewLeastConn(Options{}) }},
		{"wlc", func() service.Scheduler { return NewWeightedLeastConn(Options{}) }},
		{"sed", func() service.Scheduler { return NewShortestExpectedDelay(Options{}) }},
		{"nq", func() service.Scheduler { return NewNeverQueue(Options{}) }},
		{"lblc", func() service.Scheduler { return NewLBLC(Options{}) }},
		{"lblcr", func() service.Scheduler { return NewLBLCR(Options{}) }},
	}
	for _, sc := range scheds {
		for _, n := range benchLoadSizes {
			b.Run(fmt.Sprintf("%s/n=%d", sc.name, n), func(b *testing.B) {
				benchSchedule(b, sc.mk(), n)
			})
		}
	}
}

// BenchmarkScheduleKernelScan is the kernel's O(n) loop (the references)
// under the same load, to compare with BenchmarkSchedule.
func BenchmarkScheduleKernelScan(b *testing.B) {
	for _, sc := range loadScheds {
		for _, n := range benchLoadSizes {
			b.Run(fmt.Sprintf("%s/n=%d", sc.name, n), func(b *testing.B) {
				benchSchedule(b, sc.ref, n)
			})
		}
	}
}
