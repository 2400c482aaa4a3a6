package header

import (
	"encoding/binary"

	"golvs/internal/checksum"
)

// TCP is a TCP segment: header and payload (RFC 9293 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// "Data Offset (DOffset): 4 bits. The number of 32-bit words in the TCP
// header." "The checksum also covers a pseudo-header".
type TCP []byte

const (
	tcpSrcPort  = 0
	tcpDstPort  = 2
	tcpSeq      = 4
	tcpAck      = 8
	tcpDataOff  = 12
	tcpFlags    = 13
	tcpWindow   = 14
	tcpChecksum = 16
	tcpUrgent   = 18

	// TCPMinimumSize is the size of a header without options (Data
	// Offset 5).
	TCPMinimumSize = 20
	// TCPMaximumHeaderSize is the largest header (Data Offset 15).
	TCPMaximumHeaderSize = 60
)

// TCP flags, the low byte of the flags word (RFC 9293 §3.1, RFC 3168 for
// ECE and CWR).
const (
	TCPFlagFIN uint8 = 0x01
	TCPFlagSYN uint8 = 0x02
	TCPFlagRST uint8 = 0x04
	TCPFlagPSH uint8 = 0x08
	TCPFlagACK uint8 = 0x10
	TCPFlagURG uint8 = 0x20
	TCPFlagECE uint8 = 0x40
	TCPFlagCWR uint8 = 0x80
)

// IsValid reports whether b holds a whole TCP header: at least 20 bytes,
// a Data Offset of at least 5 words, and no more header than b holds.
func (b TCP) IsValid() bool {
	if len(b) < TCPMinimumSize {
		return false
	}
	d := b.DataOffset()
	return d >= TCPMinimumSize && d <= len(b)
}

// SourcePort returns the source port.
func (b TCP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[tcpSrcPort:]) }

// DestinationPort returns the destination port.
func (b TCP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[tcpDstPort:]) }

// SequenceNumber returns the sequence number.
func (b TCP) SequenceNumber() uint32 { return binary.BigEndian.Uint32(b[tcpSeq:]) }

// AckNumber returns the acknowledgment number.
func (b TCP) AckNumber() uint32 { return binary.BigEndian.Uint32(b[tcpAck:]) }

// DataOffset returns the header length in bytes (Data Offset × 4).
func (b TCP) DataOffset() int { return int(b[tcpDataOff]>>4) * 4 }

// Flags returns the flags byte (TCPFlagFIN ... TCPFlagCWR).
func (b TCP) Flags() uint8 { return b[tcpFlags] }

// WindowSize returns the window.
func (b TCP) WindowSize() uint16 { return binary.BigEndian.Uint16(b[tcpWindow:]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[tcpChecksum:]) }

// UrgentPointer returns the urgent pointer.
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[tcpUrgent:]) }

// OptionsLength returns the length of the options in bytes.
func (b TCP) OptionsLength() int { return b.DataOffset() - TCPMinimumSize }

// Options returns the options.
func (b TCP) Options() []byte { return b[TCPMinimumSize:b.DataOffset()] }

// Payload returns the data after the header.
func (b TCP) Payload() []byte { return b[b.DataOffset():] }

// SetSourcePort sets the source port; the checksum is not updated.
func (b TCP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[tcpSrcPort:], p) }

// SetDestinationPort sets the destination port; the checksum is not
// updated.
func (b TCP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[tcpDstPort:], p) }

// SetSequenceNumber sets the sequence number; the checksum is not updated.
func (b TCP) SetSequenceNumber(v uint32) { binary.BigEndian.PutUint32(b[tcpSeq:], v) }

// SetAckNumber sets the acknowledgment number; the checksum is not
// updated.
func (b TCP) SetAckNumber(v uint32) { binary.BigEndian.PutUint32(b[tcpAck:], v) }

// SetFlags sets the flags byte; the checksum is not updated.
func (b TCP) SetFlags(f uint8) { b[tcpFlags] = f }

// SetWindowSize sets the window; the checksum is not updated.
func (b TCP) SetWindowSize(v uint16) { binary.BigEndian.PutUint16(b[tcpWindow:], v) }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(v uint16) { binary.BigEndian.PutUint16(b[tcpChecksum:], v) }

// SetSourcePortWithChecksumUpdate sets the source port and updates the
// checksum incrementally (IPVS NAT's reply path: source port := vport).
func (b TCP) SetSourcePortWithChecksumUpdate(p uint16) {
	old := b.SourcePort()
	b.SetSourcePort(p)
	b.SetChecksum(checksum.Update16(b.Checksum(), old, p))
}

// SetDestinationPortWithChecksumUpdate sets the destination port and
// updates the checksum incrementally (IPVS NAT's request path: destination
// port := the real server's port).
func (b TCP) SetDestinationPortWithChecksumUpdate(p uint16) {
	old := b.DestinationPort()
	b.SetDestinationPort(p)
	b.SetChecksum(checksum.Update16(b.Checksum(), old, p))
}

// CalculateChecksum returns the checksum the segment b (header and
// payload) should carry, given the sum of its pseudo header
// (IPv4.PseudoHeaderSum, IPv6.PseudoHeaderSum). The field itself is not
// read.
func (b TCP) CalculateChecksum(pseudo uint16) uint16 {
	s := checksum.Sum(b[:tcpChecksum], pseudo)
	return ^checksum.Sum(b[tcpChecksum+2:], s)
}

// IsChecksumValid reports whether the segment's checksum is right.
func (b TCP) IsChecksumValid(pseudo uint16) bool {
	return checksum.Sum(b, pseudo) == 0xffff
}

// TCPFields are the values Encode writes.
type TCPFields struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	// DataOffset is the header length in bytes, a multiple of 4 from 20
	// to 60; 0 means 20.
	DataOffset    int
	Flags         uint8
	Window        uint16
	Checksum      uint16
	UrgentPointer uint16
}

// Encode writes the fixed 20 bytes of a header (options, if DataOffset
// says there are any, are the caller's to write).
func (b TCP) Encode(f *TCPFields) {
	d := f.DataOffset
	if d == 0 {
		d = TCPMinimumSize
	}
	binary.BigEndian.PutUint16(b[tcpSrcPort:], f.SrcPort)
	binary.BigEndian.PutUint16(b[tcpDstPort:], f.DstPort)
	binary.BigEndian.PutUint32(b[tcpSeq:], f.Seq)
	binary.BigEndian.PutUint32(b[tcpAck:], f.Ack)
	b[tcpDataOff] = uint8(d/4) << 4
	b[tcpFlags] = f.Flags
	binary.BigEndian.PutUint16(b[tcpWindow:], f.Window)
	binary.BigEndian.PutUint16(b[tcpChecksum:], f.Checksum)
	binary.BigEndian.PutUint16(b[tcpUrgent:], f.UrgentPointer)
}
