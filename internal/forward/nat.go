package forward

import (
	"encoding/binary"
	"net/netip"

	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/header"
)

// DNAT rewrites a request for a NAT (masquerading) connection: the
// destination address becomes the real server's (daddr) and, for TCP, UDP
// and SCTP, the destination port becomes dport. It is ip_vs_nat_xmit[_v6]
// with the protocol's dnat_handler (tcp_dnat_handler, udp_dnat_handler,
// sctp_dnat_handler) for a connection without an application helper:
//
//   - IPv4 header checksum: updated incrementally (the kernel recomputes it
//     with ip_send_check; the result is the same).
//   - TCP, and UDP with a checksum: incremental update for the address (in
//     the pseudo header) and the port (tcp_fast_csum_update,
//     udp_fast_csum_update); a UDP result of 0 is sent as 0xFFFF.
//   - UDP without a checksum (0): a full checksum is computed, as the
//     kernel does (its "full checksum calculation" branch), so the datagram
//     leaves the director with one; 0 is sent as 0xFFFF (CSUM_MANGLED_0).
//     The sum covers the UDP Length bytes, where the kernel sums to the
//     end of the IP packet: the two differ only for a datagram with bytes
//     after its UDP length, which the receiver's checksum (over the UDP
//     length, RFC 768) would reject from the kernel.
//   - SCTP: the CRC32c is recomputed only if the port changes or the
//     checksum is partial ("Only update csum if we really have to").
//   - partialCsum: the frame's transport checksum is a partial one left
//     for offload (CHECKSUM_PARTIAL, a virtio-net header's NEEDS_CSUM): the
//     field holds the un-complemented pseudo-header sum. Only the pseudo
//     header's address is updated (tcp/udp_partial_csum_update; the port
//     is in the data the offload will sum). For SCTP the CRC32c is
//     computed in software, as the kernel does when the egress device
//     cannot offload it, and the packet no longer needs offload.
//
// A non-first fragment has no transport header: only the address
// changes, as in the kernel (the IPv6 handlers return early on
// iph->fragoffs). A first fragment's TCP or UDP checksum is updated
// incrementally like a whole packet's, but a zero UDP checksum stays zero
// (the datagram is not all here to sum) and an SCTP port change answers
// NeedsReassembly. Other protocols (AH, ESP) get the address only, as the
// kernel has no dnat_handler for them.
//
// daddr must be of the packet's family (an IPv4 address for IPv4, a
// 16-byte one for IPv6), else Malformed. Afterwards p.Tuple.Dst and
// p.Tuple.DstPort are stale.
func DNAT(b *Buf, p *flow.Parsed, daddr netip.Addr, dport uint16, partialCsum bool) Result {
	return nat(b, p, daddr, dport, partialCsum, false)
}

// SNAT rewrites a reply of a NAT connection: the source address becomes
// the virtual address (vaddr) and, for TCP, UDP and SCTP, the source port
// the virtual port (vport). It is handle_response in ip_vs_out with the
// protocol's snat_handler (tcp_snat_handler, udp_snat_handler,
// sctp_snat_handler); checksums as for DNAT. Afterwards p.Tuple.Src and
// p.Tuple.SrcPort are stale.
func SNAT(b *Buf, p *flow.Parsed, vaddr netip.Addr, vport uint16, partialCsum bool) Result {
	return nat(b, p, vaddr, vport, partialCsum, true)
}

// Offsets of the ports and checksums in the transport headers (RFC 9293
// §3.1, RFC 768, RFC 9260 §3.1); each view's own constants are unexported.
const (
	srcPortOff  = 0
	dstPortOff  = 2
	tcpCsumOff  = 16
	udpCsumOff  = 6
	ipv4SrcOff  = 12
	ipv4DstOff  = 16
	ipv6SrcOff  = 8
	ipv6DstOff  = 24
	ipv4AddrLen = 4
	ipv6AddrLen = 16
)

