package vrrpd

import (
	"encoding/hex"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"golvs/internal/realserver/nstest"
	"golvs/internal/vrrp"
)

// TestGARPFrame: keepalived's gratuitous ARP (ipvs-features.md §7.8),
// padded to the minimum Ethernet frame.
func TestGARPFrame(t *testing.T) {
	var b [ethMinFrame]byte
	got := garpFrame(b[:], [6]byte{2, 0, 0, 0, 0, 1}, netip.MustParseAddr("198.18.0.10"))
	want := "" +
		"ffffffffffff" + // destination: broadcast
		"020000000001" + // source: the interface
		"0806" + // ARP
		"0001" + "0800" + "06" + "04" + // Ethernet, IPv4, lengths
		"0001" + // request
		"020000000001" + "c612000a" + // sender: the interface's MAC, the VIP
		"ffffffffffff" + "c612000a" + // target: broadcast MAC, the VIP
		strings.Repeat("00", 18) // padding to 60 bytes
	if h := hex.EncodeToString(got); h != want {
		t.Errorf("frame\n got %s\nwant %s", h, want)
	}
}

// TestNAPacket: the unsolicited neighbour advert of RFC 4861 §7.2.6.
func TestNAPacket(t *testing.T) {
	var b [naLen]byte
	got := naPacket(b[:], netip.MustParseAddr("2001:db8::10"), net.HardwareAddr{2, 0, 0, 0, 0, 1}, true)
	want := "" +
		"88" + "00" + "0000" + // type 136, code 0, checksum (the kernel's)
		"a0000000" + // Router and Override, not Solicited
		"20010db8000000000000000000000010" + // target
		"02" + "01" + "020000000001" // target link-layer address option
	if h := hex.EncodeToString(got); h != want {
		t.Errorf("packet\n got %s\nwant %s", h, want)
	}
}

// sysPair is two namespaces joined by a veth pair (eth0 on both), each
// with a hostSys opened in it.
type sysPair struct {
	a, b       *nstest.NS
	sysA, sysB *hostSys
	linkA      linkInfo
	linkB      linkInfo
}

