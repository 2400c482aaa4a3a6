package forward

import (
	"net/netip"

	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/header"
)

// ICMPKind is an ICMP error the director originates. Each maps to an
// ICMPv4 and an ICMPv6 type and code, chosen by the packet's family.
type ICMPKind uint8

const (
	// FragNeeded: IPv4 destination unreachable / fragmentation needed
	// and DF set (type 3 code 4) with the next-hop MTU (RFC 1191 §4), or
	// ICMPv6 packet too big (type 2 code 0) with the MTU (RFC 4443 §3.2).
	// The kernel's ensure_mtu_is_adequate.
	FragNeeded ICMPKind = iota + 1
	// PortUnreachable: IPv4 destination unreachable / port unreachable
	// (type 3 code 3), or ICMPv6 destination unreachable / port
	// unreachable (type 1 code 4): no real server available
	// (ip_vs_leave), even for TCP, and the nat_icmp_send answer to a real
	// server.
	PortUnreachable
	// TimeExceeded: IPv4 time exceeded / TTL exceeded in transit (type 11
	// code 0), or ICMPv6 time exceeded / hop limit exceeded (type 3 code
	// 0): decrement_ttl.
	TimeExceeded
)

// Sizes of ICMP errors (RFC 1812 §4.3.2.3: "the ICMP datagram SHOULD
// contain as much of the original datagram as possible without the
// length of the ICMP datagram exceeding 576 bytes"; RFC 4443 §2.4 (c):
// "as much of invoking packet as possible without the ICMPv6 packet
// exceeding the minimum IPv6 MTU"). Linux icmp_send also caps at the
// route's MTU; every link here has at least 576.
const (
	icmpv4ErrorMax = 576
	icmpv6ErrorMax = header.IPv6MinimumMTU
	// errorTTL is the TTL and hop limit of the errors: Linux's
	// sysctl_ip_default_ttl and the IPv6 route default hop limit, 64.
	errorTTL = 64
	// icmpv4MaxType is Linux's NR_ICMP_TYPES: icmp_send takes a type
	// above it for an error it may not answer ("Assume any unknown ICMP
	// type is an error").
	icmpv4MaxType = 18
	// tosPrecInternetControl is IPTOS_PREC_INTERNETCONTROL, the IP
	// precedence of an ICMP error (RFC 1812 §4.3.2.5: "the IP Precedence
	// value for these error messages MAY be settable", Linux uses 6),
	// and tosMask keeps the original TOS bits 1-4 (RT_TOS, IPTOS_TOS_MASK).
	tosPrecInternetControl = 0xc0
	tosMask                = 0x1e
)

