package sched

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"golvs/internal/service"
)

// mhRef transcribes ip_vs_mh.c, hashing with the general hsiphash over the
// bytes of the u32 v as a little-endian CPU stores them.
type mhRef struct {
	flags  service.Flags
	lookup [4093]*service.Dest // IP_VS_MH_TAB_SIZE: primes[12 - 8]
	setup  []mhRefSetup
	hash1  sipKey
	hash2  sipKey
	gcd    int32
	rshift int32
}

const (
	mhRefSize = 4093
	mhRefBits = 12 / 2 // IP_VS_MH_TAB_BITS
)

type mhRefSetup struct {
	offset, skip, perm uint32
	turns              int32
}

var errMHRefInval = errors.New("EINVAL")

func (r *mhRef) Name() string { return "mh" }

// hashkey is ip_vs_mh_hashkey.
func (r *mhRef) hashkey(af service.Family, addr netip.Addr, port uint16, key sipKey, offset uint32) uint32 {
	v := offset + uint32(port) + krefAddrFold(af, addr)
	var mem [4]byte
	binary.LittleEndian.PutUint32(mem[:], v)
	return hsiphash(key, mem[:])
}

// Init is ip_vs_mh_init_svc.
func (r *mhRef) Init(dests []*service.Dest) error {
	r.hash1 = sipKey{2654435761, 2654435761}
	r.hash2 = sipKey{2654446892, 2654446892}
	l := krefList(dests)
	r.gcd = r.gcdWeight(l)
	r.rshift = r.shiftWeight(l, r.gcd)
	if err := r.reassign(l); err != nil {
		r.reset()
		return err
	}
	return nil
}

// destChanged is ip_vs_mh_dest_changed; ip_vs_ctl ignores its result.
func (r *mhRef) destChanged(dests []*service.Dest) {
	l := krefList(dests)
	r.gcd = r.gcdWeight(l)
	r.rshift = r.shiftWeight(l, r.gcd)
	_ = r.reassign(l)
}

func (r *mhRef) AddDest(dests []*service.Dest, _ *service.Dest) { r.destChanged(dests) }
func (r *mhRef) DelDest(dests []*service.Dest, _ *service.Dest) { r.destChanged(dests) }
func (r *mhRef) UpdDest(dests []*service.Dest, _ *service.Dest) { r.destChanged(dests) }

func (r *mhRef) reset() {
	for i := range r.lookup {
		r.lookup[i] = nil
	}
}

// permutate is ip_vs_mh_permutate.
func (r *mhRef) permutate(l krefList) {
	if r.gcd < 1 {
		return
	}
	p := krefHead
	ds := 0
	for p = l.next(p); p != krefHead; p = l.next(p) {
		dest := l[p]
		// svc->af: the destination's service family.
		af := dest.Svc.Family
		r.setup[ds].offset = r.hashkey(af, dest.Addr, dest.Port, r.hash1, 0) % mhRefSize
		r.setup[ds].skip = r.hashkey(af, dest.Addr, dest.Port, r.hash2, 0)%(mhRefSize-1) + 1
		r.setup[ds].perm = r.setup[ds].offset
		lw := dest.LastWeight()
		r.setup[ds].turns = (lw / r.gcd) >> r.rshift
		if r.setup[ds].turns == 0 {
			if lw != 0 {
				r.setup[ds].turns = 1
			}
		}
		ds++
	}
}

// populate is ip_vs_mh_populate.
func (r *mhRef) populate(l krefList) {
	if r.gcd < 1 {
		r.reset()
		return
	}
	var table [mhRefSize]bool
	p := krefHead
	n := 0
	dtCount := int32(0)
	for n < mhRefSize {
		if p == krefHead {
			p = l.next(p)
		}
		ds := 0
		for p != krefHead {
			if r.setup[ds].turns < 1 {
				p = l.next(p)
				ds++
				continue
			}
			c := r.setup[ds].perm
			for table[c] {
				r.setup[ds].perm += r.setup[ds].skip
				if r.setup[ds].perm >= mhRefSize {
					r.setup[ds].perm -= mhRefSize
				}
				c = r.setup[ds].perm
			}
			table[c] = true
			r.lookup[c] = l[p]
			n++
			if n == mhRefSize {
				return
			}
			dtCount++
			if dtCount >= r.setup[ds].turns {
				dtCount = 0
				p = l.next(p)
				ds++
			}
		}
	}
}

// reassign is ip_vs_mh_reassign.
func (r *mhRef) reassign(l krefList) error {
	if len(l) > mhRefSize {
		return errMHRefInval
	}
	if len(l) >= 1 {
		r.setup = make([]mhRefSetup, len(l))
	}
	r.permutate(l)
	r.populate(l)
	r.setup = nil
	return nil
}

// gcdWeight is ip_vs_mh_gcd_weight.
func (r *mhRef) gcdWeight(l krefList) int32 {
	g := int32(0)
	for _, dest := range l {
		weight := dest.LastWeight()
		if weight > 0 {
			if g > 0 {
				g = krefGCD(weight, g)
			} else {
				g = weight
			}
		}
	}
	return g
}

// krefGCD is lib/math/gcd.c's result (the binary algorithm computes the
// same greatest common divisor).
func krefGCD(a, b int32) int32 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// krefFls is fls(): the 1-based position of the most significant set bit,
// 0 for 0.
func krefFls(x int32) int32 {
	n := int32(0)
	for u := uint32(x); u != 0; u >>= 1 {
		n++
	}
	return n
}

// shiftWeight is ip_vs_mh_shift_weight.
func (r *mhRef) shiftWeight(l krefList, gcd int32) int32 {
	if gcd < 1 {
		return 0
	}
	weight := int32(0)
	for _, dest := range l {
		if nw := dest.LastWeight(); nw > weight {
			weight = nw
		}
	}
	mw := weight / gcd
	shift := krefFls(mw) - mhRefBits
	if shift >= 0 {
		return shift
	}
	return 0
}

func mhRefUnavailable(dest *service.Dest) bool {
	return dest.Weight() <= 0 || dest.Overloaded()
}

// Schedule is ip_vs_mh_schedule with ip_vs_mh_get and ip_vs_mh_get_fallback.
func (r *mhRef) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
	hashAddr := p.Src
	if p.Inverse {
		hashAddr = p.Dst
	}
	af := krefPacketAF(hashAddr)
	var port uint16
	if r.flags&service.FlagSched2 != 0 {
		port = krefGetPort(p)
	}
	if r.flags&service.FlagSched1 == 0 {
		hash := r.hashkey(af, hashAddr, port, r.hash1, 0) % mhRefSize
		dest := r.lookup[hash]
		if dest == nil || mhRefUnavailable(dest) {
			return nil
		}
		return dest
	}
	ihash := r.hashkey(af, hashAddr, port, r.hash1, 0) % mhRefSize
	dest := r.lookup[ihash]
	if dest == nil {
		return nil
	}
	if !mhRefUnavailable(dest) {
		return dest
	}
	for offset := uint32(0); offset < mhRefSize; offset++ {
		roffset := (offset + ihash) % mhRefSize
		hash := r.hashkey(af, hashAddr, port, r.hash1, roffset) % mhRefSize
		dest = r.lookup[hash]
		if dest == nil {
			break
		}
		if !mhRefUnavailable(dest) {
			return dest
		}
	}
	return nil
}
