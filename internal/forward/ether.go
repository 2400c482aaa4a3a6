package forward

import (
	"encoding/binary"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// SetMACs addresses the frame to the next hop: destination and source
// MAC addresses, as the kernel's neighbour output does after routing (for
// DR, the destination is the real server's MAC: ip_vs_dr_xmit routes with
// FLOWI_FLAG_KNOWN_NH and leaves the IP header alone). An 802.1Q tag is
// stripped (Off moves forward by 4, Len shrinks by 4): the pipeline picks
// the egress interface, and the received frame's VLAN says nothing about
// it. Use SetMACsVLAN to send a tagged frame. Stripping costs no copy: the
// tagged frame's inner EtherType is already where the untagged frame's
// EtherType goes.
//
// It needs only the Ethernet header, so it also addresses what Encap and
// ICMPError built. Stale Parsed fields afterwards: see the package
// documentation (every offset moves by -4 if a tag was stripped).
func SetMACs(b *Buf, dst, src [6]byte) Result {
	if !b.valid() || b.Len < header.EthernetMinimumSize {
		return Malformed
	}
	f := header.Ethernet(b.B[b.Off : b.Off+b.Len])
	if f.HasVLAN() {
		if b.Len < header.EthernetTaggedSize {
			return Malformed
		}
		b.Off += header.VLANTagSize
		b.Len -= header.VLANTagSize
		f = f[header.VLANTagSize:]
	}
	f.SetDestination(dst)
	f.SetSource(src)
	return Done
}

// tciVIDMask is the 12-bit VLAN identifier in the tag control information;
// the 4 bits above it are PCP (3) and DEI (1) (IEEE 802.1Q §9.6).
const tciVIDMask = 0x0fff

// SetMACsVLAN is SetMACs for a tagged egress: the frame leaves with
// exactly one 802.1Q tag carrying VLAN ID vid. A tagged frame keeps its
// tag's priority (PCP) and DEI bits and gets the new VID; an untagged one
// gets a tag with PCP 0, pushed into the headroom (Off moves back by 4,
// Len grows by 4; NoHeadroom if Off < 4).
func SetMACsVLAN(b *Buf, dst, src [6]byte, vid uint16) Result {
	if !b.valid() || b.Len < header.EthernetMinimumSize {
		return Malformed
	}
	f := header.Ethernet(b.B[b.Off : b.Off+b.Len])
	if f.HasVLAN() {
		if b.Len < header.EthernetTaggedSize {
			return Malformed
		}
		tci := binary.BigEndian.Uint16(f[14:16])
		binary.BigEndian.PutUint16(f[14:16], tci&^tciVIDMask|vid&tciVIDMask)
	} else {
		if b.Off < header.VLANTagSize {
			return NoHeadroom
		}
		b.Off -= header.VLANTagSize
		b.Len += header.VLANTagSize
		f = header.Ethernet(b.B[b.Off : b.Off+b.Len])
		// The EtherType at the old offset 12 is now at 16, where a
		// tagged frame keeps it: only the TPID and TCI are new.
		binary.BigEndian.PutUint16(f[12:14], header.EtherTypeVLAN)
		binary.BigEndian.PutUint16(f[14:16], vid&tciVIDMask)
	}
	f.SetDestination(dst)
	f.SetSource(src)
	return Done
}

// DR is direct routing at the byte level (ip_vs_dr_xmit): the IP packet
// is left as it is but for the TTL, and the frame goes to the real
// server's MAC. It is DecTTL then, if that succeeded, SetMACs; on
// TTLExpired the frame is untouched, ready for ICMPError. The MTU check
// (CheckMTU) belongs between the two in the kernel, but it reads nothing
// either of them writes, so the pipeline may run it before DR.
func DR(b *Buf, p *flow.Parsed, dst, src [6]byte) Result {
	if r := DecTTL(b, p); r != Done {
		return r
	}
	return SetMACs(b, dst, src)
}
