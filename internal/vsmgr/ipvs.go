package vsmgr

import (
	"errors"
	"fmt"
	"net/netip"

	"golvs/internal/control"
	"golvs/internal/service"
)

// sameKey compares service keys as the kernel's tables do (and as
// control does): fwmark services by family and mark.
func sameKey(a, b service.Key) bool {
	if a.IsFWMark() || b.IsFWMark() {
		return a.FWMark == b.FWMark && a.Family == b.Family
	}
	return a == b
}

// normKey is the kernel's view of a key: a fwmark key has no protocol,
// address or port.
func normKey(k service.Key) service.Key {
	if k.IsFWMark() {
		return service.Key{Family: k.Family, FWMark: k.FWMark}
	}
	return k
}

// destPort is the port IPVS gets for a real server: its own for NAT;
// otherwise the virtual port of an address service and 0 for a fwmark
// service (ipvs_cmd, ipvs_group_cmd: DR and TUN cannot change the port).
func destPort(k service.Key, port uint16, fwd service.FwdMethod) uint16 {
	switch {
	case fwd == service.Masq:
		return port
	case k.IsFWMark():
		return 0
	}
	return k.Port
}

// want is one destination the manager wants in every service of a
// virtual server.
type want struct {
	key destKey
	dc  service.DestConfig
}

// desiredDests is what IPVS must hold for vs, in configuration order (the
// sorry server last), as a function of the health state. It is the
// closure of keepalived's command sequences:
//
//   - A real server is in with its effective weight while it is alive
//     and the sorry server is not serving (perform_svr_state changes IPVS
//     only "if we have quorum or no sorry server"; perform_quorum_state
//     swaps the alive servers with the sorry server).
//   - Otherwise it is out, or in with weight 0 under inhibit_on_failure
//     (ipvs_cmd turns the delete into an edit to weight 0; init_service_rs
//     adds inhibited servers even when down).
//   - The sorry server is in with its weight while it serves, else out,
//     or in with weight 0 under sorry_server_inhibit.
//   - A sorry server with the address of a real server is one destination:
//     the role that serves gives its configuration.
//
// keepalived 2.2.7 departs from this closure in three corners, where its
// later releases or its own comments agree with it: a new real server
// added by a reload while the sorry server serves is added beside it
// (init_service_rs does not look at the quorum); the alive servers are not
// reinstated when a reload removes a serving sorry server (fixed later by
// reinstate_alive_rs); a sorry server that loses sorry_server_inhibit at a
// reload keeps its weight-0 destination (fixed later in clear_diff_s_srv).
func (vs *vsState) desiredDests() []want {
	out := make([]want, 0, len(vs.reals)+1)
	serving := vs.sorryActive()
	rsIdx := make(map[destKey]int, len(vs.reals))
	for _, r := range vs.reals {
		dc := r.cfg.Dest
		switch {
		case r.alive && (vs.quorumUp || !serving):
			dc.Weight = realWeight(r.effective())
		case r.cfg.InhibitOnFailure:
			dc.Weight = 0
		default:
			continue
		}
		rsIdx[r.key()] = len(out)
		out = append(out, want{r.key(), dc})
	}
	if s := vs.sorry; s != nil {
		dc := s.cfg.Dest
		switch {
		case s.alive:
			dc.Weight = realWeight(int64(dc.Weight))
		case vs.cfg.SorryInhibit:
			dc.Weight = 0
		default:
			return out
		}
		if i, dup := rsIdx[s.key()]; dup {
			// The real server role wins unless the sorry server
			// serves; an inhibited real server (weight 0) and an
			// inhibited sorry server are the same weight-0 entry.
			if s.alive {
				out[i].dc = dc
			}
			return out
		}
		out = append(out, want{s.key(), dc})
	}
	return out
}

// reconcile makes the services of vs hold desiredDests: removals first,
// then edits and additions in configuration order (so that, as after
// keepalived's sequence, the kernel's head-inserted list ends in reverse
// configuration order). fresh keys are services just created, which get
// every wanted destination; the others are diffed against prog.
func (ev *event) reconcile(vs *vsState, fresh map[service.Key]bool) {
	wants := vs.desiredDests()
	wanted := make(map[destKey]bool, len(wants))
	for _, w := range wants {
		wanted[w.key] = true
	}
	for _, dk := range vs.progOrder {
		if wanted[dk] {
			continue
		}
		dc := vs.prog[dk]
		for _, k := range vs.keys {
			if !fresh[k] {
				ev.delDest(vs, k, dk, dc.Fwd)
			}
		}
		delete(vs.prog, dk)
	}
	order := make([]destKey, 0, len(wants))
	for _, w := range wants {
		old, had := vs.prog[w.key]
		for _, k := range vs.keys {
			switch {
			case fresh[k] || !had:
				ev.addDest(vs, k, w.key, w.dc)
			case old == w.dc:
			case destPort(k, w.key.port, old.Fwd) != destPort(k, w.key.port, w.dc.Fwd):
				// A change to or from NAT moves the destination of
				// a fwmark service between port 0 and its own.
				ev.delDest(vs, k, w.key, old.Fwd)
				ev.addDest(vs, k, w.key, w.dc)
			default:
				ev.editDest(vs, k, w.key, w.dc)
			}
		}
		vs.prog[w.key] = w.dc
		order = append(order, w.key)
	}
	vs.progOrder = order
}