func newSysPair(t *testing.T) *sysPair {
	nstest.Require(t)
	p := &sysPair{a: nstest.New(t, "vra"), b: nstest.New(t, "vrb")}
	for _, ns := range []*nstest.NS{p.a, p.b} {
		ns.Sysctl(t, "net/ipv6/conf/default/accept_dad", "0")
		ns.Sysctl(t, "net/ipv6/conf/all/accept_dad", "0")
	}
	nstest.Veth(t, p.a, "eth0", "198.18.7.1/24", p.b, "eth0", "198.18.7.2/24")
	for i, ns := range []*nstest.NS{p.a, p.b} {
		var s *hostSys
		if err := ns.Do(func() error {
			var err error
			s, err = newHostSys(testLogger(t, ns.Name))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		l, err := s.Link("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			p.sysA, p.linkA = s, l
		} else {
			p.sysB, p.linkB = s, l
		}
	}
	// Wait for the link-local addresses (no DAD, but the link must be up).
	deadline := time.Now().Add(5 * time.Second)
	for _, x := range []struct {
		s *hostSys
		l linkInfo
	}{{p.sysA, p.linkA}, {p.sysB, p.linkB}} {
		for {
			if _, err := x.s.PrimaryAddr(x.l, vrrp.IPv6, func(netip.Addr) bool { return false }); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no IPv6 link-local address")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// TestHostAddrs: virtual addresses as the kernel gets them: prefix,
// label, scope, broadcast; IPv6 ones nodad and deprecated (preferred_lft
// 0, as keepalived 2.2.7 adds them); adding twice and deleting what is not
// there are no errors; the primary address skips VIPs.
func TestHostAddrs(t *testing.T) {
	p := newSysPair(t)
	// Another subnet than eth0's: the kernel refuses a secondary address
	// with another scope than its primary ("ipv4: Invalid scope value").
	v4 := vipSpec{Prefix: netip.MustParsePrefix("198.18.8.100/24"), Dev: "eth0", Label: "eth0:vip", Scope: 253,
		Broadcast: netip.MustParseAddr("198.18.8.255"), PreferredLft: -1}
	v6 := vipSpec{Prefix: netip.MustParsePrefix("2001:db8:7::100/64"), Dev: "eth0", PreferredLft: 0}
	for _, v := range []vipSpec{v4, v6, v4} {
		if err := p.sysA.AddAddr(v); err != nil {
			t.Fatal(err)
		}
	}
	out := p.a.IP(t, "addr", "show", "dev", "eth0")
	for _, re := range []string{
		`inet 198\.18\.8\.100/24 brd 198\.18\.8\.255 scope link eth0:vip`,
		`inet6 2001:db8:7::100/64 scope global nodad deprecated\s+valid_lft forever preferred_lft 0sec`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no %q in:\n%s", re, out)
		}
	}
	for _, v := range []vipSpec{v4, v6} {
		if has, err := p.sysA.HasAddr(v); err != nil || !has {
			t.Errorf("HasAddr(%v) = %v, %v after adding", v, has, err)
		}
	}
	if a, err := p.sysA.PrimaryAddr(p.linkA, vrrp.IPv4, func(a netip.Addr) bool { return a == netip.MustParseAddr("198.18.7.1") }); err != nil || a != v4.Prefix.Addr() {
		t.Errorf("PrimaryAddr skipping 198.18.7.1: %v, %v; want the next one", a, err)
	}
	for _, v := range []vipSpec{v4, v6, v4} {
		if err := p.sysA.DelAddr(v); err != nil {
			t.Fatal(err)
		}
	}
	if out := p.a.IP(t, "addr", "show", "dev", "eth0"); strings.Contains(out, "::100") || strings.Contains(out, ".100/") {
		t.Errorf("VIPs left after DelAddr:\n%s", out)
	}
}

// recv reads one advert from c within a second.
func recv(t *testing.T, c advertConn) ([]byte, pktInfo) {
	t.Helper()
	type res struct {
		b   []byte
		p   pktInfo
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b := make([]byte, readBuf)
		n, p, err := c.Read(b)
		ch <- res{b[:n], p, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		return r.b, r.p
	case <-time.After(time.Second):
		c.Close()
		<-ch
		t.Fatal("no advert within 1 s")
	}
	return nil, pktInfo{}
}

// TestHostAdverts: adverts over the real kernel, multicast (TTL 255,
// the group as destination) and unicast (unicast_ttl), IPv4 and IPv6
// (from the link-local address, the checksum over the pseudo-header
// verifying on the other side).
func TestHostAdverts(t *testing.T) {
	p := newSysPair(t)
	none := func(netip.Addr) bool { return false }
	for _, tc := range []struct {
		name    string
		fam     vrrp.Family
		unicast bool
		ttl     int
	}{
		{"IPv4 multicast", vrrp.IPv4, false, vrrp.TTL},
		{"IPv6 multicast", vrrp.IPv6, false, vrrp.TTL},
		{"IPv4 unicast", vrrp.IPv4, true, 64},
		{"IPv6 unicast", vrrp.IPv6, true, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			la, err := p.sysA.PrimaryAddr(p.linkA, tc.fam, none)
			if err != nil {
				t.Fatal(err)
			}
			lb, err := p.sysB.PrimaryAddr(p.linkB, tc.fam, none)
			if err != nil {
				t.Fatal(err)
			}
			group := vrrp.MulticastIPv4
			if tc.fam == vrrp.IPv6 {
				group = vrrp.MulticastIPv6
			}
			dst := group
			if tc.unicast {
				group, dst = netip.Addr{}, lb
			}
			var ca, cb advertConn
			if err := p.a.Do(func() error {
				ca, err = p.sysA.ListenAdverts(sockSpec{Family: tc.fam, Link: p.linkA, Local: la, Group: group, TTL: tc.ttl})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer ca.Close()
			if err := p.b.Do(func() error {
				cb, err = p.sysB.ListenAdverts(sockSpec{Family: tc.fam, Link: p.linkB, Local: lb, Group: group, TTL: tc.ttl})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer cb.Close()
			var ad vrrp.Advert
			ad.Version, ad.VRID, ad.Priority, ad.Interval, ad.Family = 3, 51, 100, 100, tc.fam
			vip := netip.MustParseAddr("198.18.7.100")
			if tc.fam == vrrp.IPv6 {
				vip = netip.MustParseAddr("2001:db8:7::100")
			}
			if err := ad.SetAddrs([]netip.Addr{vip}); err != nil {
				t.Fatal(err)
			}
			msg := vrrp.Append(nil, ad, la, dst)
			if err := ca.Write(msg, la, dst); err != nil {
				t.Fatal(err)
			}
			b, info := recv(t, cb)
			if info.Src != la.WithZone("") || info.Dst != dst.WithZone("") || info.TTL != tc.ttl || info.IfIndex != p.linkB.Index {
				t.Errorf("received from %v to %v TTL %d on %d; want from %v to %v TTL %d on %d",
					info.Src, info.Dst, info.TTL, info.IfIndex, la, dst, tc.ttl, p.linkB.Index)
			}
			got, err := vrrp.Decode(b, tc.fam, info.Src, info.Dst)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !got.Equal(&ad) {
				t.Errorf("received %+v, want %+v", got, ad)
			}
		})
	}
}

// TestHostAnnounce: a gratuitous ARP and an unsolicited neighbour advert
// move the other side's neighbour entries for the VIPs to our MAC (entries
// it had, as a client that spoke to the old master has).
func TestHostAnnounce(t *testing.T) {
	p := newSysPair(t)
	v4, v6 := "198.18.7.100", "2001:db8:7::100"
	p.b.IP(t, "-6", "addr", "add", "2001:db8:7::2/64", "dev", "eth0", "nodad")
	old := "02:00:00:00:00:99"
	for _, v := range []string{v4, v6} {
		p.b.IP(t, "neigh", "replace", v, "lladdr", old, "dev", "eth0", "nud", "stale")
		a := netip.MustParseAddr(v)
		if err := p.sysA.AddAddr(vipSpec{Prefix: netip.PrefixFrom(a, a.BitLen()), Dev: "eth0", PreferredLft: -1}); err != nil {
			t.Fatal(err)
		}
	}
	var an announcer
	if err := p.a.Do(func() error {
		var err error
		an, err = p.sysA.OpenAnnouncer(p.linkA)
		if err != nil {
			return err
		}
		for _, v := range []string{v4, v6} {
			if err := an.Announce(netip.MustParseAddr(v)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer an.Close()
	deadline := time.Now().Add(2 * time.Second)
	for _, v := range []string{v4, v6} {
		for {
			out := p.b.IP(t, "neigh", "show", v, "dev", "eth0")
			if strings.Contains(out, p.linkA.MAC.String()) {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s: neighbour entry %q, want %s's MAC %s", v, out, "a", p.linkA.MAC)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
