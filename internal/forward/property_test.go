package forward

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// Property tests: random packets, random rewrites, and the rewritten frame
// compared byte for byte with the same frame built from scratch (every
// checksum computed in full). Equality proves that the incremental
// updates equal a fresh computation and that nothing else moved.

const propertyRounds = 4000

func randAddr(r *rand.Rand, v6 bool) netip.Addr {
	if v6 {
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], r.Uint64())
		binary.BigEndian.PutUint64(a[8:], r.Uint64())
		a[0] = 0x20 // keep it out of ::ffff:0:0/96 and multicast
		return netip.AddrFrom16(a)
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], r.Uint32())
	a[0] = byte(1 + r.IntN(222)) // unicast: 1..222
	if a[0] == 127 {
		a[0] = 126
	}
	return netip.AddrFrom4(a)
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randPkt returns a random TCP, UDP or SCTP packet (sometimes another
// protocol), with or without VLAN tag, options, extension headers,
// fragmentation, zero or partial checksum and Ethernet padding.
func randPkt(r *rand.Rand) *pkt {
	s := &pkt{v6: r.IntN(2) == 1}
	switch r.IntN(10) {
	case 0, 1, 2, 3:
		s.proto = header.ProtoTCP
	case 4, 5, 6:
		s.proto = header.ProtoUDP
	case 7, 8:
		s.proto = header.ProtoSCTP
	default:
		s.proto = header.ProtoESP
	}
	s.src, s.dst = randAddr(r, s.v6), randAddr(r, s.v6)
	s.sport, s.dport = uint16(r.Uint32()), uint16(r.Uint32())
	s.ttl, s.tos, s.id = uint8(r.Uint32()), uint8(r.Uint32()), uint16(r.Uint32())
	s.df = r.IntN(2) == 0
	s.flags = uint8(r.Uint32())
	s.payload = randBytes(r, r.IntN(200))
	if r.IntN(3) == 0 {
		s.vlan = uint16(1 + r.IntN(4094))
		s.pcp = uint8(r.IntN(8))
	}
	if !s.v6 && r.IntN(5) == 0 {
		s.opts = bytes.Repeat([]byte{1}, 4*(1+r.IntN(3))) // NOPs
	}
	if s.v6 && r.IntN(4) == 0 {
		s.ext = true
	}
	switch r.IntN(10) {
	case 0:
		s.frag = firstFrag
	case 1:
		s.frag = laterFrag
		s.fragOff = uint16(8 * (1 + r.IntN(100)))
		s.mf = r.IntN(2) == 0
	}
	if s.proto == header.ProtoUDP && r.IntN(3) == 0 {
		s.udpZero = true
	}
	if (s.proto == header.ProtoTCP || s.proto == header.ProtoUDP) && r.IntN(5) == 0 {
		s.partial = true
		s.udpZero = false
	}
	if r.IntN(4) == 0 {
		s.pad = r.IntN(8)
	}
	return s
}

func hasL4(s *pkt) bool {
	return s.frag != laterFrag && (s.proto == header.ProtoTCP || s.proto == header.ProtoUDP || s.proto == header.ProtoSCTP)
}

func TestNATProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range propertyRounds {
		s := randPkt(r)
		src := r.IntN(2) == 0
		addr := randAddr(r, s.v6)
		port := uint16(r.Uint32())
		if r.IntN(4) == 0 { // same port: SCTP keeps its CRC
			port = s.dport
			if src {
				port = s.sport
			}
		}
		in := s.frame()
		b := load(in)
		p := parse(in)
		if p.Reason != flow.ReasonNone {
			t.Fatalf("round %d: builder made a bad frame: %v", i, p.Reason)
		}
		var res Result
		if src {
			res = SNAT(&b.Buf, p, addr, port, s.partial)
		} else {
			res = DNAT(&b.Buf, p, addr, port, s.partial)
		}
		b.untouched(t)

		exp := *s
		oldPort := s.dport
		if src {
			exp.src, oldPort = addr, s.sport
		} else {
			exp.dst = addr
		}
		if hasL4(s) {
			if src {
				exp.sport = port
			} else {
				exp.dport = port
			}
			if s.proto == header.ProtoUDP && s.udpZero && s.frag == notFrag {
				exp.udpZero = false // the kernel's quirk: it leaves with a checksum
			}
		}
		want := exp.frame()
		if s.proto == header.ProtoSCTP && s.frag == firstFrag && oldPort != port {
			want = in
			if res != NeedsReassembly {
				t.Fatalf("round %d: SCTP first fragment with a port change: %v, want %v", i, res, NeedsReassembly)
			}
		} else if res != Done {
			t.Fatalf("round %d (%+v): %v", i, s, res)
		}
		if got := b.Frame(); !bytes.Equal(got, want) {
			t.Fatalf("round %d: src=%v %+v\n got % x\nwant % x", i, src, s, got, want)
		}
		if res == Done {
			checkFrame(t, b.Frame(), s.partial)
		}
	}
}

