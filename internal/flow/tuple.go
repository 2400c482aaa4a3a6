package flow

import (
	"fmt"
	"net/netip"
)

// Address families of a Tuple.
const (
	// FamilyIPv4 marks an IPv4 tuple: the addresses are in the first 4
	// bytes of Src and Dst, the other 12 are zero.
	FamilyIPv4 uint8 = 4
	// FamilyIPv6 marks an IPv6 tuple.
	FamilyIPv6 uint8 = 6
)

// Tuple is the key of a flow: address family, protocol, source and
// destination address and port. It is packed (38 bytes, no padding, no
// pointers), comparable with ==, and usable as a map key; two tuples of
// the same flow are equal because an IPv4 address always leaves bytes
// 4..15 zero (use MakeTuple or Decode, or keep that invariant). Ports are
// zero for protocols without ports and for non-first fragments.
//
// The zero Tuple (Family 0) is "no flow". A Tuple is a value: copy it
// freely.
type Tuple struct {
	Src, Dst         [16]byte
	SrcPort, DstPort uint16
	Family           uint8 // FamilyIPv4, FamilyIPv6, or 0
	Proto            uint8 // IP protocol number (header.ProtoTCP, ...)
}

// MakeTuple returns the tuple of proto between src and dst. The family is
// IPv4 if both addresses are IPv4 (an IPv4-mapped IPv6 address counts as
// IPv6, as on the wire); mixed families give the zero Tuple.
func MakeTuple(proto uint8, src, dst netip.AddrPort) Tuple {
	s, d := src.Addr(), dst.Addr()
	var t Tuple
	switch {
	case s.Is4() && d.Is4():
		a, b := s.As4(), d.As4()
		copy(t.Src[:4], a[:])
		copy(t.Dst[:4], b[:])
		t.Family = FamilyIPv4
	case s.Is6() && d.Is6():
		t.Src, t.Dst = s.As16(), d.As16()
		t.Family = FamilyIPv6
	default:
		return Tuple{}
	}
	t.Proto = proto
	t.SrcPort, t.DstPort = src.Port(), dst.Port()
	return t
}

// IsValid reports whether t names a flow (its family is set).
func (t Tuple) IsValid() bool { return t.Family == FamilyIPv4 || t.Family == FamilyIPv6 }

// SrcAddr returns the source address (the zero Addr for the zero Tuple).
func (t Tuple) SrcAddr() netip.Addr { return t.addr(&t.Src) }

// DstAddr returns the destination address.
func (t Tuple) DstAddr() netip.Addr { return t.addr(&t.Dst) }

func (t Tuple) addr(a *[16]byte) netip.Addr {
	switch t.Family {
	case FamilyIPv4:
		return netip.AddrFrom4([4]byte(a[:4]))
	case FamilyIPv6:
		return netip.AddrFrom16(*a)
	}
	return netip.Addr{}
}

// SrcAddrPort returns the source address and port.
func (t Tuple) SrcAddrPort() netip.AddrPort { return netip.AddrPortFrom(t.SrcAddr(), t.SrcPort) }

// DstAddrPort returns the destination address and port.
func (t Tuple) DstAddrPort() netip.AddrPort { return netip.AddrPortFrom(t.DstAddr(), t.DstPort) }

// Reverse returns the tuple of the other direction (source and
// destination swapped): the key of a reply, or the lookup of an ICMP
// error's embedded packet (IPVS's IP_VS_HDR_INVERSE).
func (t Tuple) Reverse() Tuple {
	t.Src, t.Dst = t.Dst, t.Src
	t.SrcPort, t.DstPort = t.DstPort, t.SrcPort
	return t
}

// String formats t as "proto src > dst" for logs and tests (it
// allocates; keep it off the packet path).
func (t Tuple) String() string {
	if !t.IsValid() {
		return "invalid"
	}
	return fmt.Sprintf("%d %v > %v", t.Proto, t.SrcAddrPort(), t.DstAddrPort())
}
