package forward

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/header"
)

// zeroSumUDP returns a UDP packet from src to dst whose computed checksum
// is 0, so that it must be sent as 0xFFFF (RFC 768; CSUM_MANGLED_0).
func zeroSumUDP(v6 bool, src, dst netip.Addr, sport, dport uint16) *pkt {
	s := &pkt{v6: v6, proto: header.ProtoUDP, src: src, dst: dst, sport: sport, dport: dport, ttl: 64, payload: []byte{0, 0}, udpZero: true}
	l4 := s.l4()
	w := ^checksum.Sum(l4, s.pseudo(len(l4))) // the word that brings the sum to 0xFFFF
	binary.BigEndian.PutUint16(s.payload, w)
	s.udpZero = false
	return s
}

func TestNATCases(t *testing.T) {
	type tc struct {
		name    string
		in      *pkt
		snat    bool
		addr    netip.Addr
		port    uint16
		partial bool
		res     Result
		want    *pkt // nil: the frame must be unchanged
		wantUDP uint16
	}
	zero4 := zeroSumUDP(false, client4, rs4, 40000, 8080)
	zero6 := zeroSumUDP(true, client6, rs6, 40000, 8080)
	mk := func(s pkt) *pkt { return &s }
	badCRC := &pkt{proto: header.ProtoSCTP, src: client4, dst: vip4, sport: 5000, dport: 80, ttl: 64, payload: []byte{1, 0, 0, 4}}
	tests := []tc{
		{
			name: "UDP incremental result 0 is sent as 0xFFFF",
			in:   mk(pkt{proto: header.ProtoUDP, src: client4, dst: vip4, sport: 40000, dport: 80, ttl: 64, payload: zero4.payload}),
			addr: rs4, port: 8080, want: zero4, wantUDP: 0xffff,
		},
		{
			name: "UDP zero checksum, full result 0 is sent as 0xFFFF",
			in:   mk(pkt{proto: header.ProtoUDP, src: client4, dst: vip4, sport: 40000, dport: 80, ttl: 64, payload: zero4.payload, udpZero: true}),
			addr: rs4, port: 8080, want: zero4, wantUDP: 0xffff,
		},
		{
			name: "UDP over IPv6 incremental result 0 is sent as 0xFFFF",
			in:   mk(pkt{v6: true, proto: header.ProtoUDP, src: client6, dst: vip6, sport: 40000, dport: 80, ttl: 64, payload: zero6.payload}),
			addr: rs6, port: 8080, want: zero6, wantUDP: 0xffff,
		},
		{
			name: "UDP first fragment without checksum keeps 0",
			in:   mk(pkt{proto: header.ProtoUDP, src: client4, dst: vip4, sport: 1, dport: 80, ttl: 64, frag: firstFrag, udpZero: true, payload: []byte("abcd")}),
			addr: rs4, port: 8080,
			want: mk(pkt{proto: header.ProtoUDP, src: client4, dst: rs4, sport: 1, dport: 8080, ttl: 64, frag: firstFrag, udpZero: true, payload: []byte("abcd")}),
		},
		{
			name: "non-first fragment: address only",
			in:   mk(pkt{proto: header.ProtoTCP, src: client4, dst: vip4, ttl: 64, frag: laterFrag, fragOff: 1480, payload: []byte("data that is not a header")}),
			addr: rs4, port: 8080,
			want: mk(pkt{proto: header.ProtoTCP, src: client4, dst: rs4, ttl: 64, frag: laterFrag, fragOff: 1480, payload: []byte("data that is not a header")}),
		},
		{
			name: "ESP: address only (no dnat_handler)",
			in:   mk(pkt{proto: header.ProtoESP, src: client4, dst: vip4, ttl: 64, payload: []byte("spi+seq+data")}),
			addr: rs4, port: 8080,
			want: mk(pkt{proto: header.ProtoESP, src: client4, dst: rs4, ttl: 64, payload: []byte("spi+seq+data")}),
		},
		{
			name: "SCTP with the same port keeps its CRC, even a wrong one",
			in:   badCRC, addr: rs4, port: 80,
			want: mk(pkt{proto: header.ProtoSCTP, src: client4, dst: rs4, sport: 5000, dport: 80, ttl: 64, payload: []byte{1, 0, 0, 4}}),
		},
		{
			name: "SCTP port change recomputes the CRC",
			in:   mk(pkt{v6: true, proto: header.ProtoSCTP, src: rs6, dst: client6, sport: 8080, dport: 5000, ttl: 64, payload: []byte{1, 0, 0, 4}}),
			snat: true, addr: vip6, port: 80,
			want: mk(pkt{v6: true, proto: header.ProtoSCTP, src: vip6, dst: client6, sport: 80, dport: 5000, ttl: 64, payload: []byte{1, 0, 0, 4}}),
		},
		{
			name: "SCTP first fragment with a port change needs the whole packet",
			in:   mk(pkt{proto: header.ProtoSCTP, src: client4, dst: vip4, sport: 5000, dport: 80, ttl: 64, frag: firstFrag, payload: []byte{0, 0, 0, 4}}),
			addr: rs4, port: 8080, res: NeedsReassembly,
		},
		{
			name: "partial TCP over IPv6: pseudo header only",
			in:   mk(pkt{v6: true, ext: true, proto: header.ProtoTCP, src: client6, dst: vip6, sport: 40000, dport: 80, ttl: 64, partial: true, payload: []byte("x")}),
			addr: rs6, port: 8080, partial: true,
			want: mk(pkt{v6: true, ext: true, proto: header.ProtoTCP, src: client6, dst: rs6, sport: 40000, dport: 8080, ttl: 64, partial: true, payload: []byte("x")}),
		},
		{
			name: "IPv6 address for an IPv4 packet",
			in:   mk(pkt{proto: header.ProtoTCP, src: client4, dst: vip4, ttl: 64}),
			addr: rs6, port: 8080, res: Malformed,
		},
		{
			name: "IPv4-mapped address for an IPv6 packet is an IPv6 address",
			in:   mk(pkt{v6: true, proto: header.ProtoTCP, src: client6, dst: vip6, sport: 1, dport: 2, ttl: 64}),
			addr: netip.MustParseAddr("::ffff:203.0.113.20"), port: 3,
			want: mk(pkt{v6: true, proto: header.ProtoTCP, src: client6, dst: netip.MustParseAddr("::ffff:203.0.113.20"), sport: 1, dport: 3, ttl: 64}),
		},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			in := c.in.frame()
			b := load(in)
			var res Result
			if c.snat {
				res = SNAT(&b.Buf, parse(in), c.addr, c.port, c.partial)
			} else {
				res = DNAT(&b.Buf, parse(in), c.addr, c.port, c.partial)
			}
			b.untouched(t)
			if res != c.res {
				t.Fatalf("result %v, want %v", res, c.res)
			}
			want := in
			if c.want != nil {
				want = c.want.frame()
			}
			if !bytes.Equal(b.Frame(), want) {
				t.Fatalf("\n got % x\nwant % x", b.Frame(), want)
			}
			if c.wantUDP != 0 {
				p := parse(b.Frame())
				if got := header.UDP(p.L4(b.Frame())).Checksum(); got != c.wantUDP {
					t.Fatalf("UDP checksum %#04x, want %#04x", got, c.wantUDP)
				}
			}
		})
	}
}

