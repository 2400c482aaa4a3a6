package sched

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"testing"

	"golvs/internal/service"
	"golvs/internal/stats"
)

// hashRaceEnabled reports whether the test binary was built with -race.
// The race detector slows the 4093-slot table builds about twentyfold, so
// the differential tests then run the same seeds with shorter sequences:
// the concurrency test, not the differential one, is what -race is for.
var hashRaceEnabled = func() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				return s.Value == "true"
			}
		}
	}
	return false
}()

// hashDiffSteps returns n, or n/8 under the race detector.
func hashDiffSteps(n int) int {
	if hashRaceEnabled {
		return max(n/8, 10)
	}
	return n
}

// mhDiffSteps is shorter than the other schedulers' sequences: every add,
// delete and edit (18% of the harness's steps) rebuilds a 4093-slot table
// in both the scheduler and its reference (0.1-0.2 ms each).
const mhDiffSteps = 100

// mhAllFlags runs one Maglev (real) or mhRef (ref) under all four flag
// settings at every Schedule, so that one table build serves the four: the
// real side records its four choices, the reference side compares its own
// four with them and fails the test at the first difference. Both return
// the choice under flags[pick] to the harness, which binds connections by
// it.
type mhAllFlags struct {
	t      *testing.T
	real   *Maglev
	ref    *mhRef
	pick   int
	shared *[4]*service.Dest // the real side's last four choices
}

func (w *mhAllFlags) Name() string { return "mh" }

func (w *mhAllFlags) Init(dests []*service.Dest) error {
	if w.real != nil {
		return w.real.Init(dests)
	}
	return w.ref.Init(dests)
}

func (w *mhAllFlags) AddDest(dests []*service.Dest, d *service.Dest) {
	if w.real != nil {
		w.real.AddDest(dests, d)
	} else {
		w.ref.AddDest(dests, d)
	}
}

func (w *mhAllFlags) DelDest(dests []*service.Dest, d *service.Dest) {
	if w.real != nil {
		w.real.DelDest(dests, d)
	} else {
		w.ref.DelDest(dests, d)
	}
}

func (w *mhAllFlags) UpdDest(dests []*service.Dest, d *service.Dest) {
	if w.real != nil {
		w.real.UpdDest(dests, d)
	} else {
		w.ref.UpdDest(dests, d)
	}
}

func (w *mhAllFlags) Schedule(dests []*service.Dest, p *service.Packet) *service.Dest {
	w.t.Helper()
	for i, f := range hashFlagSets {
		if w.real != nil {
			w.real.SetFlags(f)
			w.shared[i] = w.real.Schedule(dests, p)
			continue
		}
		w.ref.flags = f
		if want := w.ref.Schedule(dests, p); want != w.shared[i] {
			w.t.Fatalf("flags %#x, packet %+v: mh chose %s, kernel reference chose %s\ndests: %s",
				uint32(f), *p, destName(w.shared[i]), destName(want), dumpDests(dests))
		}
	}
	return w.shared[w.pick]
}

func TestMaglevDifferential(t *testing.T) {
	for seed := uint64(0); seed < hashDiffSeeds; seed++ {
		var shared [4]*service.Dest
		pick := int(seed % 4)
		real := &mhAllFlags{t: t, real: NewMaglev(Options{}), pick: pick, shared: &shared}
		ref := &mhAllFlags{t: t, ref: &mhRef{}, pick: pick, shared: &shared}
		runDifferential(t, seed, hashDiffConfig(seed, hashDiffSteps(mhDiffSteps)), real, ref)
	}
}

func TestMaglevPacketVariants(t *testing.T) {
	dests := hashTestDests(1, 2, 0, 3, 1, 1, 4)
	dests[4].SetCounts(0, 0, true)
	for _, f := range hashFlagSets {
		m := NewMaglev(Options{Flags: f})
		m.Init(dests)
		ref := &mhRef{flags: f}
		ref.Init(dests)
		for _, p := range hashPacketVariants() {
			if got, want := m.Schedule(dests, p), ref.Schedule(dests, p); got != want {
				t.Errorf("flags %#x %+v: got %s, reference %s", uint32(f), *p, destName(got), destName(want))
			}
		}
	}
}

