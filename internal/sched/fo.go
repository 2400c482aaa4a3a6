package sched

import (
	"math"
	"sync"
	"sync/atomic"

	"golvs/internal/service"
)

// WeightedFailover is the "fo" scheduler (net/netfilter/ipvs/ip_vs_fo.c):
// every new connection goes to the destination with the highest weight that
// is not OVERLOADED; ties go to the first in list order (the most recently
// added). Weight 0 is never chosen (the kernel's "weight > hw" with hw
// starting at 0). Connection counts play no part.
//
// The kernel scans the list per connection. Here the answer is kept in an
// argmax tree over the list, updated in O(log n) when a weight changes (hook)
// or a destination's OVERLOAD flag flips (LoadObserver), so Schedule is one
// atomic load.
//
// WeightedFailover is safe for concurrent use.
type WeightedFailover struct {
	ix   eligIndex
	tree argmaxTree
}

var _ service.Scheduler = (*WeightedFailover)(nil)
var _ service.Doner = (*WeightedFailover)(nil)

// NewWeightedFailover returns an unbound fo scheduler. It has no options.
func NewWeightedFailover(Options) *WeightedFailover {
	f := &WeightedFailover{}
	f.ix.leaf = foLeaf
	f.ix.tree = &f.tree
	return f
}

// foLeaf is fo's test, !(flags & IP_VS_DEST_F_OVERLOAD) && weight > hw with
// hw starting at 0; the leaf value is the weight.
func foLeaf(d *service.Dest) (int64, bool) {
	w := d.Weight()
	if d.Overloaded() || w <= 0 {
		return argmaxNone, false
	}
	return int64(w), true
}

// Name returns "fo".
func (*WeightedFailover) Name() string { return "fo" }

// Init indexes dests and registers for their load changes.
func (f *WeightedFailover) Init(dests []*service.Dest) error { f.ix.init(dests); return nil }

// AddDest indexes the new list.
func (f *WeightedFailover) AddDest(dests []*service.Dest, d *service.Dest) { f.ix.add(dests, d) }

// DelDest indexes the new list and stops watching d.
func (f *WeightedFailover) DelDest(dests []*service.Dest, d *service.Dest) { f.ix.del(dests, d) }

// UpdDest takes d's new weight.
func (f *WeightedFailover) UpdDest(dests []*service.Dest, d *service.Dest) { f.ix.upd(dests, d) }

// Done stops watching the destinations. It must come before another
// scheduler's Init on the same destinations (the kernel, too, unbinds the
// old scheduler before binding the new one).
func (f *WeightedFailover) Done() { f.ix.done() }

// Schedule returns the highest-weight destination that is not OVERLOADED,
// the first in list order on ties, or nil (ip_vs_fo_schedule).
func (f *WeightedFailover) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	return f.tree.best.Load()
}

// argmaxNone is the leaf value of a destination that is not a candidate. It
// is below every int32 weight, so a candidate of any weight beats it.
const argmaxNone = math.MinInt64

// argmaxTree finds the first largest candidate of a list: a segment tree
// whose nodes hold the index of the best leaf below them, the left one on
// ties. This is exactly the kernel's "if (w > hw) { h = dest; hw = w; }" scan
// in list order (fo; ovf's "!h || w > hw" is the same over its candidates).
// The answer is published in best for lock-free reading. All methods but the
// reading of best need eligIndex.mu.
type argmaxTree struct {
	vals  []int64         // leaf values (eligIndex.vals), argmaxNone if no candidate
	dests []*service.Dest // the indexed list
	size  int             // number of leaves: a power of two >= len(vals)
	node  []int32         // node[1] is the root; node[size+i] is leaf i; -1 = none
	best  atomic.Pointer[service.Dest]
}

// better returns whichever of leaf indices a < b wins, a on ties.
func (t *argmaxTree) better(a, b int32) int32 {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	case t.vals[b] > t.vals[a]:
		return b
	}
	return a
}

func (t *argmaxTree) build(vals []int64, dests []*service.Dest) {
	t.vals, t.dests = vals, dests
	t.size = 1
	for t.size < len(vals) {
		t.size <<= 1
	}
	if cap(t.node) >= 2*t.size {
		t.node = t.node[:2*t.size]
	} else {
		t.node = make([]int32, 2*t.size)
	}
	for i := range t.size {
		t.node[t.size+i] = -1
		if i < len(vals) && vals[i] != argmaxNone {
			t.node[t.size+i] = int32(i)
		}
	}
	for k := t.size - 1; k >= 1; k-- {
		t.node[k] = t.better(t.node[2*k], t.node[2*k+1])
	}
	t.publish()
}

func (t *argmaxTree) update(i int, _ int64) {
	k := t.size + i
	t.node[k] = -1
	if t.vals[i] != argmaxNone {
		t.node[k] = int32(i)
	}
	for k >>= 1; k >= 1; k >>= 1 {
		t.node[k] = t.better(t.node[2*k], t.node[2*k+1])
	}
	t.publish()
}

func (t *argmaxTree) publish() {
	var d *service.Dest
	if len(t.node) > 1 {
		if i := t.node[1]; i >= 0 {
			d = t.dests[i]
		}
	}
	t.best.Store(d)
}

