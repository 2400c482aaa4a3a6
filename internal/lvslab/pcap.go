package lvslab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// The classic libpcap file format (draft-ietf-opsawg-pcap, "PCAP Capture
// File Format"): a 24-byte file header, then per packet a 16-byte record
// header and the packet bytes.
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Magic Number                         |
//	|          Major Version        |         Minor Version         |
//	|                           Reserved1                           |
//	|                           Reserved2                           |
//	|                            SnapLen                            |
//	| FCS |f|0 0 0 0 0 0 0 0 0 0 0 0|         LinkType              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The lab writes little-endian files with the nanosecond magic, since its
// clock counts nanoseconds.
const (
	// PCAPMagicNano is the magic number of a pcap file whose record
	// timestamps are in seconds and nanoseconds ("the fraction of a
	// second ... in nanoseconds" for 0xA1B23C4D).
	PCAPMagicNano = 0xa1b23c4d
	// pcapMagicMicro is the original, microsecond-resolution magic.
	pcapMagicMicro = 0xa1b2c3d4

	pcapHeaderLen = 24
	pcapRecordLen = 16
	// pcapSnapLen is the largest record the lab writes: the largest IP
	// packet (65535) plus the Ethernet header, rounded to 2^18 as tcpdump
	// does for its default snapshot length.
	pcapSnapLen = 262144
	// linkTypeEthernet is LINKTYPE_ETHERNET (tcpdump.org/linktypes.html).
	linkTypeEthernet = 1
)

type pcapWriter struct {
	w   io.Writer
	err error
}

func (p *pcapWriter) writeHeader() error {
	var b [pcapHeaderLen]byte
	le := binary.LittleEndian
	le.PutUint32(b[0:], PCAPMagicNano)
	le.PutUint16(b[4:], 2) // version 2.4, the only one in use
	le.PutUint16(b[6:], 4)
	// Reserved1 (was thiszone) and Reserved2 (was sigfigs) stay zero.
	le.PutUint32(b[16:], pcapSnapLen)
	le.PutUint32(b[20:], linkTypeEthernet)
	_, p.err = p.w.Write(b[:])
	return p.err
}

func (p *pcapWriter) writeRecord(ns int64, frame []byte) {
	if p.err != nil {
		return
	}
	var b [pcapRecordLen]byte
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(ns/int64(time.Second)))
	le.PutUint32(b[4:], uint32(ns%int64(time.Second)))
	le.PutUint32(b[8:], uint32(len(frame)))  // captured length
	le.PutUint32(b[12:], uint32(len(frame))) // original length
	if _, p.err = p.w.Write(b[:]); p.err == nil {
		_, p.err = p.w.Write(frame)
	}
}

// PCAPRecord is one packet of a pcap file.
type PCAPRecord struct {
	Time time.Duration // since the epoch: the lab's clock
	Data []byte
}

// ReadPCAP parses a classic pcap file of either byte order and timestamp
// resolution. It checks the magic, the version and that every record fits
// the file.
func ReadPCAP(r io.Reader) (linkType uint32, recs []PCAPRecord, err error) {
	var hdr [pcapHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder
	nano := false
	switch {
	case binary.LittleEndian.Uint32(hdr[:]) == PCAPMagicNano:
		bo, nano = binary.LittleEndian, true
	case binary.BigEndian.Uint32(hdr[:]) == PCAPMagicNano:
		bo, nano = binary.BigEndian, true
	case binary.LittleEndian.Uint32(hdr[:]) == pcapMagicMicro:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint32(hdr[:]) == pcapMagicMicro:
		bo = binary.BigEndian
	default:
		return 0, nil, fmt.Errorf("pcap: bad magic %#x", binary.LittleEndian.Uint32(hdr[:]))
	}
	if bo.Uint16(hdr[4:]) != 2 || bo.Uint16(hdr[6:]) != 4 {
		return 0, nil, fmt.Errorf("pcap: version %d.%d, want 2.4", bo.Uint16(hdr[4:]), bo.Uint16(hdr[6:]))
	}
	linkType = bo.Uint32(hdr[20:]) & 0x0fffffff // the top bits carry FCS information
	for {
		var rh [pcapRecordLen]byte
		if _, err := io.ReadFull(r, rh[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return linkType, recs, nil
			}
			return linkType, recs, fmt.Errorf("pcap record %d header: %w", len(recs), err)
		}
		frac := time.Duration(bo.Uint32(rh[4:]))
		if !nano {
			frac *= time.Microsecond
		}
		incl := bo.Uint32(rh[8:])
		if incl > pcapSnapLen {
			return linkType, recs, fmt.Errorf("pcap record %d: length %d exceeds %d", len(recs), incl, pcapSnapLen)
		}
		data := make([]byte, incl)
		if _, err := io.ReadFull(r, data); err != nil {
			return linkType, recs, fmt.Errorf("pcap record %d data: %w", len(recs), err)
		}
		recs = append(recs, PCAPRecord{Time: time.Duration(bo.Uint32(rh[0:]))*time.Second + frac, Data: data})
	}
}