// mhTableDests returns the destination of every slot of m's table.
func mhTableDests(m *Maglev) []*service.Dest {
	out := make([]*service.Dest, mhTabSize)
	if t := m.tab.Load(); t != nil {
		for i, s := range t.slot {
			out[i] = t.dests[s]
		}
	}
	return out
}

func mhCheckTable(t *testing.T, what string, m *Maglev, ref *mhRef) {
	t.Helper()
	got := mhTableDests(m)
	for i := range got {
		if got[i] != ref.lookup[i] {
			t.Fatalf("%s: slot %d is %s, reference %s", what, i, destName(got[i]), destName(ref.lookup[i]))
		}
	}
}

// TestMaglevServiceFamilies checks the destination hash against the
// reference when the destination's family differs from the service's
// (tunnel destinations): the kernel folds with svc->af.
func TestMaglevServiceFamilies(t *testing.T) {
	svc6 := service.Key{Family: service.IPv6, Proto: service.ProtoTCP,
		Addr: netip.MustParseAddr("2001:db8:c::100"), Port: 80}
	mk := func(id uint32, svc service.Key, addr string, port uint16, w int32) *service.Dest {
		return service.NewDest(id, svc, netip.MustParseAddr(addr), port,
			service.DestConfig{Fwd: service.Tunnel, Weight: w}, stats.New(1))
	}
	for _, dests := range [][]*service.Dest{
		{mk(1, svc6, "2001:db8:5::11", 80, 1), mk(2, svc6, "2001:db8:5::12", 80, 2), mk(3, svc6, "198.19.0.13", 80, 3)},
		{mk(1, testSvc, "2001:db8:5::11", 80, 1), mk(2, testSvc, "2001:db9:5::12", 8080, 2), mk(3, testSvc, "198.19.0.13", 80, 3)},
	} {
		m := NewMaglev(Options{})
		if err := m.Init(dests); err != nil {
			t.Fatal(err)
		}
		ref := &mhRef{}
		ref.Init(dests)
		mhCheckTable(t, dests[0].Svc.String(), m, ref)
	}
	// In an IPv4 service an IPv6 destination hashes as its first word
	// only, as the kernel's addr->ip reads it.
	d := mk(1, testSvc, "2001:db8:5::11", 80, 1)
	if got, want := mhDestKey(d), uint32(0x20010db8+80); got != want {
		t.Errorf("IPv6 destination of an IPv4 service hashes %#x, want %#x", got, want)
	}
	d = mk(1, svc6, "2001:db8:5::11", 80, 1)
	if got, want := mhDestKey(d), uint32(0x20010db8^0x00050000^0x11+80); got != want {
		t.Errorf("IPv6 destination of an IPv6 service hashes %#x, want %#x", got, want)
	}
}

