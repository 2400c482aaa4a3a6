package ipvssync

import (
	"encoding/binary"
	"net/netip"

	"golvs/internal/proto"
)

// Reader decodes one sync message, entry by entry, as the kernel's
// ip_vs_process_message does, without allocating: Entry returns a pointer
// to the Reader's own Entry, overwritten by the next call to Next, whose
// PEName and PEData alias the message. The zero Reader is ready for
// Reset. A Reader is not safe for concurrent use.
//
// Version 1 message (all fields big-endian):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      0        |    SyncID     |            Size               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Count Conns  |  Version (1)  |        Spare, set to 0        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|    Type       |    Protocol   | Ver.  |        Size           |  entry
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                             Flags                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            State              |         cport                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            vport              |         dport                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                             fwmark                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        timeout (seconds)                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      caddr, vaddr, daddr (3 x 4 bytes, or 3 x 16 for IPv6)    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Option type   | Option length |  option data ...              |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  ... further options, then 0-3 bytes of padding to 4 bytes    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The entry's Size counts its options but not its padding; the message's
// Size counts everything. Type is 0 for IPv4; bit 0 set means IPv6 (the
// kernel tests only that bit, so type 3 is IPv6 too, and type 2 is an
// error). Version 0 message:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Count Conns  |    SyncID     |            Size               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Reserved    |   Protocol    |            cport              |  entry
//	|            vport              |            dport              |
//	|                             caddr                             |
//	|                             vaddr                             |
//	|                             daddr                             |
//	|            flags              |            state              |
//	|  24 bytes of in_seq, out_seq if flags has IN_SEQ or OUT_SEQ   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Use:
//
//	var r ipvssync.Reader
//	if err := r.Reset(msg, mySyncID); err != nil { count(err); return }
//	for r.Next() {
//		if err := r.EntryErr(); err != nil { count(err); continue }
//		apply(r.Entry())
//	}
//	if err := r.Err(); err != nil { count(err) }
//
// Like the kernel, the Reader stops after Count entries whatever follows,
// and ignores bytes after them.
type Reader struct {
	msg      []byte
	hdr      Header
	off      int // next entry
	left     int // entries still to read
	e        Entry
	entryErr error
	err      error
}

// Header is a message's header as the receiver classified it.
type Header struct {
	Version uint8 // Version0 or Version1
	SyncID  uint8
	Size    uint16 // the whole message, header included
	Count   uint8  // nr_conns
}

// Reset starts decoding msg. syncID is the backup's sync ID: a message of
// another ID is refused with ErrSyncID, unless syncID is 0 (accept all),
// as for the kernel's backup. The checks, in the kernel's order: length
// (ErrShort), size (ErrSize), sync ID (ErrSyncID), then the version. A
// message Reset refuses yields no entries.
//
// Two departures, both about messages the kernel treats as empty: a
// version-0 reading with no entries whose first byte is 0 (which is what
// a header of an unknown version looks like) is refused with ErrVersion
// so that it is counted; one that carries GoLVS's AuthVersion is refused
// with ErrSigned before any other check. A message of 4 to 7 bytes is
// read as version 0 (the kernel would read the version byte past the
// datagram, from its buffer).
func (r *Reader) Reset(msg []byte, syncID uint8) error {
	*r = Reader{msg: msg}
	if len(msg) >= HeaderLenV1 && msg[0] == 0 && msg[5] == AuthVersion && msg[6] == 0 && msg[7] == 0 {
		r.err = ErrSigned
		return r.err
	}
	if len(msg) < HeaderLenV0 {
		r.err = ErrShort
		return r.err
	}
	size := binary.BigEndian.Uint16(msg[2:])
	if len(msg) != int(size) {
		r.err = ErrSize
		return r.err
	}
	if syncID != 0 && msg[1] != syncID {
		r.err = ErrSyncID
		return r.err
	}
	r.hdr = Header{SyncID: msg[1], Size: size}
	if len(msg) >= HeaderLenV1 && msg[0] == 0 && msg[5] == Version1 && msg[6] == 0 && msg[7] == 0 {
		r.hdr.Version = Version1
		r.hdr.Count = msg[4]
		r.off = HeaderLenV1
	} else {
		r.hdr.Version = Version0
		r.hdr.Count = msg[0]
		r.off = HeaderLenV0
		if msg[0] == 0 {
			r.err = ErrVersion
			return r.err
		}
	}
	r.left = int(r.hdr.Count)
	return nil
}

