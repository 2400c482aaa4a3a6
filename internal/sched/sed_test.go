package sched

import (
	"testing"

	"golvs/internal/service"
)

func TestShortestExpectedDelayMatchesKernel(t *testing.T) {
	for seed := uint64(0); seed < loadDiffSeeds; seed++ {
		runDifferential(t, seed, loadDiffConfig(seed), NewShortestExpectedDelay(Options{}), sedRef{})
	}
}

// TestShortestExpectedDelayUDP: UDP connections are never active, so sed
// keeps choosing the highest weight (the newest of equals), whatever the
// number of inactive connections.
func TestShortestExpectedDelayUDP(t *testing.T) {
	list, byAdd := loadTestList(1, 5, 3, 5, 0)
	s := NewShortestExpectedDelay(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{Proto: service.ProtoUDP}
	for range 100 {
		d := s.Schedule(list, p)
		if d != byAdd[3] {
			t.Fatalf("chose %s (weight %d), want %s", destName(d), d.Weight(), destName(byAdd[3]))
		}
		d.Bind(false, true) // UDP: inactive
	}
}

// TestShortestExpectedDelayCountsActiveOnly: (active+1)/weight, inactive
// connections ignored; weight 0 and OVERLOAD skipped.
func TestShortestExpectedDelayCountsActiveOnly(t *testing.T) {
	list, byAdd := loadTestList(2, 1, 0)
	s := NewShortestExpectedDelay(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{}
	for range 1000 {
		byAdd[0].Bind(false, true)
	}
	// (0+1)/2 < (0+1)/1: dest 0 despite its 1000 inactive connections.
	if got := s.Schedule(list, p); got != byAdd[0] {
		t.Fatalf("chose %s, want %s", destName(got), destName(byAdd[0]))
	}
	byAdd[0].Bind(false, false)
	// (1+1)/2 == (0+1)/1: the newer, dest 1.
	if got := s.Schedule(list, p); got != byAdd[1] {
		t.Fatalf("chose %s, want %s", destName(got), destName(byAdd[1]))
	}
	byAdd[1].SetCounts(0, 0, true) // OVERLOAD
	if got := s.Schedule(list, p); got != byAdd[0] {
		t.Fatalf("chose %s, want %s", destName(got), destName(byAdd[0]))
	}
}
