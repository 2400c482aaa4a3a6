package afpacket

import (
	"bytes"
	"encoding/binary"
	"testing"

	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/forward"
	"golvs/internal/header"
)

// partialTCP returns a TCP frame whose checksum is left partial (the
// pseudo-header sum), as a veth peer's stack sends it, and its meta.
func partialTCP(t *testing.T, v6 bool) ([]byte, frameMeta) {
	t.Helper()
	p := &pkt{src: mustAddr("198.18.0.1"), dst: mustAddr("198.18.1.2"), proto: header.ProtoTCP, sport: 1, dport: 2, payload: make([]byte, 101)}
	l4 := 34
	if v6 {
		p.src, p.dst, l4 = mustAddr("2001:db8::1"), mustAddr("2001:db8:1::2"), 54
	}
	for i := range p.payload {
		p.payload[i] = byte(i)
	}
	f := p.frame(macB, macA)
	n := len(f) - l4
	var ps uint16
	if v6 {
		ps = checksum.PseudoHeaderIPv6(p.src.As16(), p.dst.As16(), header.ProtoTCP, uint32(n))
	} else {
		ps = checksum.PseudoHeaderIPv4(p.src.As4(), p.dst.As4(), header.ProtoTCP, uint16(n))
	}
	binary.BigEndian.PutUint16(f[l4+16:], ps)
	return f, frameMeta{csumFromEnd: n, csumOffset: 16}
}

// encap returns f encapsulated by forward.Encap as the pipeline does.
func encap(t *testing.T, f []byte, tun forward.Tunnel) []byte {
	t.Helper()
	b := forward.Buf{B: append(make([]byte, forward.Headroom), f...), Off: forward.Headroom, Len: len(f)}
	var p flow.Parsed
	p.Decode(b.Frame())
	if r := forward.Encap(&b, &p, &tun, 9, 77); r != forward.Done {
		t.Fatalf("Encap: %v", r)
	}
	return append([]byte(nil), b.Frame()...)
}

// innerValid reports whether the TCP checksum at l4 of b verifies.
func tcpValid(b []byte, l3, l4 int) bool {
	seg := b[l4:]
	var ps uint16
	if b[l3]>>4 == 4 {
		ip := header.IPv4(b[l3:])
		ps = checksum.PseudoHeaderIPv4(ip.SourceAddress(), ip.DestinationAddress(), header.ProtoTCP, uint16(len(seg)))
	} else {
		ip := header.IPv6(b[l3:])
		ps = checksum.PseudoHeaderIPv6(ip.SourceAddress(), ip.DestinationAddress(), header.ProtoTCP, uint32(len(seg)))
	}
	return checksum.Sum(seg, ps) == 0xffff
}

// outerValid reports whether the outer UDP (GUE) or GRE checksum of an
// IPv4-outer frame verifies.
func outerValid(b []byte) bool {
	ip := header.IPv4(b[14:])
	l4 := b[14+ip.HeaderLength() : 14+int(ip.TotalLength())]
	if ip.Protocol() == header.ProtoUDP {
		return checksum.Sum(l4, checksum.PseudoHeaderIPv4(ip.SourceAddress(), ip.DestinationAddress(), header.ProtoUDP, uint16(len(l4)))) == 0xffff
	}
	return checksum.Sum(l4, 0) == 0xffff
}