// nat rewrites the source (src) or destination address and port.
func nat(b *Buf, p *flow.Parsed, addr netip.Addr, port uint16, partial, src bool) Result {
	f, ok := ipFrame(b, p)
	if !ok {
		return Malformed
	}
	v4 := p.Tuple.Family == flow.FamilyIPv4
	if !addr.IsValid() || v4 != addr.Is4() {
		return Malformed
	}
	end := p.L3Off + p.IPLen
	ip := f[p.L3Off:end]

	// Where the address and port sit, and their old values.
	aOff, pOff := ipv4DstOff, dstPortOff
	if src {
		aOff, pOff = ipv4SrcOff, srcPortOff
	}
	alen := ipv4AddrLen
	if !v4 {
		alen = ipv6AddrLen
		aOff = ipv6DstOff
		if src {
			aOff = ipv6SrcOff
		}
	}
	var oldA, newA [16]byte
	copy(oldA[:alen], ip[aOff:aOff+alen])
	if v4 {
		a4 := addr.As4()
		copy(newA[:4], a4[:])
	} else {
		newA = addr.As16()
	}

	// Transport header: checked completely before anything is written.
	// TCP, UDP and SCTP carry ports unless this is a non-first fragment.
	var l4 []byte
	switch p.Tuple.Proto {
	case header.ProtoTCP, header.ProtoUDP, header.ProtoSCTP:
		if p.IsFragment && !p.IsFirstFragment {
			break
		}
		if !p.HasPorts || p.Reason != flow.ReasonNone || p.L4Off < p.L3Off+p.IPHdrLen || p.L4Off > end {
			return Malformed
		}
		l4 = f[p.L4Off:end]
		need := header.TCPMinimumSize
		switch p.Tuple.Proto {
		case header.ProtoUDP:
			need = header.UDPSize
		case header.ProtoSCTP:
			need = header.SCTPCommonHeaderSize
		}
		if len(l4) < need {
			return Malformed
		}
		if p.Tuple.Proto == header.ProtoSCTP && p.IsFragment &&
			(partial || binary.BigEndian.Uint16(l4[pOff:]) != port) {
			return NeedsReassembly
		}
		if p.Tuple.Proto == header.ProtoUDP && !p.IsFragment {
			if ul := int(header.UDP(l4).Length()); ul < header.UDPSize || ul > len(l4) {
				return Malformed
			}
		}
	}

	if l4 != nil {
		oldP := binary.BigEndian.Uint16(l4[pOff:])
		binary.BigEndian.PutUint16(l4[pOff:], port)
		switch p.Tuple.Proto {
		case header.ProtoTCP:
			c := binary.BigEndian.Uint16(l4[tcpCsumOff:])
			if partial {
				c = ^updateAddr(^c, &oldA, &newA, v4)
			} else {
				c = updateAddr(checksum.Update16(c, oldP, port), &oldA, &newA, v4)
			}
			binary.BigEndian.PutUint16(l4[tcpCsumOff:], c)
		case header.ProtoUDP:
			u := header.UDP(l4)
			c := u.Checksum()
			switch {
			case partial:
				u.SetChecksum(^updateAddr(^c, &oldA, &newA, v4))
			case c != 0:
				u.SetChecksum(checksum.ForUDP(updateAddr(checksum.Update16(c, oldP, port), &oldA, &newA, v4)))
			case !p.IsFragment:
				// The new pseudo header: the rewritten address in
				// its place, the other one as it is.
				s, d := ip[ipv4SrcOff:ipv4SrcOff+4], newA[:4]
				if src {
					s, d = newA[:4], ip[ipv4DstOff:ipv4DstOff+4]
				}
				var ps uint16
				if v4 {
					ps = checksum.PseudoHeaderIPv4([4]byte(s), [4]byte(d), header.ProtoUDP, u.Length())
				} else {
					s6, d6 := [16]byte(ip[ipv6SrcOff:ipv6SrcOff+16]), newA
					if src {
						s6, d6 = newA, [16]byte(ip[ipv6DstOff:ipv6DstOff+16])
					}
					ps = checksum.PseudoHeaderIPv6(s6, d6, header.ProtoUDP, uint32(u.Length()))
				}
				u.SetChecksum(u.CalculateChecksum(ps))
			}
		case header.ProtoSCTP:
			if oldP != port || partial {
				s := header.SCTP(l4)
				s.SetChecksum(s.CalculateChecksum())
			}
		}
	}

	copy(ip[aOff:aOff+alen], newA[:alen])
	if v4 {
		h := header.IPv4(ip)
		h.SetChecksum(checksum.Update32(h.Checksum(), [4]byte(oldA[:4]), [4]byte(newA[:4])))
	}
	return Done
}

// updateAddr is the RFC 1624 update of checksum c for an address change
// in the pseudo header (checksum.Update32 or checksum.UpdateAddr).
func updateAddr(c uint16, oldA, newA *[16]byte, v4 bool) uint16 {
	if v4 {
		return checksum.Update32(c, [4]byte(oldA[:4]), [4]byte(newA[:4]))
	}
	return checksum.UpdateAddr(c, *oldA, *newA)
}
