package sched

import (
	"sync"
	"sync/atomic"

	"golvs/internal/service"
)

// This file is the load index shared by lc, wlc, sed and nq (and by lblc and
// lblcr for their "weighted least-connection over all destinations" step).
//
// The kernel schedulers (ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c, ip_vs_nq.c)
// walk svc->destinations on every new connection and keep the first dest
// that is strictly better than the best so far. Under a total preorder that
// is "the earliest minimum in list order", which a tournament tree over list
// positions computes as well, provided a right child replaces the left one
// only when it is strictly better: ties go left, that is to the earlier
// position. So the index answers Schedule in O(1) (read the root) and costs
// O(log n) per load change (recompute one leaf-to-root path), instead of O(n)
// per connection.
//
// Why the orders are total preorders, kind by kind:
//   - lc compares unsigned overheads with "<" (loh and doh are unsigned int
//     in ip_vs_lc_schedule): a total order on uint32.
//   - wlc, sed and nq replace least by dest when
//     (s64)loh * w(dest) > (s64)doh * w(least); with both weights > 0 that
//     is doh/w(dest) < loh/w(least), a comparison of rationals. The product
//     of two int32 values always fits an int64, so the comparison here is
//     the kernel's bit for bit.
//
// Eligibility follows each kernel loop:
//   - lc and nq skip OVERLOAD and weight == 0 (ip_vs_lc.c, ip_vs_nq.c);
//   - wlc and sed take as first least a dest with !OVERLOAD && weight > 0,
//     then only skip OVERLOAD; a later weight-0 dest would need
//     loh * 0 > doh * w(least), false for doh >= 0, so it never wins and is
//     simply ineligible here.
//
// Assumptions, both guaranteed outside the scheduler: weights are never
// negative (ip_vs_ctl.c rejects them with ERANGE), and connection counts are
// never negative and stay below 2^23 active connections per dest, so that
// the int overhead (active << 8) + inactive does not wrap (a wrapped,
// negative overhead would let a weight-0 dest win wlc's second loop in the
// kernel, an artifact of signed overflow that is not reproduced).
//
// nq also needs "the first eligible dest in list order with activeconns ==
// 0" (it returns such a dest at once, before any comparison). Each node
// carries that as a second field: the leftmost such position of its subtree.
//
// lblc and lblcr's is_overloaded() asks whether any dest of the service has
// activeconns * 2 < weight; the index keeps the number of such dests.

// loadKind selects a loadIndex's load key, eligibility and comparison.
type loadKind uint8

const (
	// loadLC: key (active << 8) + inactive compared unsigned; eligible
	// !OVERLOAD && weight != 0 (ip_vs_lc_schedule).
	loadLC loadKind = iota
	// loadWLC: key (active << 8) + inactive, weighted; eligible
	// !OVERLOAD && weight > 0 (ip_vs_wlc_schedule, and the lblc/lblcr
	// __ip_vs_lblc[r]_schedule loops, which are the same).
	loadWLC
	// loadSED: key active + 1, weighted; eligible !OVERLOAD && weight > 0
	// (ip_vs_sed_schedule).
	loadSED
	// loadNQ: key active + 1, weighted; eligible !OVERLOAD && weight != 0,
	// plus the first idle eligible dest (ip_vs_nq_schedule).
	loadNQ
)

// loadNode is one node of the tournament tree. A leaf describes the dest at
// its list position; an inner node the winner of its subtree. 16 bytes, so
// four nodes share a cache line.
type loadNode struct {
	best int32 // list position of the best eligible dest, or -1
	idle int32 // loadNQ: list position of the first eligible dest with no active connection, or -1
	key  int32 // load key of best
	w    int32 // weight of best
}

var emptyLoadNode = loadNode{best: -1, idle: -1}

// loadIndex is a tournament tree over the positions of a service's
// destination list. It is safe for concurrent use: the control plane's hooks
// (Init, AddDest, DelDest, UpdDest, Done), the data path's LoadChanged
// notifications and Schedule's queries all take mu; none of them allocates
// except the hooks.
//
// It implements service.LoadObserver: each dest of the list has the index as
// its observer and its list position in Dest.SchedSlot.
type loadIndex struct {
	kind loadKind

	// dead is set by Done; LoadChanged then returns at once without
	// taking mu (dests keep pointing at a dead index until the next
	// scheduler's Init replaces their observer).
	dead atomic.Bool

	mu sync.Mutex
	// dests is the destination list as the last hook gave it (guarded by
	// mu). dests[i] is the dest of leaf i; LoadChanged checks identity
	// against it, since a notification may come for a dest that was just
	// dropped, or whose SchedSlot another scheduler instance now uses.
	dests []*service.Dest
	// light[i] records whether dests[i] has activeconns*2 < weight, and
	// nLight how many do (lblc's is_overloaded). Guarded by mu.
	light  []bool
	nLight int
	// leaves is the number of leaves, a power of two >= len(dests); nodes
	// has 2*leaves entries: nodes[1] is the root, nodes[leaves+i] leaf i,
	// nodes[0] unused. Guarded by mu.
	leaves int
	nodes  []loadNode
}

