package forward

import (
	"encoding/binary"
	"net/netip"

	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/header"
)

// TunnelType is the encapsulation of a tunnel destination (ipvsadm
// --tun-type; the kernel's IP_VS_CONN_F_TUNNEL_TYPE_*). The values are
// those of service.TunType, so one converts to the other.
type TunnelType uint8

// Tunnel types.
const (
	// TunnelIPIP is IP-in-IP (RFC 2003) or IPv6-in-IP (RFC 2473): the
	// outer IP header alone (ipvsadm's default).
	TunnelIPIP TunnelType = 0
	// TunnelGUE is Generic UDP Encapsulation (draft-ietf-intarea-gue):
	// outer IP, UDP, a 4-byte GUE header, inner packet.
	TunnelGUE TunnelType = 1
	// TunnelGRE is GRE (RFC 2784): outer IP, a 4-byte GRE header (8 with
	// a checksum), inner packet.
	TunnelGRE TunnelType = 2
)

// Sizes of the encapsulation headers between the outer IP header and the
// inner packet.
const (
	// gueHeaderSize is the GUE version 0 base header with no options
	// (struct guehdr: version, control, hlen, proto_ctype, flags).
	gueHeaderSize = 4
	// greHeaderSize is the GRE base header: flags and version (2 bytes),
	// protocol type (2) (RFC 2784 §2).
	greHeaderSize = 4
	// greCsumSize is what the C bit adds: checksum (2) and reserved1
	// (2) (RFC 2784 §2.5), the kernel's gre_calc_hlen with
	// TUNNEL_CSUM.
	greCsumSize = 4
	// greFlagCsum is the C (checksum present) bit of the GRE flags word.
	greFlagCsum = 0x8000
)

// Tunnel is how one tunnel destination is reached: the part of a TUN
// real server's configuration and cached route that the encapsulation
// reads (struct ip_vs_dest tun_type, tun_port, tun_flags, and the route's
// source address). It is immutable once built and may be shared by every
// worker; the per-packet values (outer IPv4 ID, flow hash) are Encap's
// arguments. The zero Tunnel is not usable (no addresses).
type Tunnel struct {
	// Src and Dst are the outer addresses: the director's address the
	// route towards the real server selects (IP_VS_RT_MODE_CONNECT), and
	// the real server's. Both of one family, the outer family, which may
	// differ from the inner packet's.
	Src, Dst netip.Addr
	// Type is the encapsulation.
	Type TunnelType
	// Port is the GUE destination port (--tun-port).
	Port uint16
	// Csum asks for an outer checksum (--tun-csum): the UDP checksum for
	// GUE (else 0, which RFC 6935 allows over IPv6 for tunnels), the GRE
	// checksum for GRE (else no checksum field). --tun-remcsum (GUE
	// remote checksum offload) is not supported.
	Csum bool
	// NoPMTUDisc is the sysctl pmtu_disc=0 (default 1): the outer DF is
	// cleared instead of copied from the inner IPv4 packet, and CheckMTU
	// lets an IPv4 packet that is too big through to be fragmented.
	NoPMTUDisc bool
}

// outer6 reports an IPv6 outer header.
func (t *Tunnel) outer6() bool { return !t.Dst.Is4() }

// encapSize returns the size of the GUE or GRE header, 0 for IPIP, -1 for
// an unknown type.
func (t *Tunnel) encapSize() int {
	switch t.Type {
	case TunnelIPIP:
		return 0
	case TunnelGUE:
		return header.UDPSize + gueHeaderSize
	case TunnelGRE:
		if t.Csum {
			return greHeaderSize + greCsumSize
		}
		return greHeaderSize
	}
	return -1
}

