package realserver

import (
	"bytes"
	"net/netip"
	"testing"

	"golvs/internal/header"
)

var (
	vip4    = netip.MustParseAddr("198.18.100.1")
	vip6    = netip.MustParseAddr("2001:db8:100::1")
	client4 = netip.MustParseAddr("198.18.0.1")
	client6 = netip.MustParseAddr("2001:db8::1")
	dir4    = netip.MustParseAddr("198.18.1.1")
	rs4     = netip.MustParseAddr("198.18.1.2")
	other4  = netip.MustParseAddr("198.18.100.99")
	other6  = netip.MustParseAddr("2001:db8:100::99")
)

func testVIPs() vipSet { return newVIPSet([]netip.Addr{vip4, vip6}) }

func TestDecapsulate(t *testing.T) {
	in4 := udpPacket(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(vip4, 53), []byte("hello"))
	in6 := udpPacket(netip.AddrPortFrom(client6, 40000), netip.AddrPortFrom(vip6, 53), []byte("hello"))
	not4 := udpPacket(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(other4, 53), []byte("x"))
	not6 := udpPacket(netip.AddrPortFrom(client6, 40000), netip.AddrPortFrom(other6, 53), []byte("x"))
	padded := append(append([]byte(nil), in4...), 0, 0, 0, 0) // bytes past the inner total length
	shortTot := append([]byte(nil), in4...)
	header.IPv4(shortTot).SetTotalLength(uint16(len(in4) + 1))
	longPL := append([]byte(nil), in6...)
	header.IPv6(longPL).SetPayloadLength(uint16(len(in6)))

	tests := []struct {
		name      string
		b         []byte
		e         Encaps
		want      verdict
		wantInner []byte
	}{
		{"ipip", outer4(dir4, rs4, 4, in4), IPIP, inject, in4},
		{"sit", outer4(dir4, rs4, 41, in6), SIT, inject, in6},
		// An IPv6 raw socket delivers only what follows the outer header.
		{"ip6ip6", in6, IP6IP6, inject, in6},
		{"ipip6", in4, IPIP6, inject, in4},
		{"ipip padded inner trimmed", outer4(dir4, rs4, 4, padded), IPIP, inject, in4},
		{"ipip not a VIP", outer4(dir4, rs4, 4, not4), IPIP, dropNotVIP, not4},
		{"ip6ip6 not a VIP", not6, IP6IP6, dropNotVIP, not6},
		{"ipip6 not a VIP", not4, IPIP6, dropNotVIP, not4},
		{"ipip carrying IPv6", outer4(dir4, rs4, 4, in6), IPIP, dropMalformed, nil},
		{"sit carrying IPv4", outer4(dir4, rs4, 41, in4), SIT, dropMalformed, nil},
		{"ip6ip6 carrying IPv4", in4, IP6IP6, dropMalformed, nil},
		{"ipip6 carrying IPv6", in6, IPIP6, dropMalformed, nil},
		{"wrong outer protocol", outer4(dir4, rs4, 41, in4), IPIP, dropMalformed, nil},
		{"outer truncated", outer4(dir4, rs4, 4, in4)[:30], IPIP, dropMalformed, nil},
		{"empty", nil, IPIP, dropMalformed, nil},
		{"empty v6", nil, IP6IP6, dropMalformed, nil},
		{"inner total length too long", outer4(dir4, rs4, 4, shortTot), IPIP, dropMalformed, nil},
		{"inner payload length too long", longPL, IP6IP6, dropMalformed, nil},
		{"inner header only", outer4(dir4, rs4, 4, in4[:10]), IPIP, dropMalformed, nil},
	}
	s := testVIPs()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inner, v := s.decapsulate(tt.b, tt.e)
			if v != tt.want {
				t.Fatalf("verdict %d, want %d", v, tt.want)
			}
			if tt.wantInner != nil && !bytes.Equal(inner, tt.wantInner) {
				t.Errorf("inner\n got %x\nwant %x", inner, tt.wantInner)
			}
		})
	}
}

