package engine

import (
	"golvs/internal/conntable"
	"golvs/internal/proto"
)

// Out decides on a packet from a real server (or the VIP) to a client
// (ip_vs_out): for a NAT connection the packet path puts VAddr:VPort back
// as its source; a reply of another method that happens to cross the
// director is forwarded unchanged, and counted. A packet of no connection
// is not IPVS traffic.
func (w *Worker) Out(p *Packet) Decision {
	e := w.e
	var c conntable.Conn
	ref, ok := e.conns.LookupOutConn(p.Proto, p.Src, p.SrcPort, p.Dst, p.DstPort, w.now, &c)
	if !ok {
		return Decision{Verdict: Pass}
	}
	dest := e.reg.Lookup(c.DestID)
	if dest != nil && dest.Available() {
		dest.Stats.AddOut(w.id, p.Len)
		if s := dest.SvcStats(); s != nil {
			s.AddOut(w.id, p.Len)
		}
		e.total.AddOut(w.id, p.Len)
	}
	if !p.Fragment {
		w.step(ref, &c, dest, proto.Output, p.TCPFlags)
	} else {
		e.conns.Touch(ref, w.now)
	}
	return related(ref, &c, dest)
}