// ICMPError turns the buffer holding an offending packet into the ICMP
// error kind about it, addressed to the packet's source from src (the
// director's address: the kernel answers from the packet's destination
// when that is a local address such as the VIP, else from the route's
// source towards the client). mtu is the MTU for FragNeeded (CheckMTU's
// second result), ignored otherwise. id is the IPv4 Identification (the
// caller's counter; ignored for IPv6). It follows Linux's icmp_send and
// icmp6_send.
//
// The error is built in place: the quoted packet, from its IP header on,
// stays where it is, truncated so that the error is at most 576 bytes
// (IPv4) or 1280 (IPv6) long; the new IP and ICMP headers and an Ethernet
// header (untagged, zero MACs, for SetMACs) are written in front of it,
// over the old Ethernet header and into the headroom (Off moves back by up
// to 48 bytes). The new IP header: IPv4 with TOS 0xC0 | (the packet's TOS
// & 0x1E), DF clear (Linux's ICMP socket uses IP_PMTUDISC_DONT), TTL 64,
// no options (Linux echoes a received source route; not done here); IPv6
// with traffic class 0, flow label 0, hop limit 64.
//
// Refused, with the frame untouched, when no error may be sent about the
// packet:
//
//   - it is an ICMP error, or an ICMP message whose type cannot be read,
//     or an ICMPv4 type above 18 (RFC 1122 §3.2.2, RFC 4443 §2.4 (e.1));
//   - it is a fragment other than the first (RFC 1122 §3.2.2; for IPv6
//     Linux would still answer it, RFC 4443 does not forbid it, but
//     IPVS's own packet too big is first-fragment only and a non-first
//     fragment is nothing the director forwards by connection);
//   - it went to a multicast or broadcast address (IPv4 224.0.0.0/4 and
//     above, IPv6 ff00::/8) or arrived in a link-layer multicast or
//     broadcast frame, except an ICMPv6 packet too big (RFC 4443 §2.4
//     (e.3), as icmp6_send allows); a subnet-directed IPv4 broadcast is
//     not recognised (the kernel knows it from the route);
//   - its source is not a single host (RFC 1812 §4.3.2.7): IPv4 0/8,
//     127/8, 224.0.0.0/4 and above; IPv6 unspecified or multicast.
//
// Rate limiting (Linux's icmp_global_allow and per-destination token
// buckets, which exempt fragmentation needed) is the caller's. src must be
// of the packet's family, else Malformed.
func ICMPError(b *Buf, p *flow.Parsed, kind ICMPKind, mtu int, src netip.Addr, id uint16) Result {
	f, ok := ipFrame(b, p)
	if !ok || kind < FragNeeded || kind > TimeExceeded {
		return Malformed
	}
	linkGroup := f[0]&1 != 0 // the I/G bit of the destination MAC
	end := p.L3Off + p.IPLen
	q := b.Off + p.L3Off // the quoted IP header, absolute in b.B
	if p.Tuple.Family == flow.FamilyIPv4 {
		if !src.Is4() {
			return Malformed
		}
		ip := header.IPv4(f[p.L3Off:end])
		d, s := ip.DestinationAddress(), ip.SourceAddress()
		if linkGroup || ip.FragmentOffset() != 0 || d[0] >= 224 ||
			s[0] == 0 || s[0] == 127 || s[0] >= 224 {
			return Refused
		}
		if ip.Protocol() == header.ProtoICMPv4 {
			l4 := p.L3Off + p.IPHdrLen
			if l4 >= end {
				return Refused
			}
			if t := header.ICMPv4Type(f[l4]); t > icmpv4MaxType || t.IsError() {
				return Refused
			}
		}
		const hdrs = header.EthernetMinimumSize + header.IPv4MinimumSize + header.ICMPv4MinimumSize
		if q < hdrs {
			return NoHeadroom
		}
		quote := min(p.IPLen, icmpv4ErrorMax-header.IPv4MinimumSize-header.ICMPv4MinimumSize)
		tos := ip.TOS()&tosMask | tosPrecInternetControl

		m := header.ICMPv4(b.B[q-header.ICMPv4MinimumSize : q+quote])
		switch kind {
		case FragNeeded:
			m.SetType(header.ICMPv4DstUnreachable)
			m.SetCode(header.ICMPv4FragNeeded)
			m.SetMTU(uint16(min(max(mtu, 0), 0xffff)))
		case PortUnreachable:
			m.SetType(header.ICMPv4DstUnreachable)
			m.SetCode(header.ICMPv4PortUnreachable)
			m.SetRestOfHeader(0)
		case TimeExceeded:
			m.SetType(header.ICMPv4TimeExceeded)
			m.SetCode(header.ICMPv4TTLExceeded)
			m.SetRestOfHeader(0)
		}
		m.SetChecksum(0)
		m.SetChecksum(m.CalculateChecksum())
		header.IPv4(b.B[q-header.IPv4MinimumSize-header.ICMPv4MinimumSize:]).Encode(&header.IPv4Fields{
			TOS:         tos,
			TotalLength: uint16(header.IPv4MinimumSize + len(m)),
			ID:          id,
			TTL:         errorTTL,
			Protocol:    header.ProtoICMPv4,
			Src:         src.As4(),
			Dst:         s,
		})
		header.Ethernet(b.B[q-hdrs:]).Encode([6]byte{}, [6]byte{}, header.EtherTypeIPv4)
		b.Off, b.Len = q-hdrs, hdrs+quote
		return Done
	}

	if !src.Is6() {
		return Malformed
	}
	ip := header.IPv6(f[p.L3Off:end])
	d, s := ip.DestinationAddress(), ip.SourceAddress()
	if p.IsFragment && !p.IsFirstFragment {
		return Refused
	}
	if (linkGroup || d[0] == 0xff) && kind != FragNeeded {
		return Refused
	}
	if s[0] == 0xff || s == [16]byte{} {
		return Refused
	}
	if p.Tuple.Proto == header.ProtoICMPv6 {
		if p.L4Off < p.L3Off+header.IPv6MinimumSize || p.L4Off >= end {
			return Refused
		}
		if header.ICMPv6Type(f[p.L4Off]).IsError() {
			return Refused
		}
	}
	const hdrs = header.EthernetMinimumSize + header.IPv6MinimumSize + header.ICMPv6MinimumSize
	if q < hdrs {
		return NoHeadroom
	}
	quote := min(p.IPLen, icmpv6ErrorMax-header.IPv6MinimumSize-header.ICMPv6MinimumSize)

	m := header.ICMPv6(b.B[q-header.ICMPv6MinimumSize : q+quote])
	switch kind {
	case FragNeeded:
		m.SetType(header.ICMPv6PacketTooBig)
		m.SetCode(0)
		m.SetMTU(uint32(max(mtu, 0)))
	case PortUnreachable:
		m.SetType(header.ICMPv6DstUnreachable)
		m.SetCode(header.ICMPv6PortUnreachable)
		m.SetRestOfHeader(0)
	case TimeExceeded:
		m.SetType(header.ICMPv6TimeExceeded)
		m.SetCode(header.ICMPv6HopLimitExceeded)
		m.SetRestOfHeader(0)
	}
	src16 := src.As16()
	m.SetChecksum(0)
	m.SetChecksum(m.CalculateChecksum(checksum.PseudoHeaderIPv6(src16, s, header.ProtoICMPv6, uint32(len(m)))))
	header.IPv6(b.B[q-header.IPv6MinimumSize-header.ICMPv6MinimumSize:]).Encode(&header.IPv6Fields{
		PayloadLength: uint16(len(m)),
		NextHeader:    header.ProtoICMPv6,
		HopLimit:      errorTTL,
		Src:           src16,
		Dst:           s,
	})
	header.Ethernet(b.B[q-hdrs:]).Encode([6]byte{}, [6]byte{}, header.EtherTypeIPv6)
	b.Off, b.Len = q-hdrs, hdrs+quote
	return Done
}
