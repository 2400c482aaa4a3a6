package sched

import (
	"math/bits"

	"golvs/internal/service"
)

// wrrRef is ip_vs_wrr.c transcribed (Kingxukai/linux
// net/netfilter/ipvs/ip_vs_wrr.c @0291023e7330): struct ip_vs_wrr_mark over
// the kernel list, int arithmetic as int32.
type wrrRef struct {
	svc  kSvc
	mark struct {
		cl *kListHead // current dest or head
		cw int32      // current weight
		mw int32      // maximum weight
		di int32      // decreasing interval
	}
}

// kGCD is lib/math/gcd.c (the binary GCD variant), unlike wrrGCD's Euclid.
func kGCD(a, b uint64) uint64 {
	r := a | b
	if a == 0 || b == 0 {
		return r
	}
	b >>= bits.TrailingZeros64(b)
	if b == 1 {
		return r & -r
	}
	for {
		a >>= bits.TrailingZeros64(a)
		if a == 1 {
			return r & -r
		}
		if a == b {
			return a << bits.TrailingZeros64(r)
		}
		if a < b {
			a, b = b, a
		}
		a -= b
	}
}

func (w *wrrRef) gcdWeight() int32 {
	var g int32
	for pos := w.svc.destinations.next; pos != &w.svc.destinations; pos = pos.next {
		weight := pos.dest.Weight()
		if weight > 0 {
			if g > 0 {
				g = int32(kGCD(uint64(weight), uint64(g)))
			} else {
				g = weight
			}
		}
	}
	if g != 0 {
		return g
	}
	return 1
}

func (w *wrrRef) maxWeight() int32 {
	var weight int32
	for pos := w.svc.destinations.next; pos != &w.svc.destinations; pos = pos.next {
		if newWeight := pos.dest.Weight(); newWeight > weight {
			weight = newWeight
		}
	}
	return weight
}

func (w *wrrRef) Name() string { return "wrr" }

// Init is ip_vs_wrr_init_svc.
func (w *wrrRef) Init(dests []*service.Dest) error {
	w.svc.init(dests)
	w.mark.cl = &w.svc.destinations
	w.mark.di = w.gcdWeight()
	w.mark.mw = w.maxWeight() - (w.mark.di - 1)
	w.mark.cw = w.mark.mw
	return nil
}

// destChanged is ip_vs_wrr_dest_changed.
func (w *wrrRef) destChanged() {
	mark := &w.mark
	mark.cl = &w.svc.destinations
	mark.di = w.gcdWeight()
	mark.mw = w.maxWeight() - (mark.di - 1)
	if mark.cw > mark.mw || mark.cw == 0 {
		mark.cw = mark.mw
	} else if mark.di > 1 {
		mark.cw = (mark.cw/mark.di)*mark.di + 1
	}
}

func (w *wrrRef) AddDest(dests []*service.Dest, d *service.Dest) {
	w.svc.listAdd(d)
	w.svc.check(dests)
	w.destChanged()
}

func (w *wrrRef) DelDest(dests []*service.Dest, d *service.Dest) {
	w.svc.listDel(d)
	w.svc.check(dests)
	w.destChanged()
}

func (w *wrrRef) UpdDest(dests []*service.Dest, _ *service.Dest) {
	w.svc.check(dests)
	w.destChanged()
}

// Schedule is ip_vs_wrr_schedule.
func (w *wrrRef) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	head := &w.svc.destinations
	mark := &w.mark
	var stop *kListHead
	lastPass, restarted := false, false

	dest := mark.cl
	// No available dests?
	if mark.mw == 0 {
		mark.cl = dest // err_noavail
		return nil
	}
	last := dest
	// Stop only after all dests were checked for weight >= 1 (last pass)
	for {
		for dest = dest.next; dest != head; dest = dest.next {
			if !dest.dest.Overloaded() && dest.dest.Weight() >= mark.cw {
				mark.cl = dest // found:
				return dest.dest
			}
			if dest == stop {
				mark.cl = dest // err_over
				return nil
			}
		}
		mark.cw -= mark.di
		if mark.cw <= 0 {
			mark.cw = mark.mw
			if lastPass || last == head {
				mark.cl = dest // err_over (dest is the head here)
				return nil
			}
			restarted = true
		}
		lastPass = mark.cw <= mark.di
		if lastPass && restarted && last != head {
			stop = last
		}
	}
}
