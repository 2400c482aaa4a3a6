package header

import (
	"encoding/binary"

	"golvs/internal/checksum"
)

// ICMPv4 is an ICMP message (RFC 792):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Rest of Header                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Internet Header + 64 bits of Original Data Datagram      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// For the error messages the rest of the header is unused (zero), except
// Destination Unreachable / Fragmentation Needed, which carries the
// next-hop MTU (RFC 1191 §4):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Type = 3    |   Code = 4    |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           unused = 0          |         Next-Hop MTU          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// and Parameter Problem a pointer in its first byte. Echo messages carry
// an identifier and a sequence number there. "The checksum is the 16-bit
// ones's complement of the one's complement sum of the ICMP message
// starting with the ICMP Type" (no pseudo header).
type ICMPv4 []byte

const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpRest     = 4
	icmpMTU      = 6 // ICMPv4 frag needed: low half of the rest
	icmpIdent    = 4
	icmpSeq      = 6

	// ICMPv4MinimumSize is the size of the header: type, code, checksum
	// and the 4 bytes of rest of header.
	ICMPv4MinimumSize = 8
	// ICMPv4MinimumErrorSize is the smallest error message the kernel
	// parses: the header, a minimal IPv4 header and the first 8 bytes of
	// its payload ("Internet Header + 64 bits of Original Data").
	ICMPv4MinimumErrorSize = ICMPv4MinimumSize + IPv4MinimumSize + 8
)

// ICMPv4Type is an ICMP message type.
type ICMPv4Type uint8

// ICMPv4 types (RFC 792).
const (
	ICMPv4EchoReply      ICMPv4Type = 0
	ICMPv4DstUnreachable ICMPv4Type = 3
	ICMPv4SourceQuench   ICMPv4Type = 4 // deprecated by RFC 6633; IPVS still relays it
	ICMPv4Redirect       ICMPv4Type = 5
	ICMPv4Echo           ICMPv4Type = 8
	ICMPv4TimeExceeded   ICMPv4Type = 11
	ICMPv4ParamProblem   ICMPv4Type = 12
)

// IsError reports whether t is an error message, one that quotes the
// packet that caused it (RFC 1122 §3.2.2: Destination Unreachable,
// Redirect, Source Quench, Time Exceeded, Parameter Problem). IPVS itself
// handles only Destination Unreachable, Source Quench and Time Exceeded
// (ip_vs_in_icmp).
func (t ICMPv4Type) IsError() bool {
	switch t {
	case ICMPv4DstUnreachable, ICMPv4SourceQuench, ICMPv4Redirect, ICMPv4TimeExceeded, ICMPv4ParamProblem:
		return true
	}
	return false
}

// ICMPv4Code is an ICMP message code, whose meaning depends on the type.
type ICMPv4Code uint8

// Destination Unreachable codes (RFC 792, RFC 1812 §5.2.7.1).
const (
	ICMPv4NetUnreachable   ICMPv4Code = 0
	ICMPv4HostUnreachable  ICMPv4Code = 1
	ICMPv4ProtoUnreachable ICMPv4Code = 2
	ICMPv4PortUnreachable  ICMPv4Code = 3
	ICMPv4FragNeeded       ICMPv4Code = 4
)

// Time Exceeded codes (RFC 792).
const (
	ICMPv4TTLExceeded       ICMPv4Code = 0
	ICMPv4ReassemblyTimeout ICMPv4Code = 1
)

// IsValid reports whether b holds the 8-byte header.
func (b ICMPv4) IsValid() bool { return len(b) >= ICMPv4MinimumSize }

// Type returns the message type.
func (b ICMPv4) Type() ICMPv4Type { return ICMPv4Type(b[icmpType]) }

// Code returns the message code.
func (b ICMPv4) Code() ICMPv4Code { return ICMPv4Code(b[icmpCode]) }

// Checksum returns the checksum field.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum:]) }

// RestOfHeader returns the 4 bytes after the checksum as a number.
func (b ICMPv4) RestOfHeader() uint32 { return binary.BigEndian.Uint32(b[icmpRest:]) }

// MTU returns the next-hop MTU of a Fragmentation Needed message.
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpMTU:]) }

// Ident returns the identifier of an echo message.
func (b ICMPv4) Ident() uint16 { return binary.BigEndian.Uint16(b[icmpIdent:]) }

// Sequence returns the sequence number of an echo message.
func (b ICMPv4) Sequence() uint16 { return binary.BigEndian.Uint16(b[icmpSeq:]) }

// Payload returns what follows the header: for an error message, the
// quoted (embedded) packet that caused it, starting with its IPv4 header.
func (b ICMPv4) Payload() []byte { return b[ICMPv4MinimumSize:] }

// SetType sets the type; the checksum is not updated.
func (b ICMPv4) SetType(t ICMPv4Type) { b[icmpType] = uint8(t) }

// SetCode sets the code; the checksum is not updated.
func (b ICMPv4) SetCode(c ICMPv4Code) { b[icmpCode] = uint8(c) }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[icmpChecksum:], v) }

// SetRestOfHeader sets the 4 bytes after the checksum; the checksum is not
// updated.
func (b ICMPv4) SetRestOfHeader(v uint32) { binary.BigEndian.PutUint32(b[icmpRest:], v) }

// SetMTU sets the next-hop MTU (and zeroes the unused half) of a
// Fragmentation Needed message; the checksum is not updated.
func (b ICMPv4) SetMTU(mtu uint16) { b.SetRestOfHeader(uint32(mtu)) }

// CalculateChecksum returns the checksum the message b should carry. The
// field itself is not read.
func (b ICMPv4) CalculateChecksum() uint16 {
	s := checksum.Sum(b[:icmpChecksum], 0)
	return ^checksum.Sum(b[icmpChecksum+2:], s)
}

// IsChecksumValid reports whether the message's checksum is right.
func (b ICMPv4) IsChecksumValid() bool { return checksum.Sum(b, 0) == 0xffff }
