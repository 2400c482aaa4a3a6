package ipvssync

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golvs/internal/conntable"
)

// EntrySize returns the size of e as a version-1 entry (the entry's Size
// field, without the padding to 4 bytes), as ip_vs_sync_conn computes it:
// the fixed part, plus 2+24 with sequence data, plus 2+len for PE data and
// for a PE name.
func EntrySize(e *Entry) int {
	n := EntryLenV4
	if e.IPv6() {
		n = EntryLenV6
	}
	if e.HasSeq {
		n += 2 + SeqOptLen
	}
	if len(e.PEData) != 0 {
		n += 2 + len(e.PEData)
		if len(e.PEName) != 0 {
			n += 2 + len(e.PEName)
		}
	}
	return n
}

// entryFamily checks that e's addresses are of one family and returns
// whether it is IPv6.
func entryFamily(e *Entry) (v6 bool, err error) {
	c, v, d := e.CAddr, e.VAddr, e.DAddr
	if !c.IsValid() || !v.IsValid() || !d.IsValid() || c.Is4() != v.Is4() || c.Is4() != d.Is4() {
		return false, ErrMixedFamily
	}
	return c.Is6(), nil
}

// AppendEntry appends e to dst as a version-1 entry, without padding, as
// ip_vs_sync_conn writes it: type, protocol, ver_size (version 0 and the
// size), flags (sent as given: the kernel sends cp->flags without HASHED),
// state, ports, fwmark, timeout, addresses, then the sequence data option
// if HasSeq, the PE data option if PEData is set, and the PE name option
// after it if PEName is set.
func AppendEntry(dst []byte, e *Entry) ([]byte, error) {
	if err := validate(e, true); err != nil {
		return dst, err
	}
	v6 := e.IPv6()
	size := EntrySize(e)
	var typ byte
	if v6 {
		typ = typeIPv6
	}
	b := binary.BigEndian
	dst = append(dst, typ, e.Proto)
	dst = b.AppendUint16(dst, uint16(size)) // version 0 in the top 4 bits
	dst = b.AppendUint32(dst, e.Flags)
	dst = b.AppendUint16(dst, e.State)
	dst = b.AppendUint16(dst, e.CPort)
	dst = b.AppendUint16(dst, e.VPort)
	dst = b.AppendUint16(dst, e.DPort)
	dst = b.AppendUint32(dst, e.FWMark)
	dst = b.AppendUint32(dst, e.Timeout)
	if v6 {
		c, v, d := e.CAddr.As16(), e.VAddr.As16(), e.DAddr.As16()
		dst = append(append(append(dst, c[:]...), v[:]...), d[:]...)
	} else {
		c, v, d := e.CAddr.As4(), e.VAddr.As4(), e.DAddr.As4()
		dst = append(append(append(dst, c[:]...), v[:]...), d[:]...)
	}
	if e.HasSeq {
		dst = append(dst, OptSeqData, SeqOptLen)
		dst = appendSeq(dst, &e.InSeq)
		dst = appendSeq(dst, &e.OutSeq)
	}
	if len(e.PEData) != 0 {
		dst = append(dst, OptPEData, byte(len(e.PEData)))
		dst = append(dst, e.PEData...)
		if len(e.PEName) != 0 {
			dst = append(dst, OptPEName, byte(len(e.PEName)))
			dst = append(dst, e.PEName...)
		}
	}
	return dst, nil
}

// EntrySizeV0 returns the size of e as a version-0 entry: 24 bytes, 48
// when the flags ask for sequence data (IN_SEQ or OUT_SEQ).
func EntrySizeV0(e *Entry) int {
	if e.Flags&FlagSeqMask != 0 {
		return FullEntryLenV0
	}
	return EntryLenV0
}

// AppendEntryV0 appends e to dst as a version-0 entry, as
// ip_vs_sync_conn_v0 writes it: the low 16 bits of the flags, and the
// sequence data when the flags have IN_SEQ or OUT_SEQ (whatever HasSeq
// says: v0 has no option header). Version 0 has no fwmark, timeout or PE
// data; they are left out. IPv6 entries are refused (ErrV0IPv6).
func AppendEntryV0(dst []byte, e *Entry) ([]byte, error) {
	v6, err := entryFamily(e)
	if err != nil {
		return dst, err
	}
	if v6 {
		return dst, ErrV0IPv6
	}
	b := binary.BigEndian
	dst = append(dst, 0, e.Proto) // reserved, protocol
	dst = b.AppendUint16(dst, e.CPort)
	dst = b.AppendUint16(dst, e.VPort)
	dst = b.AppendUint16(dst, e.DPort)
	c, v, d := e.CAddr.As4(), e.VAddr.As4(), e.DAddr.As4()
	dst = append(append(append(dst, c[:]...), v[:]...), d[:]...)
	dst = b.AppendUint16(dst, uint16(e.Flags))
	dst = b.AppendUint16(dst, e.State)
	if e.Flags&FlagSeqMask != 0 {
		dst = appendSeq(dst, &e.InSeq)
		dst = appendSeq(dst, &e.OutSeq)
	}
	return dst, nil
}

