package estimator

import "golvs/internal/stats"

// Fixed-point scales of the averages (ip_vs_est.c: "Average bps is scaled by
// 2^5, while average pps and cps are scaled by 2^10").
const (
	// countShift turns a count per 2 s interval into a per-second rate
	// scaled by 2^10: << 10 for the scale, >> 1 for the 2 s interval.
	countShift = 9
	// byteShift turns bytes per 2 s interval into bytes per second scaled
	// by 2^5: << 5 for the scale, >> 1 for the 2 s interval.
	byteShift = 4
	// weightShift is W = 2^-2 of the moving average: each estimate moves
	// the average a quarter of the way towards the last interval's rate,
	// so it reflects about the last 8 s.
	weightShift = 2

	// countRound and countUnscale read a 2^10-scaled average back
	// (ip_vs_read_estimator: (e->cps + 0x1FF) >> 10). 0x1FF is one less
	// than half of 2^10, so an exact x.5 rounds down.
	countRound   = 0x1FF
	countUnscale = 10
	// byteRound and byteUnscale read a 2^5-scaled average back
	// ((e->inbps + 0xF) >> 5); again x.5 rounds down.
	byteRound   = 0xF
	byteUnscale = 5
)

// maxCatchUp bounds the number of EWMA steps UpdateN runs for one call.
// Each step leaves at most 3/4 of the distance between the average and a
// constant rate (rounded towards the rate), so from any 64-bit starting
// point 160 > 64*ln 2/ln(4/3) ≈ 154.2 steps reach the rate's fixed point
// (within 3 units of the scaled average); more steps change nothing.
const maxCatchUp = 160

// Rates are the estimated rates of one stats object, scaled back as
// ipvsadm --rate and /proc/net/ip_vs_stats show them.
type Rates struct {
	CPS    uint64 // connections per second
	InPPS  uint64 // packets per second, client -> real server
	OutPPS uint64 // packets per second, real server -> client
	InBPS  uint64 // bytes (not bits) per second, client -> real server
	OutBPS uint64 // bytes per second, real server -> client
}

// Estimator is the estimator state of one stats object (kernel struct
// ip_vs_estimator): the counters at the last estimate and the five scaled
// moving averages. It is a plain value, not safe for concurrent use; Entry
// adds the locking.
//
// The zero value is an estimator whose counters start at zero, as the
// kernel's zero-allocated one.
type Estimator struct {
	last stats.Values // counters at the last estimate (last_conns, ...)

	// Averages, scaled by 2^10 (cps, pps) and 2^5 (bps). Stored unsigned
	// and updated with signed arithmetic, as the kernel's u64 fields with
	// their s64 casts; Go's wrapping conversions give the same bits.
	cps, inpps, outpps, inbps, outbps uint64
}

// New returns an estimator whose first interval starts at the counter
// values v (normally the counters' Raw values when the object is created).
func New(v stats.Values) Estimator {
	return Estimator{last: v}
}

// Update runs one 2 s estimate with the counters' current raw values v
// (stats.Counters.Raw, not Read: rates are differences, and Raw does not
// jump at a Zero).
func (e *Estimator) Update(v stats.Values) {
	e.step(v.Sub(e.last))
	e.last = v
}

// UpdateN runs n estimates at once for counters v that were last sampled n
// intervals ago, as if the counters had grown evenly over the n intervals:
// each interval gets 1/n of the growth, the last one also the remainder.
// The kernel, when its estimator runs late, instead folds the whole growth
// into one estimate as if it had happened in 2 s, which inflates the rate by
// the lateness; here a stall of the caller does not show up as a burst.
// Only the last maxCatchUp intervals are computed: by then the average has
// reached the even rate, so the result differs from running all n steps by
// at most 3 units of the scaled average. n < 1 does nothing.
func (e *Estimator) UpdateN(v stats.Values, n int64) {
	switch {
	case n < 1:
		return
	case n == 1:
		e.Update(v)
		return
	}
	d := v.Sub(e.last)
	u := uint64(n)
	per := stats.Values{
		Conns:    d.Conns / u,
		InPkts:   d.InPkts / u,
		OutPkts:  d.OutPkts / u,
		InBytes:  d.InBytes / u,
		OutBytes: d.OutBytes / u,
	}
	lastDelta := stats.Values{
		Conns:    d.Conns - per.Conns*(u-1),
		InPkts:   d.InPkts - per.InPkts*(u-1),
		OutPkts:  d.OutPkts - per.OutPkts*(u-1),
		InBytes:  d.InBytes - per.InBytes*(u-1),
		OutBytes: d.OutBytes - per.OutBytes*(u-1),
	}
	steps := min(n, maxCatchUp)
	for i := int64(1); i < steps; i++ {
		e.step(per)
	}
	e.step(lastDelta)
	e.last = v
}

// step folds one interval's counter growth d into the averages.
func (e *Estimator) step(d stats.Values) {
	ewma(&e.cps, d.Conns<<countShift)
	ewma(&e.inpps, d.InPkts<<countShift)
	ewma(&e.outpps, d.OutPkts<<countShift)
	ewma(&e.inbps, d.InBytes<<byteShift)
	ewma(&e.outbps, d.OutBytes<<byteShift)
}

// ewma is the kernel's e->cps += ((s64)rate - (s64)e->cps) >> 2.
func ewma(avg *uint64, rate uint64) {
	*avg += uint64((int64(rate) - int64(*avg)) >> weightShift)
}

// Rates returns the current estimates scaled back to per-second units with
// the kernel's rounding.
func (e *Estimator) Rates() Rates {
	return Rates{
		CPS:    (e.cps + countRound) >> countUnscale,
		InPPS:  (e.inpps + countRound) >> countUnscale,
		OutPPS: (e.outpps + countRound) >> countUnscale,
		InBPS:  (e.inbps + byteRound) >> byteUnscale,
		OutBPS: (e.outbps + byteRound) >> byteUnscale,
	}
}

// Reset sets the rates to 0 for ipvsadm -Z (ip_vs_zero_estimator). The
// kernel also sets last_* to kstats, but kstats is the snapshot its own last
// estimate took, which last_* already holds; so last is kept, and the next
// Update measures a whole interval rather than the time since the reset.
func (e *Estimator) Reset() {
	e.cps, e.inpps, e.outpps, e.inbps, e.outbps = 0, 0, 0, 0, 0
}
