package service

import (
	"net/netip"
	"sync/atomic"

	"golvs/internal/stats"
)

// FwdMethod is a destination's forwarding method (kernel IP_VS_CONN_F_FWD_MASK
// values).
type FwdMethod uint8

// Forwarding methods with the kernel's values.
const (
	Masq      FwdMethod = 0 // NAT, ipvsadm -m
	LocalNode FwdMethod = 1 // the destination is an address of the director
	Tunnel    FwdMethod = 2 // IP-in-IP, ipvsadm -i
	Route     FwdMethod = 3 // direct routing, ipvsadm -g (the default)
	Bypass    FwdMethod = 4 // cache bypass
)

func (m FwdMethod) String() string {
	switch m {
	case Masq:
		return "Masq"
	case LocalNode:
		return "Local"
	case Tunnel:
		return "Tunnel"
	case Route:
		return "Route"
	case Bypass:
		return "Bypass"
	}
	return "Unknown"
}

// TunType is the encapsulation of a Tunnel destination (IP_VS_CONN_F_TUNNEL_TYPE_*).
type TunType uint8

// Tunnel types.
const (
	TunIPIP TunType = 0
	TunGUE  TunType = 1
	TunGRE  TunType = 2
)

// TunFlags are tunnel flags (IP_VS_TUNNEL_ENCAP_FLAG_*).
type TunFlags uint16

// Tunnel flags with the kernel's values.
const (
	TunNoCsum  TunFlags = 0
	TunCsum    TunFlags = 1 << 0
	TunRemCsum TunFlags = 1 << 1
)

// DestConfig is what ipvsadm -a/-e set on a destination. It is a comparable
// value.
type DestConfig struct {
	Fwd        FwdMethod
	Weight     int32  // 0 = quiescent
	UThreshold uint32 // upper connection threshold, 0 = none (-x)
	LThreshold uint32 // lower connection threshold, 0 = none (-y)
	TunType    TunType
	TunPort    uint16 // GUE destination port
	TunFlags   TunFlags
}

// Dest flags (kernel IP_VS_DEST_F_*).
const (
	destAvailable uint32 = 0x0001
	destOverload  uint32 = 0x0002
)

// LoadObserver is told when a destination's connection counts or its
// OVERLOAD flag change. Schedulers that index destinations by load (lc, wlc,
// sed, nq) register one so that they need not scan all destinations per
// connection.
type LoadObserver interface {
	LoadChanged(d *Dest)
}

type observerBox struct{ o LoadObserver }

// Dest is one real server of one service (kernel struct ip_vs_dest). A Dest
// lives as long as any connection refers to it, across snapshots and in the
// trash after deletion. It is safe for concurrent use: identity fields are
// immutable, the rest is atomic.
type Dest struct {
	// Immutable identity.
	ID     uint32 // index in the Registry; conns refer to dests by ID
	Family Family
	Addr   netip.Addr
	Port   uint16
	Svc    Key // the service the destination belongs to

	Stats *stats.Counters
	// svcStats are the counters of the service the destination is linked
	// to: the data path counts a packet on the dest, its service and the
	// totals (kernel dest->svc->stats).
	svcStats atomic.Pointer[stats.Counters]

	conf       atomic.Pointer[DestConfig]
	weight     atomic.Int32 // copy of conf.Weight for the schedulers' hot path
	lastWeight atomic.Int32 // last non-zero weight (kernel last_weight, used by mh)
	flags      atomic.Uint32

	activeConns  atomic.Int32
	inactConns   atomic.Int32
	persistConns atomic.Int32

	observer atomic.Pointer[observerBox]

	// SchedSlot is free for the bound scheduler's bookkeeping (for example
	// the destination's position in an index). Only the scheduler bound to
	// the owning service reads or writes it.
	SchedSlot atomic.Int32

	// idleSince is the clock time at which the dest went to the trash.
	idleSince atomic.Int64
}

// NewDest returns an available destination with configuration c.
func NewDest(id uint32, svc Key, addr netip.Addr, port uint16, c DestConfig, st *stats.Counters) *Dest {
	d := &Dest{ID: id, Family: FamilyOf(addr), Addr: addr, Port: port, Svc: svc, Stats: st}
	d.flags.Store(destAvailable)
	d.setConfig(c, true)
	return d
}

// SvcStats returns the counters of the service d belongs to.
func (d *Dest) SvcStats() *stats.Counters { return d.svcStats.Load() }

// SetSvcStats links d to its service's counters.
func (d *Dest) SetSvcStats(c *stats.Counters) { d.svcStats.Store(c) }

// Config returns the destination's current configuration.
func (d *Dest) Config() DestConfig { return *d.conf.Load() }

// Fwd returns the forwarding method.
func (d *Dest) Fwd() FwdMethod { return d.conf.Load().Fwd }

// Weight returns the current weight.
func (d *Dest) Weight() int32 { return d.weight.Load() }

// LastWeight returns the last non-zero weight the destination had.
func (d *Dest) LastWeight() int32 { return d.lastWeight.Load() }

// ActiveConns returns the number of active connections.
func (d *Dest) ActiveConns() int32 { return d.activeConns.Load() }

// InactConns returns the number of inactive connections.
func (d *Dest) InactConns() int32 { return d.inactConns.Load() }