// TestMaglevTableGolden fixes the table for three destinations with weights
// 1, 2, 3 (list order 198.19.0.1, .2, .3, port 80): their permutations, the
// first 32 slots, the slot counts and the slots of a few clients.
func TestMaglevTableGolden(t *testing.T) {
	dests := hashTestDests(1, 2, 3)
	m := NewMaglev(Options{})
	if err := m.Init(dests); err != nil {
		t.Fatal(err)
	}
	ref := &mhRef{}
	ref.Init(dests)
	mhCheckTable(t, "weights 1,2,3", m, ref)

	for i, want := range []struct{ key, offset, skip uint32 }{
		{0xc6130051, 2220, 93},
		{0xc6130052, 1765, 1497},
		{0xc6130053, 3680, 3583},
	} {
		k := mhDestKey(dests[i])
		off := hsiphash1u32(mhKey1, k) % mhTabSize
		skip := hsiphash1u32(mhKey2, k)%(mhTabSize-1) + 1
		if k != want.key || off != want.offset || skip != want.skip {
			t.Errorf("%s: key %#x offset %d skip %d, want %#x %d %d",
				destName(dests[i]), k, off, skip, want.key, want.offset, want.skip)
		}
	}

	const first32 = "2 2 1 2 2 1 1 2 1 2 2 1 2 2 2 1 2 2 1 0 2 1 1 2 1 1 2 2 1 2 2 1"
	tab := mhTableDests(m)
	if got := hashTableString(tab[:32], dests); got != first32 {
		t.Errorf("first 32 slots:\n%s\nwant\n%s", got, first32)
	}
	counts := make([]int, len(dests))
	for _, d := range tab {
		for j, x := range dests {
			if x == d {
				counts[j]++
			}
		}
	}
	if want := []int{683, 1364, 2046}; fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("slot counts %v, want %v", counts, want)
	}

	for _, c := range []struct {
		src        string
		slot       uint32
		want, port string // without and with mh-port (client port 40000)
	}{
		{"198.18.0.10", 3734, "198.19.0.2:80", "198.19.0.2:80"},
		{"198.18.0.11", 1112, "198.19.0.2:80", "198.19.0.1:80"},
		{"198.18.0.12", 3602, "198.19.0.1:80", "198.19.0.2:80"},
		{"2001:db8:c::10", 269, "198.19.0.2:80", "198.19.0.3:80"},
	} {
		p := &service.Packet{Src: netip.MustParseAddr(c.src), SrcPort: 40000, Proto: service.ProtoTCP}
		if got := hsiphash1u32(mhKey1, shmhKey(p, false)) % mhTabSize; got != c.slot {
			t.Errorf("slot of %s = %d, want %d", c.src, got, c.slot)
		}
		if got := destName(m.Schedule(dests, p)); got != c.want {
			t.Errorf("%s: %s, want %s", c.src, got, c.want)
		}
		m.SetFlags(service.FlagMHPort)
		if got := destName(m.Schedule(dests, p)); got != c.port {
			t.Errorf("%s port 40000 with mh-port: %s, want %s", c.src, got, c.port)
		}
		m.SetFlags(0)
	}
}

// TestMaglevTurns: with last weights far apart the relative weights are
// shifted into 6 bits, and a small weight still gets one slot per round.
func TestMaglevTurns(t *testing.T) {
	dests := hashTestDests(1000, 1, 0, 10)
	setWeightLast := dests[2]
	hashSetWeight(setWeightLast, 0) // weight 0 from the start: last weight 0, no slots
	m := NewMaglev(Options{})
	m.Init(dests)
	ref := &mhRef{}
	ref.Init(dests)
	mhCheckTable(t, "weights 1000,1,0,10", m, ref)
	if ref.gcd != 1 || ref.rshift != 10-6 {
		t.Errorf("gcd %d rshift %d, want 1 and 4 (fls(1000) = 10)", ref.gcd, ref.rshift)
	}
	counts := map[*service.Dest]int{}
	for _, d := range mhTableDests(m) {
		counts[d]++
	}
	if counts[dests[2]] != 0 {
		t.Errorf("a destination added with weight 0 has %d slots", counts[dests[2]])
	}
	// turns: 1000>>4 = 62, 1>>4 = 0 -> 1, 10>>4 = 0 -> 1.
	if !(counts[dests[0]] > 60*counts[dests[1]]/2 && counts[dests[1]] > 0 && counts[dests[3]] > 0) {
		t.Errorf("slot counts %d %d %d", counts[dests[0]], counts[dests[1]], counts[dests[3]])
	}
}

