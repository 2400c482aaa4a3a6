package sched

import (
	"fmt"
	"net/netip"
	"testing"

	"golvs/internal/service"
)

// The benchmarks and allocation tests of dh, sh and mh. The top-level name
// is BenchmarkScheduleHash because BenchmarkSchedule belongs to the lc
// family's file; `go test -bench Schedule` runs both.

// hashBenchSizes are the numbers of real servers per service.
var hashBenchSizes = []int{10, 100, 1000, 10000}

// hashBenchClients is the number of distinct client packets a benchmark
// cycles through: enough to touch most of a 4093-slot table.
const hashBenchClients = 4096

// hashBenchDests returns n dests with weights 1..10; with quiesce every
// fourth has weight 0, so that fallback walks happen.
func hashBenchDests(n int, quiesce bool) []*service.Dest {
	list := make([]*service.Dest, n)
	for i := range list {
		w := int32(1 + i%10)
		if quiesce && i%4 == 0 {
			w = 0
		}
		list[i] = newTestDest(i, w)
		if quiesce && w == 0 {
			// Quiesced after being added: mh keeps its last weight.
			hashSetWeight(list[i], 1)
			hashSetWeight(list[i], 0)
		}
	}
	return list
}

func hashBenchPackets() []service.Packet {
	ps := make([]service.Packet, hashBenchClients)
	for i := range ps {
		ps[i] = service.Packet{
			Src:     netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}),
			Dst:     netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}),
			SrcPort: uint16(1024 + i),
			DstPort: 80,
			Proto:   service.ProtoTCP,
		}
	}
	return ps
}

// hashBenchScheds are the benchmarked configurations.
var hashBenchScheds = []struct {
	name    string
	quiesce bool
	mk      func() service.Scheduler
}{
	{"dh", false, func() service.Scheduler { return NewDestHash(Options{}) }},
	{"sh", false, func() service.Scheduler { return NewSourceHash(Options{}) }},
	{"sh-port", false, func() service.Scheduler { return NewSourceHash(Options{Flags: service.FlagSHPort}) }},
	{"sh-fallback", true, func() service.Scheduler { return NewSourceHash(Options{Flags: service.FlagSHFallback}) }},
	{"mh", false, func() service.Scheduler { return NewMaglev(Options{}) }},
	{"mh-port", false, func() service.Scheduler { return NewMaglev(Options{Flags: service.FlagMHPort}) }},
	{"mh-fallback", true, func() service.Scheduler { return NewMaglev(Options{Flags: service.FlagMHFallback}) }},
}

func BenchmarkScheduleHash(b *testing.B) {
	ps := hashBenchPackets()
	for _, sc := range hashBenchScheds {
		for _, n := range hashBenchSizes {
			b.Run(fmt.Sprintf("%s/n=%d", sc.name, n), func(b *testing.B) {
				list := hashBenchDests(n, sc.quiesce)
				s := sc.mk()
				if err := s.Init(list); err != nil {
					b.Skipf("Init: %v (the kernel refuses it too)", err)
				}
				b.ReportAllocs()
				var none int
				for i := 0; b.Loop(); i++ {
					if s.Schedule(list, &ps[i%hashBenchClients]) == nil {
						none++
					}
				}
				b.ReportMetric(float64(none)/float64(b.N), "none/op")
			})
		}
	}
}

// BenchmarkMaglevBuild measures a table build (every add, delete or edit of
// a destination of an mh service).
func BenchmarkMaglevBuild(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			list := hashBenchDests(n, false)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := mhBuild(list); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestHashSchedulersDoNotAllocate(t *testing.T) {
	ps := hashBenchPackets()
	for _, sc := range hashBenchScheds {
		list := hashBenchDests(100, sc.quiesce)
		s := sc.mk()
		if err := s.Init(list); err != nil {
			t.Fatal(err)
		}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			s.Schedule(list, &ps[i%hashBenchClients])
			i++
		})
		if allocs != 0 {
			t.Errorf("%s: Schedule allocates %v times per call", sc.name, allocs)
		}
	}
	// The worst case: mh-fallback over a table of unavailable dests
	// rehashes 4093 times and finds none.
	list := hashBenchDests(4, false)
	m := NewMaglev(Options{Flags: service.FlagMHFallback})
	m.Init(list)
	for _, d := range list {
		hashSetWeight(d, 0)
	}
	m.UpdDest(list, list[0])
	if allocs := testing.AllocsPerRun(10, func() { m.Schedule(list, &ps[0]) }); allocs != 0 {
		t.Errorf("mh-fallback, all unavailable: %v allocations", allocs)
	}
}
