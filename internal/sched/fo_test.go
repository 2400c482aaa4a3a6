package sched

import (
	"math/rand/v2"
	"sync"
	"testing"

	"golvs/internal/service"
)

func TestWeightedFailoverMatchesKernel(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= rrFamilySeeds; seed++ {
		runDifferential(t, seed, rrFamilyConfig(seed), NewWeightedFailover(Options{}), &foRef{})
		runOverloadStress(t, seed, NewWeightedFailover(Options{}), &foRef{})
	}
}

func setWeight(s service.Scheduler, list []*service.Dest, d *service.Dest, w int32) {
	c := d.Config()
	c.Weight = w
	d.SetConfig(c)
	s.UpdDest(list, d)
}

func TestWeightedFailover(t *testing.T) {
	list, byName := rrServers(5, 10, 10, 1) // rs4(1) rs3(10) rs2(10) rs1(5)
	f := NewWeightedFailover(Options{})
	_ = f.Init(list)
	// Highest weight, first in list order on ties: rs3 (added after rs2).
	for _, n := range scheduleNames(f, list, byName, 5) {
		if n != "rs3" {
			t.Fatalf("got %s, want rs3 (weight 10, first in list)", n)
		}
	}
	// OVERLOAD through the upper threshold: rs3 fails over to rs2.
	c := byName[2].Config()
	c.UThreshold = 6 // rs3 already has 5 connections; one more overloads it
	byName[2].SetConfig(c)
	f.UpdDest(list, byName[2])
	if got := scheduleNames(f, list, byName, 2); !equalNames(got, []string{"rs3", "rs2"}) {
		t.Errorf("at the threshold: got %v, want [rs3 rs2]", got)
	}
	// Unbinding below 3/4 of the threshold clears OVERLOAD: back to rs3.
	for range 2 {
		byName[2].Unbind(false, true)
	}
	if got := scheduleNames(f, list, byName, 1); !equalNames(got, []string{"rs3"}) {
		t.Errorf("below the lower mark: got %v, want [rs3]", got)
	}
	// Weight edits.
	setWeight(f, list, byName[0], 20)
	if got := scheduleNames(f, list, byName, 1); !equalNames(got, []string{"rs1"}) {
		t.Errorf("rs1 raised to 20: got %v, want [rs1]", got)
	}
	for _, d := range byName {
		setWeight(f, list, d, 0)
	}
	if d := f.Schedule(list, &service.Packet{}); d != nil {
		t.Errorf("all weights 0, chose %s", rrName(byName, d))
	}
	// Delete and add.
	setWeight(f, list, byName[1], 3)
	list = without(list, byName[1])
	f.DelDest(list, byName[1])
	if d := f.Schedule(list, &service.Packet{}); d != nil {
		t.Errorf("only weight 0 left, chose %s", rrName(byName, d))
	}
	list = prepend(list, byName[1])
	f.AddDest(list, byName[1])
	if got := scheduleNames(f, list, byName, 1); !equalNames(got, []string{"rs2"}) {
		t.Errorf("rs2 added back: got %v, want [rs2]", got)
	}
	// After Done, load changes no longer reach the index.
	f.Done()
	byName[1].SetCounts(0, 0, true)
	if s := byName[1].SchedSlot.Load(); s != -1 {
		t.Errorf("SchedSlot after Done = %d, want -1", s)
	}
}

// checkEligIndex fails unless every leaf, slot and the tree agree with the
// destinations' live state, as a rebuild from scratch would see it.
func checkEligIndex(t *testing.T, name string, x *eligIndex) {
	t.Helper()
	x.mu.Lock()
	defer x.mu.Unlock()
	var sum int64
	for i, d := range x.dests {
		v, ok := x.leaf(d)
		if x.vals[i] != v {
			t.Errorf("%s: leaf %d = %d, live state says %d", name, i, x.vals[i], v)
		}
		if s := d.SchedSlot.Load(); s != eligSlot(i, ok) {
			t.Errorf("%s: slot of %d = %#x, want %#x", name, i, s, eligSlot(i, ok))
		}
		if v > 0 {
			sum += v
		}
	}
	switch tr := x.tree.(type) {
	case *argmaxTree:
		var want *service.Dest
		hw := int64(argmaxNone)
		for i, d := range x.dests {
			if x.vals[i] != argmaxNone && (want == nil || x.vals[i] > hw) {
				want, hw = d, x.vals[i]
			}
		}
		if got := tr.best.Load(); got != want {
			t.Errorf("%s: tree best %s, scan says %s", name, destName(got), destName(want))
		}
	case *weightFenwick:
		if tr.total != sum {
			t.Errorf("%s: Fenwick total %d, leaves sum to %d", name, tr.total, sum)
		}
		var prefix int64
		for i := range x.vals {
			prefix += x.vals[i]
			if x.vals[i] > 0 && tr.search(prefix) != i {
				t.Errorf("%s: search(%d) = %d, want %d", name, prefix, tr.search(prefix), i)
			}
		}
	}
}

// Bind, Unbind and state changes from several goroutines, with Schedule and
// weight edits running alongside, must leave the index exact: the
// lock-free fast path in LoadChanged must never lose a flip.
func TestEligIndexConcurrentLoad(t *testing.T) {
	const (
		workers = 4    // data-path goroutines
		ops     = 4000 // per worker
		edits   = 200  // weight edits by the control goroutine
		ndests  = 16
	)
	mk := map[string]func() (service.Scheduler, *eligIndex){
		"fo":   func() (service.Scheduler, *eligIndex) { s := NewWeightedFailover(Options{}); return s, &s.ix },
		"ovf":  func() (service.Scheduler, *eligIndex) { s := NewWeightedOverflow(Options{}); return s, &s.ix },
		"twos": func() (service.Scheduler, *eligIndex) { s := NewTwoChoices(Options{}); return s, &s.ix },
	}
	for name, newSched := range mk {
		t.Run(name, func(t *testing.T) {
			s, ix := newSched()
			var list []*service.Dest
			for i := range ndests {
				d := newTestDest(i+1, int32(i%5))
				c := d.Config()
				c.UThreshold = uint32(1 + i%4)
				d.SetConfig(c)
				list = prepend(list, d)
			}
			_ = s.Init(list)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := rand.New(rand.NewPCG(uint64(w), 1))
					type conn struct {
						d      *service.Dest
						active bool
					}
					var conns []conn
					for range ops {
						switch op := r.IntN(10); {
						case op < 3 && len(conns) > 0:
							i := r.IntN(len(conns))
							conns[i].d.Unbind(false, !conns[i].active)
							conns[i] = conns[len(conns)-1]
							conns = conns[:len(conns)-1]
						case op < 5 && len(conns) > 0:
							i := r.IntN(len(conns))
							if conns[i].active {
								conns[i].d.ToInactive()
							} else {
								conns[i].d.ToActive()
							}
							conns[i].active = !conns[i].active
						default:
							d := s.Schedule(list, &service.Packet{})
							if d == nil {
								d = list[r.IntN(len(list))] // a persistent client, say
							}
							active := r.IntN(2) == 0
							d.Bind(false, !active)
							conns = append(conns, conn{d, active})
						}
					}
				}()
			}
			r := rand.New(rand.NewPCG(99, 1))
			for range edits {
				setWeight(s, list, list[r.IntN(len(list))], int32(r.IntN(5)))
			}
			wg.Wait()
			checkEligIndex(t, name, ix)
		})
	}
}