// checkFrame verifies every checksum of a frame independently of the
// builders: IPv4 header, and TCP, UDP (non-zero over IPv6) and SCTP of a
// whole packet; a partial checksum must equal the pseudo-header sum.
func checkFrame(t *testing.T, frame []byte, partial bool) {
	t.Helper()
	p := parse(frame)
	if p.Reason != flow.ReasonNone {
		t.Fatalf("rewritten frame does not decode: %v", p.Reason)
	}
	if p.IsFragment || p.Tuple.Family == 0 {
		return
	}
	ip := p.IP(frame)
	l4 := p.L4(frame)
	var ps uint16
	if p.Tuple.Family == flow.FamilyIPv4 {
		ps = header.IPv4(ip).PseudoHeaderSum()
	} else {
		ps = header.IPv6(ip).PseudoHeaderSum(p.Tuple.Proto, uint32(len(l4)))
	}
	switch p.Tuple.Proto {
	case header.ProtoTCP:
		if partial {
			if c := header.TCP(l4).Checksum(); c != ps {
				t.Fatalf("partial TCP checksum %#04x, want pseudo-header sum %#04x", c, ps)
			}
		} else if !header.TCP(l4).IsChecksumValid(ps) {
			t.Fatalf("bad TCP checksum in % x", frame)
		}
	case header.ProtoUDP:
		u := header.UDP(l4)
		if partial {
			if u.Checksum() != ps {
				t.Fatalf("partial UDP checksum %#04x, want %#04x", u.Checksum(), ps)
			}
		} else if u.Checksum() == 0 || !u.IsChecksumValid(ps) {
			t.Fatalf("bad UDP checksum %#04x in % x", u.Checksum(), frame)
		}
	case header.ProtoSCTP:
		if !header.SCTP(l4).IsChecksumValid() {
			t.Fatalf("bad SCTP CRC in % x", frame)
		}
	}
}

func TestDecTTLProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range propertyRounds {
		s := randPkt(r)
		if r.IntN(8) == 0 {
			s.ttl = uint8(r.IntN(2)) // 0 or 1
		}
		in := s.frame()
		b := load(in)
		res := DecTTL(&b.Buf, parse(in))
		b.untouched(t)
		want := in
		switch {
		case s.ttl <= 1:
			if res != TTLExpired {
				t.Fatalf("round %d: TTL %d: %v", i, s.ttl, res)
			}
		case res != Done:
			t.Fatalf("round %d: %v", i, res)
		default:
			exp := *s
			exp.ttl--
			want = exp.frame()
		}
		if !bytes.Equal(b.Frame(), want) {
			t.Fatalf("round %d: TTL %d\n got % x\nwant % x", i, s.ttl, b.Frame(), want)
		}
	}
}

