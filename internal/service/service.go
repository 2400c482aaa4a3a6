package service

import (
	"fmt"
	"net/netip"

	"golvs/internal/stats"
)

// Family is an address family of a service or destination.
type Family uint8

// Families. The values are the IP version numbers, not AF_* constants.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// FamilyOf returns the family of a.
func FamilyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// IP protocol numbers of the protocols IPVS balances.
const (
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoSCTP uint8 = 132
)

// Key identifies a virtual service: either (family, protocol, VIP, port) or
// (family, firewall mark). For fwmark services Proto, Addr and Port are zero.
// Key is comparable.
type Key struct {
	Family Family
	Proto  uint8      // ProtoTCP, ProtoUDP or ProtoSCTP; 0 for fwmark services
	Addr   netip.Addr // the VIP; zero for fwmark services
	Port   uint16     // virtual port; 0 = all ports (persistent services only)
	FWMark uint32     // non-zero for fwmark services
}

// IsFWMark reports whether k names a firewall-mark service.
func (k Key) IsFWMark() bool { return k.FWMark != 0 }

func (k Key) String() string {
	if k.IsFWMark() {
		return fmt.Sprintf("FWM %d (%v)", k.FWMark, k.Family)
	}
	return fmt.Sprintf("%s %s", protoName(k.Proto), netip.AddrPortFrom(k.Addr, k.Port))
}

func protoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoSCTP:
		return "SCTP"
	}
	return fmt.Sprintf("proto-%d", p)
}

// Flags are service flags (kernel IP_VS_SVC_F_*).
type Flags uint32

// Service flags with the kernel's values.
const (
	FlagPersistent Flags = 0x0001 // -p
	FlagHashed     Flags = 0x0002 // internal to the kernel; never set here
	FlagOnePacket  Flags = 0x0004 // -o, UDP only
	FlagSched1     Flags = 0x0008 // sh-fallback, mh-fallback
	FlagSched2     Flags = 0x0010 // sh-port, mh-port
	FlagSched3     Flags = 0x0020 // unused by in-tree schedulers
)

// Aliases of the scheduler flags under their ipvsadm names.
const (
	FlagSHFallback = FlagSched1
	FlagSHPort     = FlagSched2
	FlagMHFallback = FlagSched1
	FlagMHPort     = FlagSched2
)

// Config is the configuration of a virtual service: what ipvsadm -A/-E set.
// It is a comparable value.
type Config struct {
	Sched   string // scheduler name, "rr", "wlc", ...
	Flags   Flags
	Timeout uint32 // persistence timeout in seconds (with FlagPersistent)
	// Netmask is the persistence granularity: for IPv4 a mask as a
	// big-endian uint32 (0xffffffff by default); for IPv6 a prefix length
	// (128 by default).
	Netmask uint32
	PE      string // persistence engine ("sip") or ""
}

// Persistent reports whether the service has persistence.
func (c Config) Persistent() bool { return c.Flags&FlagPersistent != 0 }

// Service is one virtual service as one Snapshot sees it. A Service value is
// immutable once published in a Snapshot; a change makes a new Service that
// shares Sched, Stats and the Dest objects with the old one.
type Service struct {
	Key    Key
	Config Config

	// Dests are the destinations in kernel list order: the most recently
	// added first (the kernel adds at the head of svc->destinations).
	// The slice is never modified after publication (copy on write).
	Dests []*Dest

	// Sched is the scheduler instance bound to the service. It keeps its
	// own state across snapshots (an edit that keeps the scheduler keeps
	// the instance, as the kernel does).
	Sched Scheduler

	// Stats are the service's counters; shared by successive versions.
	Stats *stats.Counters
}

// Packet is what a scheduler may look at of the packet being scheduled
// (the kernel passes skb and ip_vs_iphdr).
type Packet struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	// Inverse is set for ICMP errors related to a connection: Src/Dst
	// are then of the embedded packet (IP_VS_HDR_INVERSE) and hashing
	// schedulers key on Dst instead of Src.
	Inverse bool
	// Now is the time of the packet (clock.Nanotime), read once per batch.
	Now int64
}

// Scheduler is a scheduling algorithm bound to one service (kernel struct
// ip_vs_scheduler with its per-service sched_data). Implementations live in
// package sched.
//
// The hooks (Init, AddDest, DelDest, UpdDest) are called by the control
// plane, serialised, each with the service's full destination list in kernel
// order after the change. Schedule is called concurrently from data-path
// workers and from one control goroutine at a time; an implementation guards
// its own state. Schedule must not allocate.
type Scheduler interface {
	// Name returns the ipvsadm name, such as "wlc".
	Name() string
	// Init binds the scheduler to a service (init_service).
	Init(dests []*Dest) error
	// AddDest is called after d was inserted at the head of dests.
	AddDest(dests []*Dest, d *Dest)
	// DelDest is called after d was removed from dests.
	DelDest(dests []*Dest, d *Dest)
	// UpdDest is called after d's weight or thresholds were edited.
	UpdDest(dests []*Dest, d *Dest)
	// Schedule picks a destination for a new connection, or nil when none
	// is available ("no destination available").
	Schedule(dests []*Dest, p *Packet) *Dest
}

// Expirer is implemented by schedulers with state that expires (lblc, lblcr);
// the owner calls Expire periodically (the kernel's 60 s GC timer).
type Expirer interface {
	Expire(now int64)
}

// Doner is implemented by schedulers that must release something when they
// are unbound from a service (done_service).
type Doner interface {
	Done()
}
