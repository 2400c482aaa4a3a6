package sched

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"golvs/internal/service"
)

// rrFamily are the schedulers of rr.go, wrr.go, fo.go, ovf.go and twos.go,
// for the allocation test and the benchmarks.
var rrFamily = []struct {
	name string
	mk   func() service.Scheduler
}{
	{"rr", func() service.Scheduler { return NewRoundRobin(Options{}) }},
	{"wrr", func() service.Scheduler { return NewWeightedRoundRobin(Options{}) }},
	{"fo", func() service.Scheduler { return NewWeightedFailover(Options{}) }},
	{"ovf", func() service.Scheduler { return NewWeightedOverflow(Options{}) }},
	{"twos", func() service.Scheduler { return NewTwoChoices(Options{Rand: pcgRand(1)}) }},
}

// rrFamilyList returns n destinations with weights 1..10 from a fixed seed
// and, if uthreshold > 0, that upper threshold on every one.
func rrFamilyList(n int, uthreshold uint32) []*service.Dest {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	list := make([]*service.Dest, n)
	for i := range list {
		d := newTestDest(i+1, 1+r.Int32N(10))
		if uthreshold > 0 {
			c := d.Config()
			c.UThreshold = uthreshold
			d.SetConfig(c)
		}
		list[n-1-i] = d // kernel order: the last added first
	}
	return list
}

// rrFamilyConn is an outstanding connection of the steady-state loops.
type rrFamilyConn struct {
	d      *service.Dest
	active bool
}

// rrFamilyStep schedules one connection, binds it (every other one active,
// as established TCP) in slot i of ring, and unbinds the connection that
// held the slot before, so the counts, the OVERLOAD flags and the indexes
// keep moving while the number of connections stays len(ring).
func rrFamilyStep(s service.Scheduler, list []*service.Dest, p *service.Packet, ring []rrFamilyConn, i int) {
	k := i % len(ring)
	if old := ring[k]; old.d != nil {
		old.d.Unbind(false, !old.active)
	}
	ring[k] = rrFamilyConn{}
	if d := s.Schedule(list, p); d != nil {
		active := i&1 == 0
		d.Bind(false, !active)
		ring[k] = rrFamilyConn{d, active}
	}
}

// Schedule, Bind and Unbind allocate nothing, including when thresholds
// flip OVERLOAD and the indexes of fo, ovf and twos are updated.
func TestRRFamilyScheduleDoesNotAllocate(t *testing.T) {
	for _, sc := range rrFamily {
		t.Run(sc.name, func(t *testing.T) {
			s := sc.mk()
			list := rrFamilyList(100, 3) // threshold 3: OVERLOAD flips often
			_ = s.Init(list)
			p := &service.Packet{}
			ring := make([]rrFamilyConn, 150)
			i := 0
			for ; i < 1000; i++ { // warm up to the steady state
				rrFamilyStep(s, list, p, ring, i)
			}
			if a := testing.AllocsPerRun(2000, func() {
				rrFamilyStep(s, list, p, ring, i)
				i++
			}); a != 0 {
				t.Errorf("%s: %v allocations per connection, want 0", sc.name, a)
			}
			if a := testing.AllocsPerRun(2000, func() { s.Schedule(list, p) }); a != 0 {
				t.Errorf("%s: %v allocations per Schedule, want 0", sc.name, a)
			}
		})
	}
}

// benchRRFamily measures one new connection in the steady state: Schedule,
// Bind of the chosen destination, Unbind of an older connection, with as many
// connections outstanding as there are destinations and no thresholds.
func benchRRFamily(b *testing.B, mk func() service.Scheduler) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			s := mk()
			list := rrFamilyList(n, 0)
			_ = s.Init(list)
			p := &service.Packet{}
			ring := make([]rrFamilyConn, n)
			i := 0
			for ; i < 2*n; i++ {
				rrFamilyStep(s, list, p, ring, i)
			}
			b.ReportAllocs()
			for b.Loop() {
				rrFamilyStep(s, list, p, ring, i)
				i++
			}
		})
	}
}

// The benchmarks are named per scheduler (BenchmarkScheduleRR/n=10, ...)
// rather than one BenchmarkSchedule/<name>/n=..., so that they cannot clash
// with the other schedulers' benchmark files in this package.

func BenchmarkScheduleRR(b *testing.B) { benchRRFamily(b, rrFamily[0].mk) }

func BenchmarkScheduleWRR(b *testing.B) { benchRRFamily(b, rrFamily[1].mk) }

func BenchmarkScheduleFO(b *testing.B) { benchRRFamily(b, rrFamily[2].mk) }

func BenchmarkScheduleOVF(b *testing.B) { benchRRFamily(b, rrFamily[3].mk) }

func BenchmarkScheduleTwos(b *testing.B) { benchRRFamily(b, rrFamily[4].mk) }
