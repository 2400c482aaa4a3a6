package sched

import "golvs/internal/service"

// ovfRef is ip_vs_ovf.c transcribed (Kingxukai/linux
// net/netfilter/ipvs/ip_vs_ovf.c @0291023e7330).
type ovfRef struct{ svc kSvc }

func (v *ovfRef) Name() string { return "ovf" }

func (v *ovfRef) Init(dests []*service.Dest) error { v.svc.init(dests); return nil }

func (v *ovfRef) AddDest(dests []*service.Dest, d *service.Dest) {
	v.svc.listAdd(d)
	v.svc.check(dests)
}

func (v *ovfRef) DelDest(dests []*service.Dest, d *service.Dest) {
	v.svc.listDel(d)
	v.svc.check(dests)
}

func (v *ovfRef) UpdDest(dests []*service.Dest, _ *service.Dest) { v.svc.check(dests) }

// Schedule is ip_vs_ovf_schedule.
func (v *ovfRef) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	var h *service.Dest
	var hw, w int32
	for pos := v.svc.destinations.next; pos != &v.svc.destinations; pos = pos.next {
		dest := pos.dest
		w = dest.Weight()
		if dest.Overloaded() || dest.ActiveConns() > w || w == 0 {
			continue
		}
		if h == nil || w > hw {
			h = dest
			hw = w
		}
	}
	return h // nil: "no destination available"
}
