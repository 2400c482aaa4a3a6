package sched

import (
	"sync"

	"golvs/internal/service"
)

// RoundRobin is the "rr" scheduler (net/netfilter/ipvs/ip_vs_rr.c): each new
// connection goes to the next destination in list order after the last one
// chosen, skipping destinations that are OVERLOADED or have weight 0.
//
// Because the kernel adds destinations at the head of its list, rs1, rs2,
// rs3 added in that order are served rs3, rs2, rs1, rs3, ... (the oracle
// transcript a2-traffic-formats shows exactly this).
//
// RoundRobin is safe for concurrent use: the hooks are serialised by the
// caller, Schedule may run concurrently with them and with itself.
type RoundRobin struct {
	mu sync.Mutex
	// dests is the list given to the last hook: the kernel's
	// svc->destinations. Guarded by mu.
	dests []*service.Dest
	// last is the index in dests of the last chosen destination, -1 for
	// the list head (the kernel's sched_data, a struct list_head pointer
	// that starts at &svc->destinations). Guarded by mu.
	last int
}

var _ service.Scheduler = (*RoundRobin)(nil)

// NewRoundRobin returns an unbound rr scheduler. It has no options.
func NewRoundRobin(Options) *RoundRobin { return &RoundRobin{last: -1} }

// Name returns "rr".
func (*RoundRobin) Name() string { return "rr" }

// Init starts at the list head (ip_vs_rr_init_svc: sched_data =
// &svc->destinations).
func (r *RoundRobin) Init(dests []*service.Dest) error {
	r.mu.Lock()
	r.dests, r.last = dests, -1
	r.mu.Unlock()
	return nil
}

// AddDest keeps the position on the same destination. The kernel has no
// add_dest hook for rr: its saved pointer is a list node, which stays where
// it is when a node is linked at the head. Here the position is an index, so
// it follows the destination.
func (r *RoundRobin) AddDest(dests []*service.Dest, _ *service.Dest) {
	r.mu.Lock()
	r.last = destIndexOf(dests, r.lastDest())
	r.dests = dests
	r.mu.Unlock()
}

// DelDest moves the position to the node before d if d was the last chosen
// destination, so that the rotation continues with d's successor
// (ip_vs_rr_del_dest: "dest is already unlinked, so p->prev is not valid but
// p->next is valid, use it to reach previous entry": sched_data =
// p->next->prev).
func (r *RoundRobin) DelDest(dests []*service.Dest, d *service.Dest) {
	r.mu.Lock()
	prev := r.lastDest()
	if prev == d {
		// d's predecessor in the old list, or the head.
		prev = nil
		if i := destIndexOf(r.dests, d); i > 0 {
			prev = r.dests[i-1]
		}
	}
	r.last = destIndexOf(dests, prev)
	r.dests = dests
	r.mu.Unlock()
}

// UpdDest only takes the new list: rr reads weights and the OVERLOAD flag
// live and has no upd_dest hook in the kernel.
func (r *RoundRobin) UpdDest(dests []*service.Dest, _ *service.Dest) {
	r.mu.Lock()
	r.last = destIndexOf(dests, r.lastDest())
	r.dests = dests
	r.mu.Unlock()
}

// lastDest returns the destination at the saved position, nil for the head.
// r.mu must be held.
func (r *RoundRobin) lastDest() *service.Dest {
	if r.last < 0 || r.last >= len(r.dests) {
		return nil
	}
	return r.dests[r.last]
}

// Schedule returns the first destination that is not OVERLOADED and has a
// positive weight, searching from the one after the last chosen to the end
// of the list, then from the start of the list up to and including the last
// chosen one (ip_vs_rr_schedule: a first pass of
// list_for_each_entry_continue_rcu from the saved node, a second pass from
// the head that stops at the saved node; no second pass when the saved node
// is the head). It walks the list given to the last hook; dests is not read.
func (r *RoundRobin) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	r.mu.Lock()
	dests, last := r.dests, r.last
	for i := last + 1; i < len(dests); i++ {
		if d := dests[i]; rrEligible(d) {
			r.last = i
			r.mu.Unlock()
			return d
		}
	}
	for i := 0; i <= last; i++ { // empty when last is the head (-1)
		if d := dests[i]; rrEligible(d) {
			r.last = i
			r.mu.Unlock()
			return d
		}
	}
	r.mu.Unlock()
	return nil // "no destination available"
}

// rrEligible is rr's test: !(flags & IP_VS_DEST_F_OVERLOAD) && weight > 0.
func rrEligible(d *service.Dest) bool { return !d.Overloaded() && d.Weight() > 0 }

// destIndexOf returns the index of d in dests, or -1 when d is nil or
// absent (the list head). It is for the hooks, not for Schedule.
func destIndexOf(dests []*service.Dest, d *service.Dest) int {
	if d == nil {
		return -1
	}
	for i, x := range dests {
		if x == d {
			return i
		}
	}
	return -1
}
