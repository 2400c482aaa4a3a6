package sched

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golvs/internal/service"
)

// This file tests lblc and holds what the lblcr tests share with it.

// localityExpirations are the sysctl values the differential tests draw
// from: the default (24 h, never reached in a run), and values short enough
// that full checks expire entries and lblcr sets lose members.
var localityExpirations = []time.Duration{0, 20 * time.Second, 2 * time.Minute, 10 * time.Minute}

// localityDiffConfig varies the harness by seed for lblc and lblcr: a pool
// of packet destination addresses so that they repeat (from 3, mostly hits,
// to 200), a clock, thresholds, weight 0 often, TCP and UDP, IPv4 and IPv6.
// 1000 steps advance the clock by about 40 minutes.
func localityDiffConfig(seed uint64, clock *int64) diffConfig {
	cfg := loadDiffConfig(seed)
	cfg.steps = 1000
	cfg.clock = clock
	cfg.dstPool = []int{3, 10, 40, 200}[seed/4%4]
	return cfg
}

// localityBoost runs the wrapped scheduler's Expire several times per call,
// so that a differential run sees "every 30th run" full checks: the harness
// calls Expire about 20 times in 1000 steps. Real and reference are wrapped
// alike.
type localityBoost struct {
	service.Scheduler
	runs int
}

func (b localityBoost) Expire(now int64) {
	for range b.runs {
		b.Scheduler.(service.Expirer).Expire(now)
	}
}

// localityState is a scheduler's table as comparable data: per address its
// bucket, last use, dests (lblc: one; lblcr: the set in kernel order) and
// lblcr's lastmod, plus the table's counters.
type localityState struct {
	entries, rover, counter int
	byAddr                  map[netip.Addr]localityVal
}

type localityVal struct {
	bucket           int
	lastuse, lastmod int64
	dests            string // the dests' IDs, 4 bytes each
}

func localityIDs(dests ...*service.Dest) string {
	b := make([]byte, 0, 4*len(dests))
	for _, d := range dests {
		b = binary.BigEndian.AppendUint32(b, d.ID)
	}
	return string(b)
}

func (s localityState) diff(o localityState) string {
	if s.entries != o.entries || s.rover != o.rover || s.counter != o.counter {
		return fmt.Sprintf("entries/rover/counter %d/%d/%d, kernel %d/%d/%d",
			s.entries, s.rover, s.counter, o.entries, o.rover, o.counter)
	}
	for a, v := range o.byAddr {
		if s.byAddr[a] != v {
			return fmt.Sprintf("entry %s: %+v, kernel %+v", a, s.byAddr[a], v)
		}
	}
	for a, v := range s.byAddr {
		if _, ok := o.byAddr[a]; !ok {
			return fmt.Sprintf("entry %s: %+v, kernel has none", a, v)
		}
	}
	return ""
}

// localityDump returns t's state; val fills the scheduler-specific fields.
func localityDump[E any, P localityEntry[E]](t *localityTable[E, P], val func(P) localityVal) localityState {
	st := localityState{entries: t.entries, rover: t.rover, counter: t.counter, byAddr: map[netip.Addr]localityVal{}}
	for b := range t.bucket {
		for i := t.bucket[b]; i != 0; {
			e := t.at(i)
			h := e.hdr()
			v := val(e)
			v.bucket, v.lastuse = b, h.lastuse
			st.byAddr[h.addr] = v
			i = h.next
		}
	}
	return st
}

func lblcState(s *LBLC) localityState {
	return localityDump(s.tab, func(e *lblcEntry) localityVal { return localityVal{dests: localityIDs(e.dest)} })
}

func lblcRefState(r *lblcRef) localityState {
	st := localityState{entries: r.tbl.entries, rover: r.tbl.rover, counter: r.tbl.counter, byAddr: map[netip.Addr]localityVal{}}
	for b, l := range r.tbl.bucket {
		for _, en := range l {
			st.byAddr[en.addr] = localityVal{bucket: b, lastuse: en.lastuse, dests: localityIDs(en.dest)}
		}
	}
	return st
}

