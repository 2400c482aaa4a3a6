package header

// IP-in-IP tunnels, as IPVS's TUN forwarding builds them
// (ip_vs_tunnel_xmit, ip_vs_tunnel_xmit_v6): the client's packet, its own
// header intact, becomes the payload of an outer header addressed to the
// real server. The outer protocol is ProtoIPIP (4, RFC 2003) for an IPv4
// inner packet and ProtoIPv6 (41, RFC 2473) for an IPv6 one, whichever
// the outer family.
//
// The encapsulation functions write the outer header into headroom the
// caller left in front of the inner packet, so the inner packet is never
// copied:
//
//	buf:  [ ... headroom ... | inner packet ................. ]
//	      0            off-20 off                       len(buf)
//	                   [outer]
//	result:            [outer | inner packet ................. ]
//
// A GUE or GRE header would go between (ip_vs_xmit.c ipvs_gue_encap,
// ipvs_gre_encap): the caller writes it at off-8 or off-4 and encapsulates
// from there with Protocol ProtoUDP or ProtoGRE.

// TunnelProtocol returns the outer protocol for an inner packet: ProtoIPIP
// for IPv4, ProtoIPv6 for IPv6, 0 for anything else (or an empty inner).
func TunnelProtocol(inner []byte) uint8 {
	if len(inner) == 0 {
		return 0
	}
	switch inner[0] >> 4 {
	case 4:
		return ProtoIPIP
	case 6:
		return ProtoIPv6
	}
	return 0
}

// ecnMask is the ECN field of the TOS / Traffic Class byte (RFC 3168 §5).
const (
	ecnMask = 0x03
	ecnECT0 = 0x02
	ecnCE   = 0x03
)

// ECNEncapsulate returns the outer TOS (or Traffic Class) for a tunnel:
// outer's DSCP bits with inner's ECN field, except that a CE inner packet
// gets ECT(0) outside (RFC 6040 §4.1 "normal mode"; the kernel's
// INET_ECN_encapsulate, which ip_vs_tunnel_xmit applies to the inner
// dsfield).
func ECNEncapsulate(outer, inner uint8) uint8 {
	outer &^= ecnMask
	if inner&ecnMask == ecnCE {
		return outer | ecnECT0
	}
	return outer | inner&ecnMask
}

// IPv4Tunnel is the outer IPv4 header of a tunnel.
type IPv4Tunnel struct {
	Src, Dst [4]byte
	// TOS is usually ECNEncapsulate(innerTOS, innerTOS).
	TOS uint8
	// TTL is the inner packet's TTL (after the forwarding decrement).
	TTL uint8
	// ID is the outer Identification (ip_select_ident: a per-destination
	// counter is enough).
	ID uint16
	// DF is the inner packet's DF when path MTU discovery is on
	// (sysctl pmtu_disc), else false.
	DF bool
	// Protocol is TunnelProtocol(inner), or ProtoUDP / ProtoGRE when a
	// GUE or GRE header is in front of the inner packet.
	Protocol uint8
}

// EncapIPv4 writes an outer IPv4 header, checksum included, into
// buf[off-20:off], in front of the packet buf[off:] (which runs to the end
// of buf), and returns the whole tunnel packet buf[off-20:]. ok is false,
// and nothing is written, if there are fewer than 20 bytes of headroom or
// the result would exceed 65535 bytes; the caller has checked the MTU
// before (ensure_mtu_is_adequate), so neither happens on a sound path.
func EncapIPv4(buf []byte, off int, t IPv4Tunnel) (pkt IPv4, ok bool) {
	if off < IPv4MinimumSize || off > len(buf) || len(buf)-off > IPv4MaximumSize-IPv4MinimumSize {
		return nil, false
	}
	pkt = IPv4(buf[off-IPv4MinimumSize:])
	pkt.Encode(&IPv4Fields{
		TOS:         t.TOS,
		TotalLength: uint16(len(pkt)),
		ID:          t.ID,
		DF:          t.DF,
		TTL:         t.TTL,
		Protocol:    t.Protocol,
		Src:         t.Src,
		Dst:         t.Dst,
	})
	return pkt, true
}

// IPv6Tunnel is the outer IPv6 header of a tunnel.
type IPv6Tunnel struct {
	Src, Dst [16]byte
	// TrafficClass is usually ECNEncapsulate(innerDS, innerDS).
	TrafficClass uint8
	// FlowLabel is 0 in the kernel's ip_vs_tunnel_xmit_v6.
	FlowLabel uint32
	// HopLimit is the inner packet's TTL or hop limit.
	HopLimit uint8
	// NextHeader is TunnelProtocol(inner), or ProtoUDP / ProtoGRE.
	NextHeader uint8
}

// EncapIPv6 is EncapIPv4 for an outer IPv6 header: it writes
// buf[off-40:off] and returns buf[off-40:]. ok is false if there are fewer
// than 40 bytes of headroom or the inner packet exceeds 65535 bytes (the
// Payload Length field; jumbograms are not supported).
func EncapIPv6(buf []byte, off int, t IPv6Tunnel) (pkt IPv6, ok bool) {
	if off < IPv6MinimumSize || off > len(buf) || len(buf)-off > 0xffff {
		return nil, false
	}
	pkt = IPv6(buf[off-IPv6MinimumSize:])
	pkt.Encode(&IPv6Fields{
		TrafficClass:  t.TrafficClass,
		FlowLabel:     t.FlowLabel,
		PayloadLength: uint16(len(buf) - off),
		NextHeader:    t.NextHeader,
		HopLimit:      t.HopLimit,
		Src:           t.Src,
		Dst:           t.Dst,
	})
	return pkt, true
}