func TestMaglevTooManyDests(t *testing.T) {
	many := make([]*service.Dest, mhTabSize+1)
	for i := range many {
		many[i] = newTestDest(i+1, 1)
	}
	m := NewMaglev(Options{})
	err := m.Init(many)
	if !errors.Is(err, ErrTooManyDests) {
		t.Fatalf("Init with %d dests: %v", len(many), err)
	}
	if !strings.Contains(err.Error(), "4094") {
		t.Errorf("error %q does not say how many", err)
	}
	if (&mhRef{}).Init(many) == nil {
		t.Error("reference accepted 4094 dests")
	}

	// Exactly M destinations of weight 1: one slot each.
	if err := m.Init(many[:mhTabSize]); err != nil {
		t.Fatalf("Init with %d dests: %v", mhTabSize, err)
	}
	seen := map[*service.Dest]bool{}
	for _, d := range mhTableDests(m) {
		seen[d] = true
	}
	if len(seen) != mhTabSize {
		t.Errorf("%d destinations got slots, want all %d", len(seen), mhTabSize)
	}

	// A later hook that would exceed M keeps the old table, even for a
	// destination that has since been deleted (the kernel ignores the
	// hook's EINVAL and mh does not test IP_VS_DEST_F_AVAILABLE).
	small := hashTestDests(1, 1)
	m.Init(small)
	ref := &mhRef{}
	ref.Init(small)
	old := m.tab.Load()
	gone := small[0]
	rest := append([]*service.Dest{small[1]}, many[2:]...) // 4093 others... plus one more below
	rest = append(rest, newTestDest(9999, 1))
	if len(rest) <= mhTabSize {
		t.Fatalf("test setup: %d dests", len(rest))
	}
	gone.SetAvailable(false)
	m.DelDest(rest, gone)
	ref.DelDest(rest, gone)
	if m.tab.Load() != old {
		t.Fatal("a failed rebuild replaced the table")
	}
	mhCheckTable(t, "after a failed rebuild", m, ref)
	var client *service.Packet
	for c := 0; client == nil; c++ {
		p := &service.Packet{Src: netip.AddrFrom4([4]byte{198, 18, 0, byte(c)}), Proto: service.ProtoTCP}
		if ref.Schedule(rest, p) == gone {
			client = p
		}
	}
	if got := m.Schedule(rest, client); got != gone {
		t.Errorf("client of the deleted dest got %s; the kernel keeps it on the stale table", destName(got))
	}
}

// mhClients returns n distinct client addresses.
func mhClients(n int) []*service.Packet {
	ps := make([]*service.Packet, n)
	for i := range ps {
		ps[i] = &service.Packet{Src: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}),
			SrcPort: uint16(1024 + i%60000), Proto: service.ProtoTCP}
	}
	return ps
}

// TestMaglevRemovalDisruption: removing one of N servers moves its own
// clients and only a few others: Maglev's promise of minimal disruption.
func TestMaglevRemovalDisruption(t *testing.T) {
	const n, clients = 10, 20000
	dests := make([]*service.Dest, n)
	for i := range dests {
		dests[i] = newTestDest(i+1, 1)
	}
	m := NewMaglev(Options{})
	m.Init(dests)
	ps := mhClients(clients)
	before := make([]*service.Dest, clients)
	for i, p := range ps {
		before[i] = m.Schedule(dests, p)
	}
	for _, victim := range []int{0, 4, 9} {
		gone := dests[victim]
		rest := without(dests, gone)
		m.DelDest(rest, gone)
		var own, others int
		for i, p := range ps {
			got := m.Schedule(rest, p)
			switch {
			case got == gone || got == nil:
				t.Fatalf("client %d got %s after the removal", i, destName(got))
			case before[i] == gone:
				own++
			case got != before[i]:
				others++
			}
		}
		movedFrac := float64(own+others) / clients
		t.Logf("removing 1 of %d: %d own clients moved, %d others moved (%.1f%% in all, ideal %.1f%%)",
			n, own, others, 100*movedFrac, 100.0/n)
		// The ideal is 1/N (only the removed server's clients); Maglev
		// tables disrupt a little more. Bound: 1.5/N in all, at most 3%
		// of the other servers' clients.
		if movedFrac > 1.5/n || float64(others)/clients > 0.03 {
			t.Errorf("removing 1 of %d servers moved %.1f%% of clients (%d not on the removed server)",
				n, 100*movedFrac, others)
		}
		if own < clients/n/2 {
			t.Errorf("the removed server had only %d of %d clients", own, clients)
		}
		m.AddDest(dests, gone) // back as before (same list order)
		for i, p := range ps[:1000] {
			if got := m.Schedule(dests, p); got != before[i] {
				t.Fatalf("re-adding the server did not restore the table: client %d on %s, was %s", i, destName(got), destName(before[i]))
			}
		}
	}
}

