package header

import (
	"encoding/binary"

	"golvs/internal/checksum"
)

// IPv6 is an IPv6 header and what follows it (RFC 8200 §3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                         Source Address                        +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+                      Destination Address                      +
//	|                                                               |
//	+                                                               +
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// "Payload Length: ... Length of the IPv6 payload, i.e., the rest of the
// packet following this IPv6 header, in octets. (Note that any extension
// headers present are considered part of the payload, i.e., included in
// the length count.)"
type IPv6 []byte

const (
	ipv6VersTCFlow = 0
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	// IPv6MinimumSize is the size of the fixed header.
	IPv6MinimumSize = 40
	// IPv6MinimumMTU is the smallest link MTU IPv6 allows (RFC 8200 §5):
	// the floor of an ICMPv6 Packet Too Big MTU and of a tunnel's MTU.
	IPv6MinimumMTU = 1280

	ipv6FlowLabelMask = 0x000fffff
)

// IsValid reports whether b starts with an IPv6 header whose packet fits
// in the pktSize bytes available (usually len(b)): version 6 and 40 +
// Payload Length ≤ pktSize. A zero Payload Length with a Jumbo Payload
// option (RFC 2675) is not supported: such a packet has a payload of 0
// bytes here.
func (b IPv6) IsValid(pktSize int) bool {
	if len(b) < IPv6MinimumSize || pktSize > len(b) {
		return false
	}
	return b.Version() == 6 && IPv6MinimumSize+int(b.PayloadLength()) <= pktSize
}

// Version returns the IP version (6 for a valid header).
func (b IPv6) Version() uint8 { return b[ipv6VersTCFlow] >> 4 }

// TrafficClass returns the Traffic Class (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ipv6VersTCFlow:]) >> 4)
}

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(b[ipv6VersTCFlow:]) & ipv6FlowLabelMask
}

// PayloadLength returns the length of everything after the fixed header.
func (b IPv6) PayloadLength() uint16 { return binary.BigEndian.Uint16(b[ipv6PayloadLen:]) }

// NextHeader returns the type of the header after the fixed header.
func (b IPv6) NextHeader() uint8 { return b[ipv6NextHeader] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ipv6HopLimit] }

// SourceAddress returns the source address.
func (b IPv6) SourceAddress() [16]byte { return [16]byte(b[ipv6Src : ipv6Src+16]) }

// DestinationAddress returns the destination address.
func (b IPv6) DestinationAddress() [16]byte { return [16]byte(b[ipv6Dst : ipv6Dst+16]) }

// Payload returns the bytes after the fixed header, up to the payload
// length.
func (b IPv6) Payload() []byte { return b[IPv6MinimumSize : IPv6MinimumSize+int(b.PayloadLength())] }

// SetTrafficClass sets the Traffic Class.
func (b IPv6) SetTrafficClass(v uint8) {
	w := binary.BigEndian.Uint16(b[ipv6VersTCFlow:])
	binary.BigEndian.PutUint16(b[ipv6VersTCFlow:], w&0xf00f|uint16(v)<<4)
}

// SetFlowLabel sets the flow label (the low 20 bits of v).
func (b IPv6) SetFlowLabel(v uint32) {
	w := binary.BigEndian.Uint32(b[ipv6VersTCFlow:])
	binary.BigEndian.PutUint32(b[ipv6VersTCFlow:], w&^ipv6FlowLabelMask|v&ipv6FlowLabelMask)
}

// SetPayloadLength sets the payload length.
func (b IPv6) SetPayloadLength(v uint16) { binary.BigEndian.PutUint16(b[ipv6PayloadLen:], v) }

// SetNextHeader sets the next header.
func (b IPv6) SetNextHeader(v uint8) { b[ipv6NextHeader] = v }

// SetHopLimit sets the hop limit (IPv6 has no header checksum to fix).
func (b IPv6) SetHopLimit(v uint8) { b[ipv6HopLimit] = v }

// SetSourceAddress sets the source address.
func (b IPv6) SetSourceAddress(a [16]byte) { copy(b[ipv6Src:ipv6Src+16], a[:]) }

// SetDestinationAddress sets the destination address.
func (b IPv6) SetDestinationAddress(a [16]byte) { copy(b[ipv6Dst:ipv6Dst+16], a[:]) }

// PseudoHeaderSum returns the sum of the pseudo header for an upper-layer
// protocol proto whose header and payload are length bytes long
// (checksum.PseudoHeaderIPv6 with this header's addresses). proto and
// length are parameters because extension headers may sit between.
func (b IPv6) PseudoHeaderSum(proto uint8, length uint32) uint16 {
	return checksum.PseudoHeaderIPv6(b.SourceAddress(), b.DestinationAddress(), proto, length)
}

// IPv6Fields are the values Encode writes.
type IPv6Fields struct {
	TrafficClass  uint8
	FlowLabel     uint32
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      [16]byte
}

