package forward

import (
	"encoding/binary"
	"net/netip"

	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/header"
)

// NATICMPIn rewrites an ICMP error travelling from the client side to a
// real server about a packet of a NAT connection that went to the client
// (a reply, which left the director with the VIP as its source): the
// outer destination becomes the real server's address raddr, and the
// quoted packet's source address and (TCP, UDP, SCTP) source port become
// the real server's, raddr and rport, so the real server recognises its
// own packet. It is ip_vs_nat_icmp[_v6] with inout 0, called from
// ip_vs_in_icmp through ip_vs_icmp_xmit.
//
// NATICMPOut is the other direction (ip_vs_nat_icmp[_v6] with inout 1,
// from ip_vs_out_icmp): an error from a real server about a request it
// received: the outer source becomes the virtual address vaddr, and the
// quoted packet's destination address and port become vaddr and vport.
//
// Both then recompute, as the kernel does, the quoted IPv4 header's
// checksum, the outer IPv4 header's, and the ICMP checksum over the whole
// message (for ICMPv6 with the pseudo header of the new outer addresses).
// The quoted transport checksum is left as it is, as the kernel leaves it:
// it covers the whole original segment, of which the error usually quotes
// only 8 bytes, so it cannot be fixed; receivers do not check it (Linux's
// tcp_v4_err and friends look at the ports and the sequence number only).
// The quoted ports of a non-first fragment are not there and not touched.
//
// p must describe an ICMP error (p.ICMPError) whose quoted packet was
// decoded (p.Inner.Reason == flow.ReasonNone) and is of the outer family,
// else Malformed; an outer fragment answers NeedsReassembly (the kernel
// defragments ICMP before IPVS sees it). Afterwards p.Tuple.Dst (In) or
// p.Tuple.Src (Out) and p.Inner.Tuple are stale.
func NATICMPIn(b *Buf, p *flow.Parsed, raddr netip.Addr, rport uint16) Result {
	return natICMP(b, p, raddr, rport, false)
}

// NATICMPOut: see NATICMPIn.
func NATICMPOut(b *Buf, p *flow.Parsed, vaddr netip.Addr, vport uint16) Result {
	return natICMP(b, p, vaddr, vport, true)
}

func natICMP(b *Buf, p *flow.Parsed, addr netip.Addr, port uint16, out bool) Result {
	f, ok := ipFrame(b, p)
	if !ok || !p.ICMPError || p.Reason != flow.ReasonNone || p.Inner.Reason != flow.ReasonNone ||
		p.Inner.Tuple.Family != p.Tuple.Family {
		return Malformed
	}
	if p.IsFragment {
		return NeedsReassembly
	}
	v4 := p.Tuple.Family == flow.FamilyIPv4
	if !addr.IsValid() || v4 != addr.Is4() {
		return Malformed
	}
	end := p.L3Off + p.IPLen
	in := &p.Inner
	ihlen := header.IPv4MinimumSize
	if !v4 {
		ihlen = header.IPv6MinimumSize
	}
	// The ICMP header, then the quoted IP header (whole: the decoder
	// checked its IHL against the quote), then its ports if read.
	if p.L4Off < p.L3Off+p.IPHdrLen || in.L3Off != p.L4Off+header.ICMPv4MinimumSize ||
		in.IPHdrLen < ihlen || in.L3Off > end-in.IPHdrLen {
		return Malformed
	}
	if in.HasPorts && (in.L4Off < in.L3Off+in.IPHdrLen || in.L4Off > end-4) {
		return Malformed
	}
	if v4 && header.IPv4(f[in.L3Off:end]).HeaderLength() != in.IPHdrLen {
		return Malformed
	}

	outer, quoted := f[p.L3Off:end], f[in.L3Off:end]
	if v4 {
		a := addr.As4()
		o, q := header.IPv4(outer), header.IPv4(quoted)
		if out {
			o.SetSourceAddress(a)
			q.SetDestinationAddress(a)
		} else {
			o.SetDestinationAddress(a)
			q.SetSourceAddress(a)
		}
		o.SetChecksum(o.CalculateChecksum())
		q.SetChecksum(q.CalculateChecksum())
	} else {
		a := addr.As16()
		o, q := header.IPv6(outer), header.IPv6(quoted)
		if out {
			o.SetSourceAddress(a)
			q.SetDestinationAddress(a)
		} else {
			o.SetDestinationAddress(a)
			q.SetSourceAddress(a)
		}
	}
	if in.HasPorts {
		po := srcPortOff
		if out {
			po = dstPortOff
		}
		binary.BigEndian.PutUint16(f[in.L4Off+po:], port)
	}
	msg := f[p.L4Off:end]
	if v4 {
		m := header.ICMPv4(msg)
		m.SetChecksum(m.CalculateChecksum())
	} else {
		o := header.IPv6(outer)
		m := header.ICMPv6(msg)
		m.SetChecksum(m.CalculateChecksum(checksum.PseudoHeaderIPv6(o.SourceAddress(), o.DestinationAddress(),
			header.ProtoICMPv6, uint32(len(msg)))))
	}
	return Done
}