// TestMaglevQuiesce: weight 0 does not reshuffle the table (it is built
// from the last non-zero weight); the quiesced server's clients fail, or
// with mh-fallback go elsewhere, and every other client stays.
func TestMaglevQuiesce(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		var f service.Flags
		if fallback {
			f = service.FlagMHFallback
		}
		dests := hashTestDests(1, 2, 3, 1, 2)
		m := NewMaglev(Options{Flags: f})
		m.Init(dests)
		ps := mhClients(5000)
		before := make([]*service.Dest, len(ps))
		for i, p := range ps {
			before[i] = m.Schedule(dests, p)
		}
		tabBefore := mhTableDests(m)
		q := dests[2]
		hashSetWeight(q, 0)
		m.UpdDest(dests, q)
		if fmt.Sprint(mhTableDests(m)) != fmt.Sprint(tabBefore) {
			t.Fatal("weight 0 changed the lookup table")
		}
		var moved int
		for i, p := range ps {
			got := m.Schedule(dests, p)
			switch {
			case before[i] != q && got != before[i]:
				t.Fatalf("fallback=%v: client %d moved from %s to %s", fallback, i, destName(before[i]), destName(got))
			case before[i] == q && !fallback && got != nil:
				t.Fatalf("client %d of the quiesced server got %s without mh-fallback", i, destName(got))
			case before[i] == q && fallback && (got == nil || got == q):
				t.Fatalf("client %d of the quiesced server got %s with mh-fallback", i, destName(got))
			case before[i] == q:
				moved++
			}
		}
		if fallback && moved == 0 {
			t.Error("the quiesced server had no clients")
		}
		// Weight back: everyone is where they were.
		hashSetWeight(q, 3)
		m.UpdDest(dests, q)
		for i, p := range ps {
			if got := m.Schedule(dests, p); got != before[i] {
				t.Fatalf("after restoring the weight client %d is on %s, was %s", i, destName(got), destName(before[i]))
			}
		}
	}
}

func TestMaglevEmpty(t *testing.T) {
	p := &service.Packet{Src: netip.MustParseAddr("198.18.0.10"), Proto: service.ProtoTCP}
	m := NewMaglev(Options{Flags: service.FlagMHFallback})
	if err := m.Init(nil); err != nil {
		t.Fatal(err)
	}
	if d := m.Schedule(nil, p); d != nil {
		t.Errorf("empty: %s", destName(d))
	}
	// Only destinations added with weight 0: no last weight, no table.
	dests := hashTestDests(0, 0)
	m.Init(dests)
	if m.tab.Load() != nil {
		t.Error("a table was built from last weights 0")
	}
	// All unavailable: fallback walks all 4093 rehashes and fails.
	dests = hashTestDests(1, 2)
	m.Init(dests)
	hashSetWeight(dests[0], 0)
	dests[1].SetCounts(0, 0, true)
	m.UpdDest(dests, dests[0])
	if d := m.Schedule(dests, p); d != nil {
		t.Errorf("all unavailable: %s", destName(d))
	}
}