// Header returns the header of the message being read.
func (r *Reader) Header() Header { return r.hdr }

// Next advances to the next entry. It returns false at the end of the
// message or after an error that ends it (Err). When it returns true,
// either EntryErr is nil and Entry holds the entry, or EntryErr says why
// the entry is to be dropped (Entry is then partly filled).
func (r *Reader) Next() bool {
	if r.err != nil || r.left == 0 {
		return false
	}
	r.left--
	r.entryErr = nil
	if r.hdr.Version == Version1 {
		r.entryErr, r.err = r.nextV1()
	} else {
		r.entryErr, r.err = r.nextV0()
	}
	if r.err != nil {
		r.left = 0
		return false
	}
	return true
}

// Entry returns the current entry. It is valid until the next call to
// Next or Reset; its PE fields alias the message.
func (r *Reader) Entry() *Entry { return &r.e }

// EntryErr returns why the current entry is to be dropped, or nil.
func (r *Reader) EntryErr() error { return r.entryErr }

// Err returns the error that ended the message early, or nil.
func (r *Reader) Err() error { return r.err }

// nextV1 is ip_vs_process_message's loop body and ip_vs_proc_sync_conn.
func (r *Reader) nextV1() (entryErr, err error) {
	msg := r.msg
	p := r.off
	if p+EntryLenV4 > len(msg) {
		return nil, ErrTruncated
	}
	verSize := binary.BigEndian.Uint16(msg[p+2:])
	size := int(verSize & maxEntrySize)
	end := p + size
	if end > len(msg) {
		return nil, ErrTruncated
	}
	if verSize>>verShift != 0 {
		return nil, ErrEntryVersion
	}
	// The next entry starts at the next 4-byte boundary (the kernel
	// aligns the entry's size, relative to the entry).
	r.off = p + (size+3)&^3

	e := &r.e
	*e = Entry{}
	s := msg[p:end]
	fixed := EntryLenV4
	// The type is read before the size is checked against the fixed
	// part, as the kernel does: a size below 36 still leaves 36 bytes in
	// the message (checked above), so the type byte exists.
	typ := msg[p]
	switch {
	case typ&typeIPv6 != 0:
		fixed = EntryLenV6
	case typ != 0:
		return nil, ErrFamily
	}
	if size < fixed {
		return nil, ErrEntryLen
	}
	e.Proto = s[1]
	e.Flags = binary.BigEndian.Uint32(s[4:])
	e.State = binary.BigEndian.Uint16(s[8:])
	e.CPort = binary.BigEndian.Uint16(s[10:])
	e.VPort = binary.BigEndian.Uint16(s[12:])
	e.DPort = binary.BigEndian.Uint16(s[14:])
	e.FWMark = binary.BigEndian.Uint32(s[16:])
	e.Timeout = binary.BigEndian.Uint32(s[20:])
	if fixed == EntryLenV4 {
		e.CAddr = netip.AddrFrom4([4]byte(s[24:28]))
		e.VAddr = netip.AddrFrom4([4]byte(s[28:32]))
		e.DAddr = netip.AddrFrom4([4]byte(s[32:36]))
	} else {
		e.CAddr = netip.AddrFrom16([16]byte(s[24:40]))
		e.VAddr = netip.AddrFrom16([16]byte(s[40:56]))
		e.DAddr = netip.AddrFrom16([16]byte(s[56:72]))
	}

	// Options: everything between the fixed part and the entry's size.
	var seen uint8 // 1 << option type, of the options found
	for o := fixed; o < size; {
		if o+2 > size {
			return nil, ErrOptTruncated
		}
		ptype, plen := s[o], int(s[o+1])
		o += 2
		if plen == 0 || o+plen > size {
			return nil, ErrOptTruncated
		}
		data := s[o : o+plen]
		switch t := ptype &^ OptParamFlag; t {
		case OptSeqData:
			if plen != SeqOptLen {
				return nil, ErrBadOption
			}
			if seen&(1<<t) != 0 {
				return nil, ErrDupOption
			}
			e.HasSeq = true
			e.InSeq = getSeq(data)
			e.OutSeq = getSeq(data[12:])
		case OptPEData:
			// plen is at most 255 = MaxPEDataLen: no length check.
			if seen&(1<<t) != 0 {
				return nil, ErrDupOption
			}
			e.PEData = data
		case OptPEName:
			if plen > MaxPENameLen {
				return nil, ErrBadOption
			}
			if seen&(1<<t) != 0 {
				return nil, ErrDupOption
			}
			e.PEName = data
		default:
			if ptype&OptParamFlag == 0 {
				// The kernel drops the entry at once, without
				// looking at the options that follow.
				return ErrUnknownOption, nil
			}
		}
		if t := ptype &^ OptParamFlag; t < 8 {
			seen |= 1 << t
		}
		o += plen
	}
	return checkEntry(e, true), nil
}

