package api

import (
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/ipvsadm"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// connFilter selects the connections of GET /v1/state (query parameters
// proto, caddr, cport, vaddr, vport, daddr, dport, templates); zero fields
// match everything.
type connFilter struct {
	proto               uint8
	anyProto            bool
	caddr, vaddr, daddr netip.Addr
	cport, vport, dport int // -1: any
	noTemplates         bool
}

func (f *connFilter) match(c *conntable.Conn) bool {
	switch {
	case !f.anyProto && c.Proto != f.proto,
		f.caddr.IsValid() && c.CAddr != f.caddr,
		f.vaddr.IsValid() && c.VAddr != f.vaddr,
		f.daddr.IsValid() && c.DAddr != f.daddr,
		f.cport >= 0 && int(c.CPort) != f.cport,
		f.vport >= 0 && int(c.VPort) != f.vport,
		f.dport >= 0 && int(c.DPort) != f.dport,
		f.noTemplates && c.Flags&conntable.FlagTemplate != 0:
		return false
	}
	return true
}

// parseBool reads a boolean query parameter ("", "0", "false" are false;
// "1", "true" true).
func parseBool(name, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("query %s=%q: want true or false", name, v)
	}
	return b, nil
}

// parseConnQuery reads the query of GET /v1/state.
func parseConnQuery(r *http.Request) (conns bool, f connFilter, err error) {
	q := r.URL.Query()
	f = connFilter{anyProto: true, cport: -1, vport: -1, dport: -1}
	if conns, err = parseBool("conns", q.Get("conns")); err != nil {
		return
	}
	var tmpl bool
	if v := q.Get("templates"); v != "" {
		if tmpl, err = parseBool("templates", v); err != nil {
			return
		}
		f.noTemplates = !tmpl
	}
	if v := q.Get("proto"); v != "" {
		f.anyProto = false
		switch v {
		case "tcp":
			f.proto = service.ProtoTCP
		case "udp":
			f.proto = service.ProtoUDP
		case "sctp":
			f.proto = service.ProtoSCTP
		default:
			n, perr := strconv.ParseUint(v, 10, 8)
			if perr != nil {
				err = badRequest("query proto=%q: want tcp, udp, sctp or a protocol number", v)
				return
			}
			f.proto = uint8(n)
		}
	}
	for _, a := range []struct {
		name string
		dst  *netip.Addr
	}{{"caddr", &f.caddr}, {"vaddr", &f.vaddr}, {"daddr", &f.daddr}} {
		if v := q.Get(a.name); v != "" {
			addr, perr := netip.ParseAddr(v)
			if perr != nil {
				err = badRequest("query %s=%q: not an IP address", a.name, v)
				return
			}
			*a.dst = addr.Unmap()
		}
	}
	for _, p := range []struct {
		name string
		dst  *int
	}{{"cport", &f.cport}, {"vport", &f.vport}, {"dport", &f.dport}} {
		if v := q.Get(p.name); v != "" {
			n, perr := strconv.ParseUint(v, 10, 16)
			if perr != nil {
				err = badRequest("query %s=%q: want a port number", p.name, v)
				return
			}
			*p.dst = int(n)
		}
	}
	if !conns && (!f.anyProto || f.caddr.IsValid() || f.vaddr.IsValid() || f.daddr.IsValid() ||
		f.cport >= 0 || f.vport >= 0 || f.dport >= 0 || f.noTemplates) {
		err = badRequest("connection filters without conns=true")
	}
	return
}

func (s *Server) getState(w http.ResponseWriter, r *http.Request) {
	conns, f, err := parseConnQuery(r)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.state(conns, &f))
}

