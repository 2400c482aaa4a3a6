package ipvssync

import (
	"errors"
	"net/netip"
	"time"
)

// Defaults of the sync daemon (ip_vs_sync.c, start_sync_thread).
var (
	// DefaultGroup is IP_VS_SYNC_GROUP, 224.0.0.81, the IPv4 multicast
	// group when none is given. There is no IPv6 default: an IPv6 group
	// must be given.
	DefaultGroup = netip.AddrFrom4([4]byte{224, 0, 0, 81})
)

const (
	// DefaultPort is IP_VS_SYNC_PORT; sync thread i uses DefaultPort+i.
	DefaultPort = 8848
	// DefaultTTL is the multicast TTL when none is given.
	DefaultTTL = 1
	// MaxPorts is IPVS_SYNC_PORTS_MAX: sync_ports is clamped to 1..64.
	MaxPorts = 64

	// FlushTime is IPVS_SYNC_FLUSH_TIME (2*HZ): a partly filled message
	// is sent at the latest this long after its first entry.
	FlushTime = 2 * time.Second
	// CheckPeriod is IPVS_SYNC_CHECK_PERIOD (HZ): how often an idle
	// master thread looks for a due message.
	CheckPeriod = time.Second
	// SendDelay is IPVS_SYNC_SEND_DELAY (HZ/50): the master thread is
	// woken this long after the first message is queued...
	SendDelay = 20 * time.Millisecond
	// WakeupRate is IPVS_SYNC_WAKEUP_RATE: ...or at once when this many
	// messages are queued.
	WakeupRate = 8
)

// Header sizes and entry sizes (sizeof the kernel's structs; all fields
// are naturally aligned, so there is no padding inside them).
const (
	HeaderLenV0 = 4  // struct ip_vs_sync_mesg_v0
	HeaderLenV1 = 8  // struct ip_vs_sync_mesg
	EntryLenV0  = 24 // struct ip_vs_sync_conn_v0 (SIMPLE_CONN_SIZE)
	SeqOptLen   = 24 // struct ip_vs_sync_conn_options: two struct ip_vs_seq
	// FullEntryLenV0 is FULL_CONN_SIZE, a v0 entry with sequence data.
	FullEntryLenV0 = EntryLenV0 + SeqOptLen
	EntryLenV4     = 36 // struct ip_vs_sync_v4
	EntryLenV6     = 72 // struct ip_vs_sync_v6

	// maxEntrySize is SVER_MASK: a v1 entry's size is 12 bits.
	maxEntrySize = 0x0fff
	// maxConns is the largest nr_conns (a byte). The kernel does not
	// check it and would wrap it past 255 entries (possible only with a
	// sync_maxlen above ~9 KB); Builder starts a new message instead.
	maxConns = 255
)

// Option types of v1 entries (IPVS_OPT_*). An option type with
// OptParamFlag set is optional: a receiver that does not know it skips it;
// an unknown option without the flag makes the receiver drop the entry.
const (
	OptSeqData        = 1    // IPVS_OPT_SEQ_DATA: in_seq and out_seq, 24 bytes
	OptPEData         = 2    // IPVS_OPT_PE_DATA: persistence-engine data (SIP Call-ID)
	OptPEName         = 3    // IPVS_OPT_PE_NAME: persistence-engine name
	OptParamFlag      = 0x40 // IPVS_OPT_F_PARAM, 1 << (IPVS_OPT_PARAM-1)
	MaxPEDataLen      = 255  // IP_VS_PEDATA_MAXLEN
	MaxPENameLen      = 16   // IP_VS_PENAME_MAXLEN
	typeIPv6     byte = 1    // STYPE_F_INET6, bit 0 of an entry's type
	verShift          = 12   // SVER_SHIFT: an entry's version in ver_size
)

