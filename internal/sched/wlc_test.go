package sched

import (
	"testing"

	"golvs/internal/service"
)

func TestWeightedLeastConnMatchesKernel(t *testing.T) {
	for seed := uint64(0); seed < loadDiffSeeds; seed++ {
		runDifferential(t, seed, loadDiffConfig(seed), NewWeightedLeastConn(Options{}), wlcRef{})
	}
}

// TestWeightedLeastConnTiesGoToNewestDest: equal overhead/weight ratios go
// to the earliest dest in list order, the most recently added.
func TestWeightedLeastConnTiesGoToNewestDest(t *testing.T) {
	list, byAdd := loadTestList(2, 1, 2)
	s := NewWeightedLeastConn(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{}
	if got := s.Schedule(list, p); got != byAdd[2] {
		t.Fatalf("chose %s, want the newest %s", destName(got), destName(byAdd[2]))
	}
	// Overheads 2, 1, 2 over weights 2, 1, 2: all ratios 1.
	byAdd[0].Bind(false, true)
	byAdd[0].Bind(false, true)
	byAdd[1].Bind(false, true)
	byAdd[2].Bind(false, true)
	byAdd[2].Bind(false, true)
	if got := s.Schedule(list, p); got != byAdd[2] {
		t.Fatalf("chose %s, want %s", destName(got), destName(byAdd[2]))
	}
	byAdd[2].Bind(false, true)
	if got := s.Schedule(list, p); got != byAdd[1] {
		t.Fatalf("chose %s, want %s", destName(got), destName(byAdd[1]))
	}
}

// TestWeightedLeastConnProportions: with steady load, connections split in
// proportion to weight; weight 0 and OVERLOAD get nothing.
func TestWeightedLeastConnProportions(t *testing.T) {
	list, byAdd := loadTestList(1, 2, 3, 0, 5)
	loadSetThreshold(byAdd[4], 4)
	s := NewWeightedLeastConn(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{}
	for range 60 {
		s.Schedule(list, p).Bind(false, false)
	}
	// 4 on the capped dest, then 56 split about 1:2:3 (9.3, 18.7, 28),
	// the remainder by the order of ties (the newest first).
	want := []int32{9, 19, 28, 0, 4}
	for i, d := range byAdd {
		if got := d.ActiveConns(); got != want[i] {
			t.Errorf("dest %d (weight %d): %d connections, want %d", i, d.Weight(), got, want[i])
		}
	}
}
