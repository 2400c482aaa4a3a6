// Package addrset is an immutable set of IPv4 and IPv6 addresses held as
// sorted, merged ranges, for the director's deny list: the clients whose
// packets to the virtual services GoLVS drops, as the kernel's INPUT
// filter (an nftables set such as fail2ban's, `ip saddr @deny drop`) would
// drop them before IPVS saw them (nft_set_rbtree/nft_set_pipapo's
// interval semantics: a set holds addresses, prefixes and ranges).
//
// Contains is a binary search that does not allocate.
package addrset

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
)

type range4 struct{ lo, hi uint32 }

type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo) }

func (a u128) next() (u128, bool) {
	if a.lo == ^uint64(0) {
		if a.hi == ^uint64(0) {
			return a, false
		}
		return u128{a.hi + 1, 0}, true
	}
	return u128{a.hi, a.lo + 1}, true
}

type range6 struct{ lo, hi u128 }

// Set is an immutable set of addresses. The nil *Set is empty.
type Set struct {
	v4 []range4
	v6 []range6
}

// Range is an inclusive range of addresses of one family.
type Range struct{ From, To netip.Addr }

// FromPrefix returns the range a prefix covers.
func FromPrefix(p netip.Prefix) Range {
	p = p.Masked()
	a := p.Addr()
	if a.Is4() {
		v := binary.BigEndian.Uint32(a.AsSlice())
		span := uint32(0)
		if p.Bits() < 32 {
			span = ^uint32(0) >> p.Bits()
		}
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], v|span)
		return Range{a, netip.AddrFrom4(b)}
	}
	u := to128(a)
	var span u128
	switch bits := p.Bits(); {
	case bits == 0:
		span = u128{^uint64(0), ^uint64(0)}
	case bits < 64:
		span = u128{^uint64(0) >> bits, ^uint64(0)}
	case bits < 128:
		span = u128{0, ^uint64(0) >> (bits - 64)}
	}
	return Range{a, from128(u128{u.hi | span.hi, u.lo | span.lo})}
}

func to128(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func from128(u u128) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

// New returns the set of the ranges (overlapping and adjacent ones are
// merged). IPv4-mapped IPv6 addresses count as IPv4.
func New(rs []Range) (*Set, error) {
	s := &Set{}
	for _, r := range rs {
		from, to := r.From.Unmap(), r.To.Unmap()
		if !from.IsValid() || !to.IsValid() || from.Is4() != to.Is4() || to.Less(from) {
			return nil, fmt.Errorf("addrset: bad range %v-%v", r.From, r.To)
		}
		if from.Zone() != "" || to.Zone() != "" {
			return nil, fmt.Errorf("addrset: zoned range %v-%v", r.From, r.To)
		}
		if from.Is4() {
			s.v4 = append(s.v4, range4{binary.BigEndian.Uint32(from.AsSlice()), binary.BigEndian.Uint32(to.AsSlice())})
		} else {
			s.v6 = append(s.v6, range6{to128(from), to128(to)})
		}
	}
	slices.SortFunc(s.v4, func(a, b range4) int {
		switch {
		case a.lo < b.lo:
			return -1
		case a.lo > b.lo:
			return 1
		}
		return 0
	})
	s.v4 = merge4(s.v4)
	slices.SortFunc(s.v6, func(a, b range6) int {
		switch {
		case a.lo.less(b.lo):
			return -1
		case b.lo.less(a.lo):
			return 1
		}
		return 0
	})
	s.v6 = merge6(s.v6)
	return s, nil
}

func merge4(rs []range4) []range4 {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && (out[n-1].hi == ^uint32(0) || r.lo <= out[n-1].hi+1) {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func merge6(rs []range6) []range6 {
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			nx, ok := last.hi.next()
			if !ok || !nx.less(r.lo) {
				if last.hi.less(r.hi) {
					last.hi = r.hi
				}
				continue
			}
		}
		out = append(out, r)
	}
	return out
}

// Len returns the number of merged ranges.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.v4) + len(s.v6)
}

// Contains reports whether a is in the set.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil {
		return false
	}
	if a.Is4() || a.Is4In6() {
		b := a.As16()
		v := binary.BigEndian.Uint32(b[12:])
		i, j := 0, len(s.v4)
		for i < j { // the first range with hi >= v
			h := int(uint(i+j) >> 1)
			if s.v4[h].hi < v {
				i = h + 1
			} else {
				j = h
			}
		}
		return i < len(s.v4) && s.v4[i].lo <= v
	}
	u := to128(a)
	i, j := 0, len(s.v6)
	for i < j {
		h := int(uint(i+j) >> 1)
		if s.v6[h].hi.less(u) {
			i = h + 1
		} else {
			j = h
		}
	}
	return i < len(s.v6) && !u.less(s.v6[i].lo)
}
