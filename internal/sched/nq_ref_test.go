package sched

import "golvs/internal/service"

// nqRef is ip_vs_nq_schedule (net/netfilter/ipvs/ip_vs_nq.c) transcribed
// over the slice.
type nqRef struct{ loadRefHooks }

func (nqRef) Name() string { return "nq" }

// nqRefDestOverhead is ip_vs_nq_dest_overhead: activeconns + 1.
func nqRefDestOverhead(dest *service.Dest) int32 { return dest.ActiveConns() + 1 }

func (nqRef) Schedule(dests []*service.Dest, _ *service.Packet) *service.Dest {
	var least *service.Dest
	var loh, doh int32

	for _, dest := range dests {

		if dest.Overloaded() ||
			dest.Weight() == 0 {
			continue
		}

		doh = nqRefDestOverhead(dest)

		// return the server directly if it is idle
		if dest.ActiveConns() == 0 {
			least = dest
			loh = doh
			goto out
		}

		if least == nil ||
			(int64(loh)*int64(dest.Weight()) >
				int64(doh)*int64(least.Weight())) {
			least = dest
			loh = doh
		}
	}

	if least == nil {
		return nil
	}

out:
	_ = loh // the kernel prints it in a debug message
	return least
}
