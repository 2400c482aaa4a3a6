package ipvssync

import (
	"encoding/binary"
	"net/netip"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// Services finds the service a packet (or a synced entry) belongs to, as
// the kernel's ip_vs_service_find: by fwmark when mark is not 0, then by
// <proto, vaddr, vport>, then the FTP and port-0 fallbacks.
// *service.Snapshot implements it.
type Services interface {
	Lookup(proto uint8, vaddr netip.Addr, vport uint16, mark uint32) *service.Service
}

var _ Services = (*service.Snapshot)(nil)

// Backup holds what a backup needs to apply synced entries: its sysctls
// and timeouts. It is a plain value, safe for concurrent use if not
// modified.
type Backup struct {
	// Threshold is sync_threshold's first value: the packet count a
	// synced entry starts with (so that, should this backup become
	// master, it syncs the connection again only Period packets later).
	Threshold uint32
	// Timeouts gives the timeout of a synced connection that came
	// without one (version 0). nil: the kernel's defaults.
	Timeouts *proto.Timeouts
	// KnownPE reports whether the backup has the named persistence
	// engine (ip_vs_pe_getbyname). nil: none, so entries with PE data
	// are dropped with ErrUnknownPE, as on a kernel without ip_vs_pe_sip.
	KnownPE func(name []byte) bool
}

// Action is what the backup's connection table must do with a synced
// entry.
type Action uint8

// Actions of a Plan.
const (
	// Ignore: nothing (a stale message about a connection already
	// replaced, or an entry Plan refused).
	Ignore Action = iota
	// Insert Plan.Conn as a new entry.
	Insert
	// Update the existing entry (Plan.Ref): its flags, state, timeout
	// and packet count become those of Plan.Conn, it is bound to
	// Plan.Conn.DestID if it had no real server and Plan.Bind says so,
	// and its timer is re-armed with the new timeout.
	Update
	// Replace: expire the existing entry (Plan.Ref) now, as
	// ip_vs_conn_expire_now, then insert Plan.Conn.
	Replace
)

func (a Action) String() string {
	switch a {
	case Ignore:
		return "ignore"
	case Insert:
		return "insert"
	case Update:
		return "update"
	case Replace:
		return "replace"
	}
	return "action?"
}

// Binding says how the real server of an inserted entry was found, for
// counting: like the kernel, a backup keeps entries it has no real server
// for, unbound; they are bound when a later message about them finds one.
type Binding uint8

// Bindings.
const (
	Bound        Binding = iota // found: Plan.Conn.DestID is set
	NoService                   // no service for <proto, vaddr, vport> or the fwmark
	NoDest                      // the service has no such real server
	AlreadyBound                // an update of an entry that had one
)

func (b Binding) String() string {
	switch b {
	case Bound:
		return "bound"
	case NoService:
		return "no service"
	case NoDest:
		return "no dest"
	case AlreadyBound:
		return "already bound"
	}
	return "binding?"
}

// Flip is a change of a real server's active/inactive counts.
type Flip int8

// Flips (the counts of Plan.Dest when an update changes INACTIVE).
const (
	NoFlip     Flip = 0
	ToActive   Flip = 1  // activeconns++, inactconns--
	ToInactive Flip = -1 // activeconns--, inactconns++
)

// Plan is the decision for one synced entry (ip_vs_proc_conn).
type Plan struct {
	Action Action
	// Ref is the existing entry updated or replaced.
	Ref conntable.Ref
	// Conn is the entry to insert, or the values to write for Update
	// (Flags, State, OldState, Timeout, InPkts, DestID). Its addresses,
	// ports, protocol and fwmark are the synced ones.
	Conn conntable.Conn
	// Dest is the real server of Conn (nil if unbound). The caller
	// counts a new binding on it (service.Dest.Bind with the template
	// and INACTIVE bits of Conn.Flags), and applies Flip for an update.
	Dest    *service.Dest
	Binding Binding
	// Bind is set for an Update that binds a previously unbound entry
	// (ip_vs_try_bind_dest).
	Bind bool
	Flip Flip
	// Seq is set when the entry carried sequence data for the table's
	// in_seq and out_seq (GoLVS has no application helpers that use it
	// yet; it is reported, not stored in Conn).
	Seq bool
}

// templateTimeout is the timeout of a synced template that came without
// one (3*60*HZ in ip_vs_proc_conn: v0 cannot carry the persistence
// timeout).
const templateTimeout = 3 * time.Minute

// Plan decides what to do with a synced entry e of a message of the
// given version (Header.Version), as ip_vs_proc_conn does. cur is the
// backup's entry with e's key, nil if none: for a connection the one
// conntable.LookupInConn finds with e's <proto, caddr, cport, vaddr,
// vport> (ip_vs_conn_in_get), for a template the one LookupTemplate finds
// (ip_vs_ct_in_get; see TemplateKey). svcs finds services and real
// servers (ip_vs_find_dest); reg resolves cur's DestID (the real server
// whose counts an update moves). Either may be nil: no service, no
// counts.
//
// The steps:
//   - flags: version 1 keeps BackupMask of what was sent, version 0 all
//     16 bits but HASHED; both add SYNC;
//   - a connection that exists with another real server is replaced
//     (expired now) if the entry is active, and the entry is ignored if
//     it is INACTIVE (it is the last word about a connection already
//     replaced);
//   - an existing entry keeps its flags but INACTIVE, IN_SEQ and
//     OUT_SEQ, which it takes from the entry (BackupUpdMask), moving the
//     real server's counts if INACTIVE changed; an unbound one is bound
//     if its real server is found now;
//   - a new entry gets the synced flags; bound to a real server it takes
//     the server's forwarding method (and NOOUTPUT unless NAT) instead of
//     the master's, and keeps the master's INACTIVE; unbound it keeps
//     the master's forwarding method;
//   - in both cases state = old state = the synced state, packet count =
//     Threshold, timeout = the synced seconds (version 1) or the
//     protocol's timeout for the state (version 0; 3 minutes for a
//     template).
//
// Entries with PE data need KnownPE to know the engine (ErrUnknownPE).
// An entry that would become ONE_PACKET (only a version-0 message can
// carry the flag) is refused with ErrOnePacket: the kernel creates it
// unhashed and frees it at once, to the same effect.
func (b *Backup) Plan(e *Entry, version uint8, cur *conntable.Conn, svcs Services, reg *service.Registry) (Plan, error) {
	if len(e.PEData) != 0 {
		if b.KnownPE == nil || !b.KnownPE(e.PEName) {
			return Plan{}, ErrUnknownPE
		}
	}
	var flags uint32
	if version == Version1 {
		flags = e.Flags&BackupMask | FlagSync
	} else {
		flags = (e.Flags | FlagSync) &^ FlagHashed
	}
	tpl := flags&FlagTemplate != 0
	p := Plan{Conn: conntable.Conn{
		Proto:  e.Proto,
		State:  uint8(e.State),
		CAddr:  e.CAddr,
		VAddr:  e.VAddr,
		DAddr:  e.DAddr,
		CPort:  e.CPort,
		VPort:  e.VPort,
		DPort:  e.DPort,
		FWMark: e.FWMark,
		InPkts: b.Threshold,
	}, Seq: e.HasSeq}
	p.Conn.OldState = p.Conn.State
	p.Conn.Timeout = b.timeout(e, tpl)

	if cur != nil && !tpl && (cur.DPort != e.DPort || cur.DAddr != e.DAddr) {
		if flags&FlagInactive != 0 {
			return Plan{Action: Ignore, Ref: cur.Ref}, nil
		}
		p.Action, p.Ref = Replace, cur.Ref
		cur = nil
	}

	if cur != nil {
		p.Action, p.Ref = Update, cur.Ref
		var dest *service.Dest
		if cur.DestID != 0 && reg != nil {
			dest = reg.Lookup(cur.DestID)
		}
		old := uint32(cur.Flags)
		if (old^flags)&FlagInactive != 0 && !tpl && dest != nil {
			if flags&FlagInactive != 0 {
				p.Flip = ToInactive
			} else {
				p.Flip = ToActive
			}
		}
		nf := flags&BackupUpdMask | old&^BackupUpdMask
		p.Conn.DestID, p.Dest, p.Binding = cur.DestID, dest, AlreadyBound
		if cur.DestID == 0 {
			// ip_vs_try_bind_dest, with the entry's own fields.
			cc := *cur
			cc.Flags = conntable.Flags(nf)
			d, bnd := findDest(svcs, &cc)
			p.Binding = bnd
			if d != nil {
				nf = bindFlags(nf, d)
				p.Bind, p.Dest, p.Conn.DestID = true, d, d.ID
			}
		}
		p.Conn.Flags = conntable.Flags(nf)
		return p, nil
	}

	if p.Action != Replace {
		p.Action = Insert
	}
	p.Conn.Flags = conntable.Flags(flags)
	d, bnd := findDest(svcs, &p.Conn)
	p.Binding = bnd
	if d != nil {
		flags = bindFlags(flags, d)
		p.Dest, p.Conn.DestID = d, d.ID
	}
	if flags&FlagOnePacket != 0 {
		return Plan{}, ErrOnePacket
	}
	p.Conn.Flags = conntable.Flags(flags)
	return p, nil
}

// timeout is the timeout ip_vs_proc_conn gives a synced entry. Seconds
// above what a Duration holds cannot come from 32 bits (136 years fit);
// the table caps long timeouts itself.
func (b *Backup) timeout(e *Entry, tpl bool) time.Duration {
	if e.Timeout != 0 {
		return time.Duration(e.Timeout) * time.Second
	}
	if tpl {
		return templateTimeout
	}
	switch e.Proto {
	case proto.TCP, proto.UDP, proto.SCTP:
		to := b.Timeouts
		if to == nil {
			d := proto.DefaultTimeouts()
			to = &d
		}
		return to.For(e.Proto, proto.State(e.State))
	}
	// AH and ESP have no timeout table.
	return templateTimeout
}

// connFlags are the flags a connection takes from its real server
// (dest->conn_flags, set by __ip_vs_update_dest): the forwarding method,
// INACTIVE, and NOOUTPUT unless it is NAT. GoLVS's real servers have no
// ONE_PACKET (a service flag) nor NFCT bits.
func connFlags(d *service.Dest) uint32 {
	fwd := d.Fwd()
	f := uint32(fwd) | FlagInactive
	if fwd != service.Masq {
		f |= FlagNoOutput
	}
	return f
}

// bindFlags is the flag part of ip_vs_bind_dest for a synced entry (SYNC
// is set): the entry inherits the real server's forwarding method and
// NOOUTPUT, and keeps its own INACTIVE unless it is a template.
func bindFlags(flags uint32, d *service.Dest) uint32 {
	cf := connFlags(d)
	if flags&FlagSync != 0 {
		if flags&FlagTemplate == 0 {
			cf &^= FlagInactive
		}
		flags &^= FlagFwdMask | FlagNoOutput
	}
	return flags | cf
}

// findDest is ip_vs_find_dest for c (a synced entry or an existing one):
// the service by <fwmark, proto, vaddr, vport>, then the real server
// <daddr, port> where port is dport, or 0 for a fwmark service not using
// NAT (whose real servers have port 0); the other of the two ports is
// tried next (port ^ dport: 0 after dport, dport after 0).
func findDest(svcs Services, c *conntable.Conn) (*service.Dest, Binding) {
	if svcs == nil {
		return nil, NoService
	}
	svc := svcs.Lookup(c.Proto, c.VAddr, c.VPort, c.FWMark)
	if svc == nil {
		return nil, NoService
	}
	port := c.DPort
	if c.FWMark != 0 && uint32(c.Flags)&FlagFwdMask != uint32(service.Masq) {
		port = 0
	}
	if d := lookupDest(svc, c.DAddr, port); d != nil {
		return d, Bound
	}
	if d := lookupDest(svc, c.DAddr, port^c.DPort); d != nil {
		return d, Bound
	}
	return nil, NoDest
}

// lookupDest is ip_vs_lookup_dest: the service's real server <addr, port>.
func lookupDest(svc *service.Service, addr netip.Addr, port uint16) *service.Dest {
	for _, d := range svc.Dests {
		if d.Port == port && d.Addr == addr {
			return d
		}
	}
	return nil
}

// TemplateKey returns the arguments of conntable.LookupTemplate for a
// synced template (ip_vs_ct_in_get with the synced <proto, caddr, vaddr,
// vport>): a fwmark template (protocol 0) carries its mark as the first 4
// bytes of its virtual address, which is the key.
func TemplateKey(e *Entry) (proto uint8, snet, vaddr netip.Addr, vport uint16, fwmark uint32) {
	if e.Proto == 0 && e.VAddr.IsValid() {
		var a [4]byte
		if e.VAddr.Is4() {
			a = e.VAddr.As4()
		} else {
			a16 := e.VAddr.As16()
			a = [4]byte(a16[:4])
		}
		fwmark = binary.BigEndian.Uint32(a[:])
	}
	return e.Proto, e.CAddr, e.VAddr, e.VPort, fwmark
}
