package syncd

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/ipvssync"
)

// Reason says why a backup refused a message or an entry. Each has a
// counter (Stats.Rejects).
type Reason uint8

// Reasons a message is refused whole (nothing in it is applied), then
// reasons one entry is (the rest of the message is applied). The ones of
// package ipvssync keep its names; those after RejectTableFull are the
// daemon's own.
const (
	// Refused before decoding.
	RejectInterface Reason = iota // received on another interface than the daemon's
	RejectPeer                    // from an address not among the unicast peers
	RejectTooLong                 // longer than the backup's sync_maxlen (the kernel truncates it, then finds its size wrong)
	// Authentication (with a key).
	RejectUnsigned       // ipvssync.ErrUnsigned
	RejectUnknownKey     // ipvssync.ErrUnknownKey
	RejectForged         // ipvssync.ErrForged
	RejectStale          // ipvssync.ErrStale
	RejectReplay         // ipvssync.ErrReplay
	RejectTooManySenders // ipvssync.ErrTooManySenders
	// Decoding of the message (ipvssync.Reader).
	RejectSigned       // ipvssync.ErrSigned: signed, and this backup has no key
	RejectShort        // ipvssync.ErrShort
	RejectSize         // ipvssync.ErrSize
	RejectSyncID       // ipvssync.ErrSyncID
	RejectVersion      // ipvssync.ErrVersion
	RejectTruncated    // ipvssync.ErrTruncated (the entries before it are applied)
	RejectEntryVersion // ipvssync.ErrEntryVersion (idem)
	RejectFamily       // ipvssync.ErrFamily (idem)
	RejectEntryLen     // ipvssync.ErrEntryLen (idem)
	RejectOptTruncated // ipvssync.ErrOptTruncated (idem)
	RejectBadOption    // ipvssync.ErrBadOption (idem)
	RejectDupOption    // ipvssync.ErrDupOption (idem)
	// One entry.
	RejectUnknownOption // ipvssync.ErrUnknownOption
	RejectProto         // ipvssync.ErrProto
	RejectState         // ipvssync.ErrState
	RejectPEParams      // ipvssync.ErrPEParams
	RejectUnknownPE     // ipvssync.ErrUnknownPE
	RejectOnePacket     // ipvssync.ErrOnePacket
	RejectTableFull     // the connection table is full (conntable.ErrFull)
	RejectInvalid       // an entry the table cannot hold (conntable.ErrInvalid), or one gone while updated
	RejectOther         // any other error (none known)

	// NumReasons is the number of reasons.
	NumReasons
)

var reasonNames = [NumReasons]string{
	RejectInterface:      "interface",
	RejectPeer:           "peer",
	RejectTooLong:        "too_long",
	RejectUnsigned:       "unsigned",
	RejectUnknownKey:     "unknown_key",
	RejectForged:         "forged",
	RejectStale:          "stale",
	RejectReplay:         "replay",
	RejectTooManySenders: "too_many_senders",
	RejectSigned:         "signed",
	RejectShort:          "short",
	RejectSize:           "size",
	RejectSyncID:         "syncid",
	RejectVersion:        "version",
	RejectTruncated:      "truncated",
	RejectEntryVersion:   "entry_version",
	RejectFamily:         "family",
	RejectEntryLen:       "entry_len",
	RejectOptTruncated:   "option_truncated",
	RejectBadOption:      "bad_option",
	RejectDupOption:      "duplicate_option",
	RejectUnknownOption:  "unknown_option",
	RejectProto:          "protocol",
	RejectState:          "state",
	RejectPEParams:       "pe_params",
	RejectUnknownPE:      "unknown_pe",
	RejectOnePacket:      "one_packet",
	RejectTableFull:      "table_full",
	RejectInvalid:        "invalid",
	RejectOther:          "other",
}

// String returns the reason's name, the label of its metric.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}

// reasonErrs maps the errors of ipvssync and conntable to reasons.
var reasonErrs = []struct {
	err error
	r   Reason
}{
	{ipvssync.ErrUnsigned, RejectUnsigned},
	{ipvssync.ErrUnknownKey, RejectUnknownKey},
	{ipvssync.ErrForged, RejectForged},
	{ipvssync.ErrStale, RejectStale},
	{ipvssync.ErrReplay, RejectReplay},
	{ipvssync.ErrTooManySenders, RejectTooManySenders},
	{ipvssync.ErrSigned, RejectSigned},
	{ipvssync.ErrShort, RejectShort},
	{ipvssync.ErrSize, RejectSize},
	{ipvssync.ErrSyncID, RejectSyncID},
	{ipvssync.ErrVersion, RejectVersion},
	{ipvssync.ErrTruncated, RejectTruncated},
	{ipvssync.ErrEntryVersion, RejectEntryVersion},
	{ipvssync.ErrFamily, RejectFamily},
	{ipvssync.ErrEntryLen, RejectEntryLen},
	{ipvssync.ErrOptTruncated, RejectOptTruncated},
	{ipvssync.ErrBadOption, RejectBadOption},
	{ipvssync.ErrDupOption, RejectDupOption},
	{ipvssync.ErrUnknownOption, RejectUnknownOption},
	{ipvssync.ErrProto, RejectProto},
	{ipvssync.ErrState, RejectState},
	{ipvssync.ErrPEParams, RejectPEParams},
	{ipvssync.ErrUnknownPE, RejectUnknownPE},
	{ipvssync.ErrOnePacket, RejectOnePacket},
	{conntable.ErrFull, RejectTableFull},
	{conntable.ErrInvalid, RejectInvalid},
}

