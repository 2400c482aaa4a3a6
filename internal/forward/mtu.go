package forward

import (
	"golvs/internal/flow"
	"golvs/internal/header"
)

// MTUVerdict is CheckMTU's answer.
type MTUVerdict uint8

const (
	// MTUFits: the packet fits; send it.
	MTUFits MTUVerdict = iota
	// MTUFragment: the packet is too big but may be fragmented: send it
	// in fragments (the kernel sets ignore_df and lets ip_fragment do it;
	// here FragmentIPv4 on the finished frame, see CheckMTU). IPv4 only:
	// a packet without DF, an ICMP error being relayed, or any IPv4
	// packet into a tunnel with pmtu_disc=0 (which the kernel does not
	// even check).
	MTUFragment
	// MTUFragNeeded: the packet is too big and may not be fragmented:
	// drop it and answer with ICMPError(FragNeeded) carrying the
	// returned MTU (IPv4 destination unreachable / fragmentation needed,
	// ICMPv6 packet too big).
	MTUFragNeeded
	// MTUDrop: too big, and no error may be sent: an IPv6 ICMP error
	// being relayed, or an IPv6 non-first fragment.
	MTUDrop
	// MTUTunnelTooSmall: the route's MTU less the tunnel overhead is
	// below the smallest MTU of the outer family (68 for IPv4, RFC 791;
	// 1280 for IPv6, RFC 8200 §5): drop (the kernel's "mtu less than
	// 68" in __ip_vs_get_out_rt).
	MTUTunnelTooSmall
	// MTUBadFrame: p is not an IP packet, or t has an unknown type.
	MTUBadFrame

	// NumMTUVerdicts is the number of verdicts.
	NumMTUVerdicts
)

var mtuNames = [NumMTUVerdicts]string{
	MTUFits:           "fits",
	MTUFragment:       "fragment",
	MTUFragNeeded:     "frag_needed",
	MTUDrop:           "too_big_drop",
	MTUTunnelTooSmall: "tunnel_mtu_too_small",
	MTUBadFrame:       "bad_frame",
}

// String returns the verdict's metric-label name.
func (v MTUVerdict) String() string {
	if v < NumMTUVerdicts {
		return mtuNames[v]
	}
	return "unknown"
}

// ipv4MinimumMTU is the smallest MTU an IPv4 link may have: "Every
// internet module must be able to forward a datagram of 68 octets without
// further fragmentation" (RFC 791 §3.2).
const ipv4MinimumMTU = 68

// CheckMTU decides what to do with a packet about to leave through a
// route of MTU mtu (the egress link's MTU, or the route's PMTU), the
// kernel's MTU step of __ip_vs_get_out_rt[_v6] with
// ensure_mtu_is_adequate. t is the tunnel for TUN, nil for NAT and DR. It
// returns the verdict and the MTU that applies to the inner packet (mtu,
// less t.Overhead() for a tunnel): the MTU to put in a FragNeeded error.
// The size compared is p.IPLen, the IP packet as it is now (NAT does not
// change it; the tunnel's headers are in the overhead). On MTUFragment
// the finished frame is cut with FragmentIPv4 at mtu, the route's: for a
// tunnel that is the outer packet, as the kernel's ip_local_out does (an
// IPv6 outer packet would need IPv6 fragmentation, not provided).
//
// The rules, as the kernel has them ("reject with FRAG_NEEDED all DF
// packets that exceed the PMTU, irrespective of the forwarding method"):
//
//   - A tunnel whose mtu less overhead is below 68 (outer IPv4) or 1280
//     (outer IPv6): MTUTunnelTooSmall.
//   - IPv4 into a tunnel with t.NoPMTUDisc: never an error (MTUFits, or
//     MTUFragment if too big).
//   - IPv4 too big: MTUFragNeeded if DF is set and the packet is not an
//     ICMP error being relayed (p.ICMPError: the kernel's
//     ip_vs_iph_icmp, the packet handed to ip_vs_icmp_xmit), else
//     MTUFragment.
//   - IPv6 too big: MTUFragNeeded (packet too big) for an unfragmented
//     packet or a first fragment that is not an ICMPv6 error; MTUDrop
//     otherwise ("only send ICMP too big on first fragment").
//
// GSO super-packets, which the kernel exempts, do not exist here: a frame
// is one packet.
func CheckMTU(p *flow.Parsed, mtu int, t *Tunnel) (MTUVerdict, int) {
	if p.Tuple.Family != flow.FamilyIPv4 && p.Tuple.Family != flow.FamilyIPv6 {
		return MTUBadFrame, 0
	}
	if t != nil {
		o := t.Overhead()
		if o < 0 {
			return MTUBadFrame, 0
		}
		mtu -= o
		floor := ipv4MinimumMTU
		if t.outer6() {
			floor = header.IPv6MinimumMTU
		}
		if mtu < floor {
			return MTUTunnelTooSmall, mtu
		}
	}
	if p.IPLen <= mtu {
		return MTUFits, mtu
	}
	if p.Tuple.Family == flow.FamilyIPv4 {
		if t != nil && t.NoPMTUDisc || !p.DF || p.ICMPError {
			return MTUFragment, mtu
		}
		return MTUFragNeeded, mtu
	}
	if (p.IsFragment && !p.IsFirstFragment) || p.ICMPError {
		return MTUDrop, mtu
	}
	return MTUFragNeeded, mtu
}