// TestOffload: what Send asks of the egress for a frame with a partial
// checksum, after the rewrites the pipeline may have made.
func TestOffload(t *testing.T) {
	tcp, meta := partialTCP(t, false)
	tcp6, meta6 := partialTCP(t, true)
	src, dst := mustAddr("198.18.1.1"), mustAddr("198.18.1.2")
	icmpErr := (&pkt{src: mustAddr("198.18.0.2"), dst: mustAddr("198.18.0.1"), proto: header.ProtoICMPv4, icmpType: 11,
		quoted: &pkt{src: mustAddr("198.18.0.1"), dst: mustAddr("198.18.1.2"), proto: header.ProtoTCP, sport: 1, dport: 2}}).frame(macB, macA)
	sctp := (&pkt{src: mustAddr("198.18.0.1"), dst: mustAddr("198.18.1.2"), proto: header.ProtoSCTP, sport: 1, dport: 2, payload: make([]byte, 40)}).frame(macB, macA)
	sctpMeta := frameMeta{csumFromEnd: len(sctp) - 34, csumOffset: sctpCsumOffset}

	for _, tc := range []struct {
		name   string
		frame  []byte
		meta   frameMeta
		last   int
		wantOK bool
		// offloaded: a virtio request at start; else, if inner > 0,
		// the TCP checksum at inner (IP header at innerL3) must verify.
		offloaded      bool
		start          int
		innerL3, inner int
		outer          bool // the outer checksum must verify
	}{
		{name: "in place", frame: tcp, meta: meta, last: 1, wantOK: true, offloaded: true, start: 34},
		{name: "in place v6", frame: tcp6, meta: meta6, last: 1, wantOK: true, offloaded: true, start: 54},
		{name: "ipip", frame: encap(t, tcp, forward.Tunnel{Src: src, Dst: dst}), meta: meta, last: 1, wantOK: true, innerL3: 34, inner: 54},
		{name: "gue with checksum", frame: encap(t, tcp, forward.Tunnel{Src: src, Dst: dst, Type: forward.TunnelGUE, Port: 5555, Csum: true}),
			meta: meta, last: 1, wantOK: true, innerL3: 34 + 12, inner: 54 + 12, outer: true},
		{name: "gue without checksum", frame: encap(t, tcp, forward.Tunnel{Src: src, Dst: dst, Type: forward.TunnelGUE, Port: 5555}),
			meta: meta, last: 1, wantOK: true, innerL3: 34 + 12, inner: 54 + 12},
		{name: "gre with checksum", frame: encap(t, tcp, forward.Tunnel{Src: src, Dst: dst, Type: forward.TunnelGRE, Csum: true}),
			meta: meta, last: 1, wantOK: true, innerL3: 34 + 8, inner: 54 + 8, outer: true},
		{name: "v6 in ipip", frame: encap(t, tcp6, forward.Tunnel{Src: src, Dst: dst}), meta: meta6, last: 1, wantOK: true, innerL3: 34, inner: 74},
		{name: "made an icmp error", frame: icmpErr, meta: frameMeta{csumFromEnd: 30, csumOffset: 16}, last: 1, wantOK: true},
		{name: "sctp", frame: sctp, meta: sctpMeta, last: 1, wantOK: true},
		{name: "no meta", frame: tcp, meta: frameMeta{}, last: 1},
		{name: "not of the batch", frame: tcp, meta: meta},
		{name: "start out of the frame", frame: tcp[:30], meta: meta, last: 1},
	} {
		q := &Queue{meta: []frameMeta{tc.meta}, last: tc.last}
		b := append([]byte(nil), tc.frame...)
		v, ok := q.offload(0, b)
		if ok != tc.wantOK {
			t.Errorf("%s: ok %v", tc.name, ok)
		}
		if tc.offloaded {
			if v.flags != vnetFlagNeedsCsum || int(v.csumStart) != tc.start || v.csumOffset != 16 {
				t.Errorf("%s: virtio header %+v, want NEEDS_CSUM at %d+16", tc.name, v, tc.start)
			}
			continue
		}
		if v.flags != 0 {
			t.Errorf("%s: asks the egress for a checksum at %d", tc.name, v.csumStart)
		}
		if tc.inner > 0 && !tcpValid(b, tc.innerL3, tc.inner) {
			t.Errorf("%s: inner TCP checksum not finished", tc.name)
		}
		if tc.outer && !outerValid(b) {
			t.Errorf("%s: outer checksum wrong after the inner one was finished", tc.name)
		}
		// Encap summed the partial value; finishing the inner checksum
		// must have changed the outer one.
		if tc.outer && bytes.Equal(b[:tc.innerL3], tc.frame[:tc.innerL3]) {
			t.Errorf("%s: outer checksum not updated", tc.name)
		}
	}
	// The SCTP CRC32c is written in place.
	q := &Queue{meta: []frameMeta{sctpMeta}, last: 1}
	b := append([]byte(nil), sctp...)
	binary.LittleEndian.PutUint32(b[34+8:], 0)
	q.offload(0, b)
	s := header.SCTP(b[34:])
	if s.Checksum() != s.CalculateChecksum() || s.Checksum() == 0 {
		t.Errorf("SCTP checksum %#x, want %#x", s.Checksum(), s.CalculateChecksum())
	}
}