func TestCompletePartial(t *testing.T) {
	c4, c6 := netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(client6, 40000)
	v4, v6 := netip.AddrPortFrom(vip4, 80), netip.AddrPortFrom(vip6, 80)
	odd := []byte("odd-length payload!")
	packets := map[string][]byte{
		"tcp4":     tcpPacket(c4, v4, []byte("GET / HTTP/1.0\r\n\r\n")),
		"tcp6":     tcpPacket(c6, v6, []byte("GET / HTTP/1.0\r\n\r\n")),
		"udp4":     udpPacket(c4, v4, odd),
		"udp6":     udpPacket(c6, v6, odd),
		"tcp4 syn": tcpPacket(c4, v4, nil),
		"udp6 big": udpPacket(c6, v6, bytes.Repeat([]byte{0xa5}, 60000)),
	}
	for name, full := range packets {
		t.Run(name+"/partial completed", func(t *testing.T) {
			p := append([]byte(nil), full...)
			makePartial(p)
			if validL4(p) {
				t.Fatal("the partial packet already verifies: the test is wrong")
			}
			if !completePartial(p) {
				t.Fatal("completePartial = false for a partial checksum")
			}
			if !bytes.Equal(p, full) {
				t.Errorf("completed packet differs from the original with its full checksum")
			}
		})
		t.Run(name+"/full left alone", func(t *testing.T) {
			p := append([]byte(nil), full...)
			if completePartial(p) {
				t.Error("completePartial = true for a full checksum")
			}
			if !bytes.Equal(p, full) {
				t.Error("packet changed")
			}
		})
		t.Run(name+"/wrong left alone", func(t *testing.T) {
			p := append([]byte(nil), full...)
			seg, off := l4(p)
			seg[off] ^= 0x40
			want := append([]byte(nil), p...)
			if completePartial(p) || !bytes.Equal(p, want) {
				t.Error("a wrong checksum was changed")
			}
		})
	}
	t.Run("udp4 no checksum", func(t *testing.T) {
		p := udpPacket(c4, v4, odd)
		seg, _ := l4(p)
		seg[udpCsumOff], seg[udpCsumOff+1] = 0, 0
		if completePartial(p) {
			t.Error("a UDP datagram without checksum got one")
		}
	})
	t.Run("fragment", func(t *testing.T) {
		p := tcpPacket(c4, v4, []byte("x"))
		makePartial(p)
		h := header.IPv4(p)
		h.SetFragment(false, true, 0)
		if completePartial(p) {
			t.Error("a fragment was completed")
		}
	})
	t.Run("icmp", func(t *testing.T) {
		p := ipPacket(client4, vip4, header.ProtoICMPv4, []byte{8, 0, 0, 0, 0, 1, 0, 1}, 2)
		if completePartial(p) {
			t.Error("ICMP was completed")
		}
	})
	t.Run("truncated tcp", func(t *testing.T) {
		p := ipPacket(client4, vip4, header.ProtoTCP, make([]byte, 18), 16)
		if completePartial(p) {
			t.Error("a TCP segment shorter than its header was completed")
		}
	})
	t.Run("udp length beyond packet", func(t *testing.T) {
		p := udpPacket(c4, v4, odd)
		seg, _ := l4(p)
		header.UDP(seg).SetLength(uint16(len(seg) + 2))
		if completePartial(p) {
			t.Error("a UDP datagram longer than its packet was completed")
		}
	})
	t.Run("full checksum equal to the pseudo-header sum", func(t *testing.T) {
		// Search for a payload whose full checksum is the pseudo-header
		// sum: completing must then give the same value back.
		for i := range 1 << 17 {
			p := udpPacket(c4, v4, []byte{byte(i >> 16), byte(i >> 8), byte(i)})
			full := append([]byte(nil), p...)
			seg, _ := l4(p)
			before := header.UDP(seg).Checksum()
			makePartial(p)
			if header.UDP(seg).Checksum() != before {
				continue
			}
			if !completePartial(p) || !bytes.Equal(p, full) {
				t.Fatalf("payload %d: completing a full checksum that looks partial changed it", i)
			}
			return
		}
		t.Skip("no colliding payload found in 2^17 tries")
	})
}

// FuzzDecapsulate feeds arbitrary datagrams to the per-packet path:
// nothing may panic, and an injected packet is a whole IP packet of the
// right family addressed to a VIP that completePartial may work on.
func FuzzDecapsulate(f *testing.F) {
	in4 := udpPacket(netip.AddrPortFrom(client4, 1), netip.AddrPortFrom(vip4, 2), []byte("seed"))
	in6 := tcpPacket(netip.AddrPortFrom(client6, 1), netip.AddrPortFrom(vip6, 2), []byte("seed"))
	f.Add(outer4(dir4, rs4, 4, in4), uint8(0))
	f.Add(outer4(dir4, rs4, 41, in6), uint8(1))
	f.Add(in6, uint8(2))
	f.Add(in4, uint8(3))
	s := testVIPs()
	f.Fuzz(func(t *testing.T, b []byte, which uint8) {
		e := encapNames[int(which)%len(encapNames)].e
		inner, v := s.decapsulate(b, e)
		if v != inject {
			return
		}
		if e.inner6() {
			if !header.IPv6(inner).IsValid(len(inner)) || !s.has6(inner[ipv6DstOff:ipv6DstOff+16]) {
				t.Fatalf("injected a bad IPv6 packet %x", inner)
			}
		} else if !header.IPv4(inner).IsValid(len(inner)) || !s.has4(inner[ipv4DstOff:ipv4DstOff+4]) {
			t.Fatalf("injected a bad IPv4 packet %x", inner)
		}
		completePartial(inner)
	})
}

func TestDecapPathAllocs(t *testing.T) {
	s := testVIPs()
	in4 := tcpPacket(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(vip4, 80), make([]byte, 1400))
	makePartial(in4)
	pkt := outer4(dir4, rs4, 4, in4)
	partial := append([]byte(nil), pkt...)
	allocs := testing.AllocsPerRun(1000, func() {
		copy(pkt, partial)
		inner, v := s.decapsulate(pkt, IPIP)
		if v != inject || !completePartial(inner) {
			t.Fatal("not injected and completed")
		}
	})
	if allocs != 0 {
		t.Errorf("decapsulate+completePartial: %v allocations per packet, want 0", allocs)
	}
}

func BenchmarkDecapsulate(b *testing.B) {
	s := testVIPs()
	for _, bc := range []struct {
		name    string
		partial bool
		size    int
	}{{"full-1400", false, 1400}, {"partial-1400", true, 1400}, {"partial-64k", true, 65000}} {
		b.Run(bc.name, func(b *testing.B) {
			in4 := tcpPacket(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(vip4, 80), make([]byte, bc.size))
			if bc.partial {
				makePartial(in4)
			}
			pkt := outer4(dir4, rs4, 4, in4)
			orig := append([]byte(nil), pkt...)
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				copy(pkt[:64], orig[:64]) // the headers, where completion writes
				inner, _ := s.decapsulate(pkt, IPIP)
				completePartial(inner)
			}
		})
	}
}