func appendSeq(dst []byte, s *Seq) []byte {
	b := binary.BigEndian
	dst = b.AppendUint32(dst, s.InitSeq)
	dst = b.AppendUint32(dst, s.Delta)
	return b.AppendUint32(dst, s.PreviousDelta)
}

// Role is the role of a sync daemon.
type Role uint8

// Sync daemon roles (IP_VS_STATE_MASTER, IP_VS_STATE_BACKUP).
const (
	RoleMaster Role = 1
	RoleBackup Role = 2
)

// Sizes of the headers below a sync message (no options).
const (
	ipv4UDPHeaders = 20 + 8 // struct iphdr + struct udphdr
	ipv6UDPHeaders = 40 + 8 // struct ipv6hdr + struct udphdr
)

// MaxLen returns the sync_maxlen the kernel derives in start_sync_thread:
// the largest message a master builds, or the receive buffer of a backup.
// configured is the --sync-maxlen value (0: none); mtu is the sync
// interface's MTU; ipv6 tells the multicast group's family.
//
// Without a configured value a master uses 1500 minus the IP and UDP
// headers whatever the interface's MTU: 1472 bytes over IPv4, 1452 over
// IPv6 (so a master on a jumbo-frame link still sends 1500-byte packets,
// and one on a smaller-MTU link relies on fragmentation: its socket
// allows it, IP_PMTUDISC_DONT). A backup uses its interface's MTU clamped
// to 1500..65535, minus the headers. A configured value is clamped to
// 1 (master) or 1024 (backup) up to 65535 minus the headers.
func MaxLen(role Role, ipv6 bool, mtu, configured int) int {
	hlen := ipv4UDPHeaders
	if ipv6 {
		hlen = ipv6UDPHeaders
	}
	lo, m := 1, 1500
	if role == RoleBackup {
		lo, m = 1024, min(max(mtu, 1500), 65535)
	}
	if configured != 0 {
		return min(max(configured, lo), 65535-hlen)
	}
	return m - hlen
}

// Builder packs entries into sync messages as a master's sync buffers do
// (ip_vs_sync_conn, ip_vs_sync_buff_create): a message is full when the
// next entry, with the padding of the previous one, would take it past
// MaxLen; the full message is handed out and the entry starts a new one.
// A message is always big enough for one entry, so an entry larger than
// MaxLen travels alone in a message larger than MaxLen, as in the kernel.
// A Builder also hands a message out at 255 entries, where the kernel's
// one-byte count would wrap (only possible with MaxLen above 9180).
//
// A Builder is not safe for concurrent use: the kernel has one sync
// buffer per master thread, and so should its user. Time is passed in
// (clock.Nanotime values) for Due.
type Builder struct {
	cfg      BuilderConfig
	buf      []byte // the message being built, nil if none
	count    int
	firstUse int64
	free     [][]byte // recycled buffers
}

// BuilderConfig configures a Builder.
type BuilderConfig struct {
	// Version is Version1 (the kernel's default, sync_version=1) or
	// Version0 (IPv4 only).
	Version uint8
	// SyncID is the master's sync ID, written in every header.
	SyncID uint8
	// MaxLen is the master's sync_maxlen (see MaxLen; 0 means 1472).
	MaxLen int
	// Reserve is room kept free at the end of every message, such as
	// TrailerLen for a message to be signed (0 for the kernel format).
	Reserve int
}

// ErrConfig reports a BuilderConfig or VerifierConfig out of range.
var ErrConfig = errors.New("ipvssync: bad configuration")

// NewBuilder returns a Builder.
func NewBuilder(cfg BuilderConfig) (*Builder, error) {
	if cfg.Version != Version0 && cfg.Version != Version1 {
		return nil, fmt.Errorf("%w: version %d", ErrConfig, cfg.Version)
	}
	if cfg.MaxLen == 0 {
		cfg.MaxLen = MaxLen(RoleMaster, false, 0, 0)
	}
	if cfg.MaxLen < 0 || cfg.MaxLen > 65535 || cfg.Reserve < 0 || cfg.Reserve > 1024 {
		return nil, fmt.Errorf("%w: maxlen %d, reserve %d", ErrConfig, cfg.MaxLen, cfg.Reserve)
	}
	return &Builder{cfg: cfg}, nil
}

// Version returns the version of the messages being built.
func (b *Builder) Version() uint8 { return b.cfg.Version }

// SetVersion switches the format (sysctl sync_version changed). As in the
// kernel, a message of the other version being built is handed out first.
func (b *Builder) SetVersion(v uint8) (full []byte, err error) {
	if v != Version0 && v != Version1 {
		return nil, fmt.Errorf("%w: version %d", ErrConfig, v)
	}
	if v == b.cfg.Version {
		return nil, nil
	}
	full = b.Flush()
	b.cfg.Version = v
	return full, nil
}