// nextV0 is one iteration of ip_vs_process_message_v0.
func (r *Reader) nextV0() (entryErr, err error) {
	msg := r.msg
	p := r.off
	if p+EntryLenV0 > len(msg) {
		return nil, ErrTruncated
	}
	s := msg[p:]
	e := &r.e
	*e = Entry{}
	e.Flags = uint32(binary.BigEndian.Uint16(s[20:]))
	if e.Flags&FlagSeqMask != 0 {
		if p+FullEntryLenV0 > len(msg) {
			return nil, ErrTruncated
		}
		e.HasSeq = true
		e.InSeq = getSeq(s[EntryLenV0:])
		e.OutSeq = getSeq(s[EntryLenV0+12:])
		r.off = p + FullEntryLenV0
	} else {
		r.off = p + EntryLenV0
	}
	// s[0] is reserved; the kernel ignores it.
	e.Proto = s[1]
	e.CPort = binary.BigEndian.Uint16(s[2:])
	e.VPort = binary.BigEndian.Uint16(s[4:])
	e.DPort = binary.BigEndian.Uint16(s[6:])
	e.CAddr = netip.AddrFrom4([4]byte(s[8:12]))
	e.VAddr = netip.AddrFrom4([4]byte(s[12:16]))
	e.DAddr = netip.AddrFrom4([4]byte(s[16:20]))
	e.State = binary.BigEndian.Uint16(s[22:])
	return checkEntry(e, false), nil
}

// checkEntry makes the kernel's per-entry checks after the options:
// a connection must be of a protocol IPVS knows and in one of its states;
// a template may be of any protocol, and the kernel accepts any state for
// it (it only logs one above ASSURED) where GoLVS refuses one it cannot
// store. PE data needs a PE name (v1).
func checkEntry(e *Entry, v1 bool) error {
	if !e.Template() {
		n, ok := numStates(e.Proto)
		if !ok {
			return ErrProto
		}
		if int(e.State) >= n {
			return ErrState
		}
	} else if e.State > maxTemplateState {
		return ErrState
	}
	if v1 && len(e.PEData) != 0 && len(e.PEName) == 0 {
		return ErrPEParams
	}
	return nil
}

// maxTemplateState is the largest template state a GoLVS connection table
// stores (conntable.MaxState); the kernel's templates use 0 and 1.
const maxTemplateState = 15

// Protocol numbers IPVS has a handler for besides TCP, UDP and SCTP
// (ip_vs_proto_ah_esp.c, built into Debian's kernels): a backup accepts
// their connections, with their single state, though no director creates
// any (AH and ESP only follow an existing UDP 500 connection).
const (
	protoESP = 50
	protoAH  = 51
)

// numStates is the kernel's pp->num_states of a protocol registered with
// IPVS, and whether it is registered (ip_vs_proto_get).
func numStates(p uint8) (int, bool) {
	switch p {
	case proto.TCP:
		return int(proto.TCPSynAck) + 1, true // IP_VS_TCP_S_LAST
	case proto.UDP:
		return 1, true // IP_VS_UDP_S_LAST
	case proto.SCTP:
		return int(proto.SCTPClosed) + 1, true // IP_VS_SCTP_S_LAST
	case protoAH, protoESP:
		return 1, true
	}
	return 0, false
}

func getSeq(b []byte) Seq {
	return Seq{
		InitSeq:       binary.BigEndian.Uint32(b),
		Delta:         binary.BigEndian.Uint32(b[4:]),
		PreviousDelta: binary.BigEndian.Uint32(b[8:]),
	}
}
