package sched

import (
	"math"
	"math/rand/v2"

	"golvs/internal/service"
)

// TwoChoices is the "twos" scheduler (net/netfilter/ipvs/ip_vs_twos.c,
// Linux 6.2 and later; not in the 6.1 oracle kernel nor in ipvsadm 1.31's
// list): weighted random power of two choices. Two destinations are drawn
// at random with probability proportional to weight, among those that are
// not OVERLOADED and have a positive weight, and the one with the lower
// overhead/weight wins (the first drawn on ties).
//
// The kernel draws r1, r2 uniform in [0, total] (total = sum of eligible
// weights), then walks the eligible destinations in list order subtracting
// each weight: the first where r <= 0 is chosen. So r picks the first
// destination whose prefix sum of weights is >= max(r, 1) (r = 0 picks the
// first eligible, a slight bias the kernel has and this keeps). Here the
// prefix sums are a Fenwick tree over the list, with weight 0 for
// destinations that are not eligible, so each draw costs O(log n) instead of
// the kernel's O(n) walk, with the same choice for the same random numbers.
// Eligibility changes (OVERLOAD) reach the tree through LoadObserver.
//
// Arithmetic is the kernel's int arithmetic: the final comparison
// weight2*overhead1 > weight1*overhead2 is done in int32 and wraps as the
// kernel's does. The sum of eligible weights is exact in int64; the kernel
// keeps it in an int, so both agree while it is below 2^31 - 1 (the kernel
// overflows beyond; here the draw range is then capped at 2^32 - 1).
//
// TwoChoices is safe for concurrent use; Options.Rand is called with a lock
// held, so it need not be.
type TwoChoices struct {
	ix   eligIndex
	fen  weightFenwick // guarded by ix.mu
	rand func(n uint32) uint32
}

var _ service.Scheduler = (*TwoChoices)(nil)
var _ service.Doner = (*TwoChoices)(nil)

// NewTwoChoices returns an unbound twos scheduler drawing from o.Rand, or,
// if that is nil, from a PCG seeded from the runtime's random source.
func NewTwoChoices(o Options) *TwoChoices {
	t := &TwoChoices{rand: o.Rand}
	if t.rand == nil {
		r := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
		t.rand = r.Uint32N
	}
	t.ix.leaf = twosLeaf
	t.ix.tree = &t.fen
	return t
}

// twosLeaf is twos's test, !(flags & IP_VS_DEST_F_OVERLOAD) && weight > 0;
// the leaf value is the weight, 0 when not eligible (it then adds nothing
// to the prefix sums).
func twosLeaf(d *service.Dest) (int64, bool) {
	w := d.Weight()
	if d.Overloaded() || w <= 0 {
		return 0, false
	}
	return int64(w), true
}

// Name returns "twos".
func (*TwoChoices) Name() string { return "twos" }

// Init indexes dests and registers for their load changes.
func (t *TwoChoices) Init(dests []*service.Dest) error { t.ix.init(dests); return nil }

// AddDest indexes the new list.
func (t *TwoChoices) AddDest(dests []*service.Dest, d *service.Dest) { t.ix.add(dests, d) }

// DelDest indexes the new list and stops watching d.
func (t *TwoChoices) DelDest(dests []*service.Dest, d *service.Dest) { t.ix.del(dests, d) }

// UpdDest takes d's new weight.
func (t *TwoChoices) UpdDest(dests []*service.Dest, d *service.Dest) { t.ix.upd(dests, d) }

// Done stops watching the destinations. It must come before another
// scheduler's Init on the same destinations.
func (t *TwoChoices) Done() { t.ix.done() }

// Schedule is ip_vs_twos_schedule with the walks replaced by Fenwick
// searches. It returns nil when no destination is eligible.
func (t *TwoChoices) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	t.ix.mu.Lock()
	total := t.fen.total
	if total <= 0 {
		t.ix.mu.Unlock()
		return nil // "no destination available"
	}
	// total_weight += 1 so that the draws are in [0, total].
	n := uint32(math.MaxUint32)
	if total < math.MaxUint32 {
		n = uint32(total + 1)
	}
	r1 := int64(t.rand(n))
	r2 := int64(t.rand(n))
	i1 := t.fen.search(max(r1, 1))
	i2 := t.fen.search(max(r2, 1))
	d1, w1 := t.ix.dests[i1], int32(t.ix.vals[i1])
	d2, w2 := t.ix.dests[i2], int32(t.ix.vals[i2])
	t.ix.mu.Unlock()
	// ip_vs_dest_conn_overhead in int, compared in int as the kernel does.
	if oh1, oh2 := d1.Overhead(), d2.Overhead(); w2*oh1 > w1*oh2 {
		return d2
	}
	return d1
}

// weightFenwick is a Fenwick (binary indexed) tree of the leaf values of an
// eligIndex, for prefix-sum searches in O(log n). Its methods need
// eligIndex.mu.
type weightFenwick struct {
	vals  []int64 // the leaf values (eligIndex.vals)
	t     []int64 // t[k], 1-based: sum of vals[k-lowbit(k) .. k-1]
	top   int     // largest power of two <= len(vals), 0 if empty
	total int64   // sum of vals
}

func (f *weightFenwick) build(vals []int64, _ []*service.Dest) {
	n := len(vals)
	f.vals = vals
	if cap(f.t) >= n+1 {
		f.t = f.t[:n+1]
	} else {
		f.t = make([]int64, n+1)
	}
	f.t[0] = 0
	f.total = 0
	for i, v := range vals {
		f.t[i+1] = v
		f.total += v
	}
	for k := 1; k <= n; k++ {
		if j := k + k&-k; j <= n {
			f.t[j] += f.t[k]
		}
	}
	f.top = 0
	if n > 0 {
		f.top = 1
		for f.top*2 <= n {
			f.top *= 2
		}
	}
}

func (f *weightFenwick) update(i int, old int64) {
	delta := f.vals[i] - old
	f.total += delta
	for k := i + 1; k < len(f.t); k += k & -k {
		f.t[k] += delta
	}
}

// search returns the 0-based index of the first leaf whose prefix sum
// (itself included) is >= target, for 1 <= target <= total. Leaves are
// non-negative, so the sum first reaches target on a leaf with a positive
// value: an eligible destination.
func (f *weightFenwick) search(target int64) int {
	pos := 0
	for step := f.top; step > 0; step >>= 1 {
		if next := pos + step; next < len(f.t) && f.t[next] < target {
			pos = next
			target -= f.t[next]
		}
	}
	return pos // 1-based pos+1
}
