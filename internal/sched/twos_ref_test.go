package sched

import "golvs/internal/service"

// twosRef is ip_vs_twos.c transcribed (Kingxukai/linux
// net/netfilter/ipvs/ip_vs_twos.c @0291023e7330), int as int32; rand stands
// for get_random_u32_below.
type twosRef struct {
	svc  kSvc
	rand func(n uint32) uint32
}

func (t *twosRef) Name() string { return "twos" }

func (t *twosRef) Init(dests []*service.Dest) error { t.svc.init(dests); return nil }

func (t *twosRef) AddDest(dests []*service.Dest, d *service.Dest) {
	t.svc.listAdd(d)
	t.svc.check(dests)
}

func (t *twosRef) DelDest(dests []*service.Dest, d *service.Dest) {
	t.svc.listDel(d)
	t.svc.check(dests)
}

func (t *twosRef) UpdDest(dests []*service.Dest, _ *service.Dest) { t.svc.check(dests) }

// Schedule is ip_vs_twos_schedule.
func (t *twosRef) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	head := &t.svc.destinations
	var dest, choice1, choice2 *service.Dest
	var rweight1, rweight2 int32
	weight1, weight2 := int32(-1), int32(-1)
	var overhead1, overhead2, totalWeight, weight int32

	// Generate a random weight between [0,sum of all weights)
	for pos := head.next; pos != head; pos = pos.next {
		dest = pos.dest
		if !dest.Overloaded() {
			weight = dest.Weight()
			if weight > 0 {
				totalWeight += weight
				choice1 = dest
			}
		}
	}
	if choice1 == nil {
		return nil // "no destination available"
	}

	// Add 1 to total_weight so that the random weights are inclusive
	// from 0 to total_weight
	totalWeight++
	rweight1 = int32(t.rand(uint32(totalWeight)))
	rweight2 = int32(t.rand(uint32(totalWeight)))

	// Pick two weighted servers
	for pos := head.next; pos != head; pos = pos.next {
		dest = pos.dest
		if dest.Overloaded() {
			continue
		}
		weight = dest.Weight()
		if weight <= 0 {
			continue
		}
		rweight1 -= weight
		rweight2 -= weight
		if rweight1 <= 0 && weight1 == -1 {
			choice1 = dest
			weight1 = weight
			overhead1 = dest.Overhead()
		}
		if rweight2 <= 0 && weight2 == -1 {
			choice2 = dest
			weight2 = weight
			overhead2 = dest.Overhead()
		}
		if weight1 != -1 && weight2 != -1 {
			break // goto nextstage
		}
	}
	// nextstage:
	if choice2 != nil && weight2*overhead1 > weight1*overhead2 {
		choice1 = choice2
	}
	return choice1
}