func TestLBLCMatchesKernel(t *testing.T) {
	for seed := uint64(0); seed < loadDiffSeeds; seed++ {
		var clock int64
		o := Options{LBLCExpiration: localityExpirations[seed%4]}
		s, ref := NewLBLC(o), newLBLCRef(o)
		runs := 1 + int(seed%3)*5
		runDifferential(t, seed, localityDiffConfig(seed, &clock),
			localityBoost{s, runs}, localityBoost{ref, runs})
		if d := lblcState(s).diff(lblcRefState(ref)); d != "" {
			t.Fatalf("seed %d: table differs: %s", seed, d)
		}
	}
}

// localityAddr returns the n-th test destination address 10.x.y.z.
func localityAddr(n int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(n >> 16), byte(n >> 8), byte(n)})
}

// localityGCScenario drives real and ref through more than max_size
// destination addresses and an hour of timer runs, comparing choices and
// then, after every Expire, the tables: the partial collection (goal,
// rover, ENTRY_TIMEOUT) only runs above 16384 entries, which the harness
// never reaches. Once below, the counter advances again and the 30th run
// after that is a full check.
func localityGCScenario(t *testing.T, real, ref service.Scheduler, state func() (localityState, localityState), counts func() (entries, counter int)) {
	r := rand.New(rand.NewPCG(1, 2))
	list, _ := loadTestList(1, 2, 3, 1)
	if err := real.Init(list); err != nil {
		t.Fatal(err)
	}
	if err := ref.Init(list); err != nil {
		t.Fatal(err)
	}
	var now int64
	type bound struct {
		d      *service.Dest
		active bool
	}
	var conns []bound
	distinct := 0
	schedule := func(n int) {
		p := &service.Packet{Dst: localityAddr(n), Now: now}
		got, want := real.Schedule(list, p), ref.Schedule(list, p)
		if got != want {
			t.Fatalf("t=%v %s: chose %s, kernel %s", time.Duration(now), p.Dst, destName(got), destName(want))
		}
		if got == nil {
			return
		}
		// A quarter active, so that is_overloaded() comes into play.
		active := r.IntN(4) == 0
		got.Bind(false, !active)
		conns = append(conns, bound{got, active})
		if len(conns) > 40 {
			i := r.IntN(len(conns))
			conns[i].d.Unbind(false, !conns[i].active)
			conns[i] = conns[len(conns)-1]
			conns = conns[:len(conns)-1]
		}
	}
	// Quiesce and revive a dest now and then, so that cached dests become
	// invalid and lblc replaces entries (and over-counts them).
	toggle := func() {
		d := list[r.IntN(len(list))]
		c := d.Config()
		if c.Weight == 0 {
			c.Weight = 1 + r.Int32N(3)
		} else {
			c.Weight = 0
		}
		d.SetConfig(c)
		real.UpdDest(list, d)
		ref.UpdDest(list, d)
	}
	check := func(what string) localityState {
		got, want := state()
		if d := got.diff(want); d != "" {
			t.Fatalf("%s: table differs: %s", what, d)
		}
		return got
	}
	// 18000 distinct addresses over 6 minutes, a third of the schedules
	// going back to an earlier address.
	for k := 0; k < 27000; k++ {
		now += int64(13 * time.Millisecond)
		if k%3 == 2 {
			schedule(r.IntN(distinct))
		} else {
			schedule(distinct)
			distinct++
		}
		if k%700 == 0 {
			toggle()
		}
	}
	check("after filling")
	entries, counter := counts()
	partial, full := 0, 0
	for run := 1; run <= 45; run++ {
		now += int64(CheckExpireInterval)
		real.(service.Expirer).Expire(now)
		ref.(service.Expirer).Expire(now)
		if run <= 12 || counter == countForFullExpiration || run == 45 {
			// The quiet runs in between only count.
			check(fmt.Sprintf("after Expire run %d", run))
		}
		newEntries, newCounter := counts()
		switch {
		case counter == countForFullExpiration:
			full++
		case entries > localityMaxSize && newEntries < entries:
			partial++
		}
		entries, counter = newEntries, newCounter
		if run > 12 {
			// Quiet: the count stays below max_size (for lblc
			// still inflated by thousands by the replacements
			// above, as in the kernel), the counter advances, and
			// the 30th run after the last partial one is a full
			// check.
			continue
		}
		for range 400 {
			if r.IntN(20) > 0 {
				schedule(r.IntN(distinct))
			} else {
				schedule(distinct)
				distinct++
			}
		}
		toggle()
		entries, counter = counts()
	}
	if partial < 2 || full < 1 {
		t.Fatalf("scenario ran %d partial and %d full collections, want at least 2 and 1", partial, full)
	}
}

