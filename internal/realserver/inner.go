package realserver

import (
	"encoding/binary"
	"net/netip"

	"golvs/internal/checksum"
	"golvs/internal/header"
)

// verdict is what Decap does with one received outer packet.
type verdict uint8

const (
	// inject: write the inner packet into the TUN device.
	inject verdict = iota
	// dropNotVIP: the inner destination is not a configured VIP.
	dropNotVIP
	// dropMalformed: too short, or an outer or inner header that does not
	// hold together (version, header length, total length).
	dropMalformed
)

// Offsets that header's views do not export (RFC 791 §3.1, RFC 8200 §3).
const (
	ipv4DstOff = 16 // IPv4 Destination Address
	ipv6DstOff = 24 // IPv6 Destination Address
	tcpCsumOff = 16 // TCP Checksum (RFC 9293 §3.1)
	udpCsumOff = 6  // UDP Checksum (RFC 768)
)

// vipSet holds the VIPs for the per-packet lookup: a linear scan of a few
// fixed-size arrays beats a map for the handful of VIPs a real server has,
// and neither allocates.
type vipSet struct {
	v4 [][4]byte
	v6 [][16]byte
}

func newVIPSet(vips []netip.Addr) vipSet {
	var s vipSet
	for _, a := range vips {
		if a.Is4() {
			s.v4 = append(s.v4, a.As4())
		} else {
			s.v6 = append(s.v6, a.As16())
		}
	}
	return s
}

func (s *vipSet) has4(b []byte) bool {
	for i := range s.v4 {
		if [4]byte(b) == s.v4[i] {
			return true
		}
	}
	return false
}

func (s *vipSet) has6(b []byte) bool {
	for i := range s.v6 {
		if [16]byte(b) == s.v6[i] {
			return true
		}
	}
	return false
}

// decapsulate returns the inner packet of b, one datagram read from the
// raw socket of encapsulation e, trimmed to the inner packet's own
// length, and whether to inject it. A raw IPv4 socket delivers the outer
// header with the packet (reassembled, tot_len in network order, as Linux
// has done since 2.2); a raw IPv6 socket delivers only what follows the
// outer header and its extension headers, so there b is the inner packet.
// It allocates nothing.
func (s *vipSet) decapsulate(b []byte, e Encaps) ([]byte, verdict) {
	if !e.outer6() {
		o := header.IPv4(b)
		if !o.IsValid(len(b)) || o.Protocol() != e.proto() {
			return nil, dropMalformed
		}
		b = b[o.HeaderLength():o.TotalLength()]
	}
	if e.inner6() {
		h := header.IPv6(b)
		if !h.IsValid(len(b)) {
			return nil, dropMalformed
		}
		b = b[:header.IPv6MinimumSize+int(h.PayloadLength())]
		if !s.has6(b[ipv6DstOff : ipv6DstOff+16]) {
			return b, dropNotVIP
		}
		return b, inject
	}
	h := header.IPv4(b)
	if !h.IsValid(len(b)) {
		return nil, dropMalformed
	}
	b = b[:h.TotalLength()]
	if !s.has4(b[ipv4DstOff : ipv4DstOff+4]) {
		return b, dropNotVIP
	}
	return b, inject
}

// completePartial finishes a partial TCP or UDP checksum of p, an inner
// packet decapsulate accepted, and reports whether it did (see the package
// doc, "Checksums"). A partial checksum field holds the pseudo-header sum
// over the transport length, not complemented (the kernel writes
// ~csum_tcpudp_magic(..., 0) or ~csum_ipv6_magic(..., 0) for
// CHECKSUM_PARTIAL); the sum of the segment with that value in place is
// then the sum a full computation covers, and its complement is the
// checksum (skb_checksum_help). A full checksum that happens to equal the
// pseudo-header sum is recomputed to the same value, so the test cannot
// break a good packet; a corrupt packet is "repaired" only if its field
// happens to hold exactly that value (one in 65536). Fragments never carry
// a partial checksum (offload comes before fragmentation), and IPv6
// packets with extension headers before the transport header are left
// alone (neither GRO nor a local sender produces them with a partial
// checksum in practice). It allocates nothing.
func completePartial(p []byte) bool {
	v6 := p[0]>>4 == 6
	var l4 []byte
	var proto uint8
	if v6 {
		proto, l4 = header.IPv6(p).NextHeader(), p[header.IPv6MinimumSize:]
	} else {
		h := header.IPv4(p)
		if h.IsFragment() {
			return false
		}
		proto, l4 = h.Protocol(), p[h.HeaderLength():]
	}
	// The segment the sender summed, and where its checksum field is.
	var seg []byte
	var off int
	switch proto {
	case header.ProtoTCP:
		if len(l4) < header.TCPMinimumSize {
			return false
		}
		seg, off = l4, tcpCsumOff
	case header.ProtoUDP:
		u := header.UDP(l4)
		if !u.IsValid() || u.Checksum() == 0 { // 0: no checksum at all
			return false
		}
		seg, off = l4[:u.Length()], udpCsumOff
	default:
		return false
	}
	var pseudo uint16
	if v6 {
		h := header.IPv6(p)
		pseudo = checksum.PseudoHeaderIPv6(h.SourceAddress(), h.DestinationAddress(), proto, uint32(len(seg)))
	} else {
		h := header.IPv4(p)
		pseudo = checksum.PseudoHeaderIPv4(h.SourceAddress(), h.DestinationAddress(), proto, uint16(len(seg)))
	}
	if binary.BigEndian.Uint16(seg[off:]) != pseudo {
		return false
	}
	c := ^checksum.Sum(seg, 0)
	if proto == header.ProtoUDP {
		c = checksum.ForUDP(c)
	}
	binary.BigEndian.PutUint16(seg[off:], c)
	return true
}
