package sched

import "golvs/internal/service"

// sedRef is ip_vs_sed_schedule (net/netfilter/ipvs/ip_vs_sed.c) transcribed
// over the slice.
type sedRef struct{ loadRefHooks }

func (sedRef) Name() string { return "sed" }

// sedRefDestOverhead is ip_vs_sed_dest_overhead: activeconns + 1.
func sedRefDestOverhead(dest *service.Dest) int32 { return dest.ActiveConns() + 1 }

func (sedRef) Schedule(dests []*service.Dest, _ *service.Packet) *service.Dest {
	var dest, least *service.Dest
	var loh, doh int32
	var i int

	for i = 0; i < len(dests); i++ {
		dest = dests[i]
		if !dest.Overloaded() &&
			dest.Weight() > 0 {
			least = dest
			loh = sedRefDestOverhead(least)
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
		doh = sedRefDestOverhead(dest)
		if int64(loh)*int64(dest.Weight()) >
			int64(doh)*int64(least.Weight()) {
			least = dest
			loh = doh
		}
	}
	return least
}