// wantTunnel builds the expected tunnel frame around inner from scratch.
func wantTunnel(inner []byte, tn *Tunnel, id uint16, hash uint32) []byte {
	var ds, ttl, proto uint8
	var df bool
	if inner[0]>>4 == 4 {
		ds, ttl, proto = inner[1], inner[8], header.ProtoIPIP
		df = inner[6]&0x40 != 0 && !tn.NoPMTUDisc
	} else {
		ds, ttl, proto = inner[0]<<4|inner[1]>>4, inner[7], header.ProtoIPv6
	}
	if ds&3 == 3 { // CE becomes ECT(0) outside (RFC 6040 §4.1)
		ds = ds&^3 | 2
	}
	var mid []byte
	switch tn.Type {
	case TunnelGUE:
		h := hash ^ hash<<16
		sport := uint16(uint64(h)*(60999-32768)>>32) + 32768
		mid = make([]byte, 12)
		binary.BigEndian.PutUint16(mid[0:], sport)
		binary.BigEndian.PutUint16(mid[2:], tn.Port)
		binary.BigEndian.PutUint16(mid[4:], uint16(12+len(inner)))
		mid[9] = proto
		proto = header.ProtoUDP
	case TunnelGRE:
		mid = make([]byte, 4)
		et := uint16(0x0800)
		if proto == header.ProtoIPv6 {
			et = 0x86dd
		}
		binary.BigEndian.PutUint16(mid[2:], et)
		if tn.Csum {
			mid[0] = 0x80
			mid = append(mid, 0, 0, 0, 0)
			s := append(bytes.Clone(mid), inner...)
			binary.BigEndian.PutUint16(mid[4:], ^sum16(s))
		}
		proto = header.ProtoGRE
	}
	payload := append(mid, inner...)
	var outer []byte
	et := header.EtherTypeIPv4
	if tn.Dst.Is4() {
		outer = make([]byte, 20)
		header.IPv4(outer).Encode(&header.IPv4Fields{TOS: ds, TotalLength: uint16(20 + len(payload)), ID: id, DF: df, TTL: ttl, Protocol: proto, Src: tn.Src.As4(), Dst: tn.Dst.As4()})
	} else {
		et = header.EtherTypeIPv6
		outer = make([]byte, 40)
		header.IPv6(outer).Encode(&header.IPv6Fields{TrafficClass: ds, PayloadLength: uint16(len(payload)), NextHeader: proto, HopLimit: ttl, Src: tn.Src.As16(), Dst: tn.Dst.As16()})
	}
	if tn.Type == TunnelGUE && tn.Csum {
		var ps [40]byte // the pseudo header, summed naively
		n := 0
		if tn.Dst.Is4() {
			a, d := tn.Src.As4(), tn.Dst.As4()
			n += copy(ps[n:], a[:])
			n += copy(ps[n:], d[:])
			ps[n+1] = 17
			binary.BigEndian.PutUint16(ps[n+2:], uint16(len(payload)))
			n += 4
		} else {
			a, d := tn.Src.As16(), tn.Dst.As16()
			n += copy(ps[n:], a[:])
			n += copy(ps[n:], d[:])
			binary.BigEndian.PutUint32(ps[n:], uint32(len(payload)))
			ps[n+7] = 17
			n += 8
		}
		c := ^sum16(append(ps[:n:n], payload...))
		if c == 0 {
			c = 0xffff
		}
		binary.BigEndian.PutUint16(payload[6:], c)
	}
	return append(append(ethHdr([6]byte{}, [6]byte{}, et), outer...), payload...)
}

// sum16 is a naive RFC 1071 sum, independent of package checksum.
func sum16(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint16(s)
}

func TestEncapProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range propertyRounds {
		s := randPkt(r)
		outer6 := r.IntN(2) == 0
		tn := &Tunnel{
			Src: randAddr(r, outer6), Dst: randAddr(r, outer6),
			Type: TunnelType(r.IntN(3)), Port: uint16(r.Uint32()),
			Csum: r.IntN(2) == 0, NoPMTUDisc: r.IntN(4) == 0,
		}
		id, hash := uint16(r.Uint32()), r.Uint32()
		in := s.frame()
		p := parse(in)
		b := load(in)
		if res := Encap(&b.Buf, p, tn, id, hash); res != Done {
			t.Fatalf("round %d: %v", i, res)
		}
		b.untouched(t)
		want := wantTunnel(p.IP(in), tn, id, hash)
		if !bytes.Equal(b.Frame(), want) {
			t.Fatalf("round %d: %+v %+v\n got % x\nwant % x", i, s, tn, b.Frame(), want)
		}
		if got := b.Off - (Headroom + p.L3Off - 14 - tn.Overhead()); got != 0 {
			t.Fatalf("round %d: Off %d, off by %d", i, b.Off, got)
		}
	}
}

// wantICMPError builds the expected error from scratch.
func wantICMPError(s *pkt, kind ICMPKind, mtu int, src netip.Addr, id uint16) []byte {
	ip := s.ip()
	e := &pkt{v6: s.v6, src: src, dst: s.src, ttl: 64, id: id}
	if s.v6 {
		e.proto = header.ProtoICMPv6
		e.payload = ip[:min(len(ip), 1232)]
		switch kind {
		case FragNeeded:
			e.icmpType, e.icmpRest = 2, uint32(mtu)
		case PortUnreachable:
			e.icmpType, e.icmpCode = 1, 4
		case TimeExceeded:
			e.icmpType = 3
		}
	} else {
		e.proto = header.ProtoICMPv4
		e.tos = 0xc0 | s.tos&0x1e
		e.payload = ip[:min(len(ip), 548)]
		switch kind {
		case FragNeeded:
			e.icmpType, e.icmpCode, e.icmpRest = 3, 4, uint32(mtu)
		case PortUnreachable:
			e.icmpType, e.icmpCode = 3, 3
		case TimeExceeded:
			e.icmpType = 11
		}
	}
	e.dstMAC, e.srcMAC = [6]byte{}, [6]byte{}
	d := e.ip()
	et := header.EtherTypeIPv4
	if s.v6 {
		et = header.EtherTypeIPv6
	}
	return append(ethHdr([6]byte{}, [6]byte{}, et), d...)
}

func TestICMPErrorProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range propertyRounds {
		s := randPkt(r)
		if r.IntN(3) == 0 {
			s.payload = randBytes(r, 500+r.IntN(1000)) // longer than the quote
		}
		kind := ICMPKind(1 + r.IntN(3))
		mtu := 68 + r.IntN(9000)
		src := randAddr(r, s.v6)
		id := uint16(r.Uint32())
		in := s.frame()
		b := load(in)
		res := ICMPError(&b.Buf, parse(in), kind, mtu, src, id)
		b.untouched(t)
		if s.frag == laterFrag {
			if res != Refused || !bytes.Equal(b.Frame(), in) {
				t.Fatalf("round %d: non-first fragment: %v", i, res)
			}
			continue
		}
		if res != Done {
			t.Fatalf("round %d: %v", i, res)
		}
		want := wantICMPError(s, kind, mtu, src, id)
		if !bytes.Equal(b.Frame(), want) {
			t.Fatalf("round %d: %+v\n got % x\nwant % x", i, s, b.Frame(), want)
		}
		if p := parse(b.Frame()); p.Reason != flow.ReasonNone || !p.ICMPError {
			t.Fatalf("round %d: the error does not decode as one: %v", i, p.Reason)
		}
	}
}

// randICMPAbout returns an ICMP error from src to dst quoting n bytes of
// the packet q (at least its IP header and 8 bytes).
func icmpAbout(q *pkt, src, dst netip.Addr, quote []byte) *pkt {
	e := &pkt{v6: q.v6, src: src, dst: dst, ttl: 60, payload: quote}
	if q.v6 {
		e.proto, e.icmpType, e.icmpCode = header.ProtoICMPv6, 1, 4
	} else {
		e.proto, e.icmpType, e.icmpCode = header.ProtoICMPv4, 3, 3
	}
	return e
}