// Add appends e to the message being built, whose first entry gets the
// time now. If e does not fit, the message built so far is returned
// (ready to send: header complete) and e starts the next one. An entry
// the version cannot carry is refused with an error and changes nothing.
func (b *Builder) Add(e *Entry, now int64) (full []byte, err error) {
	v1 := b.cfg.Version == Version1
	if err := validate(e, v1); err != nil {
		return nil, err
	}
	n, hlen := EntrySizeV0(e), HeaderLenV0
	if v1 {
		n, hlen = EntrySize(e), HeaderLenV1
	}
	limit := b.cfg.MaxLen - b.cfg.Reserve
	if b.buf != nil {
		pad := 0
		if v1 {
			pad = -len(b.buf) & 3
		}
		if len(b.buf)+pad+n > limit || b.count == maxConns {
			full = b.Flush()
		} else {
			b.buf = append(b.buf, zeros[:pad]...)
		}
	}
	if b.buf == nil {
		b.start(max(n+hlen, limit)+b.cfg.Reserve, now)
	}
	if v1 {
		b.buf, _ = AppendEntry(b.buf, e)
	} else {
		b.buf, _ = AppendEntryV0(b.buf, e)
	}
	b.count++
	return full, nil
}

var zeros [3]byte

// validate makes the checks of AppendEntry (v1) or AppendEntryV0, so that
// Add fails before it changes anything.
func validate(e *Entry, v1 bool) error {
	v6, err := entryFamily(e)
	if err != nil {
		return err
	}
	if !v1 {
		if v6 {
			return ErrV0IPv6
		}
		return nil
	}
	if len(e.PEData) > MaxPEDataLen || len(e.PEName) > MaxPENameLen {
		return ErrTooLong
	}
	if len(e.PEName) != 0 && len(e.PEData) == 0 {
		return ErrPENameOnly
	}
	return nil
}

// start begins a message in a buffer of capacity at least c.
func (b *Builder) start(c int, now int64) {
	var buf []byte
	if n := len(b.free); n > 0 && cap(b.free[n-1]) >= c {
		buf = b.free[n-1][:0]
		b.free = b.free[:n-1]
	} else {
		buf = make([]byte, 0, c)
	}
	if b.cfg.Version == Version1 {
		// reserved 0 (the v0 nr_conns: v0 receivers see no entries),
		// syncid, size, nr_conns, version, spare.
		buf = append(buf, 0, b.cfg.SyncID, 0, 0, 0, Version1, 0, 0)
	} else {
		buf = append(buf, 0, b.cfg.SyncID, 0, 0) // nr_conns, syncid, size
	}
	b.buf, b.count, b.firstUse = buf, 0, now
}

// Len returns the length of the message being built (0 if none).
func (b *Builder) Len() int { return len(b.buf) }

// Count returns the number of entries in the message being built.
func (b *Builder) Count() int { return b.count }

// Due reports whether the message being built has waited FlushTime since
// its first entry (get_curr_sync_buff with IPVS_SYNC_FLUSH_TIME).
func (b *Builder) Due(now int64) bool {
	return b.buf != nil && now-b.firstUse >= int64(FlushTime)
}

// Flush returns the message being built, header complete, or nil if it
// has no entry. The caller owns the message; it may give it back with
// Recycle once sent.
func (b *Builder) Flush() []byte {
	if b.buf == nil || b.count == 0 {
		return nil
	}
	m := b.buf
	binary.BigEndian.PutUint16(m[2:], uint16(len(m)))
	if b.cfg.Version == Version1 {
		m[4] = byte(b.count)
	} else {
		m[0] = byte(b.count)
	}
	b.buf, b.count = nil, 0
	return m
}

// maxFree bounds the recycled buffers a Builder keeps.
const maxFree = 8

// Recycle gives a sent message's buffer back for reuse (optional).
func (b *Builder) Recycle(m []byte) {
	if m != nil && len(b.free) < maxFree {
		b.free = append(b.free, m[:0])
	}
}

// EntryFromConn returns the entry a master sends for c (ip_vs_sync_conn):
// its flags (conntable keeps HASHED internal, so none to clear), state,
// addresses, ports, fwmark, and its timeout in whole seconds, truncated
// as cp->timeout / HZ is. The table keeps no sequence-number adjustment
// nor persistence-engine data, so the entry carries none.
func EntryFromConn(c *conntable.Conn) Entry {
	return Entry{
		Proto:   c.Proto,
		Flags:   uint32(c.Flags),
		State:   uint16(c.State),
		CAddr:   c.CAddr,
		VAddr:   c.VAddr,
		DAddr:   c.DAddr,
		CPort:   c.CPort,
		VPort:   c.VPort,
		DPort:   c.DPort,
		FWMark:  c.FWMark,
		Timeout: uint32(min(c.Timeout/time.Second, 1<<32-1)),
	}
}