// Connection flags on the wire (IP_VS_CONN_F_*, uapi linux/ip_vs.h); the
// same bits as conntable.Flags, with the ones conntable keeps internal.
const (
	FlagFwdMask   uint32 = 0x0007
	FlagSync      uint32 = 0x0020
	FlagHashed    uint32 = 0x0040 // never sent (the master clears it)
	FlagNoOutput  uint32 = 0x0080
	FlagInactive  uint32 = 0x0100
	FlagOutSeq    uint32 = 0x0200
	FlagInSeq     uint32 = 0x0400
	FlagSeqMask   uint32 = 0x0600
	FlagNoCPort   uint32 = 0x0800
	FlagTemplate  uint32 = 0x1000
	FlagOnePacket uint32 = 0x2000
	FlagNFCT      uint32 = 1 << 16 // above bit 15: local to a director

	// BackupMask is IP_VS_CONN_F_BACKUP_MASK, the bits of a v1 entry a
	// backup keeps.
	BackupMask = FlagFwdMask | FlagNoOutput | FlagInactive | FlagSeqMask | FlagNoCPort | FlagTemplate
	// BackupUpdMask is IP_VS_CONN_F_BACKUP_UPD_MASK, the bits a backup
	// updates on a connection it already has.
	BackupUpdMask = FlagInactive | FlagSeqMask
)

// Version numbers of the message header.
const (
	Version0 = 0
	Version1 = 1 // SYNC_PROTO_VER
	// AuthVersion is the version byte of a GoLVS signed message (see
	// Signer). It is not a kernel version: a kernel receiver reads such
	// a message as version 0 with 0 entries, after having already
	// dropped it for its size.
	AuthVersion = 2
)

// Seq is the kernel's struct ip_vs_seq: the sequence-number adjustment of
// a connection whose payload an application helper (FTP) resized.
type Seq struct {
	InitSeq       uint32 // add delta from this sequence number on
	Delta         uint32 // delta in the sequence numbers after InitSeq
	PreviousDelta uint32 // delta before InitSeq
}

// Entry is one synced connection or template, the union of what versions
// 0 and 1 carry. Addresses are all IPv4 or all IPv6 (the kernel syncs no
// connection whose real server is of another family than its client); the
// family of the addresses is the entry's type.
type Entry struct {
	Proto   uint8  // IP protocol; 0 for a fwmark template
	Flags   uint32 // IP_VS_CONN_F_* as sent (v0: 16 bits)
	State   uint16 // protocol state (template: 0 NONE or 1 ASSURED)
	CAddr   netip.Addr
	VAddr   netip.Addr // a fwmark template: the mark as an address
	DAddr   netip.Addr
	CPort   uint16
	VPort   uint16
	DPort   uint16
	FWMark  uint32 // v1 only (v0: 0)
	Timeout uint32 // seconds; v1 only (v0: 0, the backup picks one)
	HasSeq  bool   // InSeq and OutSeq are present
	InSeq   Seq
	OutSeq  Seq
	PEName  []byte // v1 PE_NAME option; aliases the message when decoded
	PEData  []byte // v1 PE_DATA option; aliases the message when decoded
}

// IPv6 reports whether the entry is of the IPv6 type (v1 type bit 0): its
// addresses are IPv6 ones (IPv4-mapped addresses included).
func (e *Entry) IPv6() bool { return e.CAddr.Is6() }

// Template reports whether the entry is a persistence template.
func (e *Entry) Template() bool { return e.Flags&FlagTemplate != 0 }