// Overhead returns the bytes the tunnel adds in front of the inner IP
// packet: the outer header (20 or 40), plus 12 for GUE (UDP and GUE
// header) or 4 for GRE (8 with checksum). It is what the kernel
// subtracts from the route's MTU in __ip_vs_get_out_rt[_v6]. An unknown
// type gives -1.
func (t *Tunnel) Overhead() int {
	n := t.encapSize()
	if n < 0 {
		return -1
	}
	if t.outer6() {
		return header.IPv6MinimumSize + n
	}
	return header.IPv4MinimumSize + n
}

// The local port range the kernel draws tunnel UDP source ports from
// (udp_flow_src_port with min >= max takes inet_get_local_port_range,
// whose default net.ipv4.ip_local_port_range is "32768 60999").
const (
	localPortMin = 32768
	localPortMax = 60999
)

// gueSourcePort maps a flow hash to a UDP source port as the kernel's
// udp_flow_src_port does, so that one flow keeps one outer 5-tuple (for
// ECMP and RSS on the path) and flows spread over the range.
func gueSourcePort(hash uint32) uint16 {
	// "Since this is being sent on the wire obfuscate hash a bit to
	// minimize possibility that any useful information to an attacker is
	// leaked. Only upper 16 bits are relevant in the computation for 16
	// bit port value."
	hash ^= hash << 16
	return uint16(uint64(hash)*(localPortMax-localPortMin)>>32 + localPortMin)
}

