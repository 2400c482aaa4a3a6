package sched

import (
	"math/rand/v2"
	"testing"

	"golvs/internal/service"
)

// rrFamilySeeds is the number of random sequences each of rr, wrr, fo, ovf
// and twos is compared with its kernel reference over, rrFamilySteps
// (2000, 300 with -short) steps each: 400,000 steps per scheduler, about
// 0.2 s each without -race (some 3 s with it, hence -short).
const rrFamilySeeds = 200

func rrFamilySteps() int {
	if testing.Short() {
		return 300
	}
	return 2000
}

// rrFamilyConfig varies the differential setup with the seed: list sizes
// from 1 (degenerate walks) to 40 (several tree levels), weights from
// {1} (all ties) to 1..100, many weight-0 destinations, thresholds on.
func rrFamilyConfig(seed uint64) diffConfig {
	maxDests := [...]int{1, 2, 3, 6, 12, 40}
	maxWeight := [...]int32{1, 2, 3, 6, 10, 100}
	zero := [...]float64{0, 0.2, 0.5}
	return diffConfig{
		steps:      rrFamilySteps(),
		maxDests:   maxDests[seed%uint64(len(maxDests))],
		maxWeight:  maxWeight[(seed/6)%uint64(len(maxWeight))],
		zeroWeight: zero[(seed/36)%uint64(len(zero))],
		thresholds: seed%4 != 3,
		ipv6:       seed%5 == 0,
	}
}

func TestRoundRobinMatchesKernel(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= rrFamilySeeds; seed++ {
		runDifferential(t, seed, rrFamilyConfig(seed), NewRoundRobin(Options{}), &rrRef{})
		runOverloadStress(t, seed, NewRoundRobin(Options{}), &rrRef{})
	}
}

// rrStressSteps is the length of each runOverloadStress sequence: long
// enough for every destination to cross its threshold many times.
func rrStressSteps() int { return rrFamilySteps() / 4 }

// runOverloadStress complements runDifferential, where a third of the
// destinations have thresholds, with lists of 2 to 10 destinations that all
// have tiny upper thresholds (1 to 4 connections) and weights 0 to 4: so
// that every destination is often OVERLOADED at once, the case that drives
// wrr's "all destinations are overloaded" exits and the state they leave
// behind, and that flips the indexes of fo, ovf and twos constantly.
func runOverloadStress(t *testing.T, seed uint64, real, ref service.Scheduler) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x5bd1e9955bd1e995))
	nextID := 0
	mk := func() *service.Dest {
		nextID++
		d := newTestDest(nextID, int32(r.IntN(5)))
		c := d.Config()
		c.UThreshold = uint32(1 + r.IntN(4))
		if r.IntN(2) == 0 {
			c.LThreshold = uint32(r.IntN(int(c.UThreshold)))
		}
		d.SetConfig(c)
		return d
	}
	var dests []*service.Dest
	for range 2 + r.IntN(6) {
		dests = prepend(dests, mk())
	}
	_ = real.Init(dests)
	_ = ref.Init(dests)
	type conn struct {
		d      *service.Dest
		active bool
	}
	var conns []conn
	for step := range rrStressSteps() {
		switch op := r.IntN(100); {
		case op < 3 && len(dests) < 10:
			d := mk()
			dests = prepend(dests, d)
			real.AddDest(dests, d)
			ref.AddDest(dests, d)
		case op < 5 && len(dests) > 1:
			d := dests[r.IntN(len(dests))]
			dests = without(dests, d)
			d.SetAvailable(false)
			real.DelDest(dests, d)
			ref.DelDest(dests, d)
		case op < 13 && len(dests) > 0:
			d := dests[r.IntN(len(dests))]
			c := d.Config()
			if op < 10 {
				c.Weight = int32(r.IntN(5))
			} else {
				c.UThreshold = uint32(1 + r.IntN(4))
				c.LThreshold = uint32(r.IntN(int(c.UThreshold)))
			}
			d.SetConfig(c)
			real.UpdDest(dests, d)
			ref.UpdDest(dests, d)
		case op < 35 && len(conns) > 0:
			i := r.IntN(len(conns))
			conns[i].d.Unbind(false, !conns[i].active)
			conns[i] = conns[len(conns)-1]
			conns = conns[:len(conns)-1]
		case op < 45 && len(conns) > 0:
			i := r.IntN(len(conns))
			if conns[i].active {
				conns[i].d.ToInactive()
			} else {
				conns[i].d.ToActive()
			}
			conns[i].active = !conns[i].active
		default:
			got := real.Schedule(dests, &service.Packet{})
			want := ref.Schedule(dests, &service.Packet{})
			if got != want {
				t.Fatalf("overload stress seed %d step %d: %s chose %s, kernel reference chose %s\ndests: %s",
					seed, step, real.Name(), destName(got), destName(want), dumpDests(dests))
			}
			if got != nil {
				active := r.IntN(2) == 0
				got.Bind(false, !active)
				conns = append(conns, conn{got, active})
			}
		}
	}
}

// rrServers returns rs1..rsN (198.19.0.11, .12, ...) added in that order,
// as the kernel lists them: the last added first.
func rrServers(weights ...int32) (list []*service.Dest, byName []*service.Dest) {
	for i, w := range weights {
		d := newTestDest(11+i, w) // 198.19.0.11 is rs1, as in the oracle
		byName = append(byName, d)
		list = prepend(list, d)
	}
	return list, byName
}