// indexTree is a search structure over the leaf values of an eligIndex.
// Its methods are called with eligIndex.mu held.
type indexTree interface {
	// build indexes vals, one per destination of dests, from scratch.
	build(vals []int64, dests []*service.Dest)
	// update takes the change of vals[i], which was old.
	update(i int, old int64)
}

// eligIndex is the bookkeeping that fo, ovf and twos share to avoid the
// kernel's per-connection scan: the list from the last hook, a leaf value
// per destination computed by the scheduler's rule (leaf), and a search tree
// over the leaves. The hooks rebuild it in O(n); between hooks, a
// destination's eligibility changes only with its load (OVERLOAD flag, and
// for ovf its active connections), which Dest reports to LoadChanged.
//
// SchedSlot of an indexed destination holds pos<<1 | eligible, -1 when not
// indexed. LoadChanged compares the live eligibility with that bit without a
// lock, and takes mu only when they differ, so that the data path's Bind and
// Unbind cost two atomic loads while nothing flips. A writer stores the slot
// and then reads the live state again (refresh), so a flip that raced with
// the store is caught either by the writer or by the flipper's own
// notification: the index never stays stale.
//
// Weights are read from Dest on every refresh but only hooks are required
// to refresh a destination whose weight changed without changing its
// eligibility (Dest.SetConfig is always followed by UpdDest).
type eligIndex struct {
	// Immutable after construction.
	leaf func(d *service.Dest) (v int64, ok bool)
	tree indexTree

	mu     sync.Mutex
	dests  []*service.Dest // guarded by mu: the list from the last hook
	vals   []int64         // guarded by mu: leaf values, in list order
	closed bool            // guarded by mu: Done was called
}

var _ service.LoadObserver = (*eligIndex)(nil)

func eligSlot(i int, ok bool) int32 {
	s := int32(i) << 1
	if ok {
		s |= 1
	}
	return s
}

// watch makes d report its load changes here. Its slot is -1 until the next
// rebuild reads its state: a change before that read is seen by the read, a
// change after it is reported.
func (x *eligIndex) watch(d *service.Dest) {
	d.SchedSlot.Store(-1)
	d.SetObserver(x)
}

func (x *eligIndex) init(dests []*service.Dest) {
	for _, d := range dests {
		x.watch(d)
	}
	x.mu.Lock()
	x.closed = false
	x.rebuild(dests)
	x.mu.Unlock()
}

func (x *eligIndex) add(dests []*service.Dest, d *service.Dest) {
	x.watch(d)
	x.mu.Lock()
	x.rebuild(dests)
	x.mu.Unlock()
}

func (x *eligIndex) del(dests []*service.Dest, d *service.Dest) {
	x.mu.Lock()
	d.SetObserver(nil)
	d.SchedSlot.Store(-1)
	x.rebuild(dests)
	x.mu.Unlock()
}

func (x *eligIndex) upd(dests []*service.Dest, d *service.Dest) {
	x.mu.Lock()
	if i := int(d.SchedSlot.Load() >> 1); i >= 0 && sameList(dests, x.dests) && i < len(dests) && dests[i] == d {
		x.refresh(i, d)
	} else {
		x.rebuild(dests)
	}
	x.mu.Unlock()
}

func (x *eligIndex) done() {
	x.mu.Lock()
	x.closed = true
	for _, d := range x.dests {
		d.SetObserver(nil)
		d.SchedSlot.Store(-1)
	}
	x.mu.Unlock()
}

// sameList reports whether a and b are the same slice (the control plane
// passes a new slice for every change of membership).
func sameList(a, b []*service.Dest) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// rebuild indexes dests from scratch. x.mu must be held.
func (x *eligIndex) rebuild(dests []*service.Dest) {
	x.dests = dests
	if cap(x.vals) >= len(dests) {
		x.vals = x.vals[:len(dests)]
	} else {
		x.vals = make([]int64, len(dests))
	}
	for i, d := range dests {
		for {
			v, ok := x.leaf(d)
			x.vals[i] = v
			d.SchedSlot.Store(eligSlot(i, ok))
			if _, again := x.leaf(d); again == ok {
				break
			}
		}
	}
	x.tree.build(x.vals, dests)
}

// refresh recomputes the leaf of d at position i. x.mu must be held.
func (x *eligIndex) refresh(i int, d *service.Dest) {
	for {
		v, ok := x.leaf(d)
		if old := x.vals[i]; old != v {
			x.vals[i] = v
			x.tree.update(i, old)
		}
		d.SchedSlot.Store(eligSlot(i, ok))
		if _, again := x.leaf(d); again == ok {
			return
		}
	}
}

// LoadChanged implements service.LoadObserver. It takes the lock only when
// d's eligibility differs from what the index holds.
func (x *eligIndex) LoadChanged(d *service.Dest) {
	s := d.SchedSlot.Load()
	if s < 0 {
		return
	}
	if _, ok := x.leaf(d); ok == (s&1 != 0) {
		return
	}
	x.mu.Lock()
	if s = d.SchedSlot.Load(); s >= 0 && !x.closed {
		if i := int(s >> 1); i < len(x.dests) && x.dests[i] == d {
			x.refresh(i, d)
		}
	}
	x.mu.Unlock()
}