// TestHashSchedulersConcurrent runs Schedule on several goroutines while
// the control plane adds, edits and deletes destinations; under -race it
// checks the table publication, otherwise that every choice is one of the
// destinations ever added (or none).
func TestHashSchedulersConcurrent(t *testing.T) {
	for _, sc := range hashBenchScheds {
		t.Run(sc.name, func(t *testing.T) {
			s := sc.mk()
			pool := hashBenchDests(16, false)
			known := map[*service.Dest]bool{nil: true}
			for _, d := range pool {
				known[d] = true
			}
			list := append([]*service.Dest(nil), pool[:8]...)
			if err := s.Init(list); err != nil {
				t.Fatal(err)
			}
			ps := hashBenchPackets()
			stop := make(chan struct{})
			errs := make(chan string, 2)
			var wg sync.WaitGroup
			for g := range 2 {
				wg.Go(func() {
					for i := g; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						if d := s.Schedule(nil, &ps[i%len(ps)]); !known[d] {
							errs <- destName(d)
							return
						}
					}
				})
			}
			steps := 300
			if hashRaceEnabled {
				steps = 30
			}
			for i := range steps {
				d := pool[i%len(pool)]
				switch i % 3 {
				case 0:
					if slices.Contains(list, d) {
						list = without(list, d)
						s.DelDest(list, d)
					} else {
						list = prepend(list, d)
						s.AddDest(list, d)
					}
				case 1:
					hashSetWeight(d, int32(i%4))
					s.UpdDest(list, d)
				case 2:
					d.SetCounts(0, 0, i%5 == 0)
				}
			}
			close(stop)
			wg.Wait()
			select {
			case e := <-errs:
				t.Fatalf("Schedule returned an unknown destination %s", e)
			default:
			}
		})
	}
}

// hashOracleRuns parses the seqc blocks of an oracle transcript: for each,
// the lines "k src [dst] -> NAME" of its stdout, as [src, dst, NAME].
func hashOracleRuns(t *testing.T, transcript string) [][][3]string {
	t.Helper()
	var runs [][][3]string
	lines := strings.Split(transcript, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "==== $ seqc ") {
			continue
		}
		i += 2 // "---- stdout bytes=N"
		var run [][3]string
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "---- "); i++ {
			f := strings.Fields(lines[i])
			switch {
			case len(f) == 4 && f[2] == "->":
				run = append(run, [3]string{f[1], "", f[3]})
			case len(f) == 5 && f[3] == "->":
				run = append(run, [3]string{f[1], f[2], f[4]})
			case len(f) == 1 && f[0] == "DONE":
			default:
				t.Fatalf("transcript line %q", lines[i])
			}
		}
		runs = append(runs, run)
	}
	return runs
}