// Encode writes the fixed header into b[:40].
func (b IPv6) Encode(f *IPv6Fields) {
	binary.BigEndian.PutUint32(b[ipv6VersTCFlow:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&ipv6FlowLabelMask)
	binary.BigEndian.PutUint16(b[ipv6PayloadLen:], f.PayloadLength)
	b[ipv6NextHeader] = f.NextHeader
	b[ipv6HopLimit] = f.HopLimit
	copy(b[ipv6Src:ipv6Src+16], f.Src[:])
	copy(b[ipv6Dst:ipv6Dst+16], f.Dst[:])
}

// Extension headers (RFC 8200 §4). Hop-by-Hop Options, Routing and
// Destination Options begin alike, and are (Hdr Ext Len + 1) × 8 bytes
// long ("Length of the ... header in 8-octet units, not including the
// first 8 octets"):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	.                 type-specific data ...                        .
//
// The Fragment header (RFC 8200 §4.5) is always 8 bytes:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |   Reserved    |      Fragment Offset    |Res|M|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                         Identification                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// "Fragment Offset: 13-bit unsigned integer. The offset, in 8-octet
// units, of the data following this header, relative to the start of the
// Fragmentable Part of the original packet." M is "1 = more fragments".
const (
	extNextHeader = 0
	extLen        = 1
	// extUnit is the unit of Hdr Ext Len and the size of the smallest
	// extension header (the two bytes read before the length is known
	// fit in it).
	extUnit = 8

	// IPv6FragmentHeaderSize is the size of the Fragment header.
	IPv6FragmentHeaderSize = 8
	fragOffsetWord         = 2 // offset of the offset/M word
	fragIdent              = 4 // offset of the Identification
	fragOffsetMask         = 0xfff8
	fragMore               = 0x0001
)

// IPv6Walk is what WalkExtensions found: where the extension headers end
// and whether the packet is a fragment.
type IPv6Walk struct {
	// Protocol is the Next Header value where the walk stopped: a
	// transport protocol (TCP, UDP, SCTP, ICMPv6, IPIP, ...), or ESP, AH
	// or No Next Header, whose contents are not extension headers to us.
	// After a non-first fragment, it is what the Fragment header names.
	Protocol uint8
	// Offset is where the header named by Protocol starts, from the start
	// of the IPv6 header. For a non-first fragment it is where the
	// fragment's data starts (no transport header there).
	Offset int
	// FragmentHeader is the offset of the Fragment header from the start
	// of the IPv6 header, or 0 when there is none.
	FragmentHeader int
	// FragmentOffset is the fragment's offset in bytes.
	FragmentOffset uint16
	// MoreFragments is the Fragment header's M flag.
	MoreFragments bool
	// FragmentID is the Fragment header's Identification.
	FragmentID uint32
}

// IsFragment reports whether the packet has a Fragment header. An atomic
// fragment (offset 0, M clear; RFC 6946) is one too; it is also a first
// fragment, so its transport header is there to read.
func (w *IPv6Walk) IsFragment() bool { return w.FragmentHeader != 0 }

// IsFirstFragment reports whether the packet is a fragment at offset 0.
func (w *IPv6Walk) IsFirstFragment() bool { return w.FragmentHeader != 0 && w.FragmentOffset == 0 }

// WalkExtensions follows the Next Header chain from the fixed header
// through Hop-by-Hop Options, Routing, Fragment and Destination Options
// headers, as the kernel's ipv6_find_hdr does for IPVS
// (ip_vs_fill_iph_skb), and reports where the chain ends. It reads only
// b[:len(b)], never the payload length, so it also walks the truncated
// IPv6 packet quoted in an ICMPv6 error; trim b to 40 + Payload Length
// first for a received packet.
//
// The walk stops at the first header that is not one of those four: the
// transport header, or ESP, AH or No Next Header. (ipv6_find_hdr skips an
// AH header and reports what follows it; stopping lets the data path treat
// AH as IPv4 does, as IPVS's AH/ESP protocol, rather than rewriting a
// transport header that AH authenticates.) It also stops after a Fragment
// header whose offset is not zero: what follows is data.
//
// ok is false when an extension header runs past the end of b, or when a
// Hop-by-Hop Options header is anywhere but first (RFC 8200 §4.1: "The
// Hop-by-Hop Options header, when present, must immediately follow the
// IPv6 header"; Linux answers it with a Parameter Problem). The transport
// header itself is not checked: Offset may equal len(b). Every header
// advances the walk by at least 8 bytes, so it ends after at most
// len(b)/8 steps.
func (b IPv6) WalkExtensions() (w IPv6Walk, ok bool) {
	if len(b) < IPv6MinimumSize {
		return IPv6Walk{}, false
	}
	proto := b[ipv6NextHeader]
	off := IPv6MinimumSize
	for {
		switch proto {
		case ProtoHopByHop, ProtoRouting, ProtoDestOpts:
			if proto == ProtoHopByHop && off != IPv6MinimumSize {
				return w, false
			}
			if len(b)-off < extUnit {
				return w, false
			}
			n := (int(b[off+extLen]) + 1) * extUnit
			if len(b)-off < n {
				return w, false
			}
			proto = b[off+extNextHeader]
			off += n
		case ProtoFragment:
			if len(b)-off < IPv6FragmentHeaderSize {
				return w, false
			}
			ow := binary.BigEndian.Uint16(b[off+fragOffsetWord:])
			w.FragmentHeader = off
			w.FragmentOffset = ow & fragOffsetMask // (offset >> 3) << 3
			w.MoreFragments = ow&fragMore != 0
			w.FragmentID = binary.BigEndian.Uint32(b[off+fragIdent:])
			proto = b[off+extNextHeader]
			off += IPv6FragmentHeaderSize
			if w.FragmentOffset != 0 {
				w.Protocol, w.Offset = proto, off
				return w, true
			}
		default:
			w.Protocol, w.Offset = proto, off
			return w, true
		}
	}
}
