package forward

import (
	"bytes"
	"net/netip"
	"testing"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// quoteOf returns the IP packet of s cut to n bytes.
func quoteOf(s *pkt, n int) []byte { return s.ip()[:n] }

func TestICMPErrorRules(t *testing.T) {
	tcp4 := pkt{proto: header.ProtoTCP, src: client4, dst: vip4, sport: 1, dport: 80, ttl: 64}
	tcp6 := pkt{v6: true, proto: header.ProtoTCP, src: client6, dst: vip6, sport: 1, dport: 80, ttl: 64}
	with := func(s pkt, f func(*pkt)) *pkt { f(&s); return &s }
	icmp4 := func(typ uint8) *pkt {
		return &pkt{proto: header.ProtoICMPv4, src: client4, dst: vip4, ttl: 64, icmpType: typ, payload: quoteOf(&tcp4, 28)}
	}
	icmp6 := func(typ uint8) *pkt {
		return &pkt{v6: true, proto: header.ProtoICMPv6, src: client6, dst: vip6, ttl: 64, icmpType: typ, payload: quoteOf(&tcp6, 48)}
	}
	tests := []struct {
		name string
		in   *pkt
		raw  []byte // instead of in
		kind ICMPKind
		src  netip.Addr
		room int
		want Result
	}{
		{name: "TCP", in: &tcp4, want: Done},
		{name: "echo request is answered", in: icmp4(8), want: Done},
		{name: "timestamp (type 13) is answered", in: icmp4(13), want: Done},
		{name: "about an ICMP error", in: icmp4(3), want: Refused},
		{name: "about a redirect", in: icmp4(5), want: Refused},
		{name: "about an unknown ICMP type (> 18)", in: icmp4(19), want: Refused},
		{name: "ICMP without a type byte", in: &pkt{proto: header.ProtoICMPv4, src: client4, dst: vip4, ttl: 64, frag: laterFrag, fragOff: 0}, want: Refused},
		{name: "non-first fragment", in: with(tcp4, func(s *pkt) { s.frag, s.fragOff = laterFrag, 8 }), want: Refused},
		{name: "first fragment", in: with(tcp4, func(s *pkt) { s.frag = firstFrag }), want: Done},
		{name: "to multicast", in: with(tcp4, func(s *pkt) { s.dst = netip.MustParseAddr("224.0.0.251") }), want: Refused},
		{name: "to broadcast", in: with(tcp4, func(s *pkt) { s.dst = netip.MustParseAddr("255.255.255.255") }), want: Refused},
		{name: "in a broadcast frame", in: with(tcp4, func(s *pkt) { s.dstMAC, s.srcMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, macClient }), want: Refused},
		{name: "from 0.0.0.0", in: with(tcp4, func(s *pkt) { s.src = netip.MustParseAddr("0.0.0.0") }), want: Refused},
		{name: "from loopback", in: with(tcp4, func(s *pkt) { s.src = netip.MustParseAddr("127.0.0.1") }), want: Refused},
		{name: "from multicast", in: with(tcp4, func(s *pkt) { s.src = netip.MustParseAddr("239.1.1.1") }), want: Refused},
		{name: "from class E", in: with(tcp4, func(s *pkt) { s.src = netip.MustParseAddr("240.0.0.1") }), want: Refused},
		{name: "IPv6 TCP", in: &tcp6, want: Done},
		{name: "IPv6 echo request is answered", in: icmp6(128), want: Done},
		{name: "IPv6 about an ICMPv6 error", in: icmp6(1), want: Refused},
		{name: "IPv6 non-first fragment", in: with(tcp6, func(s *pkt) { s.frag, s.fragOff = laterFrag, 8 }), want: Refused},
		{name: "IPv6 to multicast: port unreachable refused", in: with(tcp6, func(s *pkt) { s.dst = netip.MustParseAddr("ff02::1") }), want: Refused},
		{name: "IPv6 to multicast: packet too big allowed (RFC 4443 2.4 e.3)", in: with(tcp6, func(s *pkt) { s.dst = netip.MustParseAddr("ff02::1") }), kind: FragNeeded, want: Done},
		{name: "IPv6 in a multicast frame", in: with(tcp6, func(s *pkt) { s.dstMAC, s.srcMAC = [6]byte{0x33, 0x33, 0, 0, 0, 1}, macClient }), want: Refused},
		{name: "IPv6 from ::", in: with(tcp6, func(s *pkt) { s.src = netip.IPv6Unspecified() }), want: Refused},
		{name: "IPv6 from multicast", in: with(tcp6, func(s *pkt) { s.src = netip.MustParseAddr("ff02::2") }), want: Refused},
		{name: "IPv4 without headroom", in: &tcp4, room: 27, want: NoHeadroom},
		{name: "IPv4 with exactly the headroom", in: &tcp4, room: 28, want: Done},
		{name: "IPv6 without headroom", in: &tcp6, room: 47, want: NoHeadroom},
		{name: "IPv6 with exactly the headroom", in: &tcp6, room: 48, want: Done},
		{name: "source of the wrong family", in: &tcp4, src: vip6, want: Malformed},
		{name: "IPv6 source of the wrong family", in: &tcp6, src: vip4, want: Malformed},
		{name: "unknown kind", in: &tcp4, kind: 9, want: Malformed},
		{name: "not IP", raw: ethHdr(macLB, macClient, header.EtherTypeARP), want: Malformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.raw
			if in == nil {
				in = tc.in.frame()
			}
			room := tc.room
			if room == 0 {
				room = Headroom
			}
			kind := tc.kind
			if kind == 0 {
				kind = PortUnreachable
			}
			src := tc.src
			if !src.IsValid() {
				src = vip4
				if tc.in != nil && tc.in.v6 {
					src = vip6
				}
			}
			b := loadRoom(in, room)
			r := ICMPError(&b.Buf, parse(in), kind, 1280, src, 1)
			b.untouched(t)
			if r != tc.want {
				t.Fatalf("result %v, want %v", r, tc.want)
			}
			if r != Done && !bytes.Equal(b.B, b.before) {
				t.Fatal("the buffer changed")
			}
			if r == Done {
				p := parse(b.Frame())
				if p.Reason != flow.ReasonNone || !p.ICMPError || p.Inner.Reason != flow.ReasonNone {
					t.Fatalf("not a decodable error: %v %v", p.Reason, p.Inner.Reason)
				}
			}
		})
	}
}

