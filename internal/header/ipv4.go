package header

import (
	"encoding/binary"

	"golvs/internal/checksum"
)

// IPv4 is an IPv4 header and what follows it (RFC 791 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Flags: bit 0 reserved (must be zero), bit 1 DF (Don't Fragment), bit 2
// MF (More Fragments). "IHL: Internet Header Length is the length of the
// internet header in 32 bit words ... the minimum value for a correct
// header is 5." "Fragment Offset ... is measured in units of 8 octets".
type IPv4 []byte

const (
	ipv4VersIHL   = 0
	ipv4TOS       = 1
	ipv4TotalLen  = 2
	ipv4ID        = 4
	ipv4FlagsFrag = 6
	ipv4TTL       = 8
	ipv4Proto     = 9
	ipv4Checksum  = 10
	ipv4Src       = 12
	ipv4Dst       = 16

	// IPv4MinimumSize is the size of a header without options (IHL 5).
	IPv4MinimumSize = 20
	// IPv4MaximumHeaderSize is the largest header: IHL is 4 bits, 15
	// words of 4 bytes.
	IPv4MaximumHeaderSize = 60
	// IPv4MaximumSize is the largest packet the 16-bit Total Length
	// field can describe.
	IPv4MaximumSize = 0xffff

	// IPv4FlagDF and IPv4FlagMF are the DF and MF bits of the 16-bit
	// flags-and-fragment-offset word (bytes 6-7).
	IPv4FlagDF uint16 = 0x4000
	IPv4FlagMF uint16 = 0x2000
	// ipv4FragOffMask is the 13-bit fragment offset, in 8-byte units.
	ipv4FragOffMask uint16 = 0x1fff
)

// IsValid reports whether b starts with a well-formed IPv4 header whose
// packet fits in the pktSize bytes available (usually len(b); b may be
// longer than the packet, with Ethernet padding): version 4, IHL at least
// 5, and header ≤ total length ≤ pktSize. It is ip_rcv_core's check,
// without the checksum (see IsChecksumValid).
func (b IPv4) IsValid(pktSize int) bool {
	if len(b) < IPv4MinimumSize || pktSize > len(b) {
		return false
	}
	hlen := b.HeaderLength()
	tlen := int(b.TotalLength())
	return b.Version() == 4 && hlen >= IPv4MinimumSize && hlen <= tlen && tlen <= pktSize
}

// Version returns the IP version (4 for a valid header).
func (b IPv4) Version() uint8 { return b[ipv4VersIHL] >> 4 }

// HeaderLength returns the header length in bytes (IHL × 4).
func (b IPv4) HeaderLength() int { return int(b[ipv4VersIHL]&0x0f) * 4 }

// TOS returns the Type of Service byte (DSCP and ECN, RFC 2474/3168).
func (b IPv4) TOS() uint8 { return b[ipv4TOS] }

// TotalLength returns the length of the packet, header included.
func (b IPv4) TotalLength() uint16 { return binary.BigEndian.Uint16(b[ipv4TotalLen:]) }

// ID returns the Identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipv4ID:]) }

// DF reports whether the Don't Fragment flag is set.
func (b IPv4) DF() bool { return binary.BigEndian.Uint16(b[ipv4FlagsFrag:])&IPv4FlagDF != 0 }

// MF reports whether the More Fragments flag is set.
func (b IPv4) MF() bool { return binary.BigEndian.Uint16(b[ipv4FlagsFrag:])&IPv4FlagMF != 0 }

// FragmentOffset returns the fragment offset in bytes.
func (b IPv4) FragmentOffset() uint16 {
	return (binary.BigEndian.Uint16(b[ipv4FlagsFrag:]) & ipv4FragOffMask) * 8
}

// IsFragment reports whether the packet is a fragment: MF set or a
// non-zero offset (the kernel's ip_is_fragment).
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[ipv4FlagsFrag:])&(IPv4FlagMF|ipv4FragOffMask) != 0
}

// TTL returns the Time to Live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// Protocol returns the protocol of the payload.
func (b IPv4) Protocol() uint8 { return b[ipv4Proto] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipv4Checksum:]) }

// SourceAddress returns the source address.
func (b IPv4) SourceAddress() [4]byte { return [4]byte(b[ipv4Src : ipv4Src+4]) }

// DestinationAddress returns the destination address.
func (b IPv4) DestinationAddress() [4]byte { return [4]byte(b[ipv4Dst : ipv4Dst+4]) }

// Options returns the options and padding (empty when IHL is 5).
func (b IPv4) Options() []byte { return b[IPv4MinimumSize:b.HeaderLength()] }

// HasOptions reports whether the header carries options.
func (b IPv4) HasOptions() bool { return b[ipv4VersIHL]&0x0f > 5 }

// Payload returns the bytes between the header and the total length.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// SetTOS sets the Type of Service byte; the checksum is not updated.
func (b IPv4) SetTOS(v uint8) { b[ipv4TOS] = v }

// SetTotalLength sets the total length; the checksum is not updated.
func (b IPv4) SetTotalLength(v uint16) { binary.BigEndian.PutUint16(b[ipv4TotalLen:], v) }

// SetID sets the Identification field; the checksum is not updated.
func (b IPv4) SetID(v uint16) { binary.BigEndian.PutUint16(b[ipv4ID:], v) }

// SetFragment sets the flags and fragment offset (in bytes, a multiple of
// 8); the checksum is not updated.
func (b IPv4) SetFragment(df, mf bool, offset uint16) {
	binary.BigEndian.PutUint16(b[ipv4FlagsFrag:], fragWord(df, mf, offset))
}

