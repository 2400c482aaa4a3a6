package sched

import (
	"golvs/internal/service"
)

// WeightedOverflow is the "ovf" scheduler (net/netfilter/ipvs/ip_vs_ovf.c):
// new connections go to the highest-weight destination (the first in list
// order on ties) until its active connections exceed its weight; then it
// stops being a candidate and traffic overflows to the next highest weight.
// OVERLOADED and weight-0 destinations are never candidates.
//
// Only active connections count, so for UDP services (whose connections are
// never active) ovf always picks the highest-weight destination, as the
// kernel does ("might not be suitable for UDP").
//
// The kernel scans the list per connection. Here the candidates sit in an
// argmax tree over the list; a destination's candidacy flips when it crosses
// its weight in active connections or its OVERLOAD flag flips, reported by
// LoadObserver and applied in O(log n); Schedule is one atomic load.
//
// WeightedOverflow is safe for concurrent use.
type WeightedOverflow struct {
	ix   eligIndex
	tree argmaxTree
}

var _ service.Scheduler = (*WeightedOverflow)(nil)
var _ service.Doner = (*WeightedOverflow)(nil)

// NewWeightedOverflow returns an unbound ovf scheduler. It has no options.
func NewWeightedOverflow(Options) *WeightedOverflow {
	v := &WeightedOverflow{}
	v.ix.leaf = ovfLeaf
	v.ix.tree = &v.tree
	return v
}

// ovfLeaf is the negation of ovf's skip test, (flags &
// IP_VS_DEST_F_OVERLOAD) || activeconns > w || w == 0; the leaf value is the
// weight. The kernel's "!h || w > hw" keeps the first of the largest
// candidates, whatever their sign, which is what argmaxTree computes.
func ovfLeaf(d *service.Dest) (int64, bool) {
	w := d.Weight()
	if d.Overloaded() || d.ActiveConns() > w || w == 0 {
		return argmaxNone, false
	}
	return int64(w), true
}

// Name returns "ovf".
func (*WeightedOverflow) Name() string { return "ovf" }

// Init indexes dests and registers for their load changes.
func (v *WeightedOverflow) Init(dests []*service.Dest) error { v.ix.init(dests); return nil }

// AddDest indexes the new list.
func (v *WeightedOverflow) AddDest(dests []*service.Dest, d *service.Dest) { v.ix.add(dests, d) }

// DelDest indexes the new list and stops watching d.
func (v *WeightedOverflow) DelDest(dests []*service.Dest, d *service.Dest) { v.ix.del(dests, d) }

// UpdDest takes d's new weight.
func (v *WeightedOverflow) UpdDest(dests []*service.Dest, d *service.Dest) { v.ix.upd(dests, d) }

// Done stops watching the destinations. It must come before another
// scheduler's Init on the same destinations.
func (v *WeightedOverflow) Done() { v.ix.done() }

// Schedule returns the highest-weight candidate, the first in list order on
// ties, or nil (ip_vs_ovf_schedule).
func (v *WeightedOverflow) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	return v.tree.best.Load()
}
