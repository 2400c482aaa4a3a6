package sched

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"golvs/internal/service"
)

func lblcrState(s *LBLCR) localityState {
	return localityDump(s.tab, func(e *lblcrEntry) localityVal {
		b := make([]byte, 0, 4*len(e.set))
		for i := len(e.set) - 1; i >= 0; i-- { // kernel order: the head first
			b = binary.BigEndian.AppendUint32(b, e.set[i].ID)
		}
		return localityVal{lastmod: e.lastmod, dests: string(b)}
	})
}

func lblcrRefState(r *lblcrRef) localityState {
	st := localityState{entries: r.tbl.entries, rover: r.tbl.rover, counter: r.tbl.counter, byAddr: map[netip.Addr]localityVal{}}
	for b, l := range r.tbl.bucket {
		for _, en := range l {
			st.byAddr[en.addr] = localityVal{bucket: b, lastuse: en.lastuse, lastmod: en.set.lastmod,
				dests: localityIDs(en.set.list...)}
		}
	}
	return st
}

func TestLBLCRMatchesKernel(t *testing.T) {
	for seed := uint64(0); seed < loadDiffSeeds; seed++ {
		var clock int64
		o := Options{LBLCRExpiration: localityExpirations[seed%4]}
		s, ref := NewLBLCR(o), newLBLCRRef(o)
		runs := 1 + int(seed%3)*5
		runDifferential(t, seed, localityDiffConfig(seed, &clock),
			localityBoost{s, runs}, localityBoost{ref, runs})
		if d := lblcrState(s).diff(lblcrRefState(ref)); d != "" {
			t.Fatalf("seed %d: table differs: %s", seed, d)
		}
	}
}

func TestLBLCRGarbageCollectionMatchesKernel(t *testing.T) {
	o := Options{LBLCRExpiration: 3 * time.Minute}
	s, ref := NewLBLCR(o), newLBLCRRef(o)
	localityGCScenario(t, s, ref, func() (localityState, localityState) {
		return lblcrState(s), lblcrRefState(ref)
	}, func() (int, int) { return s.tab.entries, s.tab.counter })
}

// lblcrSet returns the set of addr in kernel order.
func lblcrSet(s *LBLCR, addr netip.Addr) []*service.Dest {
	en := s.tab.get(hash32(fold(addr), localityTabBits), addr)
	if en == nil {
		return nil
	}
	set := make([]*service.Dest, len(en.set))
	for i, d := range en.set {
		set[len(set)-1-i] = d
	}
	return set
}

// TestLBLCRReplicatesAndShrinks: when the set's server is overloaded by
// lblc's rule, the wlc choice joins the set and connections spread over the
// members; a set that has not changed for lblcr_expiration loses its most
// loaded member.
func TestLBLCRReplicatesAndShrinks(t *testing.T) {
	list, byAdd := loadTestList(2, 2)
	s0, s1 := byAdd[0], byAdd[1]
	s := NewLBLCR(Options{LBLCRExpiration: 10 * time.Minute})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	x := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	for range 3 {
		got := s.Schedule(list, x)
		if got != s1 {
			t.Fatalf("x: %s, want %s", destName(got), destName(s1))
		}
		got.Bind(false, false)
	}
	// s1 has 3 active > weight 2 and s0 is idle: s0 joins.
	if got := s.Schedule(list, x); got != s0 {
		t.Fatalf("x: %s, want %s to join", destName(got), destName(s0))
	}
	s0.Bind(false, false)
	if set := lblcrSet(s, x.Dst); len(set) != 2 || set[0] != s0 || set[1] != s1 {
		t.Fatalf("set %v, want [s0 s1]", set)
	}
	// The least loaded member of the set serves.
	if got := s.Schedule(list, x); got != s0 {
		t.Fatalf("x: %s, want %s", destName(got), destName(s0))
	}
	// Ten quiet minutes later (strictly more): s1, the most loaded,
	// leaves the set.
	x.Now = int64(10*time.Minute) + 1
	if got := s.Schedule(list, x); got != s0 {
		t.Fatalf("x: %s, want %s", destName(got), destName(s0))
	}
	if set := lblcrSet(s, x.Dst); len(set) != 1 || set[0] != s0 {
		t.Fatalf("set %v, want [s0]", set)
	}
}

// TestLBLCRPrunedMemberStillServes: set_min runs before the pruning, so the
// member just chosen may be the one pruned (OVERLOAD counts for set_min but
// not for set_max) and still gets the connection, as in the kernel.
func TestLBLCRPrunedMemberStillServes(t *testing.T) {
	list, byAdd := loadTestList(1, 1)
	a, b := byAdd[0], byAdd[1]
	s := NewLBLCR(Options{LBLCRExpiration: time.Minute})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	x := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	if got := s.Schedule(list, x); got != b {
		t.Fatalf("x: %s, want %s", destName(got), destName(b))
	}
	b.SetCounts(2, 0, false) // 2 active > weight 1, a idle: a joins
	if got := s.Schedule(list, x); got != a {
		t.Fatalf("x: %s, want %s", destName(got), destName(a))
	}
	// b drops to no load but is OVERLOADED; a carries some.
	b.SetCounts(0, 0, true)
	a.SetCounts(1, 0, false)
	x.Now = int64(2 * time.Minute)
	if got := s.Schedule(list, x); got != a {
		t.Fatalf("x: %s, want %s", destName(got), destName(a))
	}
	if set := lblcrSet(s, x.Dst); len(set) != 1 || set[0] != b {
		t.Fatalf("set %v, want [b]: a, the most loaded, was pruned", set)
	}
}

func TestLBLCRScheduleDoesNotAllocate(t *testing.T) {
	s := NewLBLCR(Options{LBLCRExpiration: time.Minute})
	localityAllocs(t, s, func() { s.tab.counter = countForFullExpiration })
	if n := testing.AllocsPerRun(1000, func() { s.LoadChanged(s.idx.dests[0]) }); n != 0 {
		t.Errorf("LoadChanged allocates %v times per call", n)
	}
}

// TestLBLCRDone: after Done nothing is chosen.
func TestLBLCRDone(t *testing.T) {
	list, _ := loadTestList(1, 1)
	s := NewLBLCR(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	s.Schedule(list, p)
	s.Done()
	s.Expire(0)
	if got := s.Schedule(list, p); got != nil {
		t.Fatalf("after Done chose %s", destName(got))
	}
}