func fragWord(df, mf bool, offset uint16) uint16 {
	w := (offset / 8) & ipv4FragOffMask
	if df {
		w |= IPv4FlagDF
	}
	if mf {
		w |= IPv4FlagMF
	}
	return w
}

// SetTTL sets the Time to Live; the checksum is not updated.
func (b IPv4) SetTTL(v uint8) { b[ipv4TTL] = v }

// SetProtocol sets the protocol; the checksum is not updated.
func (b IPv4) SetProtocol(v uint8) { b[ipv4Proto] = v }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[ipv4Checksum:], v) }

// SetSourceAddress sets the source address; the checksum is not updated.
func (b IPv4) SetSourceAddress(a [4]byte) { copy(b[ipv4Src:ipv4Src+4], a[:]) }

// SetDestinationAddress sets the destination address; the checksum is not
// updated.
func (b IPv4) SetDestinationAddress(a [4]byte) { copy(b[ipv4Dst:ipv4Dst+4], a[:]) }

// SetTTLWithChecksumUpdate sets the Time to Live and updates the header
// checksum incrementally, as the kernel's ip_decrease_ttl does for every
// forwarded packet. TTL shares its 16-bit word with Protocol.
func (b IPv4) SetTTLWithChecksumUpdate(v uint8) {
	old := binary.BigEndian.Uint16(b[ipv4TTL:])
	b[ipv4TTL] = v
	b.SetChecksum(checksum.Update16(b.Checksum(), old, binary.BigEndian.Uint16(b[ipv4TTL:])))
}

// SetSourceAddressWithChecksumUpdate sets the source address and updates
// the header checksum incrementally. A TCP, UDP or ICMP-error checksum
// covering the address is not touched.
func (b IPv4) SetSourceAddressWithChecksumUpdate(a [4]byte) {
	old := b.SourceAddress()
	b.SetSourceAddress(a)
	b.SetChecksum(checksum.Update32(b.Checksum(), old, a))
}

// SetDestinationAddressWithChecksumUpdate sets the destination address and
// updates the header checksum incrementally (see
// SetSourceAddressWithChecksumUpdate).
func (b IPv4) SetDestinationAddressWithChecksumUpdate(a [4]byte) {
	old := b.DestinationAddress()
	b.SetDestinationAddress(a)
	b.SetChecksum(checksum.Update32(b.Checksum(), old, a))
}

// CalculateChecksum returns the checksum the header should carry: "the 16
// bit one's complement of the one's complement sum of all 16 bit words in
// the header. For purposes of computing the checksum, the value of the
// checksum field is zero" (RFC 791 §3.1). The field itself is not read.
func (b IPv4) CalculateChecksum() uint16 {
	s := checksum.Sum(b[:ipv4Checksum], 0)
	return ^checksum.Sum(b[ipv4Checksum+2:b.HeaderLength()], s)
}

// IsChecksumValid reports whether the header checksum is right: the sum
// over the header, checksum field included, is all ones (RFC 1071 §1 (3)).
func (b IPv4) IsChecksumValid() bool {
	return checksum.Sum(b[:b.HeaderLength()], 0) == 0xffff
}

// PseudoHeaderSum returns the sum of the pseudo header of the transport
// protocol carried (checksum.PseudoHeaderIPv4 with this header's addresses
// and protocol, and the payload length from the total length).
func (b IPv4) PseudoHeaderSum() uint16 {
	return checksum.PseudoHeaderIPv4(b.SourceAddress(), b.DestinationAddress(), b.Protocol(),
		b.TotalLength()-uint16(b.HeaderLength()))
}

// IPv4Fields are the values Encode writes.
type IPv4Fields struct {
	TOS         uint8
	TotalLength uint16
	ID          uint16
	DF, MF      bool
	// FragmentOffset is in bytes, a multiple of 8.
	FragmentOffset uint16
	TTL            uint8
	Protocol       uint8
	Src, Dst       [4]byte
	// Options, if any, are copied after the fixed header; their length
	// must be a multiple of 4 and at most 40 (RFC 791: the header is
	// padded to a 32-bit boundary, IHL is 4 bits).
	Options []byte
}

// Encode writes a header with the given fields and its checksum into
// b[:20+len(f.Options)]. It panics if the options are too long or not
// padded to 4 bytes: a caller's mistake, not a packet's.
func (b IPv4) Encode(f *IPv4Fields) {
	if len(f.Options)%4 != 0 || len(f.Options) > IPv4MaximumHeaderSize-IPv4MinimumSize {
		panic("header: IPv4 options must be a multiple of 4 bytes, at most 40")
	}
	hlen := IPv4MinimumSize + len(f.Options)
	b[ipv4VersIHL] = 4<<4 | uint8(hlen/4)
	b[ipv4TOS] = f.TOS
	binary.BigEndian.PutUint16(b[ipv4TotalLen:], f.TotalLength)
	binary.BigEndian.PutUint16(b[ipv4ID:], f.ID)
	binary.BigEndian.PutUint16(b[ipv4FlagsFrag:], fragWord(f.DF, f.MF, f.FragmentOffset))
	b[ipv4TTL] = f.TTL
	b[ipv4Proto] = f.Protocol
	binary.BigEndian.PutUint16(b[ipv4Checksum:], 0)
	copy(b[ipv4Src:ipv4Src+4], f.Src[:])
	copy(b[ipv4Dst:ipv4Dst+4], f.Dst[:])
	copy(b[IPv4MinimumSize:hlen], f.Options)
	b.SetChecksum(b.CalculateChecksum())
}