// TestICMPErrorMTUField: the frag-needed MTU is 16 bits in ICMPv4 and
// clamped there, 32 bits in ICMPv6.
func TestICMPErrorMTUField(t *testing.T) {
	for _, tc := range []struct {
		v6   bool
		mtu  int
		want uint32
	}{{false, 1400, 1400}, {false, 70000, 0xffff}, {false, -1, 0}, {true, 1280, 1280}, {true, 70000, 70000}} {
		s := &pkt{v6: tc.v6, proto: header.ProtoUDP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 64}
		src := vip4
		if tc.v6 {
			s.src, s.dst, src = client6, vip6, vip6
		}
		in := s.frame()
		b := load(in)
		if r := ICMPError(&b.Buf, parse(in), FragNeeded, tc.mtu, src, 0); r != Done {
			t.Fatal(r)
		}
		p := parse(b.Frame())
		l4 := p.L4(b.Frame())
		var got uint32
		if tc.v6 {
			got = header.ICMPv6(l4).MTU()
		} else {
			got = uint32(header.ICMPv4(l4).RestOfHeader())
		}
		if got != tc.want {
			t.Fatalf("v6=%v mtu %d: field %d, want %d", tc.v6, tc.mtu, got, tc.want)
		}
	}
}

func TestNATICMPErrors(t *testing.T) {
	q := &pkt{proto: header.ProtoUDP, src: vip4, dst: client4, sport: 53, dport: 40000, ttl: 64, payload: []byte("answer")}
	e := icmpAbout(q, netip.MustParseAddr("192.0.2.254"), vip4, q.ip())
	echo := &pkt{proto: header.ProtoICMPv4, src: client4, dst: vip4, ttl: 64, icmpType: 8}
	frag := *e
	frag.frag = firstFrag
	tests := []struct {
		name string
		in   *pkt
		addr netip.Addr
		mod  func(p *flow.Parsed)
		want Result
	}{
		{"an error", e, rs4, nil, Done},
		{"not an error", echo, rs4, nil, Malformed},
		{"fragmented error", &frag, rs4, nil, NeedsReassembly},
		{"wrong family", e, rs6, nil, Malformed},
		{"quote not decoded", e, rs4, func(p *flow.Parsed) { p.Inner.Reason = flow.ReasonTruncatedL4 }, Malformed},
		{"quote of the other family", e, rs4, func(p *flow.Parsed) { p.Inner.Tuple.Family = flow.FamilyIPv6 }, Malformed},
		{"quote misplaced", e, rs4, func(p *flow.Parsed) { p.Inner.L3Off += 4 }, Malformed},
		{"quote header beyond the packet", e, rs4, func(p *flow.Parsed) { p.Inner.IPHdrLen = 60 }, Malformed},
		{"ports beyond the packet", e, rs4, func(p *flow.Parsed) { p.Inner.L4Off = p.L3Off + p.IPLen - 2 }, Malformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in.frame()
			p := parse(in)
			if tc.mod != nil {
				tc.mod(p)
			}
			b := load(in)
			r := NATICMPIn(&b.Buf, p, tc.addr, 1)
			if r != tc.want {
				t.Fatalf("In: %v, want %v", r, tc.want)
			}
			if r != Done && !bytes.Equal(b.B, b.before) {
				t.Fatal("the buffer changed")
			}
			b = load(in)
			if r := NATICMPOut(&b.Buf, p, tc.addr, 1); r != tc.want {
				t.Fatalf("Out: %v, want %v", r, tc.want)
			}
		})
	}
}