// state returns what a listing shows: the services with their real
// servers, counters and rates in kernel order (see kernelOrder), the timeouts, the sync
// daemons and, with conns, the connections that f selects (nil: all).
func (s *Server) state(conns bool, f *connFilter) *ipvsadm.State {
	snap := s.ctl.Snapshot()
	st := &ipvsadm.State{
		Version:     ipvsadm.KernelVersion,
		ConnTabSize: ipvsadm.DefaultConnTabSize,
		Services:    make([]ipvsadm.ServiceEntry, 0, snap.Len()),
		Timeouts:    s.timeouts(),
		Daemons:     s.daemonList(),
	}
	for _, svc := range kernelOrder(snap.Services()) {
		st.Services = append(st.Services, s.serviceEntry(svc))
	}
	if conns {
		st.Conns = s.conns(f)
	}
	return st
}

// service returns the entry of the service k, found as the kernel finds
// it (fwmark services by family and mark).
func (s *Server) service(k service.Key) (ipvsadm.ServiceEntry, bool) {
	for _, svc := range s.ctl.Snapshot().Services() {
		if svc.Key.IsFWMark() != k.IsFWMark() {
			continue
		}
		if k.IsFWMark() && (svc.Key.FWMark != k.FWMark || svc.Key.Family != k.Family) {
			continue
		}
		if !k.IsFWMark() && svc.Key != k {
			continue
		}
		return s.serviceEntry(svc), true
	}
	return ipvsadm.ServiceEntry{}, false
}

func (s *Server) serviceEntry(svc *service.Service) ipvsadm.ServiceEntry {
	e := ipvsadm.ServiceEntry{
		Key:    svc.Key,
		Config: svc.Config,
		Stats:  svc.Stats.Read(),
		Rates:  s.ctl.Rates(svc.Stats),
	}
	if len(svc.Dests) > 0 {
		e.Dests = make([]ipvsadm.DestEntry, len(svc.Dests))
	}
	for i, d := range svc.Dests {
		e.Dests[i] = ipvsadm.DestEntry{
			Addr:         d.Addr,
			Port:         d.Port,
			Config:       d.Config(),
			ActiveConns:  nonNegative(d.ActiveConns()),
			InactConns:   nonNegative(d.InactConns()),
			PersistConns: nonNegative(d.PersistConns()),
			Stats:        d.Stats.Read(),
			Rates:        s.ctl.Rates(d.Stats),
		}
	}
	return e
}

// nonNegative converts a connection count; counts never go below zero,
// but a listing must not show 4294967295 if one transiently did.
func nonNegative(n int32) uint32 {
	if n < 0 {
		return 0
	}
	return uint32(n)
}

// conns lists the connection table as /proc/net/ip_vs_conn does.
func (s *Server) conns(f *connFilter) []ipvsadm.ConnEntry {
	now := s.clock.Nanotime()
	var out []ipvsadm.ConnEntry
	s.eng.Conns().Walk(func(c conntable.Conn) bool {
		if f != nil && !f.match(&c) {
			return true
		}
		out = append(out, connEntry(&c, now))
		return true
	})
	return out
}

// connEntry converts a connection at time now: the timer in whole
// seconds left, truncated as the kernel's (expires - jiffies) / HZ.
func connEntry(c *conntable.Conn, now int64) ipvsadm.ConnEntry {
	tmpl := c.Flags&conntable.FlagTemplate != 0
	left := c.Expires - now
	if left < 0 {
		left = 0
	}
	e := ipvsadm.ConnEntry{
		Proto:    c.Proto,
		Expires:  uint32(time.Duration(left) / time.Second),
		State:    proto.StateName(c.Proto, proto.State(c.State), tmpl),
		CAddr:    c.CAddr,
		CPort:    c.CPort,
		VAddr:    c.VAddr,
		VPort:    c.VPort,
		DAddr:    c.DAddr,
		DPort:    c.DPort,
		Template: tmpl,
		FWMark:   c.FWMark,
	}
	if tmpl && c.Proto == 0 {
		// A fwmark template: the table keeps the mark as the virtual
		// address; ConnEntry wants it as FWMark.
		e.VAddr = netip.Addr{}
	}
	return e
}
