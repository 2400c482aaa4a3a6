package sched

import (
	"fmt"

	"golvs/internal/service"
)

// This file holds the kernel's doubly linked destination list, which the
// slow references of rr, wrr, fo, ovf and twos walk exactly as the C code
// does (include/linux/list.h, rculist.h), and the rr reference.

// kListHead is struct list_head embedded in struct ip_vs_dest as n_list; the
// service's sentinel head has no dest.
type kListHead struct {
	next, prev *kListHead
	dest       *service.Dest // list_entry(); nil for &svc->destinations
}

// kSvc is the part of struct ip_vs_service the references use: the
// destination list, maintained by the hooks the way ip_vs_ctl.c does.
type kSvc struct {
	destinations kListHead
	nodes        map[*service.Dest]*kListHead // dest -> &dest->n_list
}

// init builds the list from dests (head first), as successive list_add_rcu
// of the reversed order.
func (s *kSvc) init(dests []*service.Dest) {
	s.destinations.next = &s.destinations
	s.destinations.prev = &s.destinations
	s.nodes = map[*service.Dest]*kListHead{}
	for i := len(dests) - 1; i >= 0; i-- {
		s.listAdd(dests[i])
	}
	s.check(dests)
}

// listAdd is list_add_rcu(&dest->n_list, &svc->destinations) in
// __ip_vs_update_dest(add=1).
func (s *kSvc) listAdd(d *service.Dest) {
	n := &kListHead{dest: d}
	head := &s.destinations
	n.next = head.next
	n.prev = head
	head.next.prev = n
	head.next = n
	s.nodes[d] = n
}

// listDel is list_del_rcu(&dest->n_list) in __ip_vs_unlink_dest: the
// neighbours are linked together, n->next stays valid, n->prev is poisoned.
func (s *kSvc) listDel(d *service.Dest) *kListHead {
	n := s.nodes[d]
	n.next.prev = n.prev
	n.prev.next = n.next
	n.prev = nil // LIST_POISON2
	delete(s.nodes, d)
	return n
}

// check panics unless the list is dests in order: the harness and the
// kernel model must agree on the list, or the comparison means nothing.
func (s *kSvc) check(dests []*service.Dest) {
	i := 0
	for p := s.destinations.next; p != &s.destinations; p = p.next {
		if i >= len(dests) || dests[i] != p.dest {
			panic(fmt.Sprintf("kernel list model differs from the hook's list at %d", i))
		}
		i++
	}
	if i != len(dests) {
		panic("kernel list model is shorter than the hook's list")
	}
}

// rrRef is ip_vs_rr.c transcribed, as read in Kingxukai/linux
// net/netfilter/ipvs/ip_vs_rr.c @9b44fff655e2 (mainline, 2025).
type rrRef struct {
	svc       kSvc
	schedData *kListHead // svc->sched_data
}

func (r *rrRef) Name() string { return "rr" }

// Init is ip_vs_rr_init_svc.
func (r *rrRef) Init(dests []*service.Dest) error {
	r.svc.init(dests)
	r.schedData = &r.svc.destinations
	return nil
}

// AddDest: rr has no add_dest hook.
func (r *rrRef) AddDest(dests []*service.Dest, d *service.Dest) {
	r.svc.listAdd(d)
	r.svc.check(dests)
}

// DelDest is __ip_vs_unlink_dest then ip_vs_rr_del_dest.
func (r *rrRef) DelDest(dests []*service.Dest, dest *service.Dest) {
	n := r.svc.listDel(dest)
	r.svc.check(dests)
	p := r.schedData
	if p == n {
		r.schedData = p.next.prev
	}
}

// UpdDest: rr has no upd_dest hook.
func (r *rrRef) UpdDest(dests []*service.Dest, _ *service.Dest) { r.svc.check(dests) }

// Schedule is ip_vs_rr_schedule.
func (r *rrRef) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	head := &r.svc.destinations
	p := r.schedData
	last, dest := p, p
	pass := 0
	for {
		// list_for_each_entry_continue_rcu(dest, &svc->destinations, n_list)
		for dest = dest.next; dest != head; dest = dest.next {
			if !dest.dest.Overloaded() && dest.dest.Weight() > 0 {
				r.schedData = dest // out:
				return dest.dest
			}
			if dest == last {
				return nil // stop:
			}
		}
		pass++
		if !(pass < 2 && p != head) {
			break
		}
	}
	return nil
}