func TestLBLCGarbageCollectionMatchesKernel(t *testing.T) {
	o := Options{LBLCExpiration: 40 * time.Minute}
	s, ref := NewLBLC(o), newLBLCRef(o)
	localityGCScenario(t, s, ref, func() (localityState, localityState) {
		return lblcState(s), lblcRefState(ref)
	}, func() (int, int) { return s.tab.entries, s.tab.counter })
}

// TestLBLCSticksAndMoves: a destination address sticks to the server wlc
// first chose, even when wlc would now choose another, until that server
// has more active connections than its weight while another has fewer than
// half its weight; then it moves, and sticks to the new one.
func TestLBLCSticksAndMoves(t *testing.T) {
	list, byAdd := loadTestList(2, 2)
	s := NewLBLC(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	x := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	y := &service.Packet{Dst: netip.MustParseAddr("192.0.2.20")}
	s1, s0 := byAdd[1], byAdd[0]

	if got := s.Schedule(list, x); got != s1 { // tie: the newest
		t.Fatalf("x: %s, want %s", destName(got), destName(s1))
	}
	s1.Bind(false, false)
	s1.Bind(false, false)
	if got := s.Schedule(list, y); got != s0 {
		t.Fatalf("y: %s, want %s", destName(got), destName(s0))
	}
	s0.Bind(false, false)
	s1.Bind(false, false)
	// s1: 3 active > weight 2, but no dest has active*2 < weight.
	for range 5 {
		if got := s.Schedule(list, x); got != s1 {
			t.Fatalf("x: %s, want it to stay on %s", destName(got), destName(s1))
		}
	}
	s0.Unbind(false, false) // s0 idle: 0*2 < 2
	if got := s.Schedule(list, x); got != s0 {
		t.Fatalf("x: %s, want it moved to %s", destName(got), destName(s0))
	}
	s0.Bind(false, false)
	s0.Bind(false, false)
	for range 5 {
		if got := s.Schedule(list, x); got != s0 {
			t.Fatalf("x: %s, want it to stay on %s", destName(got), destName(s0))
		}
	}
	// Quiescing the cached server moves the address too.
	c := s0.Config()
	c.Weight = 0
	s0.SetConfig(c)
	s.UpdDest(list, s0)
	if got := s.Schedule(list, x); got != s1 {
		t.Fatalf("x: %s, want %s after quiescing %s", destName(got), destName(s1), destName(s0))
	}
}

// TestLBLCCachedServerIgnoresThreshold: as in the kernel, the cached path
// only applies is_overloaded(), not the OVERLOAD flag of -x thresholds; new
// addresses avoid the overloaded server.
func TestLBLCCachedServerIgnoresThreshold(t *testing.T) {
	list, byAdd := loadTestList(1, 1)
	loadSetThreshold(byAdd[1], 1)
	s := NewLBLC(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	x := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	got := s.Schedule(list, x)
	if got != byAdd[1] {
		t.Fatalf("x: %s, want %s", destName(got), destName(byAdd[1]))
	}
	got.Bind(false, true)
	if !got.Overloaded() {
		t.Fatal("threshold did not set OVERLOAD")
	}
	if again := s.Schedule(list, x); again != got {
		t.Fatalf("x: %s, want the cached %s despite OVERLOAD", destName(again), destName(got))
	}
	y := &service.Packet{Dst: netip.MustParseAddr("192.0.2.20")}
	if other := s.Schedule(list, y); other != byAdd[0] {
		t.Fatalf("y: %s, want %s", destName(other), destName(byAdd[0]))
	}
}

// TestLBLCExpiry: entries idle for lblc_expiration disappear at the 30th
// timer run (the full check); the address is then scheduled afresh.
func TestLBLCExpiry(t *testing.T) {
	list, byAdd := loadTestList(1, 1)
	s := NewLBLC(Options{LBLCExpiration: 5 * time.Minute})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	x := &service.Packet{Dst: netip.MustParseAddr("2001:db8::10")}
	if got := s.Schedule(list, x); got != byAdd[1] {
		t.Fatalf("x: %s, want %s", destName(got), destName(byAdd[1]))
	}
	byAdd[1].Bind(false, true)
	var now int64
	for run := 1; run < 30; run++ {
		now += int64(CheckExpireInterval)
		s.Expire(now)
		if n := s.tab.entries; n != 1 {
			t.Fatalf("run %d: %d entries, want 1 until the full check", run, n)
		}
	}
	now += int64(CheckExpireInterval)
	s.Expire(now)
	if n := s.tab.entries; n != 0 {
		t.Fatalf("full check left %d entries", n)
	}
	x.Now = now
	if got := s.Schedule(list, x); got != byAdd[0] {
		t.Fatalf("x: %s, want the less loaded %s", destName(got), destName(byAdd[0]))
	}
}

// TestLBLCEntriesOverCount: replacing a cached server counts the entry
// again (ip_vs_lblc_new deletes without decrementing tbl->entries), as the
// kernel does.
func TestLBLCEntriesOverCount(t *testing.T) {
	list, byAdd := loadTestList(1, 1)
	s, ref := NewLBLC(Options{}), newLBLCRef(Options{})
	for _, x := range []service.Scheduler{s, ref} {
		if err := x.Init(list); err != nil {
			t.Fatal(err)
		}
	}
	x := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	for i := range 10 {
		got, want := s.Schedule(list, x), ref.Schedule(list, x)
		if got != want {
			t.Fatalf("chose %s, kernel %s", destName(got), destName(want))
		}
		// Quiesce the cached dest, revive the other.
		c := got.Config()
		c.Weight = 0
		got.SetConfig(c)
		other := byAdd[0]
		if got == other {
			other = byAdd[1]
		}
		c = other.Config()
		c.Weight = 1
		other.SetConfig(c)
		if s.tab.entries != i+1 || ref.tbl.entries != i+1 {
			t.Fatalf("after %d replacements: entries %d, kernel %d", i, s.tab.entries, ref.tbl.entries)
		}
	}
}

// TestLBLCDone: after Done nothing is chosen and notifications are ignored.
func TestLBLCDone(t *testing.T) {
	list, _ := loadTestList(1, 1)
	s := NewLBLC(Options{})
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	p := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	s.Schedule(list, p)
	s.Done()
	list[0].Bind(false, false)
	s.Expire(0)
	if got := s.Schedule(list, p); got != nil {
		t.Fatalf("after Done chose %s", destName(got))
	}
}

// localityAllocs checks that Schedule does not allocate in steady state:
// on hits, and on misses once the entry pool has grown (entries freed by
// the collector are reused).
func localityAllocs(t *testing.T, s service.Scheduler, fullCheckNext func()) {
	list, _ := loadTestList(3, 1, 4, 1, 5)
	if err := s.Init(list); err != nil {
		t.Fatal(err)
	}
	hit := &service.Packet{Dst: netip.MustParseAddr("192.0.2.10")}
	if n := testing.AllocsPerRun(1000, func() {
		d := s.Schedule(list, hit)
		d.Bind(false, false)
		d.Unbind(false, false)
	}); n != 0 {
		t.Errorf("%s: hit allocates %v times per Schedule", s.Name(), n)
	}

	const warm = 2 * localityChunk
	pkts := make([]service.Packet, 2*warm)
	for i := range pkts {
		pkts[i].Dst = localityAddr(i)
	}
	for i := range warm {
		s.Schedule(list, &pkts[i])
	}
	fullCheckNext()
	s.(service.Expirer).Expire(int64(time.Hour)) // expiration is 1 minute
	i := warm
	if n := testing.AllocsPerRun(warm-10, func() {
		pkts[i].Now = int64(time.Hour)
		s.Schedule(list, &pkts[i])
		i++
	}); n != 0 {
		t.Errorf("%s: miss allocates %v times per Schedule with a warm pool", s.Name(), n)
	}
}

func TestLBLCScheduleDoesNotAllocate(t *testing.T) {
	s := NewLBLC(Options{LBLCExpiration: time.Minute})
	localityAllocs(t, s, func() { s.tab.counter = countForFullExpiration })
	if n := testing.AllocsPerRun(1000, func() { s.LoadChanged(s.idx.dests[0]) }); n != 0 {
		t.Errorf("LoadChanged allocates %v times per call", n)
	}
}

// TestLBLCBucketsAreKernels: entries sit in bucket hash_32(ntohl(fold)),
// checked against the reference's independent transcription.
func TestLBLCBucketsAreKernels(t *testing.T) {
	addrs := []string{"0.0.0.0", "192.0.2.1", "198.51.100.255", "255.255.255.255",
		"2001:db8::1", "::ffff:192.0.2.1", "fe80::1:2:3:4"}
	for _, a := range addrs {
		ad := netip.MustParseAddr(a)
		if got, want := hash32(fold(ad), localityTabBits), lblcRefHashkey(ad); got != want {
			t.Errorf("%s: bucket %d, kernel %d", a, got, want)
		}
	}
	// And a known value: 192.0.2.1 = 0xc0000201, times 0x61C88647,
	// top 10 bits.
	want := uint32((uint64(0xc0000201) * 0x61C88647 & 0xffffffff) >> 22)
	if got := lblcRefHashkey(netip.MustParseAddr("192.0.2.1")); got != want {
		t.Errorf("192.0.2.1: bucket %d, want %d", got, want)
	}
}

// TestLocalityConcurrent schedules, binds, unbinds and expires from several
// goroutines (run with -race); afterwards the wlc index must agree with the
// kernel loop.
func TestLocalityConcurrent(t *testing.T) {
	for _, s := range []interface {
		service.Scheduler
		service.Expirer
	}{NewLBLC(Options{LBLCExpiration: time.Second}), NewLBLCR(Options{LBLCRExpiration: time.Second})} {
		list, _ := loadTestList(1, 2, 3, 0, 5, 1, 2)
		loadSetThreshold(list[1], 30)
		if err := s.Init(list); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(uint64(g), 3))
				var mine []*service.Dest
				for i := range 2000 {
					now := int64(i) * int64(10*time.Millisecond)
					if g == 0 && i%100 == 0 {
						s.Expire(now)
					}
					p := &service.Packet{Dst: localityAddr(r.IntN(50)), Now: now}
					if d := s.Schedule(list, p); d != nil && r.IntN(3) > 0 {
						d.Bind(false, false)
						mine = append(mine, d)
					}
					if len(mine) > 0 && r.IntN(2) == 0 {
						j := r.IntN(len(mine))
						mine[j].Unbind(false, false)
						mine[j] = mine[len(mine)-1]
						mine = mine[:len(mine)-1]
					}
				}
			})
		}
		wg.Wait()
		var ix *loadIndex
		switch s := s.(type) {
		case *LBLC:
			ix = &s.idx
		case *LBLCR:
			ix = &s.idx
		}
		loadCheckTree(t, ix)
		if got, want := ix.best(), lblcRefWLC(list); got != want {
			t.Fatalf("%s: index chose %s, kernel loop %s", s.Name(), destName(got), destName(want))
		}
	}
}
