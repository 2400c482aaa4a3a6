package sched

import (
	"fmt"
	"net/netip"
	"testing"

	"golvs/internal/service"
)

// hashFlagSets are the four settings of the sh/mh flags (fallback = SCHED1,
// port = SCHED2).
var hashFlagSets = []service.Flags{0, service.FlagSched1, service.FlagSched2, service.FlagSched1 | service.FlagSched2}

func TestSourceHashDifferential(t *testing.T) {
	for _, f := range hashFlagSets {
		t.Run(fmt.Sprintf("flags=%#x", uint32(f)), func(t *testing.T) {
			for seed := uint64(0); seed < hashDiffSeeds; seed++ {
				runDifferential(t, seed, hashDiffConfig(seed, hashDiffSteps(500)),
					NewSourceHash(Options{Flags: f}), &shRef{flags: f})
			}
		})
	}
}

// hashPacketVariants returns packets the harness does not make: ICMP errors
// (inverse), protocols without ports, SCTP, and both families.
func hashPacketVariants() []*service.Packet {
	var ps []*service.Packet
	for i, src := range []string{"198.18.0.10", "198.18.7.200", "2001:db8:c::10", "2001:db8:c::abcd"} {
		for _, proto := range []uint8{service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP, 1, 58} {
			for _, inv := range []bool{false, true} {
				a := netip.MustParseAddr(src)
				other := netip.MustParseAddr("198.18.0.100")
				if a.Is6() {
					other = netip.MustParseAddr("2001:db8:c::100")
				}
				p := &service.Packet{Src: a, Dst: other, SrcPort: uint16(40000 + i*7919), DstPort: 80, Proto: proto, Inverse: inv}
				if inv {
					// The embedded packet of an ICMP error goes from
					// the server side to the client.
					p.Src, p.Dst = other, a
					p.SrcPort, p.DstPort = 80, p.SrcPort
				}
				ps = append(ps, p)
			}
		}
	}
	return ps
}

func TestSourceHashPacketVariants(t *testing.T) {
	dests := hashTestDests(1, 2, 0, 3, 1, 1, 4)
	dests[4].SetCounts(0, 0, true)
	for _, f := range hashFlagSets {
		s := NewSourceHash(Options{Flags: f})
		s.Init(dests)
		ref := &shRef{flags: f}
		ref.Init(dests)
		for _, p := range hashPacketVariants() {
			if got, want := s.Schedule(dests, p), ref.Schedule(dests, p); got != want {
				t.Errorf("flags %#x %+v: got %s, reference %s", uint32(f), *p, destName(got), destName(want))
			}
		}
	}
}

// TestSourceHashTableGolden fixes the bucket layout for weights 1, 2, 3:
// each destination gets weight consecutive buckets per round.
func TestSourceHashTableGolden(t *testing.T) {
	const want = "" +
		"0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1\n" +
		"1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2\n" +
		"2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2\n" +
		"0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1\n" +
		"1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2\n" +
		"2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2\n" +
		"0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1\n" +
		"1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2 2 2 0 1 1 2"
	dests := hashTestDests(1, 2, 3)
	s := NewSourceHash(Options{})
	s.Init(dests)
	if got := hashTableString(s.tab.Load()[:], dests); got != want {
		t.Errorf("sh table for weights 1,2,3:\n%s\nwant\n%s", got, want)
	}
	ref := &shRef{}
	ref.Init(dests)
	if got := hashTableString(ref.buckets[:], dests); got != want {
		t.Errorf("reference sh table for weights 1,2,3:\n%s", got)
	}
	// Weight 0 still takes one bucket per round; a huge weight takes all.
	dests = hashTestDests(0, 1000, 2)
	s.Init(dests)
	if got, want := hashTableString(s.tab.Load()[:8], dests), "0 1 1 1 1 1 1 1"; got != want {
		t.Errorf("sh table for weights 0,1000,2 starts %q, want %q", got, want)
	}
	// The buckets of a few clients: hash_32(ntohl(addr) [+ port], 8).
	for _, c := range []struct {
		src  string
		port uint16
		want uint32
	}{
		{"198.18.0.10", 0, 44},
		{"198.18.0.11", 0, 142},
		{"198.18.0.12", 0, 240},
		{"2001:db8:c::10", 0, 12},
	} {
		p := &service.Packet{Src: netip.MustParseAddr(c.src), SrcPort: c.port, Proto: service.ProtoTCP}
		if got := hash32(shmhKey(p, c.port != 0), shTabBits); got != c.want {
			t.Errorf("bucket of %s port %d = %d, want %d", c.src, c.port, got, c.want)
		}
	}
}