// PersistConns returns the number of persistence templates bound to d.
func (d *Dest) PersistConns() int32 { return d.persistConns.Load() }

// Overhead is the kernel's ip_vs_dest_conn_overhead: active x 256 + inactive.
func (d *Dest) Overhead() int32 {
	return d.activeConns.Load()<<8 + d.inactConns.Load()
}

// Overloaded reports the OVERLOAD flag (upper threshold reached).
func (d *Dest) Overloaded() bool { return d.flags.Load()&destOverload != 0 }

// Available reports whether the destination is still linked to its service
// (not deleted into the trash).
func (d *Dest) Available() bool { return d.flags.Load()&destAvailable != 0 }

// SetObserver registers o to be told of load changes (nil to clear).
func (d *Dest) SetObserver(o LoadObserver) {
	if o == nil {
		d.observer.Store(nil)
		return
	}
	d.observer.Store(&observerBox{o})
}

func (d *Dest) notify() {
	if b := d.observer.Load(); b != nil {
		b.o.LoadChanged(d)
	}
}

// SetConfig applies an edit (ipvsadm -e, or -a reviving a trashed dest):
// the kernel's __ip_vs_update_dest. OVERLOAD is cleared when the new upper
// threshold is 0 or greater than the old one.
func (d *Dest) SetConfig(c DestConfig) { d.setConfig(c, false) }

func (d *Dest) setConfig(c DestConfig, isNew bool) {
	old := d.conf.Load()
	d.conf.Store(&c)
	d.weight.Store(c.Weight)
	if c.Weight != 0 || isNew {
		// The kernel sets last_weight on add, and on edit only when the
		// new weight is non-zero.
		d.lastWeight.Store(c.Weight)
	}
	if old != nil && (c.UThreshold == 0 || c.UThreshold > old.UThreshold) {
		d.clearFlag(destOverload)
	}
	d.notify()
}

func (d *Dest) setFlag(f uint32) {
	for {
		o := d.flags.Load()
		if o&f == f || d.flags.CompareAndSwap(o, o|f) {
			return
		}
	}
}

func (d *Dest) clearFlag(f uint32) {
	for {
		o := d.flags.Load()
		if o&f == 0 || d.flags.CompareAndSwap(o, o&^f) {
			return
		}
	}
}

// SetAvailable marks the destination linked (true) or deleted (false).
func (d *Dest) SetAvailable(v bool) {
	if v {
		d.setFlag(destAvailable)
	} else {
		d.clearFlag(destAvailable)
	}
	d.notify()
}

// SetIdleSince records when the destination was moved to the trash.
func (d *Dest) SetIdleSince(t int64) { d.idleSince.Store(t) }

// IdleSince returns what SetIdleSince recorded.
func (d *Dest) IdleSince() int64 { return d.idleSince.Load() }

// Conns returns active + inactive connections (the threshold total; templates
// do not count).
func (d *Dest) Conns() int32 { return d.activeConns.Load() + d.inactConns.Load() }

// Bind accounts a connection newly bound to d (kernel ip_vs_bind_dest):
// a template counts in persistConns, others in inactive or active; then the
// upper threshold may set OVERLOAD.
func (d *Dest) Bind(template, inactive bool) {
	switch {
	case template:
		d.persistConns.Add(1)
	case inactive:
		d.inactConns.Add(1)
	default:
		d.activeConns.Add(1)
	}
	if u := d.conf.Load().UThreshold; u != 0 && uint32(d.Conns()) >= u {
		d.setFlag(destOverload)
	}
	d.notify()
}

// Unbind accounts a connection leaving d (kernel ip_vs_unbind_dest), with
// the lower-threshold hysteresis: OVERLOAD clears below the lower threshold,
// or without one below 3/4 of the upper threshold, or at once without either.
func (d *Dest) Unbind(template, inactive bool) {
	switch {
	case template:
		d.persistConns.Add(-1)
	case inactive:
		d.inactConns.Add(-1)
	default:
		d.activeConns.Add(-1)
	}
	c := d.conf.Load()
	total := uint64(d.Conns())
	switch {
	case c.LThreshold != 0:
		if total < uint64(c.LThreshold) {
			d.clearFlag(destOverload)
		}
	case c.UThreshold != 0:
		if total*4 < uint64(c.UThreshold)*3 {
			d.clearFlag(destOverload)
		}
	default:
		d.clearFlag(destOverload)
	}
	d.notify()
}

// ToActive moves one connection from inactive to active (a TCP or SCTP state
// transition into an active state).
func (d *Dest) ToActive() {
	d.inactConns.Add(-1)
	d.activeConns.Add(1)
	d.notify()
}

// ToInactive moves one connection from active to inactive.
func (d *Dest) ToInactive() {
	d.activeConns.Add(-1)
	d.inactConns.Add(1)
	d.notify()
}

// SetCounts sets the connection counts directly. It is for tests and
// simulations of schedulers; the data path uses Bind/Unbind/ToActive.
func (d *Dest) SetCounts(active, inactive int32, overload bool) {
	d.activeConns.Store(active)
	d.inactConns.Store(inactive)
	if overload {
		d.setFlag(destOverload)
	} else {
		d.clearFlag(destOverload)
	}
	d.notify()
}