// Errors that end the processing of a message: what the kernel logs
// before it returns from ip_vs_process_message. Entries before the one
// that failed have been delivered.
var (
	// ErrShort: fewer than 4 bytes ("message header too short").
	ErrShort = errors.New("ipvssync: message shorter than a header")
	// ErrSize: the header's size is not the datagram's length ("bogus
	// message size").
	ErrSize = errors.New("ipvssync: message size does not match its length")
	// ErrSyncID: the message's sync ID is not the backup's ("Ignoring
	// syncid"). Not an error of the sender: a filter.
	ErrSyncID = errors.New("ipvssync: message of another sync ID")
	// ErrVersion: first byte 0 but not a version-1 header; the kernel
	// reads it as version 0 with no entries and does nothing.
	ErrVersion = errors.New("ipvssync: unknown message version")
	// ErrSigned: a GoLVS signed message (AuthVersion) given to Reader;
	// pass it to Verifier.Verify first.
	ErrSigned = errors.New("ipvssync: signed message, not verified")
	// ErrTruncated: an entry (or v0 sequence data) runs past the end of
	// the message ("Dropping buffer, too small", "msg > buffer", "bogus
	// conn").
	ErrTruncated = errors.New("ipvssync: entry past the end of the message")
	// ErrEntryVersion: an entry's version (the top 4 bits of ver_size)
	// is not 0 ("Unknown version").
	ErrEntryVersion = errors.New("ipvssync: unknown entry version")
	// ErrFamily: an entry's type is neither IPv4 (0) nor has the IPv6
	// bit (ip_vs_proc_sync_conn -10).
	ErrFamily = errors.New("ipvssync: bad entry address family")
	// ErrEntryLen: an entry's size is smaller than its fixed part (-20).
	ErrEntryLen = errors.New("ipvssync: entry size below its fixed part")
	// ErrOptTruncated: an option header or its data runs past the
	// entry, or has length 0 (-30, -40).
	ErrOptTruncated = errors.New("ipvssync: truncated option")
	// ErrBadOption: sequence data not 24 bytes, or a PE name longer than
	// 16 (-50, -70).
	ErrBadOption = errors.New("ipvssync: bad option length")
	// ErrDupOption: the same option twice in one entry (-50, -60, -70).
	ErrDupOption = errors.New("ipvssync: option found twice")
)

// Errors that drop one entry; the rest of the message is processed.
var (
	// ErrUnknownOption: an option the receiver does not know without
	// OptParamFlag (retc 20).
	ErrUnknownOption = errors.New("ipvssync: unknown mandatory option")
	// ErrProto: a connection (not a template) of a protocol IPVS does
	// not handle (retc 30, "Unsupported protocol").
	ErrProto = errors.New("ipvssync: unsupported protocol")
	// ErrState: a state outside the protocol's table (retc 40, "Invalid
	// state"), or a template state GoLVS cannot store (above 15).
	ErrState = errors.New("ipvssync: invalid state for the protocol")
	// ErrPEParams: persistence-engine data without an engine name
	// (retc 50, "Invalid PE parameters").
	ErrPEParams = errors.New("ipvssync: PE data without PE name")
	// ErrUnknownPE: a persistence engine the backup does not have
	// (retc 50, "no engine found/loaded"). Returned by Backup.Plan.
	ErrUnknownPE = errors.New("ipvssync: unknown persistence engine")
	// ErrOnePacket: the entry would become a one-packet connection,
	// which GoLVS never stores. Returned by Backup.Plan (only a v0
	// message can ask for it). The kernel creates such a connection
	// unhashed and expires it at once (ip_vs_conn_put): the oracle's
	// backup neither listed nor counted it.
	ErrOnePacket = errors.New("ipvssync: one-packet connection")
)

// Errors of the encoders.
var (
	// ErrMixedFamily: an entry whose addresses are not all of one family.
	ErrMixedFamily = errors.New("ipvssync: addresses of mixed families")
	// ErrV0IPv6: version 0 carries IPv4 only (the kernel skips IPv6
	// connections when sync_version is 0).
	ErrV0IPv6 = errors.New("ipvssync: version 0 carries IPv4 only")
	// ErrTooLong: PE data over 255 bytes or a PE name over 16.
	ErrTooLong = errors.New("ipvssync: persistence-engine option too long")
	// ErrPENameOnly: a PE name without PE data (the kernel sends the
	// name only after the data).
	ErrPENameOnly = errors.New("ipvssync: PE name without PE data")
)
