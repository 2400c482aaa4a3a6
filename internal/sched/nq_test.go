package sched

import (
	"testing"

	"golvs/internal/service"
)

func TestNeverQueueMatchesKernel(t *testing.T) {
	for seed := uint64(0); seed < loadDiffSeeds; seed++ {
		runDifferential(t, seed, loadDiffConfig(seed), NewNeverQueue(Options{}), nqRef{})
	}
}

// TestNeverQueueIdleFirst: an idle server gets the connection even when a
// faster busy one has a shorter expected delay; with none idle, sed.
func TestNeverQueueIdleFirst(t *testing.T) {
	list, byAdd := loadTestList(1, 10, 0)
	s := NewNeverQueue(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{}
	byAdd[1].Bind(false, false)
	// sed would pick dest 1: (1+1)/10 < (0+1)/1. nq picks idle dest 0.
	if got := s.Schedule(list, p); got != byAdd[0] {
		t.Fatalf("chose %s, want the idle %s", destName(got), destName(byAdd[0]))
	}
	byAdd[0].Bind(false, false)
	// Nobody idle (dest 2 is quiescent): (2)/1 vs (2)/10.
	if got := s.Schedule(list, p); got != byAdd[1] {
		t.Fatalf("chose %s, want %s", destName(got), destName(byAdd[1]))
	}
	// The first idle in list order wins: add two idle dests.
	d3, d4 := newTestDest(3, 1), newTestDest(4, 1)
	list = prepend(list, d3)
	s.AddDest(list, d3)
	list = prepend(list, d4)
	s.AddDest(list, d4)
	if got := s.Schedule(list, p); got != d4 {
		t.Fatalf("chose %s, want %s", destName(got), destName(d4))
	}
	d4.SetCounts(0, 0, true) // OVERLOAD
	if got := s.Schedule(list, p); got != d3 {
		t.Fatalf("chose %s, want %s", destName(got), destName(d3))
	}
}

// TestNeverQueueUDP: UDP connections are never active, so nq always picks
// the first eligible dest in list order.
func TestNeverQueueUDP(t *testing.T) {
	list, byAdd := loadTestList(3, 1, 0)
	s := NewNeverQueue(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{Proto: service.ProtoUDP}
	for range 20 {
		d := s.Schedule(list, p)
		if d != byAdd[1] {
			t.Fatalf("chose %s, want %s", destName(d), destName(byAdd[1]))
		}
		d.Bind(false, true)
	}
}