// quoteWithOldL4Sum builds q's IP packet, puts back the transport checksum
// of old (the kernel does not fix the quoted one), and cuts it to n bytes.
func quoteWithOldL4Sum(q, old *pkt, n int) []byte {
	ip, oip := q.ip(), old.ip()
	if hasL4(q) {
		l4 := len(ip) - len(q.l4())
		var off, size int
		switch q.proto {
		case header.ProtoTCP:
			off, size = 16, 2
		case header.ProtoUDP:
			off, size = 6, 2
		case header.ProtoSCTP:
			off, size = 8, 4
		}
		copy(ip[l4+off:l4+off+size], oip[l4+off:l4+off+size])
	}
	return ip[:n]
}

func TestNATICMPProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range propertyRounds {
		q := randPkt(r) // the packet the error is about
		q.partial, q.pad, q.vlan = false, 0, 0
		if q.frag == firstFrag {
			q.frag = notFrag
		}
		ip := q.ip()
		hl := len(ip) - len(q.l4())
		n := min(len(ip), hl+8+r.IntN(len(ip)-hl+1)) // at least 8 bytes past the headers
		outOf := r.IntN(2) == 0                      // NATICMPOut: from the RS about a request
		addr, port := randAddr(r, q.v6), uint16(r.Uint32())
		// The error travels against the quoted packet: from its
		// destination's side to its source.
		e := icmpAbout(q, randAddr(r, q.v6), q.src, ip[:n])
		if r.IntN(3) == 0 {
			e.vlan = 7
		}
		in := e.frame()
		p := parse(in)
		if p.Reason != flow.ReasonNone || !p.ICMPError || p.Inner.Reason != flow.ReasonNone {
			t.Fatalf("round %d: builder made a bad error: %v %v", i, p.Reason, p.Inner.Reason)
		}
		b := load(in)
		var res Result
		wq, we := *q, *e
		if outOf {
			res = NATICMPOut(&b.Buf, p, addr, port)
			wq.dst, we.src = addr, addr
			if hasL4(q) {
				wq.dport = port
			}
		} else {
			res = NATICMPIn(&b.Buf, p, addr, port)
			wq.src, we.dst = addr, addr
			if hasL4(q) {
				wq.sport = port
			}
		}
		b.untouched(t)
		if res != Done {
			t.Fatalf("round %d: %v", i, res)
		}
		we.payload = quoteWithOldL4Sum(&wq, q, n)
		if want := we.frame(); !bytes.Equal(b.Frame(), want) {
			t.Fatalf("round %d: out=%v %+v\n got % x\nwant % x", i, outOf, q, b.Frame(), want)
		}
	}
}

func TestCompleteChecksumProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for i := range propertyRounds {
		s := randPkt(r)
		if !hasL4(s) || s.frag != notFrag {
			continue
		}
		s.partial, s.udpZero = s.proto != header.ProtoSCTP, false
		in := s.frame()
		b := load(in)
		if res := CompleteChecksum(&b.Buf, parse(in)); res != Done {
			t.Fatalf("round %d: %v", i, res)
		}
		b.untouched(t)
		exp := *s
		exp.partial = false
		if want := exp.frame(); !bytes.Equal(b.Frame(), want) {
			t.Fatalf("round %d: %+v\n got % x\nwant % x", i, s, b.Frame(), want)
		}
		checkFrame(t, b.Frame(), false)
	}
	for _, s := range []*pkt{
		{proto: header.ProtoTCP, src: client4, dst: vip4, ttl: 1, frag: firstFrag},
		{proto: header.ProtoESP, src: client4, dst: vip4, ttl: 1},
	} {
		in := s.frame()
		b := load(in)
		if res := CompleteChecksum(&b.Buf, parse(in)); res != Malformed {
			t.Fatalf("%+v: %v", s, res)
		}
	}
}
