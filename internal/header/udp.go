package header

import (
	"encoding/binary"

	"golvs/internal/checksum"
)

// UDP is a UDP datagram: header and payload (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|     Source      |   Destination   |
//	|      Port       |      Port       |
//	+--------+--------+--------+--------+
//	|                 |                 |
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+
//	|
//	|          data octets ...
//	+---------------- ...
//
// "Length is the length in octets of this user datagram including this
// header and the data." "An all zero transmitted checksum value means that
// the transmitter generated no checksum".
type UDP []byte

const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6

	// UDPSize is the size of the header.
	UDPSize = 8
)

// IsValid reports whether b holds a UDP header whose Length is at least
// the header and at most len(b) (the kernel's udp_rcv check; bytes past
// Length are ignored, as the kernel trims them).
func (b UDP) IsValid() bool {
	if len(b) < UDPSize {
		return false
	}
	l := int(b.Length())
	return l >= UDPSize && l <= len(b)
}

// SourcePort returns the source port.
func (b UDP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DestinationPort returns the destination port.
func (b UDP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// Length returns the Length field.
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength:]) }

// Checksum returns the checksum field (0: none was computed).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum:]) }

// Payload returns the data, up to Length.
func (b UDP) Payload() []byte { return b[UDPSize:b.Length()] }

// SetSourcePort sets the source port; the checksum is not updated.
func (b UDP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[udpSrcPort:], p) }

// SetDestinationPort sets the destination port; the checksum is not
// updated.
func (b UDP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[udpDstPort:], p) }

// SetLength sets the Length field; the checksum is not updated.
func (b UDP) SetLength(v uint16) { binary.BigEndian.PutUint16(b[udpLength:], v) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[udpChecksum:], v) }

// SetSourcePortWithChecksumUpdate sets the source port and, unless the
// datagram carries no checksum (0), updates it incrementally; a result of
// 0 is sent as 0xFFFF (checksum.ForUDP). IPVS NAT instead computes a full
// checksum for a zero-checksum datagram (ip_vs_proto_udp.c); that choice
// is the caller's (CalculateChecksum).
func (b UDP) SetSourcePortWithChecksumUpdate(p uint16) {
	old := b.SourcePort()
	b.SetSourcePort(p)
	if c := b.Checksum(); c != 0 {
		b.SetChecksum(checksum.ForUDP(checksum.Update16(c, old, p)))
	}
}

// SetDestinationPortWithChecksumUpdate is SetSourcePortWithChecksumUpdate
// for the destination port.
func (b UDP) SetDestinationPortWithChecksumUpdate(p uint16) {
	old := b.DestinationPort()
	b.SetDestinationPort(p)
	if c := b.Checksum(); c != 0 {
		b.SetChecksum(checksum.ForUDP(checksum.Update16(c, old, p)))
	}
}

// CalculateChecksum returns the checksum field value for the datagram
// b[:Length] given its pseudo-header sum: the one's complement of the sum,
// with a computed 0 sent as 0xFFFF (checksum.ForUDP). The field itself is
// not read.
func (b UDP) CalculateChecksum(pseudo uint16) uint16 {
	s := checksum.Sum(b[:udpChecksum], pseudo)
	return checksum.ForUDP(^checksum.Sum(b[udpChecksum+2:b.Length()], s))
}

// IsChecksumValid reports whether the checksum is right, or absent (0).
// Over IPv6 a zero checksum is not allowed (RFC 8200 §8.1); the caller
// checks that.
func (b UDP) IsChecksumValid(pseudo uint16) bool {
	return b.Checksum() == 0 || checksum.Sum(b[:b.Length()], pseudo) == 0xffff
}

// Encode writes a header with the given ports, length and checksum.
func (b UDP) Encode(srcPort, dstPort, length, csum uint16) {
	binary.BigEndian.PutUint16(b[udpSrcPort:], srcPort)
	binary.BigEndian.PutUint16(b[udpDstPort:], dstPort)
	binary.BigEndian.PutUint16(b[udpLength:], length)
	binary.BigEndian.PutUint16(b[udpChecksum:], csum)
}