func reasonOf(err error) Reason {
	for _, e := range reasonErrs {
		if errors.Is(err, e.err) {
			return e.r
		}
	}
	return RejectOther
}

// Stats are the sync daemons' counters since the Manager was made (they
// add up over restarts of the daemons). Metrics: lvs_sync_*.
type Stats struct {
	// Master.
	MessagesSent uint64    `json:"messages_sent"` // messages sent (to each peer: one per peer)
	EntriesSent  uint64    `json:"entries_sent"`  // entries in them (counted once per message sent)
	SendErrors   uint64    `json:"send_errors"`   // messages a send failed for (per peer)
	RingDrops    uint64    `json:"ring_drops"`    // connections not synced: a worker's ring was full
	EncodeErrors uint64    `json:"encode_errors"` // connections the format cannot carry (mixed families, IPv6 with sync_version 0)
	LastSent     time.Time `json:"last_sent,omitzero"`

	// Backup.
	MessagesReceived uint64 `json:"messages_received"` // datagrams received, accepted or not
	MessagesAccepted uint64 `json:"messages_accepted"` // messages that got to their entries
	EntriesReceived  uint64 `json:"entries_received"`  // entries decoded without error
	Inserted         uint64 `json:"entries_inserted"`  // entries that created a connection or template
	Updated          uint64 `json:"entries_updated"`   // entries that updated one
	Replaced         uint64 `json:"entries_replaced"`  // entries that replaced one with another real server
	Ignored          uint64 `json:"entries_ignored"`   // stale entries (INACTIVE, about a connection since replaced)
	// Entries created or updated without a real server (the kernel keeps
	// them unbound, and binds them when a later message finds one).
	UnboundNoService uint64    `json:"unbound_no_service"`
	UnboundNoDest    uint64    `json:"unbound_no_dest"`
	LastReceived     time.Time `json:"last_received,omitzero"` // the last message accepted
	// Rejects counts refused messages and entries, by Reason (in JSON
	// an object by Reason name).
	Rejects [NumReasons]uint64 `json:"-"`
}

// MarshalJSON encodes s with its rejects as an object by reason name.
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats
	rej := make(map[string]uint64, NumReasons)
	for r, n := range s.Rejects {
		rej[Reason(r).String()] = n
	}
	return json.Marshal(struct {
		plain
		Rejects map[string]uint64 `json:"rejects"`
	}{plain(s), rej})
}

// counters are the atomics behind Stats.
type counters struct {
	msgsSent, entriesSent, sendErrors, encodeErrors atomic.Uint64
	ringDrops                                       atomic.Uint64 // of stopped masters; running ones add their queue's
	lastSent                                        atomic.Int64  // Unix nanoseconds, 0: never

	msgsRecv, msgsAccepted, entriesRecv  atomic.Uint64
	inserted, updated, replaced, ignored atomic.Uint64
	unboundNoService, unboundNoDest      atomic.Uint64
	lastRecv                             atomic.Int64
	rejects                              [NumReasons]atomic.Uint64
}

func (c *counters) reject(r Reason) { c.rejects[r].Add(1) }

func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

func (c *counters) snapshot() Stats {
	s := Stats{
		MessagesSent:     c.msgsSent.Load(),
		EntriesSent:      c.entriesSent.Load(),
		SendErrors:       c.sendErrors.Load(),
		RingDrops:        c.ringDrops.Load(),
		EncodeErrors:     c.encodeErrors.Load(),
		LastSent:         unixTime(c.lastSent.Load()),
		MessagesReceived: c.msgsRecv.Load(),
		MessagesAccepted: c.msgsAccepted.Load(),
		EntriesReceived:  c.entriesRecv.Load(),
		Inserted:         c.inserted.Load(),
		Updated:          c.updated.Load(),
		Replaced:         c.replaced.Load(),
		Ignored:          c.ignored.Load(),
		UnboundNoService: c.unboundNoService.Load(),
		UnboundNoDest:    c.unboundNoDest.Load(),
		LastReceived:     unixTime(c.lastRecv.Load()),
	}
	for i := range c.rejects {
		s.Rejects[i] = c.rejects[i].Load()
	}
	return s
}
