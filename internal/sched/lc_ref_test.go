package sched

import "golvs/internal/service"

// This file holds the slow reference of lc, a direct transcription of
// ip_vs_lc_schedule (net/netfilter/ipvs/ip_vs_lc.c) over the slice, and the
// helpers the references of lc, wlc, sed and nq share.

// loadRefHooks are the hooks of the list-scanning references: the kernel's
// lc, wlc, sed and nq have no per-service state, so there is nothing to do.
type loadRefHooks struct{}

func (loadRefHooks) Init([]*service.Dest) error             { return nil }
func (loadRefHooks) AddDest([]*service.Dest, *service.Dest) {}
func (loadRefHooks) DelDest([]*service.Dest, *service.Dest) {}
func (loadRefHooks) UpdDest([]*service.Dest, *service.Dest) {}

// loadRefConnOverhead is ip_vs_dest_conn_overhead (include/net/ip_vs.h):
// (atomic_read(&dest->activeconns) << 8) + atomic_read(&dest->inactconns),
// in int.
func loadRefConnOverhead(dest *service.Dest) int32 {
	return (dest.ActiveConns() << 8) + dest.InactConns()
}

type lcRef struct{ loadRefHooks }

func (lcRef) Name() string { return "lc" }

func (lcRef) Schedule(dests []*service.Dest, _ *service.Packet) *service.Dest {
	var least *service.Dest
	var loh, doh uint32 // unsigned int loh = 0, doh;

	for _, dest := range dests { // list_for_each_entry_rcu
		if dest.Overloaded() ||
			dest.Weight() == 0 {
			continue
		}
		doh = uint32(loadRefConnOverhead(dest))
		if least == nil || doh < loh {
			least = dest
			loh = doh
		}
	}
	return least
}
