package flow

import (
	"net/netip"
	"testing"
	"unsafe"

	"golvs/internal/header"
)

func TestTupleLayout(t *testing.T) {
	// Packed: two addresses, two ports, family and protocol, no padding.
	if got := unsafe.Sizeof(Tuple{}); got != 16+16+2+2+1+1 {
		t.Errorf("sizeof(Tuple) = %d, want 38", got)
	}
	m := map[Tuple]int{} // comparable: usable as a map key
	m[t4(6, client4, 1, vip4, 80)]++
	m[t4(6, client4, 1, vip4, 80)]++
	if len(m) != 1 {
		t.Error("equal tuples are different keys")
	}
}

func TestMakeTuple(t *testing.T) {
	c4 := netip.AddrPortFrom(netip.AddrFrom4(client4), 40000)
	v4 := netip.AddrPortFrom(netip.AddrFrom4(vip4), 80)
	c6 := netip.AddrPortFrom(netip.AddrFrom16(client6), 5000)
	v6 := netip.AddrPortFrom(netip.AddrFrom16(vip6), 53)

	if got, want := MakeTuple(header.ProtoTCP, c4, v4), t4(header.ProtoTCP, client4, 40000, vip4, 80); got != want {
		t.Errorf("IPv4: %+v, want %+v", got, want)
	}
	if got, want := MakeTuple(header.ProtoUDP, c6, v6), t6(header.ProtoUDP, client6, 5000, vip6, 53); got != want {
		t.Errorf("IPv6: %+v, want %+v", got, want)
	}
	if got := MakeTuple(header.ProtoUDP, c4, v6); got.IsValid() {
		t.Errorf("mixed families: %+v", got)
	}
	mapped := netip.AddrPortFrom(netip.AddrFrom16(netip.AddrFrom4(client4).As16()), 1)
	if got := MakeTuple(header.ProtoUDP, mapped, v6); got.Family != FamilyIPv6 {
		t.Errorf("IPv4-mapped address: family %d", got.Family)
	}

	// The decoded tuple equals the made one.
	var p Parsed
	p.Decode(cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoTCP, client4, vip4, tcp(40000, 80, header.TCPFlagSYN, ""))))
	if p.Tuple != MakeTuple(header.ProtoTCP, c4, v4) {
		t.Errorf("decoded %+v", p.Tuple)
	}

	tu := MakeTuple(header.ProtoTCP, c4, v4)
	if tu.SrcAddrPort() != c4 || tu.DstAddrPort() != v4 || tu.SrcAddr() != c4.Addr() || tu.DstAddr() != v4.Addr() {
		t.Errorf("addresses of %+v", tu)
	}
	r := tu.Reverse()
	if r.SrcAddrPort() != v4 || r.DstAddrPort() != c4 || r.Proto != header.ProtoTCP || r.Reverse() != tu {
		t.Errorf("Reverse = %+v", r)
	}
	if s := tu.String(); s != "6 192.0.2.10:40000 > 198.51.100.1:80" {
		t.Errorf("String = %q", s)
	}
	if s := MakeTuple(header.ProtoUDP, c6, v6).String(); s != "17 [2001:db8::a]:5000 > [2001:db8::1]:53" {
		t.Errorf("String = %q", s)
	}
	if (Tuple{}).String() != "invalid" || (Tuple{}).SrcAddr().IsValid() {
		t.Error("zero Tuple")
	}
}