// leaf computes the leaf for dest d at position pos from d's current
// counters. It reads the atomics one by one, as the kernel loop does; a
// change racing with the reads is followed by its own notification.
func (ix *loadIndex) leaf(pos int32, d *service.Dest) loadNode {
	if d.Overloaded() {
		return emptyLoadNode
	}
	w := d.Weight()
	n := emptyLoadNode
	switch ix.kind {
	case loadLC:
		if w == 0 {
			return n
		}
		n.key = d.Overhead()
	case loadWLC:
		if w <= 0 {
			return n
		}
		n.key = d.Overhead()
	case loadSED:
		if w <= 0 {
			return n
		}
		n.key = d.ActiveConns() + 1
	case loadNQ:
		if w == 0 {
			return n
		}
		a := d.ActiveConns()
		n.key = a + 1
		if a == 0 {
			n.idle = pos
		}
	}
	n.best, n.w = pos, w
	return n
}

// better reports whether r (a later list position) strictly beats l (an
// earlier one) in the kernel's comparison; both are eligible.
func (ix *loadIndex) better(r, l *loadNode) bool {
	if ix.kind == loadLC {
		// ip_vs_lc_schedule: "doh < loh" on unsigned int.
		return uint32(r.key) < uint32(l.key)
	}
	// ip_vs_wlc_schedule & co: (__s64)loh * atomic_read(&dest->weight) >
	// (__s64)doh * atomic_read(&least->weight).
	return int64(l.key)*int64(r.w) > int64(r.key)*int64(l.w)
}

// combine returns the parent of l (left, earlier positions) and r.
func (ix *loadIndex) combine(l, r *loadNode) loadNode {
	out := *l
	if r.best >= 0 && (l.best < 0 || ix.better(r, l)) {
		out.best, out.key, out.w = r.best, r.key, r.w
	}
	if out.idle < 0 {
		out.idle = r.idle
	}
	return out
}

// setLeaf stores leaf pos and recomputes its path to the root. It stops as
// soon as a node comes out unchanged: every node is always the combination
// of its children, so nothing above it can change either.
func (ix *loadIndex) setLeaf(pos int, n loadNode) {
	i := ix.leaves + pos
	if ix.nodes[i] == n {
		return
	}
	ix.nodes[i] = n
	for i >>= 1; i >= 1; i >>= 1 {
		c := ix.combine(&ix.nodes[2*i], &ix.nodes[2*i+1])
		if c == ix.nodes[i] {
			return
		}
		ix.nodes[i] = c
	}
}

// isLight is the inner test of is_overloaded() in ip_vs_lblc.c and
// ip_vs_lblcr.c: atomic_read(&d->activeconns)*2 < atomic_read(&d->weight).
func isLight(d *service.Dest) bool { return d.ActiveConns()*2 < d.Weight() }

// setLight updates light[pos] and nLight.
func (ix *loadIndex) setLight(pos int, l bool) {
	if ix.light[pos] == l {
		return
	}
	ix.light[pos] = l
	if l {
		ix.nLight++
	} else {
		ix.nLight--
	}
}

// LoadChanged implements service.LoadObserver: d's counters, OVERLOAD flag
// or weight changed. It updates d's leaf in O(log n) and never allocates. A
// notification for a dest that is not (or no longer) at its recorded
// position in this index is ignored.
func (ix *loadIndex) LoadChanged(d *service.Dest) {
	if ix.dead.Load() {
		return
	}
	ix.mu.Lock()
	pos := d.SchedSlot.Load()
	if pos >= 0 && int(pos) < len(ix.dests) && ix.dests[pos] == d {
		ix.setLeaf(int(pos), ix.leaf(pos, d))
		ix.setLight(int(pos), isLight(d))
	}
	ix.mu.Unlock()
}