func TestSourceHashKeepsClient(t *testing.T) {
	dests := hashTestDests(1, 1, 1, 1)
	s := NewSourceHash(Options{})
	s.Init(dests)
	seen := map[*service.Dest]int{}
	for c := 0; c < 200; c++ {
		src := netip.AddrFrom4([4]byte{198, 18, byte(c >> 8), byte(c)})
		var first *service.Dest
		for port := 1024; port < 1024+50*7; port += 7 {
			d := s.Schedule(dests, &service.Packet{Src: src, SrcPort: uint16(port), Proto: service.ProtoTCP})
			if d == nil {
				t.Fatalf("client %s: no destination", src)
			}
			if first == nil {
				first = d
			} else if d != first {
				t.Fatalf("client %s moved from %s to %s between connections", src, destName(first), destName(d))
			}
		}
		seen[first]++
	}
	if len(seen) != len(dests) {
		t.Errorf("200 clients used %d of %d servers", len(seen), len(dests))
	}

	// With sh-port the source port is hashed too: one client's
	// connections spread over the servers.
	s = NewSourceHash(Options{Flags: service.FlagSHPort})
	s.Init(dests)
	spread := map[*service.Dest]bool{}
	src := netip.MustParseAddr("198.18.0.10")
	for port := 1024; port < 1024+64; port++ {
		spread[s.Schedule(dests, &service.Packet{Src: src, SrcPort: uint16(port), Proto: service.ProtoTCP})] = true
	}
	if len(spread) != len(dests) {
		t.Errorf("sh-port: 64 ports of one client used %d of %d servers", len(spread), len(dests))
	}
}

// TestSourceHashFallback: quiescing a server (weight 0) fails its clients
// without sh-fallback; with it they go to other servers while every other
// client stays where it was.
func TestSourceHashFallback(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		var f service.Flags
		if fallback {
			f = service.FlagSHFallback
		}
		dests := hashTestDests(1, 1, 1, 1)
		s := NewSourceHash(Options{Flags: f})
		s.Init(dests)
		const clients = 1000
		before := make([]*service.Dest, clients)
		pkt := func(c int) *service.Packet {
			return &service.Packet{Src: netip.AddrFrom4([4]byte{198, 18, byte(c >> 8), byte(c)}), SrcPort: 5000, Proto: service.ProtoTCP}
		}
		for c := range clients {
			before[c] = s.Schedule(dests, pkt(c))
		}
		quiesced := dests[2]
		hashSetWeight(quiesced, 0)
		s.UpdDest(dests, quiesced)
		var moved, stayed int
		for c := range clients {
			got := s.Schedule(dests, pkt(c))
			switch {
			case before[c] != quiesced && got != before[c]:
				t.Fatalf("fallback=%v: client %d of %s moved to %s", fallback, c, destName(before[c]), destName(got))
			case before[c] != quiesced:
				stayed++
			case !fallback && got != nil:
				t.Fatalf("client %d of the quiesced server got %s without sh-fallback", c, destName(got))
			case fallback && (got == nil || got == quiesced):
				t.Fatalf("client %d of the quiesced server got %s with sh-fallback", c, destName(got))
			default:
				moved++
			}
		}
		if moved == 0 || stayed == 0 {
			t.Errorf("fallback=%v: %d clients moved, %d stayed", fallback, moved, stayed)
		}
	}
}

func TestSourceHashEmptyAndAllUnavailable(t *testing.T) {
	p := &service.Packet{Src: netip.MustParseAddr("198.18.0.10"), Proto: service.ProtoTCP}
	s := NewSourceHash(Options{Flags: service.FlagSHFallback})
	s.Init(nil)
	if d := s.Schedule(nil, p); d != nil {
		t.Errorf("empty: %s", destName(d))
	}
	dests := hashTestDests(0, 0)
	s.Init(dests)
	if d := s.Schedule(dests, p); d != nil {
		t.Errorf("all weight 0: %s", destName(d))
	}
	// SetFlags takes effect without a rebuild, as svc->flags does.
	dests = hashTestDests(1, 1)
	s = NewSourceHash(Options{})
	s.Init(dests)
	var zeroClient *service.Packet
	for c := 0; zeroClient == nil; c++ {
		q := &service.Packet{Src: netip.AddrFrom4([4]byte{198, 18, 0, byte(c)}), Proto: service.ProtoTCP}
		if s.Schedule(dests, q) == dests[0] {
			zeroClient = q
		}
	}
	hashSetWeight(dests[0], 0)
	s.UpdDest(dests, dests[0])
	if d := s.Schedule(dests, zeroClient); d != nil {
		t.Fatalf("without fallback: %s", destName(d))
	}
	s.SetFlags(service.FlagSHFallback)
	if d := s.Schedule(dests, zeroClient); d != dests[1] {
		t.Errorf("after SetFlags(fallback): %s, want %s", destName(d), destName(dests[1]))
	}
}