// Encap encapsulates the packet for a TUN destination (ip_vs_tunnel_xmit,
// ip_vs_tunnel_xmit_v6, with ipvs_gue_encap or ipvs_gre_encap): the IP
// packet stays where it is, and the GUE or GRE header, the outer IP header
// and a new Ethernet header (untagged, zero MACs, for SetMACs) are written
// into the headroom in front of it. Off moves back, and the frame ends with
// the inner IP packet (Ethernet padding dropped).
//
// The outer header copies from the inner one as the kernel's
// ip_vs_prepare_tunneled_skb reads it, so DecTTL comes first:
//
//   - TOS / Traffic Class: the inner DS field with its ECN bits
//     encapsulated (INET_ECN_encapsulate: CE becomes ECT(0), RFC 6040
//     §4.1 "normal mode").
//   - TTL / Hop Limit: the inner TTL or hop limit.
//   - DF (outer IPv4): the inner IPv4 DF, unless t.NoPMTUDisc; never for
//     an IPv6 inner packet. Fragment offset 0, MF clear.
//   - ID (outer IPv4): id, the caller's per-destination counter (the
//     kernel's ip_select_ident).
//   - Flow label (outer IPv6): 0.
//   - Protocol / Next Header: 4 (IPIP) for an IPv4 inner packet, 41 for
//     IPv6, or 17 (UDP) for GUE, 47 for GRE.
//
// GUE: UDP source port from flowHash (udp_flow_src_port over the
// default local port range), destination port t.Port, checksum 0 or, with
// t.Csum, computed over the whole datagram (0 sent as 0xFFFF); then the
// GUE header version 0 with no options, proto_ctype 4 or 41. GRE: flags 0
// (or C with t.Csum, followed by the checksum over the GRE header and the
// inner packet, RFC 2784 §2.5), version 0, protocol 0x0800 or 0x86DD.
// flowHash is ignored but for GUE.
//
// The inner packet's bytes are read (for the checksums) but never
// written; a partial inner transport checksum stays partial, so with
// t.Csum the outer checksum covers the partial value (the kernel would use
// local checksum offload): complete it first (CompleteChecksum) if the
// offload cannot follow the encapsulation. Results: NoHeadroom, TooBig (beyond 65535 bytes),
// Malformed (wrong families, unknown type). Afterwards the whole Parsed
// is stale.
func Encap(b *Buf, p *flow.Parsed, t *Tunnel, id uint16, flowHash uint32) Result {
	f, ok := ipFrame(b, p)
	if !ok {
		return Malformed
	}
	v6 := t.outer6()
	if !t.Src.IsValid() || !t.Dst.IsValid() || t.Src.Is4() != t.Dst.Is4() {
		return Malformed
	}
	encap := t.encapSize()
	if encap < 0 {
		return Malformed
	}
	outerHdr := header.IPv4MinimumSize
	if v6 {
		outerHdr = header.IPv6MinimumSize
	}
	innerLen := p.IPLen
	// The Ethernet header goes in front of the outer one.
	l3 := b.Off + p.L3Off
	newOff := l3 - encap - outerHdr - header.EthernetMinimumSize
	if newOff < 0 {
		return NoHeadroom
	}
	if v6 && encap+innerLen > 0xffff || !v6 && outerHdr+encap+innerLen > header.IPv4MaximumSize {
		return TooBig // the outer length field cannot say it
	}

	// The inner header's values, read before anything is written.
	inner := f[p.L3Off : p.L3Off+innerLen]
	var ds, ttl, proto uint8
	var df bool
	if p.Tuple.Family == flow.FamilyIPv4 {
		h := header.IPv4(inner)
		ds, ttl, proto = h.TOS(), h.TTL(), header.ProtoIPIP
		df = h.DF() && !t.NoPMTUDisc
	} else {
		h := header.IPv6(inner)
		ds, ttl, proto = h.TrafficClass(), h.HopLimit(), header.ProtoIPv6
	}
	ds = header.ECNEncapsulate(ds, ds)

	buf := b.B[:l3+innerLen]
	off := l3 // where what the outer header carries starts
	switch t.Type {
	case TunnelGUE:
		g := buf[off-gueHeaderSize : off]
		g[0] = 0     // version 0, control 0, hlen 0 (no options)
		g[1] = proto // proto_ctype: the inner packet's protocol
		g[2], g[3] = 0, 0
		off -= encap
		header.UDP(buf[off:]).Encode(gueSourcePort(flowHash), t.Port, uint16(encap+innerLen), 0)
		proto = header.ProtoUDP
	case TunnelGRE:
		off -= encap
		g := buf[off:]
		var flags uint16
		if t.Csum {
			flags = greFlagCsum
		}
		et := header.EtherTypeIPv4
		if proto == header.ProtoIPv6 {
			et = header.EtherTypeIPv6
		}
		binary.BigEndian.PutUint16(g[0:], flags) // C, reserved0, version 0
		binary.BigEndian.PutUint16(g[2:], et)    // protocol type
		if t.Csum {
			binary.BigEndian.PutUint32(g[4:], 0) // checksum (0 while summing), reserved1
			binary.BigEndian.PutUint16(g[4:], ^checksum.Sum(g, 0))
		}
		proto = header.ProtoGRE
	}

	if v6 {
		if _, ok := header.EncapIPv6(buf, off, header.IPv6Tunnel{
			Src: t.Src.As16(), Dst: t.Dst.As16(), TrafficClass: ds, HopLimit: ttl, NextHeader: proto,
		}); !ok {
			return TooBig
		}
	} else {
		if _, ok := header.EncapIPv4(buf, off, header.IPv4Tunnel{
			Src: t.Src.As4(), Dst: t.Dst.As4(), TOS: ds, TTL: ttl, ID: id, DF: df, Protocol: proto,
		}); !ok {
			return TooBig
		}
	}
	if t.Type == TunnelGUE && t.Csum {
		u := header.UDP(buf[off:])
		var ps uint16
		if v6 {
			ps = checksum.PseudoHeaderIPv6(t.Src.As16(), t.Dst.As16(), header.ProtoUDP, uint32(len(u)))
		} else {
			ps = checksum.PseudoHeaderIPv4(t.Src.As4(), t.Dst.As4(), header.ProtoUDP, uint16(len(u)))
		}
		u.SetChecksum(u.CalculateChecksum(ps))
	}

	et := header.EtherTypeIPv4
	if v6 {
		et = header.EtherTypeIPv6
	}
	header.Ethernet(b.B[newOff:]).Encode([6]byte{}, [6]byte{}, et)
	b.Off = newOff
	b.Len = header.EthernetMinimumSize + outerHdr + encap + innerLen
	return Done
}
