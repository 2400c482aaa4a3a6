package realserver

import (
	"encoding/binary"
	"net/netip"

	"golvs/internal/checksum"
	"golvs/internal/header"
)

// Test packets, built from scratch with full checksums.

// ipPacket wraps an L4 segment in an IPv4 or IPv6 header (the family of
// src), with the L4 checksum field at csumOff computed over the pseudo
// header.
func ipPacket(src, dst netip.Addr, proto uint8, l4 []byte, csumOff int) []byte {
	var p []byte
	var pseudo uint16
	if src.Is4() {
		p = make([]byte, header.IPv4MinimumSize+len(l4))
		header.IPv4(p).Encode(&header.IPv4Fields{
			TotalLength: uint16(len(p)), TTL: 64, Protocol: proto, DF: true,
			Src: src.As4(), Dst: dst.As4(),
		})
		pseudo = checksum.PseudoHeaderIPv4(src.As4(), dst.As4(), proto, uint16(len(l4)))
	} else {
		p = make([]byte, header.IPv6MinimumSize+len(l4))
		header.IPv6(p).Encode(&header.IPv6Fields{
			PayloadLength: uint16(len(l4)), NextHeader: proto, HopLimit: 64,
			Src: src.As16(), Dst: dst.As16(),
		})
		pseudo = checksum.PseudoHeaderIPv6(src.As16(), dst.As16(), proto, uint32(len(l4)))
	}
	seg := p[len(p)-len(l4):]
	copy(seg, l4)
	binary.BigEndian.PutUint16(seg[csumOff:], 0)
	c := ^checksum.Sum(seg, pseudo)
	if proto == header.ProtoUDP {
		c = checksum.ForUDP(c)
	}
	binary.BigEndian.PutUint16(seg[csumOff:], c)
	return p
}

// udpPacket is an IP packet with a UDP datagram from src to dst.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	u := make([]byte, header.UDPSize+len(payload))
	header.UDP(u).Encode(src.Port(), dst.Port(), uint16(len(u)), 0)
	copy(u[header.UDPSize:], payload)
	return ipPacket(src.Addr(), dst.Addr(), header.ProtoUDP, u, udpCsumOff)
}

// tcpPacket is an IP packet with a TCP segment (PSH|ACK) from src to dst.
func tcpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	t := make([]byte, header.TCPMinimumSize+len(payload))
	header.TCP(t).Encode(&header.TCPFields{
		SrcPort: src.Port(), DstPort: dst.Port(), Seq: 1000, Ack: 2000,
		Flags: 0x18, Window: 65535,
	})
	copy(t[header.TCPMinimumSize:], payload)
	return ipPacket(src.Addr(), dst.Addr(), header.ProtoTCP, t, tcpCsumOff)
}

// l4 returns the transport segment of an IP packet without extension
// headers or options... and the offset of its checksum field.
func l4(p []byte) (seg []byte, csumOff int) {
	var proto uint8
	if p[0]>>4 == 4 {
		h := header.IPv4(p)
		seg, proto = p[h.HeaderLength():h.TotalLength()], h.Protocol()
	} else {
		h := header.IPv6(p)
		seg, proto = p[header.IPv6MinimumSize:], h.NextHeader()
	}
	if proto == header.ProtoTCP {
		return seg, tcpCsumOff
	}
	return seg, udpCsumOff
}

// makePartial turns p's full transport checksum into what a sender that
// offloads it leaves (CHECKSUM_PARTIAL): the pseudo-header sum, not
// complemented.
func makePartial(p []byte) {
	seg, off := l4(p)
	var proto uint8
	var pseudo uint16
	if p[0]>>4 == 4 {
		h := header.IPv4(p)
		proto = h.Protocol()
		n := len(seg)
		if proto == header.ProtoUDP {
			n = int(header.UDP(seg).Length())
		}
		pseudo = checksum.PseudoHeaderIPv4(h.SourceAddress(), h.DestinationAddress(), proto, uint16(n))
	} else {
		h := header.IPv6(p)
		proto = h.NextHeader()
		n := len(seg)
		if proto == header.ProtoUDP {
			n = int(header.UDP(seg).Length())
		}
		pseudo = checksum.PseudoHeaderIPv6(h.SourceAddress(), h.DestinationAddress(), proto, uint32(n))
	}
	binary.BigEndian.PutUint16(seg[off:], pseudo)
}

// validL4 reports whether p's transport checksum is right.
func validL4(p []byte) bool {
	seg, _ := l4(p)
	if p[0]>>4 == 4 {
		h := header.IPv4(p)
		return checksum.Sum(seg, h.PseudoHeaderSum()) == 0xffff
	}
	h := header.IPv6(p)
	return checksum.Sum(seg, h.PseudoHeaderSum(h.NextHeader(), uint32(len(seg)))) == 0xffff
}

// outer4 wraps inner in an outer IPv4 header with protocol proto, as a
// raw IPv4 socket delivers it.
func outer4(src, dst netip.Addr, proto uint8, inner []byte) []byte {
	p := make([]byte, header.IPv4MinimumSize+len(inner))
	header.IPv4(p).Encode(&header.IPv4Fields{
		TotalLength: uint16(len(p)), TTL: 64, Protocol: proto,
		Src: src.As4(), Dst: dst.As4(),
	})
	copy(p[header.IPv4MinimumSize:], inner)
	return p
}
