package engine

import (
	"golvs/internal/conntable"
	"golvs/internal/service"
)

// InRelated decides on an ICMP error travelling towards a real server
// about a packet of one of its connections (ip_vs_in_icmp): inner is the
// quoted packet's tuple turned around, so that it reads as a client
// packet (Src = client, Dst = VIP). The connection is looked up, its
// packet counted in, and its timer left alone, as the kernel does; a NAT
// connection tells the packet path how to rewrite the error.
func (w *Worker) InRelated(inner *Packet, outerLen int) Decision {
	e := w.e
	var c conntable.Conn
	ref, ok := e.conns.LookupInConn(inner.Proto, inner.Src, inner.SrcPort, inner.Dst, inner.DstPort, w.now, &c)
	if !ok {
		return Decision{Verdict: Pass}
	}
	dest := e.reg.Lookup(c.DestID)
	if dest != nil && dest.Available() {
		dest.Stats.AddIn(w.id, outerLen)
		if s := dest.SvcStats(); s != nil {
			s.AddIn(w.id, outerLen)
		}
		e.total.AddIn(w.id, outerLen)
	}
	return related(ref, &c, dest)
}

// OutRelated decides on an ICMP error from a real server to a client
// about the client's packet (ip_vs_out_icmp): inner is the quoted packet
// turned around, so that it reads as a reply (Src = real server, Dst =
// client).
func (w *Worker) OutRelated(inner *Packet, outerLen int) Decision {
	e := w.e
	var c conntable.Conn
	ref, ok := e.conns.LookupOutConn(inner.Proto, inner.Src, inner.SrcPort, inner.Dst, inner.DstPort, w.now, &c)
	if !ok {
		return Decision{Verdict: Pass}
	}
	dest := e.reg.Lookup(c.DestID)
	if dest != nil && dest.Available() {
		dest.Stats.AddOut(w.id, outerLen)
		if s := dest.SvcStats(); s != nil {
			s.AddOut(w.id, outerLen)
		}
		e.total.AddOut(w.id, outerLen)
	}
	return related(ref, &c, dest)
}

// related is the decision to forward a packet of connection c.
func related(ref conntable.Ref, c *conntable.Conn, dest *service.Dest) Decision {
	return Decision{
		Verdict: Forward,
		Fwd:     service.FwdMethod(c.Flags & conntable.FlagFwdMask),
		Dest:    dest,
		DAddr:   c.DAddr,
		DPort:   c.DPort,
		VAddr:   c.VAddr,
		VPort:   c.VPort,
		Conn:    ref,
	}
}
