package sched

import (
	"sync"

	"golvs/internal/service"
)

// WeightedRoundRobin is the "wrr" scheduler (net/netfilter/ipvs/ip_vs_wrr.c):
// classic interleaved weighted round robin. The required weight cw starts at
// the maximum weight and steps down by the gcd of the weights after each pass
// over the list; a pass picks, in list order, every destination whose weight
// is at least cw and that is not OVERLOADED. Weights 4, 3, 2 (A, B, C) thus
// give A | A B | A B C | A B C per cycle.
//
// Any add, delete or edit of a destination restarts the pass from the list
// head and recomputes gcd and maximum (ip_vs_wrr_dest_changed), as in the
// kernel.
//
// Cost per connection: the kernel's walk, which is O(1) amortised when
// weights are alike (a full cycle of mw/di passes over n destinations yields
// sum(w)/di connections, so max(w)/mean(w) steps each) and O(n) at worst
// when most destinations are OVERLOADED.
//
// WeightedRoundRobin is safe for concurrent use.
type WeightedRoundRobin struct {
	mu sync.Mutex
	// Guarded by mu: the kernel's struct ip_vs_wrr_mark and
	// svc->destinations.
	dests []*service.Dest // the list given to the last hook
	cl    int             // index in dests of the current dest, -1 for the head
	cw    int             // current weight
	mw    int             // maximum weight, less (di - 1)
	di    int             // decreasing interval: gcd of the positive weights
}

var _ service.Scheduler = (*WeightedRoundRobin)(nil)

// NewWeightedRoundRobin returns an unbound wrr scheduler. It has no options.
func NewWeightedRoundRobin(Options) *WeightedRoundRobin { return &WeightedRoundRobin{cl: -1} }

// Name returns "wrr".
func (*WeightedRoundRobin) Name() string { return "wrr" }

// Init is ip_vs_wrr_init_svc: cl = head, di = gcd, mw = max - (di - 1),
// cw = mw.
func (w *WeightedRoundRobin) Init(dests []*service.Dest) error {
	w.mu.Lock()
	w.dests, w.cl = dests, -1
	w.di = wrrGCDWeight(dests)
	w.mw = wrrMaxWeight(dests) - (w.di - 1)
	w.cw = w.mw
	w.mu.Unlock()
	return nil
}

// AddDest is ip_vs_wrr_dest_changed.
func (w *WeightedRoundRobin) AddDest(dests []*service.Dest, _ *service.Dest) { w.changed(dests) }

// DelDest is ip_vs_wrr_dest_changed.
func (w *WeightedRoundRobin) DelDest(dests []*service.Dest, _ *service.Dest) { w.changed(dests) }

// UpdDest is ip_vs_wrr_dest_changed.
func (w *WeightedRoundRobin) UpdDest(dests []*service.Dest, _ *service.Dest) { w.changed(dests) }

// changed is ip_vs_wrr_dest_changed: back to the head, new di and mw, and cw
// kept if still in range, else restarted at mw; with di > 1, cw is moved to
// one above a multiple of di so that the next pass still steps on multiples
// of di ending at 1.
func (w *WeightedRoundRobin) changed(dests []*service.Dest) {
	w.mu.Lock()
	w.dests, w.cl = dests, -1
	w.di = wrrGCDWeight(dests)
	w.mw = wrrMaxWeight(dests) - (w.di - 1)
	if w.cw > w.mw || w.cw == 0 {
		w.cw = w.mw
	} else if w.di > 1 {
		w.cw = (w.cw/w.di)*w.di + 1
	}
	w.mu.Unlock()
}

// Schedule is ip_vs_wrr_schedule. It walks the list given to the last hook;
// dests is not read.
func (w *WeightedRoundRobin) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mw == 0 {
		return nil // "no destination available": no positive weight
	}
	dests := w.dests
	last := w.cl
	stop := -2 // no stop node yet (-1 is the head)
	lastPass, restarted := false, false
	i := w.cl
	for {
		// list_for_each_entry_continue_rcu from dest to the end.
		for i++; i < len(dests); i++ {
			d := dests[i]
			if !d.Overloaded() && int(d.Weight()) >= w.cw {
				w.cl = i
				return d
			}
			if i == stop {
				w.cl = i
				return nil // "all destinations are overloaded"
			}
		}
		i = -1 // the walk ended on the head
		w.cw -= w.di
		if w.cw <= 0 {
			w.cw = w.mw
			// Stop if the last pass (all weights >= 1) already
			// went over every dest: either it started when cw > di
			// and came down to 1, or it started from the head.
			if lastPass || last == -1 {
				w.cl = -1
				return nil // "all destinations are overloaded"
			}
			restarted = true
		}
		lastPass = w.cw <= w.di
		if lastPass && restarted && last != -1 {
			// The first pass for w >= 1 only saw the dests after
			// last; check those up to last, then stop.
			stop = last
		}
	}
}

// wrrGCDWeight is ip_vs_wrr_gcd_weight: the gcd of the positive weights, 1
// if there are none.
func wrrGCDWeight(dests []*service.Dest) int {
	g := 0
	for _, d := range dests {
		if w := int(d.Weight()); w > 0 {
			if g > 0 {
				g = wrrGCD(w, g)
			} else {
				g = w
			}
		}
	}
	if g == 0 {
		return 1
	}
	return g
}

// wrrMaxWeight is ip_vs_wrr_max_weight: the largest weight, 0 if none is
// positive.
func wrrMaxWeight(dests []*service.Dest) int {
	m := 0
	for _, d := range dests {
		if w := int(d.Weight()); w > m {
			m = w
		}
	}
	return m
}

// wrrGCD is Euclid's algorithm on positive numbers (lib/math/gcd.c computes
// the same value with binary gcd).
func wrrGCD(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
