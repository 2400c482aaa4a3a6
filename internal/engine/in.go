package engine

import (
	"net/netip"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// ftpPort and ftpDataPort are the FTP control and active-data ports, which
// ip_vs_schedule and ip_vs_leave treat specially.
const (
	ftpPort     = 21
	ftpDataPort = 20
)

// templateInvalidPort is the port a neutralised template is rehashed with
// (ip_vs_check_template), so that no lookup finds it again.
const templateInvalidPort = 0xffff

// In decides on a packet in the client-to-service direction (ip_vs_in).
func (w *Worker) In(p *Packet) Decision {
	e := w.e
	t := e.conns
	var c conntable.Conn
	ref, ok := t.LookupInConn(p.Proto, p.Src, p.SrcPort, p.Dst, p.DstPort, w.now, &c)

	// A new connection attempt that reuses the ports of an old one.
	if ok && w.set.ConnReuseMode != 0 && !p.Fragment && isNewConn(p) {
		dest := e.reg.Lookup(c.DestID)
		resched := (w.set.ExpireNodestConn && dest != nil && dest.Weight() == 0) ||
			isNewConnExpected(&c, w.set.ConnReuseMode)
		if resched {
			// The kernel keeps a connection that still controls
			// others (an FTP control connection); GoLVS has no
			// application helpers, so a normal connection never
			// controls any, but keep the rule.
			if c.NControl == 0 {
				t.ExpireNow(ref)
			}
			ok = false
		}
	}

	// The real server of the connection was deleted.
	if ok {
		if dest := e.reg.Lookup(c.DestID); dest != nil && !dest.Available() {
			if !w.set.ExpireNodestConn {
				return w.drop(DropDestUnavailable)
			}
			t.ExpireNow(ref)
			ok = false
		}
	}

	if !ok {
		return w.schedule(p)
	}
	return w.inConn(p, ref, &c)
}

// isNewConn reports a packet that opens a connection (is_new_conn): a TCP
// SYN, an SCTP INIT.
func isNewConn(p *Packet) bool {
	switch p.Proto {
	case service.ProtoTCP:
		return p.TCPFlags&proto.FlagSYN != 0
	case service.ProtoSCTP:
		return p.TCPFlags == proto.ChunkInit
	}
	return false
}

// isNewConnExpected reports whether an old connection may be replaced by a
// new one with the same ports (is_new_conn_expected).
func isNewConnExpected(c *conntable.Conn, mode uint8) bool {
	if c.Control != 0 {
		return false
	}
	switch c.Proto {
	case service.ProtoTCP:
		s := proto.State(c.State)
		return s == proto.TCPTimeWait || s == proto.TCPClose ||
			(mode&2 != 0 && s == proto.TCPFinWait && c.Flags&conntable.FlagNoOutput != 0)
	case service.ProtoSCTP:
		return proto.State(c.State) == proto.SCTPClosed
	}
	return false
}

// schedule handles a packet without a connection (the protocols'
// conn_schedule and ip_vs_schedule).
func (w *Worker) schedule(p *Packet) Decision {
	switch p.Proto {
	case service.ProtoTCP:
		// No !ACK check, as the kernel (SYN+ACK may schedule for
		// active FTP); RST never creates a connection.
		if (p.TCPFlags&proto.FlagSYN == 0 && !w.set.SloppyTCP) || p.TCPFlags&proto.FlagRST != 0 {
			return Decision{Verdict: Pass}
		}
	case service.ProtoSCTP:
		if (p.TCPFlags != proto.ChunkInit && !w.set.SloppySCTP) || p.TCPFlags == proto.ChunkAbort {
			return Decision{Verdict: Pass}
		}
	case service.ProtoUDP:
	default:
		return Decision{Verdict: Pass}
	}
	if p.Fragment {
		return Decision{Verdict: Pass}
	}
	svc := w.e.ctl.Snapshot().Lookup(p.Proto, p.Dst, p.DstPort, p.Mark)
	if svc == nil {
		return Decision{Verdict: Pass}
	}
	// Never schedule active FTP data connections from a real server.
	if p.SrcPort == ftpDataPort {
		return Decision{Verdict: Pass}
	}
	var d Decision
	var ignored int
	if svc.Config.Persistent() {
		d, ignored = w.schedPersist(svc, p)
	} else {
		d, ignored = w.schedNormal(svc, p)
	}
	switch {
	case d.Verdict == Forward:
		return d
	case ignored < 0:
		return w.drop(DropTableFull)
	}
	return w.leave(svc, p)
}

// leave answers a packet for which no real server was found (ip_vs_leave).
// The kernel sends ICMP port unreachable even for TCP; a TCP client sees it
// as "connection refused", as it would a RST (the oracle saw
// ConnectionRefused).
func (w *Worker) leave(svc *service.Service, p *Packet) Decision {
	// Other ports of an FTP VIP are left to the local stack.
	if svc.Key.Port == ftpPort && p.DstPort != ftpPort {
		return Decision{Verdict: Pass}
	}
	return Decision{Verdict: Reject}
}

func (w *Worker) pick(svc *service.Service, p *Packet) *service.Dest {
	if svc.Sched == nil {
		return nil
	}
	sp := &w.sp
	*sp = service.Packet{Src: p.Src, Dst: p.Dst, SrcPort: p.SrcPort, DstPort: p.DstPort, Proto: p.Proto, Now: w.now}
	return svc.Sched.Schedule(svc.Dests, sp)
}

// schedNormal schedules a new connection of a non-persistent service. The
// second result is the kernel's "ignored": 0 = no real server (leave), -1 =
// drop, 1 = not ours.
func (w *Worker) schedNormal(svc *service.Service, p *Packet) (Decision, int) {
	if !svc.Key.IsFWMark() && p.DstPort != svc.Key.Port {
		// A port-0 service that is not persistent never schedules
		// ("port zero only supported in persistent services").
		return Decision{}, 0
	}
	dest := w.pick(svc, p)
	if dest == nil {
		return Decision{}, 0
	}
	dport := dest.Port
	if dport == 0 {
		dport = p.DstPort
	}
	return w.newConn(svc, p, dest, dport, 0)
}

// schedPersist schedules a new connection of a persistent service through
// its client's template (ip_vs_sched_persist).
func (w *Worker) schedPersist(svc *service.Service, p *Packet) (Decision, int) {
	e := w.e
	t := e.conns
	cnet := snet(p.Src, svc.Config)

	// The template key: <proto, snet, 0, vaddr, vport> for a port service
	// (vport 0 for FTP so that control and data share it);
	// <IP, snet, 0, fwmark, 0> for a fwmark service;
	// <proto, snet, 0, vaddr, 0> for a port-0 service.
	tproto, vaddr, vport, mark := p.Proto, p.Dst, uint16(0), uint32(0)
	portSvc := p.DstPort == svc.Key.Port
	if portSvc {
		if svc.Key.Port != ftpPort {
			vport = p.DstPort
		}
	} else if svc.Key.IsFWMark() {
		tproto, vaddr, mark = proto.IP, netip.Addr{}, svc.Key.FWMark
	}

	var dest *service.Dest
	ct, ok := t.LookupTemplate(tproto, cnet, vaddr, vport, mark, w.now)
	var tc conntable.Conn
	if ok {
		tc, ok = t.Get(ct)
	}
	if ok {
		dest = e.reg.Lookup(tc.DestID)
		if dest == nil || !dest.Available() || (w.set.ExpireQuiescentTemplate && dest.Weight() == 0) {
			// Invalidate the template (ip_vs_check_template).
			if tc.VPort != templateInvalidPort {
				t.Neutralise(ct)
			}
			ok = false
		}
	}
	if ok {
		// Reusing a template re-arms it with its timeout, which the
		// expire-later quirk may have made 60 s.
		t.Touch(ct, w.now)
	} else {
		dest = w.pick(svc, p)
		if dest == nil {
			return Decision{}, 0
		}
		var tport uint16
		if portSvc && svc.Key.Port != ftpPort {
			tport = dest.Port
		}
		tmpl := conntable.Conn{
			Proto:   tproto,
			Flags:   connFlags(dest, tproto) | conntable.FlagTemplate,
			CAddr:   cnet,
			VAddr:   vaddr,
			VPort:   vport,
			FWMark:  mark,
			DAddr:   dest.Addr,
			DPort:   tport,
			DestID:  dest.ID,
			Timeout: time.Duration(svc.Config.Timeout) * time.Second,
		}
		dest.Bind(true, true)
		var err error
		ct, err = t.Insert(&tmpl, w.now)
		if err != nil {
			dest.Unbind(true, true)
			return Decision{}, -1
		}
	}
	dport := p.DstPort
	if portSvc && dest.Port != 0 {
		dport = dest.Port
	}
	return w.newConn(svc, p, dest, dport, ct)
}

// connFlags are the flags a connection bound to dest starts with
// (dest->conn_flags in the kernel): the forwarding method, INACTIVE, and
// NOOUTPUT unless it is NAT.
func connFlags(dest *service.Dest, proto uint8) conntable.Flags {
	fwd := dest.Fwd()
	f := conntable.Flags(fwd) | conntable.FlagInactive
	if fwd != service.Masq {
		f |= conntable.FlagNoOutput
	}
	return f
}

// newConn creates the connection <proto, client, vip> -> dest:dport, bound
// to the template ct if non-zero, counts it, and runs the packet through it.
func (w *Worker) newConn(svc *service.Service, p *Packet, dest *service.Dest, dport uint16, ct conntable.Ref) (Decision, int) {
	e := w.e
	c := conntable.Conn{
		Proto:   p.Proto,
		Flags:   connFlags(dest, p.Proto),
		CAddr:   p.Src,
		CPort:   p.SrcPort,
		VAddr:   p.Dst,
		VPort:   p.DstPort,
		DAddr:   dest.Addr,
		DPort:   dport,
		FWMark:  p.Mark,
		DestID:  dest.ID,
		Control: ct,
		Timeout: proto.InitialTimeout,
	}
	onePacket := svc.Config.Flags&service.FlagOnePacket != 0 && p.Proto == service.ProtoUDP
	dest.Bind(false, true)
	// ip_vs_conn_stats: the connection counts on its real server, the
	// service and the totals.
	dest.Stats.AddConn(w.id)
	if s := dest.SvcStats(); s != nil {
		s.AddConn(w.id)
	}
	e.total.AddConn(w.id)

	if onePacket {
		// One-packet scheduling: the connection lives for this packet
		// only; it is never hashed (kernel ONE_PACKET).
		w.countIn(dest, p)
		dest.Unbind(false, true)
		if w.ring != nil && ct != 0 {
			w.syncOnePacket(&c)
		}
		return Decision{Verdict: Forward, Fwd: dest.Fwd(), Dest: dest, DAddr: dest.Addr, DPort: dport}, 1
	}
	ref, err := e.conns.Insert(&c, w.now)
	if err != nil {
		dest.Unbind(false, true)
		return Decision{}, -1
	}
	return w.inConn(p, ref, &c), 1
}

// countIn counts a packet client -> server on the real server, its service
// and the totals, if the real server is still in service (ip_vs_in_stats).
func (w *Worker) countIn(dest *service.Dest, p *Packet) {
	if dest == nil || !dest.Available() {
		return
	}
	dest.Stats.AddIn(w.id, p.Len)
	if s := dest.SvcStats(); s != nil {
		s.AddIn(w.id, p.Len)
	}
	w.e.total.AddIn(w.id, p.Len)
}

// inConn runs a client packet through its connection: counters, the state
// machine, the timer; and on a master, the sync decision.
func (w *Worker) inConn(p *Packet, ref conntable.Ref, c *conntable.Conn) Decision {
	dest := w.e.reg.Lookup(c.DestID)
	w.countIn(dest, p)
	switch {
	case !p.Fragment:
		w.step(ref, c, dest, proto.Input, p.TCPFlags)
	case w.ring == nil:
		w.e.conns.Touch(ref, w.now)
	default:
		w.e.conns.Rearm(ref, w.now) // syncIn counts the packet
	}
	if w.ring != nil {
		w.syncIn(ref, c)
	}
	return related(ref, c, dest)
}

// step runs the state machine for one packet and applies its effects: the
// active/inactive accounting, NOOUTPUT, the template's ASSURED state, and
// the new timeout (ip_vs_set_state, then the timer re-arm of
// ip_vs_conn_put).
func (w *Worker) step(ref conntable.Ref, c *conntable.Conn, dest *service.Dest, hook proto.Dir, info uint8) {
	tr := w.to.Step(c.Proto, proto.State(c.State), hook, c.Flags&conntable.FlagNoOutput != 0, info, w.set.SecureTCP)
	flags := c.Flags
	if tr.ClearNoOutput {
		flags &^= conntable.FlagNoOutput
	}
	// The real server's counts move before the entry's INACTIVE flag;
	// if the entry is gone meanwhile (another goroutine expired it, and
	// its OnRemove unbound it by the old flag), SetState fails and the
	// move is undone, so the counts always end equal to the table.
	switch tr.Flip {
	case proto.ToActive:
		flags &^= conntable.FlagInactive
		if dest != nil {
			dest.ToActive()
		}
	case proto.ToInactive:
		flags |= conntable.FlagInactive
		if dest != nil {
			dest.ToInactive()
		}
	}
	timeout := tr.Timeout
	if timeout == 0 {
		timeout = c.Timeout
	}
	// Most packets of an established flow change nothing but the timer,
	// and re-arming it to within the timer's resolution of where it
	// already is changes nothing either: skip the table's lock then. The
	// entry then expires at most one tick (10 ms) earlier than the
	// kernel's would, which is the timer's resolution anyway.
	if uint8(tr.State) != c.State || flags != c.Flags || timeout != c.Timeout ||
		w.now+int64(timeout)-c.Expires >= int64(conntable.Tick) {
		if !w.e.conns.SetState(ref, uint8(tr.State), flags, timeout, w.now) && dest != nil {
			switch tr.Flip {
			case proto.ToActive:
				dest.ToInactive()
			case proto.ToInactive:
				dest.ToActive()
			}
			return
		}
		c.State, c.Flags, c.Timeout = uint8(tr.State), flags, timeout
	}
	if tr.Assure && c.Control != 0 {
		w.e.conns.Assure(c.Control)
	}
}
