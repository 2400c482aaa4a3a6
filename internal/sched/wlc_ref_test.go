package sched

import "golvs/internal/service"

// wlcRef is ip_vs_wlc_schedule (net/netfilter/ipvs/ip_vs_wlc.c) transcribed
// over the slice; i plays the list cursor that list_for_each_entry_continue
// resumes from.
type wlcRef struct{ loadRefHooks }

func (wlcRef) Name() string { return "wlc" }

func (wlcRef) Schedule(dests []*service.Dest, _ *service.Packet) *service.Dest {
	var dest, least *service.Dest
	var loh, doh int32
	var i int

	for i = 0; i < len(dests); i++ {
		dest = dests[i]
		if !dest.Overloaded() &&
			dest.Weight() > 0 {
			least = dest
			loh = loadRefConnOverhead(least)
			goto nextstage
		}
	}
	return nil

nextstage:
	for i++; i < len(dests); i++ {
		dest = dests[i]
		if dest.Overloaded() {
			continue
		}
		doh = loadRefConnOverhead(dest)
		if int64(loh)*int64(dest.Weight()) >
			int64(doh)*int64(least.Weight()) {
			least = dest
			loh = doh
		}
	}
	return least
}