// TestHashOracle replays testdata/oracle/hash.sh, which ran real traffic
// through the mh, sh and dh schedulers of a real kernel (Debian
// 6.1.0-50-amd64 under the oracle VM, run 2026-11-22; testdata/oracle/
// _versions.txt), and checks that GoLVS picks the same real server for every
// one of its connections (or none where the kernel refused the connection).
func TestHashOracle(t *testing.T) {
	raw, err := os.ReadFile("testdata/oracle/hash.out")
	if err != nil {
		t.Fatal(err)
	}
	runs := hashOracleRuns(t, string(raw))
	if len(runs) != 12 {
		t.Fatalf("%d seqc blocks in the transcript, want 12", len(runs))
	}
	svc := func(fam service.Family, proto uint8, port uint16) service.Key {
		if fam == service.IPv6 {
			return service.Key{Family: fam, Proto: proto, Addr: netip.MustParseAddr("2001:db8:c::100"), Port: port}
		}
		return service.Key{Family: fam, Proto: proto, Addr: netip.MustParseAddr("198.18.0.100"), Port: port}
	}
	// rs builds rs1..rsN of the topology (198.19.0.1N, 2001:db8:5::1N)
	// with the weights given, in kernel list order (rsN first).
	rs := func(k service.Key, port uint16, weights ...int32) (list []*service.Dest, byName map[string]*service.Dest) {
		byName = map[string]*service.Dest{}
		for i, w := range weights {
			a := netip.AddrFrom4([4]byte{198, 19, 0, byte(11 + i)})
			if k.Family == service.IPv6 {
				a = netip.MustParseAddr(fmt.Sprintf("2001:db8:5::1%d", i+1))
			}
			d := service.NewDest(uint32(i+1), k, a, port, service.DestConfig{Fwd: service.Masq, Weight: w}, stats.New(1))
			byName[fmt.Sprintf("rs%d", i+1)] = d
			list = prepend(list, d)
		}
		return list, byName
	}
	// check schedules every connection of run n.
	total := 0
	check := func(n int, what string, s service.Scheduler, list []*service.Dest, byName map[string]*service.Dest,
		pkt func(k int, src, dst string) *service.Packet) {
		t.Helper()
		if len(runs[n]) == 0 {
			t.Fatalf("%s: no connections in the transcript", what)
		}
		bad := 0
		total += len(runs[n])
		for k, c := range runs[n] {
			want := byName[c[2]]
			if want == nil && !strings.HasPrefix(c[2], "ERROR") {
				t.Fatalf("%s: connection %d answered by %q", what, k+1, c[2])
			}
			if got := s.Schedule(list, pkt(k, c[0], c[1])); got != want {
				if bad++; bad <= 5 {
					t.Errorf("%s: connection %d from %s %s: GoLVS chose %s, the kernel %s (%s)",
						what, k+1, c[0], c[1], destName(got), destName(want), c[2])
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of %d connections differ", what, bad, len(runs[n]))
		}
	}
	tcpFrom := func(_ int, src, _ string) *service.Packet {
		return &service.Packet{Src: netip.MustParseAddr(src), SrcPort: 40000, Proto: service.ProtoTCP}
	}
	udpPort := func(base int) func(k int, src, _ string) *service.Packet {
		return func(k int, src, _ string) *service.Packet {
			return &service.Packet{Src: netip.MustParseAddr(src), SrcPort: uint16(base + k), Proto: service.ProtoUDP}
		}
	}

	for _, sh := range []bool{false, true} {
		name, port, off := "mh", uint16(80), 0
		mk := func(f service.Flags) interface {
			service.Scheduler
			SetFlags(service.Flags)
		} {
			return NewMaglev(Options{Flags: f})
		}
		fallback, portFlag := service.FlagMHFallback, service.FlagMHPort
		if sh {
			name, port, off = "sh", 81, 6
			mk = func(f service.Flags) interface {
				service.Scheduler
				SetFlags(service.Flags)
			} {
				return NewSourceHash(Options{Flags: f})
			}
			fallback, portFlag = service.FlagSHFallback, service.FlagSHPort
		}
		tcp := svc(service.IPv4, service.ProtoTCP, port)
		list, by := rs(tcp, port, 1, 2, 3, 1)
		s := mk(0)
		if err := s.Init(list); err != nil {
			t.Fatal(err)
		}
		check(off+0, name+" weights 1 2 3 1", s, list, by, tcpFrom)
		hashSetWeight(by["rs2"], 0)
		s.UpdDest(list, by["rs2"])
		check(off+1, name+" rs2 weight 0", s, list, by, tcpFrom)
		s.SetFlags(fallback)
		check(off+2, name+" rs2 weight 0, fallback", s, list, by, tcpFrom)
		if !sh {
			gone := by["rs3"]
			list = without(list, gone)
			gone.SetAvailable(false)
			s.DelDest(list, gone)
			hashSetWeight(by["rs2"], 2)
			s.UpdDest(list, by["rs2"])
			check(3, "mh rs3 deleted, rs2 weight 2", s, list, by, tcpFrom)
			off++
		}

		weights := []int32{1, 1, 1, 1}
		base := 30000
		if !sh {
			weights, base = []int32{5, 1, 1, 2}, 20000
		}
		list, by = rs(svc(service.IPv4, service.ProtoUDP, port), port, weights...)
		s = mk(portFlag)
		s.Init(list)
		check(off+3, name+"-port", s, list, by, udpPort(base))

		list, by = rs(svc(service.IPv6, service.ProtoTCP, port), port, 1, 1, 2)
		s = mk(0)
		s.Init(list)
		check(off+4, name+" IPv6", s, list, by, tcpFrom)
	}

	fw := service.Key{Family: service.IPv4, FWMark: 1}
	list, by := rs(fw, 80, 1, 1, 1, 1)
	dh := NewDestHash(Options{})
	dh.Init(list)
	check(11, "dh", dh, list, by, func(_ int, src, dst string) *service.Packet {
		return &service.Packet{Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: 80, Proto: service.ProtoTCP}
	})
	t.Logf("%d connections checked against the kernel", total)
}