// TestNATMalformed: a Parsed that does not fit the frame is refused
// before anything is written.
func TestNATMalformed(t *testing.T) {
	s := &pkt{proto: header.ProtoTCP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 64}
	in := s.frame()
	good := parse(in)
	tests := []struct {
		name string
		mod  func(p *flow.Parsed, b *Buf)
	}{
		{"not IP", func(p *flow.Parsed, _ *Buf) { p.Tuple.Family = 0 }},
		{"L3 beyond the frame", func(p *flow.Parsed, _ *Buf) { p.L3Off = 100 }},
		{"IP length beyond the frame", func(p *flow.Parsed, _ *Buf) { p.IPLen = 1000 }},
		{"wrong IHL", func(p *flow.Parsed, _ *Buf) { p.IPHdrLen = 24 }},
		{"wrong version", func(p *flow.Parsed, _ *Buf) { p.Tuple.Family = flow.FamilyIPv6; p.IPHdrLen = 40 }},
		{"no ports", func(p *flow.Parsed, _ *Buf) { p.HasPorts = false }},
		{"truncated TCP", func(p *flow.Parsed, _ *Buf) { p.L4Off = p.L3Off + p.IPLen - 4 }},
		{"L4 before the IP header ends", func(p *flow.Parsed, _ *Buf) { p.L4Off = p.L3Off }},
		{"Off beyond B", func(_ *flow.Parsed, b *Buf) { b.Off = len(b.B) + 1 }},
		{"negative Len", func(_ *flow.Parsed, b *Buf) { b.Len = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := *good
			b := load(in)
			tc.mod(&p, &b.Buf)
			if r := DNAT(&b.Buf, &p, rs4, 80, false); r != Malformed {
				t.Fatalf("DNAT: %v, want %v", r, Malformed)
			}
			if !bytes.Equal(b.B, b.before) {
				t.Fatal("the buffer changed")
			}
		})
	}
}
