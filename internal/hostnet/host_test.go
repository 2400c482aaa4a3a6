package hostnet

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func TestVIP(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	d0 := mustLink(t, h, "d0")
	v4 := netip.MustParseAddr("198.18.100.5")
	v6 := netip.MustParseAddr("2001:db8:100::5")
	for _, v := range []netip.Addr{v4, v6} {
		if _, ok, err := h.HasAddr(v); err != nil || ok {
			t.Fatalf("HasAddr(%v) before = %v, %v", v, ok, err)
		}
		for range 2 { // adding twice is not an error
			if err := h.AddVIP("d0", v, "d0:vip"); err != nil {
				t.Fatalf("AddVIP(%v): %v", v, err)
			}
		}
		if idx, ok, err := h.HasAddr(v); err != nil || !ok || idx != d0 {
			t.Errorf("HasAddr(%v) = %d, %v, %v; want d0 (%d)", v, idx, ok, err, d0)
		}
	}
	// The VIP on lo of the topology is found too.
	if idx, ok, err := h.HasAddr(vip4); err != nil || !ok || idx != 1 {
		t.Errorf("HasAddr(VIP on lo) = %d, %v, %v", idx, ok, err)
	}
	// The kernel's view of the new addresses: /32 with its label, /128
	// usable at once (no DAD).
	addrs, err := h.nl.AddrList(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: d0}}, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var seen int
	for _, a := range addrs {
		p, _ := prefixOf(a.IPNet)
		switch p.Addr() {
		case v4:
			seen++
			if p.Bits() != 32 || a.Label != "d0:vip" {
				t.Errorf("IPv4 VIP = %v label %q", p, a.Label)
			}
		case v6:
			seen++
			if p.Bits() != 128 || a.Flags&unix.IFA_F_TENTATIVE != 0 {
				t.Errorf("IPv6 VIP = %v flags %#x", p, a.Flags)
			}
		}
	}
	if seen != 2 {
		t.Errorf("found %d of the 2 VIPs on d0: %v", seen, addrs)
	}
	for _, v := range []netip.Addr{v4, v6} {
		for range 2 { // deleting twice is not an error
			if err := h.DelVIP("d0", v); err != nil {
				t.Fatalf("DelVIP(%v): %v", v, err)
			}
		}
		if _, ok, err := h.HasAddr(v); err != nil || ok {
			t.Errorf("HasAddr(%v) after DelVIP = %v, %v", v, ok, err)
		}
	}
	if err := h.AddVIP("d0", v4, "eth9:x"); err == nil {
		t.Errorf("AddVIP with a label not starting with the interface name succeeded")
	}
	if err := h.AddVIP("nosuch0", v4, ""); err == nil {
		t.Errorf("AddVIP on a missing interface succeeded")
	}
	if err := h.AddVIP("d0", netip.Addr{}, ""); err == nil {
		t.Errorf("AddVIP of the zero address succeeded")
	}
}
