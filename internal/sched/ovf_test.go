package sched

import (
	"testing"

	"golvs/internal/service"
)

func TestWeightedOverflowMatchesKernel(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= rrFamilySeeds; seed++ {
		runDifferential(t, seed, rrFamilyConfig(seed), NewWeightedOverflow(Options{}), &ovfRef{})
		runOverloadStress(t, seed, NewWeightedOverflow(Options{}), &ovfRef{})
	}
}

// For UDP, connections are never active: the reference and the index must
// still agree (the candidacy then never flips on load).
func TestWeightedOverflowMatchesKernelUDP(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= rrFamilySeeds/2; seed++ {
		cfg := rrFamilyConfig(seed)
		cfg.udp = true
		runDifferential(t, seed, cfg, NewWeightedOverflow(Options{}), &ovfRef{})
	}
}

// scheduleActive schedules n connections bound as active (established TCP)
// and returns the names chosen.
func scheduleActive(s service.Scheduler, list, byName []*service.Dest, n int) []string {
	var got []string
	for range n {
		d := s.Schedule(list, &service.Packet{})
		if d != nil {
			d.Bind(false, false)
		}
		got = append(got, rrName(byName, d))
	}
	return got
}

// The highest weight takes connections until its active connections exceed
// its weight, then the next highest; when all are full, nothing.
func TestWeightedOverflow(t *testing.T) {
	list, byName := rrServers(2, 3, 0) // rs3(0) rs2(3) rs1(2)
	v := NewWeightedOverflow(Options{})
	_ = v.Init(list)
	got := scheduleActive(v, list, byName, 8)
	want := []string{"rs2", "rs2", "rs2", "rs2", "rs1", "rs1", "rs1", "<nil>"}
	if !equalNames(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
	// One of rs2's connections goes inactive: rs2 is a candidate again.
	byName[1].ToInactive()
	if got := scheduleActive(v, list, byName, 2); !equalNames(got, []string{"rs2", "<nil>"}) {
		t.Errorf("after ToInactive: got %v, want [rs2 <nil>]", got)
	}
	// Raising rs1's weight makes it the first choice.
	setWeight(v, list, byName[0], 10)
	if got := scheduleActive(v, list, byName, 1); !equalNames(got, []string{"rs1"}) {
		t.Errorf("rs1 raised to 10: got %v, want [rs1]", got)
	}
	// OVERLOADED is skipped even with room under the weight.
	byName[0].SetCounts(0, 0, true)
	if got := scheduleActive(v, list, byName, 1); !equalNames(got, []string{"<nil>"}) {
		t.Errorf("rs1 overloaded, rs2 full: got %v, want [<nil>]", got)
	}
}

// UDP connections are never active, so the highest weight takes them all.
func TestWeightedOverflowUDP(t *testing.T) {
	list, byName := rrServers(2, 3)
	v := NewWeightedOverflow(Options{})
	_ = v.Init(list)
	for i, n := range scheduleNames(v, list, byName, 20) { // bound inactive
		if n != "rs2" {
			t.Fatalf("connection %d went to %s, want rs2 (UDP never overflows)", i, n)
		}
	}
}
