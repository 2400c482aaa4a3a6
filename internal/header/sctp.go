package header

import (
	"encoding/binary"
	"hash/crc32"
)

// SCTP is an SCTP packet: common header and chunks (RFC 9260 §3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Source Port Number        |     Destination Port Number   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                      Verification Tag                         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           Checksum                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// followed by chunks, each padded to a multiple of 4 bytes (RFC 9260
// §3.2):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Chunk Type  | Chunk  Flags  |        Chunk Length           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	\                          Chunk Value                          /
//
// The checksum is CRC32c (Castagnoli) over the whole packet with the
// checksum field taken as zero (RFC 9260 §6.8, Appendix A), not an
// Internet checksum and not covering a pseudo header. The kernel stores it
// least significant byte first (sctp_compute_cksum returns
// cpu_to_le32(~crc32c)); Checksum and SetChecksum use that order, so
// Checksum() == CalculateChecksum() on a good packet.
type SCTP []byte

const (
	sctpSrcPort  = 0
	sctpDstPort  = 2
	sctpVTag     = 4
	sctpChecksum = 8

	// SCTPCommonHeaderSize is the size of the common header.
	SCTPCommonHeaderSize = 12
	// SCTPChunkHeaderSize is the size of a chunk header: type, flags,
	// length.
	SCTPChunkHeaderSize = 4
)

// SCTP chunk types (RFC 9260 §3.2).
const (
	SCTPChunkData             uint8 = 0
	SCTPChunkInit             uint8 = 1
	SCTPChunkInitAck          uint8 = 2
	SCTPChunkSack             uint8 = 3
	SCTPChunkHeartbeat        uint8 = 4
	SCTPChunkHeartbeatAck     uint8 = 5
	SCTPChunkAbort            uint8 = 6
	SCTPChunkShutdown         uint8 = 7
	SCTPChunkShutdownAck      uint8 = 8
	SCTPChunkError            uint8 = 9
	SCTPChunkCookieEcho       uint8 = 10
	SCTPChunkCookieAck        uint8 = 11
	SCTPChunkShutdownComplete uint8 = 14
)

// castagnoli is the CRC32c table; hash/crc32 uses the CPU's CRC32
// instruction for it where there is one (SSE 4.2, ARMv8).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// zeroChecksum stands for the checksum field while the CRC is computed.
var zeroChecksum [4]byte

// IsValid reports whether b holds the common header.
func (b SCTP) IsValid() bool { return len(b) >= SCTPCommonHeaderSize }

// SourcePort returns the source port.
func (b SCTP) SourcePort() uint16 { return binary.BigEndian.Uint16(b[sctpSrcPort:]) }

// DestinationPort returns the destination port.
func (b SCTP) DestinationPort() uint16 { return binary.BigEndian.Uint16(b[sctpDstPort:]) }

// VerificationTag returns the verification tag.
func (b SCTP) VerificationTag() uint32 { return binary.BigEndian.Uint32(b[sctpVTag:]) }

// Checksum returns the CRC32c in the checksum field (see the type's doc
// for the byte order).
func (b SCTP) Checksum() uint32 { return binary.LittleEndian.Uint32(b[sctpChecksum:]) }

// Chunks returns the bytes after the common header.
func (b SCTP) Chunks() []byte { return b[SCTPCommonHeaderSize:] }

// SetSourcePort sets the source port; the checksum is not updated (CRC32c
// has no incremental update: recompute it with CalculateChecksum).
func (b SCTP) SetSourcePort(p uint16) { binary.BigEndian.PutUint16(b[sctpSrcPort:], p) }

// SetDestinationPort sets the destination port; the checksum is not
// updated.
func (b SCTP) SetDestinationPort(p uint16) { binary.BigEndian.PutUint16(b[sctpDstPort:], p) }

// SetVerificationTag sets the verification tag; the checksum is not
// updated.
func (b SCTP) SetVerificationTag(v uint32) { binary.BigEndian.PutUint32(b[sctpVTag:], v) }

// SetChecksum stores a CRC32c in the checksum field.
func (b SCTP) SetChecksum(c uint32) { binary.LittleEndian.PutUint32(b[sctpChecksum:], c) }

// CalculateChecksum returns the CRC32c of the packet b with its checksum
// field taken as zero. The field itself is not read or written.
func (b SCTP) CalculateChecksum() uint32 {
	c := crc32.Update(0, castagnoli, b[:sctpChecksum])
	c = crc32.Update(c, castagnoli, zeroChecksum[:])
	return crc32.Update(c, castagnoli, b[SCTPCommonHeaderSize:])
}

// IsChecksumValid reports whether the checksum field holds the packet's
// CRC32c.
func (b SCTP) IsChecksumValid() bool { return b.Checksum() == b.CalculateChecksum() }

// FirstChunk returns what IPVS's SCTP state machine reads of the chunks
// (set_sctp_state in ip_vs_proto_sctp.c): the type of the first chunk, and
// whether that chunk is a COOKIE ECHO or COOKIE ACK directly followed by
// an ABORT. The next chunk starts at the first chunk's length rounded up
// to 4; a length below 4 disables the look-ahead. ok is false when there
// is no complete first chunk header (the kernel then leaves the state
// alone). This is the rule of proto.SCTPFirstChunk, which this package may
// not import.
func (b SCTP) FirstChunk() (chunkType uint8, abortBundled, ok bool) {
	c := b[SCTPCommonHeaderSize:]
	if len(c) < SCTPChunkHeaderSize {
		return 0, false, false
	}
	chunkType = c[0]
	if chunkType != SCTPChunkCookieEcho && chunkType != SCTPChunkCookieAck {
		return chunkType, false, true
	}
	clen := int(binary.BigEndian.Uint16(c[2:]))
	if clen < SCTPChunkHeaderSize {
		return chunkType, false, true
	}
	next := (clen + 3) &^ 3 // ALIGN(clen, 4): chunks are padded to 4 bytes
	if len(c)-next >= SCTPChunkHeaderSize && c[next] == SCTPChunkAbort {
		return chunkType, true, true
	}
	return chunkType, false, true
}
