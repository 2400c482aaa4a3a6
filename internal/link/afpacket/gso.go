package afpacket

import (
	"encoding/binary"

	"golvs/internal/checksum"
	"golvs/internal/header"
)

// GSO frames: a packet tap sees the skb as the stack has it, and that is
// often one "super-frame" of up to 64 KiB that stands for many segments:
// TCP segmentation offload from a local sender on a veth peer (the TCP
// stack hands veth 64 KiB segments; the peer receives them unsegmented),
// GRO on a real NIC's receive path (the NIC's frames are merged before
// the taps see them). The pipeline works on wire-sized packets (its MTU
// check would answer a 64 KiB segment with "fragmentation needed"), so the
// link cuts such a frame into the segments it stands for, as the kernel's
// software GSO does when it forwards (tcp_gso_segment, __udp_gso_segment),
// copying each into a buffer of its own.

// gso describes a GSO super-frame being cut into segments.
type gso struct {
	frame  []byte
	l3, l4 int // offsets of the IP and transport headers
	hdrLen int // all headers, up to the payload
	is4    bool
	tcp    bool // else UDP (VIRTIO_NET_HDR_GSO_UDP_L4)
	mss    int  // payload bytes per segment
	nseg   int
}

// csumOffset returns where the transport checksum is in the transport
// header.
func (g *gso) csumOffset() int {
	if g.tcp {
		return 16
	}
	return 6
}

// parseGSO checks a GSO frame (Ethernet header at 0, maybe an 802.1Q tag)
// against its virtio_net_hdr, whose csum_start (counted from the frame
// start, tag included) must be where the IP header says the transport
// header is. It reports false for what it cannot cut: another GSO type,
// IPv4 options... are fine, but a transport header that is not where
// csum_start says, a payload that is not there, a zero segment size.
func parseGSO(frame []byte, v vnetHdr, csumStart int) (g gso, ok bool) {
	g.frame = frame
	if len(frame) < ethHdrLen {
		return g, false
	}
	g.l3 = ethHdrLen
	et := binary.BigEndian.Uint16(frame[12:])
	if et == header.EtherTypeVLAN && len(frame) >= ethHdrLen+vlanHdrLen {
		g.l3 += vlanHdrLen
		et = binary.BigEndian.Uint16(frame[16:])
	}
	switch v.gsoType &^ vnetGSOECN {
	case vnetGSOTCPv4:
		g.is4, g.tcp = true, true
	case vnetGSOTCPv6:
		g.tcp = true
	case vnetGSOUDPL4:
		g.is4 = et == header.EtherTypeIPv4
	default:
		return g, false
	}
	g.l4 = csumStart
	g.mss = int(v.gsoSize)
	if g.mss == 0 || g.l4 > len(frame) {
		return g, false
	}
	proto := uint8(header.ProtoUDP)
	if g.tcp {
		proto = header.ProtoTCP
	}
	if g.is4 {
		if et != header.EtherTypeIPv4 || len(frame) < g.l3+header.IPv4MinimumSize {
			return g, false
		}
		ip := header.IPv4(frame[g.l3:])
		if ip.Version() != 4 || g.l3+ip.HeaderLength() != g.l4 || ip.Protocol() != proto || ip.IsFragment() {
			return g, false
		}
	} else {
		if et != header.EtherTypeIPv6 || len(frame) < g.l3+header.IPv6MinimumSize || g.l4 < g.l3+header.IPv6MinimumSize {
			return g, false
		}
		ip := header.IPv6(frame[g.l3:])
		if ip.Version() != 6 {
			return g, false
		}
		w, ok := header.IPv6(frame[g.l3:]).WalkExtensions()
		if !ok || g.l3+w.Offset != g.l4 || w.Protocol != proto || w.IsFragment() {
			return g, false
		}
	}
	if g.tcp {
		if len(frame) < g.l4+header.TCPMinimumSize {
			return g, false
		}
		t := header.TCP(frame[g.l4:])
		if t.DataOffset() < header.TCPMinimumSize || g.l4+t.DataOffset() > len(frame) {
			return g, false
		}
		g.hdrLen = g.l4 + t.DataOffset()
	} else {
		g.hdrLen = g.l4 + header.UDPSize
		if g.hdrLen > len(frame) {
			return g, false
		}
	}
	payload := len(frame) - g.hdrLen
	if payload <= 0 {
		return g, false
	}
	g.nseg = (payload + g.mss - 1) / g.mss
	return g, true
}

// segLen returns the length of segment i's frame.
func (g *gso) segLen(i int) int {
	n := g.mss
	if last := len(g.frame) - g.hdrLen - i*g.mss; last < n {
		n = last
	}
	return g.hdrLen + n
}

// segment writes segment i of g into out (at least segLen(i) bytes) and
// returns its length. The segment's headers are the super-frame's with
// the lengths, IPv4 ID and header checksum, TCP sequence number and flags
// fixed as tcp_gso_segment does; its transport checksum is left partial
// (the pseudo-header sum, as CHECKSUM_PARTIAL has it), for the egress to
// finish.
func (g *gso) segment(i int, out []byte) int {
	n := g.segLen(i)
	payload := n - g.hdrLen
	off := g.hdrLen + i*g.mss
	copy(out, g.frame[:g.hdrLen])
	copy(out[g.hdrLen:n], g.frame[off:off+payload])
	l4len := n - g.l4
	var pseudo uint16
	if g.is4 {
		ip := header.IPv4(out[g.l3:])
		ip.SetTotalLength(uint16(n - g.l3))
		// Linux's GSO numbers the segments' IDs up from the first
		// (unless SKB_GSO_TCP_FIXEDID, which the virtio header cannot
		// say; incrementing is right for every packet that is not an
		// atomic datagram, RFC 6864).
		ip.SetID(ip.ID() + uint16(i))
		ip.SetChecksum(0)
		ip.SetChecksum(ip.CalculateChecksum())
		pseudo = checksum.PseudoHeaderIPv4(ip.SourceAddress(), ip.DestinationAddress(), ip.Protocol(), uint16(l4len))
	} else {
		ip := header.IPv6(out[g.l3:])
		ip.SetPayloadLength(uint16(n - g.l3 - header.IPv6MinimumSize))
		proto := uint8(header.ProtoUDP)
		if g.tcp {
			proto = header.ProtoTCP
		}
		pseudo = checksum.PseudoHeaderIPv6(ip.SourceAddress(), ip.DestinationAddress(), proto, uint32(l4len))
	}
	l4 := out[g.l4:n]
	if g.tcp {
		seq := binary.BigEndian.Uint32(l4[4:]) + uint32(i*g.mss)
		binary.BigEndian.PutUint32(l4[4:], seq)
		flags := l4[13]
		if i != 0 {
			flags &^= header.TCPFlagCWR
		}
		if i != g.nseg-1 {
			flags &^= header.TCPFlagFIN | header.TCPFlagPSH
		}
		l4[13] = flags
	} else {
		binary.BigEndian.PutUint16(l4[4:], uint16(l4len))
	}
	binary.BigEndian.PutUint16(l4[g.csumOffset():], pseudo)
	return n
}