// rebuild lays the tree out again over dests in O(n): positions shift when a
// dest is inserted at the head of the list or removed. The caller has
// already made the index the observer of every dest in dests, so that a
// change after rebuild reads a dest's counters is notified and applied.
func (ix *loadIndex) rebuild(dests []*service.Dest) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := len(dests)
	leaves := 1
	for leaves < n {
		leaves <<= 1
	}
	// Reuse the arrays unless they are more than 4x too big (the list
	// shrank a lot): a hook must not leave a 10000-dest tree behind a
	// 3-dest service, nor reallocate on every add.
	if cap(ix.nodes) < 2*leaves || cap(ix.nodes) > 8*leaves {
		ix.nodes = make([]loadNode, 2*leaves)
	}
	ix.nodes = ix.nodes[:2*leaves]
	if cap(ix.dests) < n || cap(ix.dests) > 4*leaves {
		ix.dests = make([]*service.Dest, 0, leaves)
		ix.light = make([]bool, 0, leaves)
	}
	clear(ix.dests) // no stale pointers beyond the new length
	ix.dests = append(ix.dests[:0], dests...)
	ix.light = ix.light[:n]
	ix.leaves = leaves
	ix.nLight = 0
	for i, d := range dests {
		d.SchedSlot.Store(int32(i))
		ix.nodes[leaves+i] = ix.leaf(int32(i), d)
		ix.light[i] = isLight(d)
		if ix.light[i] {
			ix.nLight++
		}
	}
	for i := leaves + n; i < 2*leaves; i++ {
		ix.nodes[i] = emptyLoadNode
	}
	for i := leaves - 1; i >= 1; i-- {
		ix.nodes[i] = ix.combine(&ix.nodes[2*i], &ix.nodes[2*i+1])
	}
}

// Init binds the index to a service's destinations (init_service).
func (ix *loadIndex) Init(dests []*service.Dest) error {
	ix.dead.Store(false)
	for _, d := range dests {
		d.SetObserver(ix)
	}
	ix.rebuild(dests)
	return nil
}

// AddDest is called after d was inserted at the head of dests.
func (ix *loadIndex) AddDest(dests []*service.Dest, d *service.Dest) {
	d.SetObserver(ix)
	ix.rebuild(dests)
}

// DelDest is called after d was removed from dests.
func (ix *loadIndex) DelDest(dests []*service.Dest, d *service.Dest) {
	ix.rebuild(dests)
	d.SetObserver(nil)
}

// UpdDest is called after d's weight or thresholds were edited. The edit
// itself already notified the index (Dest.SetConfig); rebuilding keeps the
// hook correct even for an edit made without a notification.
func (ix *loadIndex) UpdDest(dests []*service.Dest, d *service.Dest) {
	ix.rebuild(dests)
}

// Done unbinds the index (done_service): it forgets the list and its memory.
// Dests keep the index as their observer until another scheduler's Init
// replaces it (clearing it here could clear the new scheduler's observer if
// the control plane binds the new one first); LoadChanged on a dead index
// returns at once.
func (ix *loadIndex) Done() {
	ix.dead.Store(true)
	ix.mu.Lock()
	clear(ix.dests)
	ix.dests, ix.light, ix.nodes = nil, nil, nil
	ix.leaves, ix.nLight = 0, 0
	ix.mu.Unlock()
}

// root returns the root node; the empty node when there is no dest.
// The caller holds mu.
func (ix *loadIndex) root() loadNode {
	if len(ix.nodes) < 2 {
		return emptyLoadNode
	}
	return ix.nodes[1]
}

// best returns the kernel's choice for lc, wlc and sed (by the index's kind):
// the earliest eligible dest with the least load, or nil.
func (ix *loadIndex) best() *service.Dest {
	ix.mu.Lock()
	var d *service.Dest
	if r := ix.root(); r.best >= 0 {
		d = ix.dests[r.best]
	}
	ix.mu.Unlock()
	return d
}

// bestNQ returns ip_vs_nq_schedule's choice: the first idle eligible dest in
// list order, else the SED choice.
func (ix *loadIndex) bestNQ() *service.Dest {
	ix.mu.Lock()
	var d *service.Dest
	if r := ix.root(); r.idle >= 0 {
		d = ix.dests[r.idle]
	} else if r.best >= 0 {
		d = ix.dests[r.best]
	}
	ix.mu.Unlock()
	return d
}

// anyLight reports whether some dest of the list has activeconns*2 < weight
// (the loop of is_overloaded() in ip_vs_lblc.c / ip_vs_lblcr.c).
func (ix *loadIndex) anyLight() bool {
	ix.mu.Lock()
	l := ix.nLight > 0
	ix.mu.Unlock()
	return l
}
