package header

import (
	"encoding/binary"

	"golvs/internal/checksum"
)

// ICMPv6 is an ICMPv6 message (RFC 4443 §2.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                         Message Body                          +
//	|                                                               |
//
// Error messages (types 0-127) have 4 bytes of parameter and then "As much
// of invoking packet as possible without the ICMPv6 packet exceeding the
// minimum IPv6 MTU"; for Packet Too Big (RFC 4443 §3.2) the parameter is
// the MTU:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                             MTU                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    As much of invoking packet                 |
//
// Unlike ICMPv4, the checksum covers the IPv6 pseudo header (RFC 4443
// §2.3), with Next Header 58.
type ICMPv6 []byte

const (
	// ICMPv6MinimumSize is the size of the header up to and including
	// the 4-byte parameter (or echo identifier and sequence).
	ICMPv6MinimumSize = 8
	// ICMPv6MinimumErrorSize is the smallest error the data path can use:
	// the header and the invoking packet's fixed IPv6 header.
	ICMPv6MinimumErrorSize = ICMPv6MinimumSize + IPv6MinimumSize
)

// ICMPv6Type is an ICMPv6 message type.
type ICMPv6Type uint8

// ICMPv6 types (RFC 4443 §2.1, RFC 4861 §4 for neighbour discovery).
const (
	ICMPv6DstUnreachable  ICMPv6Type = 1
	ICMPv6PacketTooBig    ICMPv6Type = 2
	ICMPv6TimeExceeded    ICMPv6Type = 3
	ICMPv6ParamProblem    ICMPv6Type = 4
	ICMPv6EchoRequest     ICMPv6Type = 128
	ICMPv6EchoReply       ICMPv6Type = 129
	ICMPv6RouterSolicit   ICMPv6Type = 133
	ICMPv6RouterAdvert    ICMPv6Type = 134
	ICMPv6NeighborSolicit ICMPv6Type = 135
	ICMPv6NeighborAdvert  ICMPv6Type = 136
	ICMPv6Redirect        ICMPv6Type = 137
)

// IsError reports whether t is an error message: "Error messages are
// identified as such by a zero in the high-order bit of their message Type
// field values" (RFC 4443 §2.1). IPVS handles every ICMPv6 error
// (ip_vs_in_icmp_v6).
func (t ICMPv6Type) IsError() bool { return t < 128 }

// ICMPv6Code is an ICMPv6 message code, whose meaning depends on the type.
type ICMPv6Code uint8

// Destination Unreachable codes (RFC 4443 §3.1).
const (
	ICMPv6NoRoute         ICMPv6Code = 0
	ICMPv6AdminProhibited ICMPv6Code = 1
	ICMPv6BeyondScope     ICMPv6Code = 2
	ICMPv6AddrUnreachable ICMPv6Code = 3
	ICMPv6PortUnreachable ICMPv6Code = 4
)

// Time Exceeded codes (RFC 4443 §3.3).
const (
	ICMPv6HopLimitExceeded  ICMPv6Code = 0
	ICMPv6ReassemblyTimeout ICMPv6Code = 1
)

// IsValid reports whether b holds the 8-byte header.
func (b ICMPv6) IsValid() bool { return len(b) >= ICMPv6MinimumSize }

// Type returns the message type.
func (b ICMPv6) Type() ICMPv6Type { return ICMPv6Type(b[icmpType]) }

// Code returns the message code.
func (b ICMPv6) Code() ICMPv6Code { return ICMPv6Code(b[icmpCode]) }

// Checksum returns the checksum field.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// RestOfHeader returns the 4-byte parameter after the checksum.
func (b ICMPv6) RestOfHeader() uint32 { return binary.BigEndian.Uint32(b[icmpRest:]) }

// MTU returns the MTU of a Packet Too Big message.
func (b ICMPv6) MTU() uint32 { return b.RestOfHeader() }

// Ident returns the identifier of an echo message.
func (b ICMPv6) Ident() uint16 { return binary.BigEndian.Uint16(b[icmpIdent:]) }

// Sequence returns the sequence number of an echo message.
func (b ICMPv6) Sequence() uint16 { return binary.BigEndian.Uint16(b[icmpSeq:]) }

// Payload returns what follows the 8-byte header: for an error message,
// the invoking (embedded) packet, starting with its IPv6 header.
func (b ICMPv6) Payload() []byte { return b[ICMPv6MinimumSize:] }

// SetType sets the type; the checksum is not updated.
func (b ICMPv6) SetType(t ICMPv6Type) { b[icmpType] = uint8(t) }

// SetCode sets the code; the checksum is not updated.
func (b ICMPv6) SetCode(c ICMPv6Code) { b[icmpCode] = uint8(c) }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], v) }

// SetRestOfHeader sets the 4-byte parameter; the checksum is not updated.
func (b ICMPv6) SetRestOfHeader(v uint32) { binary.BigEndian.PutUint32(b[icmpRest:], v) }

// SetMTU sets the MTU of a Packet Too Big message; the checksum is not
// updated.
func (b ICMPv6) SetMTU(mtu uint32) { b.SetRestOfHeader(mtu) }

// CalculateChecksum returns the checksum the message b should carry, given
// the sum of its pseudo header (IPv6.PseudoHeaderSum(ProtoICMPv6,
// len(b))). The field itself is not read.
func (b ICMPv6) CalculateChecksum(pseudo uint16) uint16 {
	s := checksum.Sum(b[:icmpChecksum], pseudo)
	return ^checksum.Sum(b[icmpChecksum+2:], s)
}

// IsChecksumValid reports whether the message's checksum is right.
func (b ICMPv6) IsChecksumValid(pseudo uint16) bool { return checksum.Sum(b, pseudo) == 0xffff }