func rrName(byName []*service.Dest, d *service.Dest) string {
	for i, x := range byName {
		if x == d {
			return "rs" + string(rune('1'+i))
		}
	}
	if d == nil {
		return "<nil>"
	}
	return destName(d)
}

// scheduleNames schedules n connections (each bound inactive, as a new TCP
// connection is) and returns the names chosen.
func scheduleNames(s service.Scheduler, list, byName []*service.Dest, n int) []string {
	var got []string
	for range n {
		d := s.Schedule(list, &service.Packet{})
		if d != nil {
			d.Bind(false, true)
		}
		got = append(got, rrName(byName, d))
	}
	return got
}

func equalNames(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The oracle (kernel 6.1, a2-traffic-formats): rs1, rs2, rs3 added in that
// order answer rs3, rs2, rs1, rs3, ...; 30 connections are split evenly.
func TestRoundRobinOrderAndEvenSplit(t *testing.T) {
	list, byName := rrServers(1, 1, 1)
	rr := NewRoundRobin(Options{})
	if err := rr.Init(list); err != nil {
		t.Fatal(err)
	}
	got := scheduleNames(rr, list, byName, 30)
	want := []string{"rs3", "rs2", "rs1", "rs3", "rs2", "rs1"}
	if !equalNames(got[:6], want) {
		t.Errorf("first six = %v, want %v", got[:6], want)
	}
	count := map[string]int{}
	for _, n := range got {
		count[n]++
	}
	for _, n := range []string{"rs1", "rs2", "rs3"} {
		if count[n] != 10 {
			t.Errorf("%s got %d of 30 connections, want 10 (%v)", n, count[n], count)
		}
	}
}

// Adding rs1..rs3 one by one to a running service gives the same order.
func TestRoundRobinAddOneByOne(t *testing.T) {
	rr := NewRoundRobin(Options{})
	_ = rr.Init(nil)
	if d := rr.Schedule(nil, &service.Packet{}); d != nil {
		t.Fatalf("empty service chose %s", destName(d))
	}
	var list, byName []*service.Dest
	for i := range 3 {
		d := newTestDest(10+i+1, 1)
		byName = append(byName, d)
		list = prepend(list, d)
		rr.AddDest(list, d)
	}
	got := scheduleNames(rr, list, byName, 4)
	if want := []string{"rs3", "rs2", "rs1", "rs3"}; !equalNames(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestRoundRobinSkipsQuiescentAndOverloaded(t *testing.T) {
	list, byName := rrServers(1, 0, 1) // rs2 quiescent
	rr := NewRoundRobin(Options{})
	_ = rr.Init(list)
	got := scheduleNames(rr, list, byName, 4)
	if want := []string{"rs3", "rs1", "rs3", "rs1"}; !equalNames(got, want) {
		t.Errorf("weight 0: got %v, want %v", got, want)
	}
	byName[2].SetCounts(0, 0, true) // rs3 OVERLOADED
	got = scheduleNames(rr, list, byName, 2)
	if want := []string{"rs1", "rs1"}; !equalNames(got, want) {
		t.Errorf("overloaded rs3: got %v, want %v", got, want)
	}
	byName[0].SetCounts(0, 0, true)
	if d := rr.Schedule(list, &service.Packet{}); d != nil {
		t.Errorf("nothing eligible, chose %s", rrName(byName, d))
	}
}

// Deleting the last chosen server moves the position to its predecessor,
// so that its successor is next (ip_vs_rr_del_dest).
func TestRoundRobinDeleteLastChosen(t *testing.T) {
	list, byName := rrServers(1, 1, 1, 1) // list rs4 rs3 rs2 rs1
	rr := NewRoundRobin(Options{})
	_ = rr.Init(list)
	got := scheduleNames(rr, list, byName, 2) // rs4 rs3
	rs3 := byName[2]
	list = without(list, rs3)
	rr.DelDest(list, rs3)
	got = append(got, scheduleNames(rr, list, byName, 4)...)
	if want := []string{"rs4", "rs3", "rs2", "rs1", "rs4", "rs2"}; !equalNames(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// Deleting the first of the list while it is the last chosen moves
	// the position to the head: the new first is next.
	rr2 := NewRoundRobin(Options{})
	list2, byName2 := rrServers(1, 1, 1)
	_ = rr2.Init(list2)
	got = scheduleNames(rr2, list2, byName2, 1) // rs3
	list2 = without(list2, byName2[2])
	rr2.DelDest(list2, byName2[2])
	got = append(got, scheduleNames(rr2, list2, byName2, 2)...)
	if want := []string{"rs3", "rs2", "rs1"}; !equalNames(got, want) {
		t.Errorf("delete first: got %v, want %v", got, want)
	}
}

// A server added at the head is reached when the rotation wraps: the saved
// position is a list node that does not move.
func TestRoundRobinAddAtHead(t *testing.T) {
	list, byName := rrServers(1, 1, 1) // rs3 rs2 rs1
	rr := NewRoundRobin(Options{})
	_ = rr.Init(list)
	got := scheduleNames(rr, list, byName, 1) // rs3
	rs4 := newTestDest(14, 1)
	byName = append(byName, rs4)
	list = prepend(list, rs4)
	rr.AddDest(list, rs4)
	got = append(got, scheduleNames(rr, list, byName, 5)...)
	if want := []string{"rs3", "rs2", "rs1", "rs4", "rs3", "rs2"}; !equalNames(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