// opError records a failed control operation.
func (ev *event) opError(vs *vsState, op string, k service.Key, dest string, err error) {
	ev.log.Warn("IPVS operation failed", "vs", vs.cfg.Name, "op", op, "service", k.String(), "dest", dest, "err", err)
	if dest != "" {
		err = fmt.Errorf("%s %v -> %s: %w", op, k, dest, err)
	} else {
		err = fmt.Errorf("%s %v: %w", op, k, err)
	}
	ev.errs = append(ev.errs, err)
}

// addService creates a service. One that exists already (added with
// ipvsadm before the manager started, or left by a previous run) is
// adopted: keepalived's ipvs_talk takes "exists" as success and from then
// on treats the service as its own; the manager also edits it to the
// configured scheduler and flags, so that the configuration file is what
// IPVS runs (keepalived leaves the old ones until a reload edits them).
// It reports whether the manager owns the service.
func (ev *event) addService(vs *vsState, k service.Key, cfg service.Config) bool {
	err := ev.ctl.AddService(k, cfg)
	if errors.Is(err, control.ErrServiceExists) {
		ev.log.Warn("adopting existing service", "vs", vs.cfg.Name, "service", k.String(),
			"reason", "a service with this key exists already (ipvsadm or a previous run)")
		err = ev.ctl.EditService(k, cfg)
	}
	if err != nil {
		ev.opError(vs, "add service", k, "", err)
		return false
	}
	return true
}

// editService edits a service's scheduler and flags. A service deleted
// since (with ipvsadm) is created again: it then needs all its
// destinations, which recreated reports.
func (ev *event) editService(vs *vsState, k service.Key, cfg service.Config) (owned, recreated bool) {
	err := ev.ctl.EditService(k, cfg)
	if errors.Is(err, control.ErrNoService) {
		ev.log.Warn("re-creating service deleted behind the manager's back", "vs", vs.cfg.Name, "service", k.String(),
			"reason", "its virtual server changed at a reload")
		return ev.addService(vs, k, cfg), true
	}
	if err != nil {
		ev.opError(vs, "edit service", k, "", err)
	}
	return true, false
}

// delService deletes a service; one already gone is not an error
// (ipvs_talk ignores ENOENT on a delete; control says ErrNoService).
func (ev *event) delService(vs *vsState, k service.Key) {
	if err := ev.ctl.DeleteService(k); err != nil && !errors.Is(err, control.ErrNoService) {
		ev.opError(vs, "delete service", k, "", err)
	}
}

func destString(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

// addDest adds a destination; one that exists is edited to the wanted
// configuration (keepalived takes "exists" as success and leaves the old
// configuration; the manager makes IPVS match the file).
func (ev *event) addDest(vs *vsState, k service.Key, dk destKey, dc service.DestConfig) {
	port := destPort(k, dk.port, dc.Fwd)
	err := ev.ctl.AddDest(k, dk.addr, port, dc)
	if errors.Is(err, control.ErrDestExists) {
		err = ev.ctl.EditDest(k, dk.addr, port, dc)
	}
	if err != nil {
		ev.opError(vs, "add dest", k, destString(dk.addr, port), err)
	}
}

// editDest edits a destination; one deleted since is added again
// (ipvs_talk: an EDITDEST failing with ENOENT becomes an ADDDEST).
func (ev *event) editDest(vs *vsState, k service.Key, dk destKey, dc service.DestConfig) {
	port := destPort(k, dk.port, dc.Fwd)
	err := ev.ctl.EditDest(k, dk.addr, port, dc)
	if errors.Is(err, control.ErrNoDest) {
		err = ev.ctl.AddDest(k, dk.addr, port, dc)
	}
	if err != nil {
		ev.opError(vs, "edit dest", k, destString(dk.addr, port), err)
	}
}

// delDest deletes a destination (into the kernel's trash, where its
// connections keep it until they end: §3.8); one already gone is not an
// error.
func (ev *event) delDest(vs *vsState, k service.Key, dk destKey, fwd service.FwdMethod) {
	port := destPort(k, dk.port, fwd)
	if err := ev.ctl.DeleteDest(k, dk.addr, port); err != nil && !errors.Is(err, control.ErrNoDest) {
		ev.opError(vs, "delete dest", k, destString(dk.addr, port), err)
	}
}
