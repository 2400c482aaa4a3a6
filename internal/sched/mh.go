package sched

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync/atomic"

	"golvs/internal/service"
)

// Maglev hashing, the kernel's ip_vs_mh.c (after Eisenbud et al., "Maglev: A
// Fast and Reliable Software Network Load Balancer", NSDI 2016, §3.4).

const (
	// mhTabSize is IP_VS_MH_TAB_SIZE with the kernel default
	// CONFIG_IP_VS_MH_TAB_INDEX = 12: primes[12 - 8] of {251, 509, 1021,
	// 2039, 4093, ...}. It must be prime so that every skip in [1, M-1]
	// walks all slots.
	mhTabSize = 4093
	// mhTabBits is IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2: the
	// relative weights (weight / gcd) are shifted right until they fit in
	// this many bits, so no destination takes more than 63 slots per round.
	mhTabBits = 6
)

// The kernel's fixed hash keys (generate_hash_secret): both words of
// hash1 are 2654435761 (0x9e3779b1, Knuth's multiplicative constant) and of
// hash2 2654446892. Fixed keys make every director build the same table.
var (
	mhKey1 = sipKey{2654435761, 2654435761}
	mhKey2 = sipKey{2654446892, 2654446892}
)

// ErrTooManyDests is returned by Maglev.Init for a service with more
// destinations than lookup-table slots (the kernel's EINVAL from
// ip_vs_mh_reassign).
var ErrTooManyDests = errors.New("more destinations than Maglev table slots")

// mhTable is one built lookup table: slot[i] is the index in dests of the
// destination of slot i. Every slot is filled (a table exists only when
// some destination has a positive last weight). Indices rather than
// pointers keep the table small (8 KiB) and free of pointers for the GC.
type mhTable struct {
	dests []*service.Dest // the destinations at build time, list order
	slot  [mhTabSize]uint16
}

// Maglev is the "mh" scheduler: a 4093-slot lookup table, built with the
// Maglev population algorithm from per-destination permutations, maps a
// SipHash of the client address (and, with mh-port, the client port) to a
// destination. Adding or removing one of N destinations moves about 1/N of
// the clients. The table is built from each destination's last non-zero
// weight, so quiescing a server (weight 0) does not move anyone else's
// clients: its slots just become unavailable, and with mh-fallback its
// clients are rehashed to other servers.
//
// The table is rebuilt by the hooks and published atomically, so Schedule,
// which does not allocate, is safe for concurrent use with them. The hooks
// themselves must be serialised (the control plane does).
type Maglev struct {
	flags atomic.Uint32           // service.Flags; FlagSched1, FlagSched2 read
	tab   atomic.Pointer[mhTable] // nil: no destination with a positive last weight
}

// NewMaglev returns an unbound mh scheduler for a service with flags
// o.Flags.
func NewMaglev(o Options) *Maglev {
	m := &Maglev{}
	m.flags.Store(uint32(o.Flags))
	return m
}

// Name returns "mh".
func (m *Maglev) Name() string { return "mh" }

// SetFlags changes the service flags the scheduler reads (mh-fallback,
// mh-port). The kernel reads svc->flags at each schedule, so an edit of the
// service (ipvsadm -E -b) takes effect at once without a rebuild.
func (m *Maglev) SetFlags(f service.Flags) { m.flags.Store(uint32(f)) }

// Init builds the table (ip_vs_mh_init_svc). With more than 4093
// destinations it fails with ErrTooManyDests, as the kernel does with
// EINVAL.
func (m *Maglev) Init(dests []*service.Dest) error {
	t, err := mhBuild(dests)
	if err != nil {
		return fmt.Errorf("mh: %d destinations: %w", len(dests), err)
	}
	m.tab.Store(t)
	return nil
}

// AddDest rebuilds the table (add_dest = ip_vs_mh_dest_changed).
func (m *Maglev) AddDest(dests []*service.Dest, _ *service.Dest) { m.rebuild(dests) }

// DelDest rebuilds the table (del_dest = ip_vs_mh_dest_changed).
func (m *Maglev) DelDest(dests []*service.Dest, _ *service.Dest) { m.rebuild(dests) }

// UpdDest rebuilds the table (upd_dest = ip_vs_mh_dest_changed); a change to
// weight 0 leaves the last weight, and so the table, as it was.
func (m *Maglev) UpdDest(dests []*service.Dest, _ *service.Dest) { m.rebuild(dests) }

// rebuild is ip_vs_mh_dest_changed. When the build fails (too many
// destinations) the kernel's ip_vs_ctl ignores the hook's error and the old
// table stays in use, even with slots naming a destination that has since
// been deleted; so does this one.
func (m *Maglev) rebuild(dests []*service.Dest) {
	if t, err := mhBuild(dests); err == nil {
		m.tab.Store(t)
	}
}

