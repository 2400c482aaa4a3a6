package sched

import "golvs/internal/service"

// foRef is ip_vs_fo.c transcribed (torvalds/linux
// net/netfilter/ipvs/ip_vs_fo.c @23004ec33092, ip_vs_fo_schedule).
type foRef struct{ svc kSvc }

func (f *foRef) Name() string { return "fo" }

func (f *foRef) Init(dests []*service.Dest) error { f.svc.init(dests); return nil }

func (f *foRef) AddDest(dests []*service.Dest, d *service.Dest) {
	f.svc.listAdd(d)
	f.svc.check(dests)
}

func (f *foRef) DelDest(dests []*service.Dest, d *service.Dest) {
	f.svc.listDel(d)
	f.svc.check(dests)
}

func (f *foRef) UpdDest(dests []*service.Dest, _ *service.Dest) { f.svc.check(dests) }

// Schedule is ip_vs_fo_schedule.
func (f *foRef) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	var hweight *service.Dest
	var hw int32 // Track highest weight
	for pos := f.svc.destinations.next; pos != &f.svc.destinations; pos = pos.next {
		dest := pos.dest
		if !dest.Overloaded() && dest.Weight() > hw {
			hweight = dest
			hw = dest.Weight()
		}
	}
	return hweight // nil: "no destination available"
}
