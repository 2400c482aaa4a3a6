package sched

import (
	"testing"

	"golvs/internal/service"
)

func TestLeastConnMatchesKernel(t *testing.T) {
	for seed := uint64(0); seed < loadDiffSeeds; seed++ {
		runDifferential(t, seed, loadDiffConfig(seed), NewLeastConn(Options{}), lcRef{})
	}
}

// TestLeastConnTiesGoToNewestDest: dests are inserted at the head of the
// list and the scan keeps the first of equals, so the most recently added
// dest wins ties.
func TestLeastConnTiesGoToNewestDest(t *testing.T) {
	list, byAdd := loadTestList(1, 5, 1)
	s := NewLeastConn(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{}
	if got := s.Schedule(list, p); got != byAdd[2] {
		t.Fatalf("chose %s, want the newest %s", destName(got), destName(byAdd[2]))
	}
	d := newTestDest(3, 1)
	list = prepend(list, d)
	s.AddDest(list, d)
	if got := s.Schedule(list, p); got != d {
		t.Fatalf("chose %s, want the added %s", destName(got), destName(d))
	}
	// One connection on each: equal again, weights do not matter.
	for _, x := range list {
		x.Bind(false, true)
	}
	if got := s.Schedule(list, p); got != d {
		t.Fatalf("chose %s with equal loads, want %s", destName(got), destName(d))
	}
	// An active connection counts 256 inactive ones.
	d.Bind(false, false)
	for range 255 {
		byAdd[0].Bind(false, true)
	}
	if got := s.Schedule(list, p); got != byAdd[2] {
		t.Fatalf("chose %s, want %s (overheads 257, 257, 257 after the newest)", destName(got), destName(byAdd[2]))
	}
}

// TestLeastConnSkipsQuiescentAndOverloaded: weight 0 never gets new
// connections, nor does a dest over its upper threshold; none left is nil.
func TestLeastConnSkipsQuiescentAndOverloaded(t *testing.T) {
	list, byAdd := loadTestList(1, 0, 1)
	loadSetThreshold(byAdd[2], 1)
	s := NewLeastConn(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{}
	for range 50 {
		d := s.Schedule(list, p)
		if d == byAdd[1] {
			t.Fatal("weight 0 chosen")
		}
		d.Bind(false, true)
	}
	if n := byAdd[2].InactConns(); n != 1 {
		t.Fatalf("dest with threshold 1 got %d connections", n)
	}
	c := byAdd[0].Config()
	c.Weight = 0
	byAdd[0].SetConfig(c)
	s.UpdDest(list, byAdd[0])
	if d := s.Schedule(list, p); d != nil {
		t.Fatalf("chose %s with every dest quiescent or overloaded", destName(d))
	}
}