// mhSetup is the kernel's struct ip_vs_mh_dest_setup.
type mhSetup struct {
	perm  uint32 // next preferred slot (starts at the offset)
	skip  uint32
	turns int32 // slots per round: (last_weight / gcd) >> rshift, at least 1 if last_weight != 0
}

// mhBuild is ip_vs_mh_reassign: ip_vs_mh_gcd_weight, ip_vs_mh_shift_weight,
// ip_vs_mh_permutate and ip_vs_mh_populate. It returns a nil table when no
// destination has a positive last weight (the kernel's reset table of NULL
// slots).
func mhBuild(dests []*service.Dest) (*mhTable, error) {
	if len(dests) > mhTabSize {
		return nil, ErrTooManyDests
	}
	var g, maxw int32
	for _, d := range dests {
		w := d.LastWeight()
		if w > 0 {
			if g > 0 {
				g = mhGCD(w, g)
			} else {
				g = w
			}
		}
		if w > maxw {
			maxw = w
		}
	}
	if g < 1 {
		return nil, nil
	}
	// "shift = occupied bits of weight/gcd - MH highest bits" (fls).
	shift := max(bits.Len32(uint32(maxw/g))-mhTabBits, 0)

	ds := make([]mhSetup, len(dests))
	for i, d := range dests {
		k := mhDestKey(d)
		ds[i].perm = hsiphash1u32(mhKey1, k) % mhTabSize
		ds[i].skip = hsiphash1u32(mhKey2, k)%(mhTabSize-1) + 1
		lw := d.LastWeight()
		ds[i].turns = (lw / g) >> shift
		if ds[i].turns == 0 && lw != 0 {
			ds[i].turns = 1
		}
	}

	t := &mhTable{dests: slices.Clone(dests)}
	var filled [(mhTabSize + 63) / 64]uint64 // the kernel's bitmap
	n, dt := 0, int32(0)
	for {
		// One round over the destinations in list order; a destination
		// with no turns (last weight 0) is skipped.
		for i := 0; i < len(ds); {
			s := &ds[i]
			if s.turns < 1 {
				i++
				continue
			}
			c := s.perm
			for filled[c/64]&(1<<(c%64)) != 0 {
				if s.perm += s.skip; s.perm >= mhTabSize {
					s.perm -= mhTabSize
				}
				c = s.perm
			}
			filled[c/64] |= 1 << (c % 64)
			t.slot[c] = uint16(i)
			if n++; n == mhTabSize {
				return t, nil
			}
			if dt++; dt >= s.turns {
				dt = 0
				i++
			}
		}
	}
}

// mhGCD is the kernel's gcd() for positive arguments.
func mhGCD(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// mhDestKey is what ip_vs_mh_permutate hashes of a destination,
// ntohs(port) + ntohl(addr_fold), with the address folded as the service's
// family (svc->af) sees it: an IPv6 destination of an IPv4 service (a
// tunnel destination) contributes only its first 32-bit word (addr->ip),
// while an IPv4 destination of an IPv6 service folds to itself (its other
// words are zero).
func mhDestKey(d *service.Dest) uint32 {
	a := fold(d.Addr)
	if d.Svc.Family == service.IPv4 && d.Addr.Is6() {
		b := d.Addr.As16()
		a = binary.BigEndian.Uint32(b[0:4])
	}
	return uint32(d.Port) + a
}

// Schedule returns the destination of the client's slot, or with
// mh-fallback the first available one among the client's rehashes.
func (m *Maglev) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
	t := m.tab.Load()
	if t == nil {
		return nil
	}
	f := service.Flags(m.flags.Load())
	v := shmhKey(p, f&service.FlagMHPort != 0)
	ihash := hsiphash1u32(mhKey1, v) % mhTabSize
	d := t.dests[t.slot[ihash]]
	if shmhAvailable(d) {
		return d
	}
	if f&service.FlagMHFallback == 0 {
		return nil
	}
	// ip_vs_mh_get_fallback: rehash with offset (offset + ihash) % M
	// added to the hashed value, M times at most.
	for offset := uint32(0); offset < mhTabSize; offset++ {
		roffset := (offset + ihash) % mhTabSize
		d = t.dests[t.slot[hsiphash1u32(mhKey1, roffset+v)%mhTabSize]]
		if shmhAvailable(d) {
			return d
		}
	}
	return nil
}

// Interface guards.
var _ service.Scheduler = (*Maglev)(nil)
