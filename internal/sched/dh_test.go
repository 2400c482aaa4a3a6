package sched

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"golvs/internal/service"
)

// hashDiffSeeds is how many random sequences each hashing scheduler (and
// each flag setting of sh and mh) is run through against its reference.
const hashDiffSeeds = 200

// hashDiffConfig varies the harness configuration with the seed, so that
// the seeds cover few and many destinations, small and large weights
// (large ones make mh shift its turns), frequent weight 0, thresholds and
// clients that come back.
func hashDiffConfig(seed uint64, steps int) diffConfig {
	return diffConfig{
		steps:      steps,
		maxDests:   []int{3, 12, 40}[seed%3],
		maxWeight:  []int32{1, 10, 1000}[seed/3%3],
		zeroWeight: []float64{0, 0.2, 0.5}[seed/9%3],
		ipv6:       seed%2 == 0,
		thresholds: seed%5 != 0,
		udp:        seed%7 == 0,
		srcPool:    []int{0, 20, 300}[seed/27%3],
		dstPool:    []int{0, 30}[seed/81%2],
	}
}

func TestDestHashDifferential(t *testing.T) {
	for seed := uint64(0); seed < hashDiffSeeds; seed++ {
		cfg := hashDiffConfig(seed, hashDiffSteps(1000))
		cfg.dstPool = 1 + int(seed%50) // dh keys on the packet destination
		runDifferential(t, seed, cfg, NewDestHash(Options{}), &dhRef{})
	}
}

// hashTableString renders a bucket table as the list positions of its
// destinations ("-" for none), in rows of 32.
func hashTableString(tab []*service.Dest, dests []*service.Dest) string {
	var b strings.Builder
	for i, d := range tab {
		if i > 0 && i%32 == 0 {
			b.WriteByte('\n')
		} else if i > 0 {
			b.WriteByte(' ')
		}
		pos := -1
		for j, x := range dests {
			if x == d {
				pos = j
			}
		}
		if pos < 0 {
			b.WriteByte('-')
		} else {
			fmt.Fprintf(&b, "%d", pos)
		}
	}
	return b.String()
}

// hashTestDests returns destinations 198.19.0.1.. with the given weights,
// in list order (as the kernel would hold them after adding them in reverse).
func hashTestDests(weights ...int32) []*service.Dest {
	ds := make([]*service.Dest, len(weights))
	for i, w := range weights {
		ds[i] = newTestDest(i+1, w)
	}
	return ds
}

func TestDestHashTableGolden(t *testing.T) {
	dests := hashTestDests(1, 2, 3)
	s := NewDestHash(Options{})
	if err := s.Init(dests); err != nil {
		t.Fatal(err)
	}
	ref := &dhRef{}
	ref.Init(dests)
	got := hashTableString(s.tab.Load()[:], dests)
	if want := hashTableString(ref.buckets[:], dests); got != want {
		t.Fatalf("table differs from the reference:\n%s\nwant\n%s", got, want)
	}
	// One bucket per destination per round, weights ignored.
	want := strings.TrimSpace(strings.Repeat("0 1 2 ", 86))
	want = strings.Join(strings.Fields(want)[:256], " ")
	if flat := strings.ReplaceAll(got, "\n", " "); flat != want {
		t.Errorf("dh table for 3 destinations:\n%s", got)
	}
	// The hash of a few destination addresses (hash_32(ntohl(addr), 8)).
	for _, c := range []struct {
		addr   string
		bucket uint32
	}{
		{"198.18.0.100", hash32(0xc6120064, 8)},
		{"0.0.0.0", 0},
		{"0.0.0.1", 0x61},         // 0x61C88647 >> 24
		{"255.255.255.255", 0x9e}, // -0x61C88647 = 0x9E3779B9
		{"2001:db8::1", hash32(0x20010db8^1, 8)},
	} {
		a := netip.MustParseAddr(c.addr)
		if got := hash32(fold(a), dhTabBits); got != c.bucket {
			t.Errorf("bucket of %s = %d, want %d", a, got, c.bucket)
		}
		if got := krefHash32(krefAddrFold(krefPacketAF(a), a), 8); got != c.bucket {
			t.Errorf("reference bucket of %s = %d, want %d", a, got, c.bucket)
		}
	}
}

func TestDestHashIgnoresWeightUpdate(t *testing.T) {
	dests := hashTestDests(1, 5)
	s := NewDestHash(Options{})
	s.Init(dests)
	before := s.tab.Load()
	c := dests[0].Config()
	c.Weight = 9
	dests[0].SetConfig(c)
	s.UpdDest(dests, dests[0])
	if s.tab.Load() != before {
		t.Error("dh rebuilt its table on a weight update; the kernel has no upd_dest hook")
	}
}

func TestDestHashUnavailable(t *testing.T) {
	dests := hashTestDests(1)
	s := NewDestHash(Options{})
	s.Init(dests)
	p := &service.Packet{Src: netip.MustParseAddr("198.18.0.10"), Dst: testSvc.Addr, Proto: service.ProtoTCP}
	if got := s.Schedule(dests, p); got != dests[0] {
		t.Fatalf("got %v", destName(got))
	}
	for _, c := range []struct {
		name string
		mod  func(d *service.Dest)
		undo func(d *service.Dest)
	}{
		{"weight 0", func(d *service.Dest) { hashSetWeight(d, 0) }, func(d *service.Dest) { hashSetWeight(d, 1) }},
		{"overloaded", func(d *service.Dest) { d.SetCounts(0, 0, true) }, func(d *service.Dest) { d.SetCounts(0, 0, false) }},
		{"deleted", func(d *service.Dest) { d.SetAvailable(false) }, func(d *service.Dest) { d.SetAvailable(true) }},
	} {
		c.mod(dests[0])
		if got := s.Schedule(dests, p); got != nil {
			t.Errorf("%s: got %v, want none", c.name, destName(got))
		}
		c.undo(dests[0])
	}
	empty := NewDestHash(Options{})
	empty.Init(nil)
	if got := empty.Schedule(nil, p); got != nil {
		t.Errorf("empty service: got %v", destName(got))
	}
}

func hashSetWeight(d *service.Dest, w int32) {
	c := d.Config()
	c.Weight = w
	d.SetConfig(c)
}