func TestEncapErrors(t *testing.T) {
	s := &pkt{proto: header.ProtoUDP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 64}
	in := s.frame()
	big := &pkt{proto: header.ProtoUDP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 64, payload: make([]byte, 0xffff-28)}
	bigIn := big.frame()
	big6 := &pkt{v6: true, proto: header.ProtoUDP, src: client6, dst: vip6, sport: 1, dport: 2, ttl: 64, payload: make([]byte, 0xffff-48)}
	big6In := big6.frame()
	tests := []struct {
		name string
		in   []byte
		room int
		t    *Tunnel
		want Result
	}{
		{"IPIP fits the headroom exactly", in, 20, &Tunnel{Src: lb4, Dst: rs4}, Done},
		{"IPIP short of headroom", in, 19, &Tunnel{Src: lb4, Dst: rs4}, NoHeadroom},
		{"IPv6 GUE fits exactly", in, 52, &Tunnel{Src: lb6, Dst: rs6, Type: TunnelGUE}, Done},
		{"IPv6 GUE short of headroom", in, 51, &Tunnel{Src: lb6, Dst: rs6, Type: TunnelGUE}, NoHeadroom},
		{"unknown type", in, Headroom, &Tunnel{Src: lb4, Dst: rs4, Type: 3}, Malformed},
		{"mixed outer families", in, Headroom, &Tunnel{Src: lb4, Dst: rs6}, Malformed},
		{"no addresses", in, Headroom, &Tunnel{}, Malformed},
		{"IPv4 outer over 65535", bigIn, Headroom, &Tunnel{Src: lb4, Dst: rs4}, TooBig},
		{"IPv6 outer payload over 65535", big6In, Headroom, &Tunnel{Src: lb6, Dst: rs6, Type: TunnelGRE}, TooBig},
		{"IPv6 outer carries a 65535-byte IPv4 packet", bigIn, Headroom, &Tunnel{Src: lb6, Dst: rs6}, Done},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := loadRoom(tc.in, tc.room)
			r := Encap(&b.Buf, parse(tc.in), tc.t, 1, 1)
			b.untouched(t)
			if r != tc.want {
				t.Fatalf("result %v, want %v", r, tc.want)
			}
			if r != Done && !bytes.Equal(b.B, b.before) {
				t.Fatal("the buffer changed")
			}
		})
	}
}

func TestTunnelOverhead(t *testing.T) {
	for _, tc := range []struct {
		t    Tunnel
		want int
	}{
		{Tunnel{Dst: rs4}, 20},
		{Tunnel{Dst: rs6}, 40},
		{Tunnel{Dst: rs4, Type: TunnelGUE}, 32},
		{Tunnel{Dst: rs6, Type: TunnelGUE, Csum: true}, 52},
		{Tunnel{Dst: rs4, Type: TunnelGRE}, 24},
		{Tunnel{Dst: rs4, Type: TunnelGRE, Csum: true}, 28},
		{Tunnel{Dst: rs6, Type: TunnelGRE, Csum: true}, 48},
		{Tunnel{Dst: rs4, Type: 7}, -1},
	} {
		if got := tc.t.Overhead(); got != tc.want {
			t.Errorf("%+v: %d, want %d", tc.t, got, tc.want)
		}
	}
}

// TestGUESourcePort: udp_flow_src_port over 32768..60999 ("hash ^= hash
// << 16; return (((u64) hash * (max - min)) >> 32) + min").
func TestGUESourcePort(t *testing.T) {
	for _, tc := range []struct {
		hash uint32
		want uint16
	}{
		{0, 32768},
		{0x12345678, 40299}, // the golden GUE frame's
		{0xffffffff, 32768 + uint16(uint64(0x0000ffff)*28231>>32)},
		{0x0000ffff, 32768 + uint16(uint64(0xffffffff)*28231>>32)}, // 60998, the top
	} {
		if got := gueSourcePort(tc.hash); got != tc.want {
			t.Errorf("hash %#x: %d, want %d", tc.hash, got, tc.want)
		}
	}
}
