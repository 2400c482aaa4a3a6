package realserver

// Namespace tests: they need root and ip(8), and skip otherwise. Each
// builds its own golvs-* namespaces, deleted at the end even on failure.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"golvs/internal/realserver/nstest"
)

func mustAddrs(t *testing.T, s string) []netip.Addr {
	t.Helper()
	a, err := ParseVIPs(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestNetnsSetupTeardown(t *testing.T) {
	nstest.Require(t)
	rs := nstest.New(t, "rs")
	// What was there before and must be there after: an unrelated
	// address, a VIP already on lo, sysctl values of every kind.
	rs.IP(t, "addr", "add", "198.18.200.1/32", "dev", "lo")
	rs.IP(t, "addr", "add", "198.18.100.2/32", "dev", "lo")
	rs.Sysctl(t, ipv4Conf("all", "arp_announce"), "1") // not enough: becomes 2, then 1 again
	rs.Sysctl(t, ipv4Conf("lo", "arp_ignore"), "2")    // strict enough: left alone
	rs.Sysctl(t, ipv4Conf("all", "rp_filter"), "1")    // strict: relaxed to 2 for TUN, then 1 again
	rs.Sysctl(t, ipv4Conf("default", "rp_filter"), "1")
	before := nstest.Snapshot(t, rs)

	dir := t.TempDir()
	cfg := Config{VIPs: mustAddrs(t, "198.18.100.1,198.18.100.2,2001:db8:100::1"), Tun: true, StateDir: dir}
	var res Result
	if err := rs.Do(func() (err error) { res, err = Setup(cfg); return err }); err != nil {
		t.Fatalf("Setup: %v", err)
	}
	dev4 := "lo"
	if res.Kernel&IPIP != 0 {
		dev4 = "tunl0" // a kernel with the ipip driver
	}
	if res.User|res.Kernel != allEncaps || res.User&res.Kernel != 0 {
		t.Errorf("Result %+v: want every encapsulation exactly once", res)
	}
	t.Logf("kernel decapsulates %v, user space must: %v", res.Kernel, res.User)

	addrs := rs.IP(t, "-o", "addr", "show")
	for _, want := range []string{dev4 + "    inet 198.18.100.1/32", "lo    inet 198.18.100.2/32", "lo    inet6 2001:db8:100::1/128", "lo    inet 198.18.200.1/32"} {
		if !strings.Contains(addrs, want) {
			t.Errorf("addresses lack %q:\n%s", want, addrs)
		}
	}
	routes := rs.IP(t, "-4", "route", "show", "table", "main")
	for _, want := range []string{"198.18.100.1 dev " + dev4 + " scope link", "198.18.100.2 dev lo scope link"} {
		if !strings.Contains(routes, want) {
			t.Errorf("routes lack %q:\n%s", want, routes)
		}
	}
	for path, want := range map[string]string{
		ipv4Conf("all", "arp_ignore"):     "1",
		ipv4Conf("all", "arp_announce"):   "2",
		ipv4Conf("lo", "arp_ignore"):      "2",
		ipv4Conf("lo", "arp_announce"):    "2",
		ipv4Conf("all", "rp_filter"):      "2",
		ipv4Conf("default", "rp_filter"):  "1",
		ipv4Conf("default", "arp_ignore"): "0",
	} {
		if got := rs.ReadSysctl(t, path); got != want {
			t.Errorf("%s = %s, want %s", sysctlName(path), got, want)
		}
	}

	var rep *Report
	if err := rs.Do(func() (err error) { rep, err = Status(Config{StateDir: dir}); return err }); err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(rep.VIPs) != 3 || !rep.Tun || !rep.State {
		t.Errorf("Status from the state file: %+v", rep)
	}
	for _, v := range rep.VIPs {
		if !v.OK || (v.Addr.Is4() && !v.Route) {
			t.Errorf("Status: VIP %+v not ok", v)
		}
	}
	for _, c := range rep.Sysctls {
		if !c.OK {
			t.Errorf("Status: %+v not ok", c)
		}
	}
	if rep.Configured() != (res.User == 0) {
		t.Errorf("Configured = %v with no decapsulator running for %v", rep.Configured(), res.User)
	}

	// Again with the same VIPs: nothing changes, not even the record.
	stateBefore, _ := os.ReadFile(filepath.Join(dir, StateFile))
	if err := rs.Do(func() error { _, err := Setup(cfg); return err }); err != nil {
		t.Fatalf("second Setup: %v", err)
	}
	if stateAfter, _ := os.ReadFile(filepath.Join(dir, StateFile)); !bytes.Equal(stateBefore, stateAfter) {
		t.Errorf("second Setup changed the record:\n%s\n%s", stateBefore, stateAfter)
	}

	// One VIP down: only its address goes.
	if err := rs.Do(func() error { return Teardown(Config{VIPs: mustAddrs(t, "2001:db8:100::1"), StateDir: dir}) }); err != nil {
		t.Fatalf("Teardown of one VIP: %v", err)
	}
	if a := rs.IP(t, "-o", "addr", "show"); strings.Contains(a, "2001:db8:100::1") || !strings.Contains(a, "198.18.100.1/32") {
		t.Errorf("after removing the IPv6 VIP:\n%s", a)
	}
	if got := rs.ReadSysctl(t, ipv4Conf("all", "arp_ignore")); got != "1" {
		t.Errorf("host-wide sysctl undone with VIPs left: arp_ignore=%s", got)
	}
	if err := rs.Do(func() error { return Teardown(Config{VIPs: mustAddrs(t, "2001:db8:100::1"), StateDir: dir}) }); err == nil {
		t.Error("Teardown of a VIP no longer set up: no error")
	}

	// The rest: everything as before, the pre-existing VIP included.
	if err := rs.Do(func() error { return Teardown(Config{StateDir: dir}) }); err != nil {
		t.Fatalf("Teardown: %v", err)
	}
	if after := nstest.Snapshot(t, rs); after != before {
		t.Errorf("not as before:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left: %v", err)
	}
	if err := rs.Do(func() error { return Teardown(Config{StateDir: dir}) }); !errors.Is(err, ErrNoState) {
		t.Errorf("Teardown without state: %v, want ErrNoState", err)
	}
}

// A failing Setup undoes what it did before the failure.
func TestNetnsSetupRollback(t *testing.T) {
	nstest.Require(t)
	rs := nstest.New(t, "rs")
	// A veth pair inside one namespace: the second VIP sits on a network
	// interface, where a real server must not have it.
	rs.IP(t, "link", "add", "rs0", "type", "veth", "peer", "name", "rs1")
	rs.IP(t, "addr", "add", "198.18.100.3/32", "dev", "rs0")
	before := nstest.Snapshot(t, rs)
	dir := t.TempDir()
	cfg := Config{VIPs: mustAddrs(t, "198.18.100.1,198.18.100.3"), StateDir: dir}
	err := rs.Do(func() error { _, err := Setup(cfg); return err })
	if err == nil || !strings.Contains(err.Error(), "198.18.100.3 is on rs0") {
		t.Fatalf("Setup = %v, want the VIP-on-rs0 error", err)
	}
	if after := nstest.Snapshot(t, rs); after != before {
		t.Errorf("not rolled back:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left after a failed Setup: %v", err)
	}
}

// A sysctl changed by someone else after Setup is left alone.
func TestNetnsTeardownKeepsForeignChange(t *testing.T) {
	nstest.Require(t)
	rs := nstest.New(t, "rs")
	dir := t.TempDir()
	var logs bytes.Buffer
	cfg := Config{VIPs: mustAddrs(t, "198.18.100.1"), StateDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if err := rs.Do(func() error { _, err := Setup(cfg); return err }); err != nil {
		t.Fatal(err)
	}
	rs.Sysctl(t, ipv4Conf("all", "arp_ignore"), "8")
	if err := rs.Do(func() error { return Teardown(cfg) }); err != nil {
		t.Fatal(err)
	}
	if got := rs.ReadSysctl(t, ipv4Conf("all", "arp_ignore")); got != "8" {
		t.Errorf("arp_ignore = %s, want the 8 set after Setup", got)
	}
	if got := rs.ReadSysctl(t, ipv4Conf("all", "arp_announce")); got != "0" {
		t.Errorf("arp_announce = %s, want 0 restored", got)
	}
	if !strings.Contains(logs.String(), "sysctl changed since setup") {
		t.Errorf("no warning logged:\n%s", logs.String())
	}
}

// decapTopo is a director and a TUN real server running Decap.
type decapTopo struct {
	dir, rs *nstest.NS
	decap   *Decap
	runErr  chan error
}

func newDecapTopo(t *testing.T, vips []netip.Addr) *decapTopo {
	nstest.Require(t)
	d := &decapTopo{dir: nstest.New(t, "dir"), rs: nstest.New(t, "rs"), runErr: make(chan error, 1)}
	nstest.Veth(t, d.dir, "d1", "198.18.1.1/24", d.rs, "r0", "198.18.1.2/24")
	d.dir.IP(t, "addr", "add", "2001:db8:1::1/64", "dev", "d1", "nodad")
	d.rs.IP(t, "addr", "add", "2001:db8:1::2/64", "dev", "r0", "nodad")
	// Replies to clients go back through the director's side (loose
	// rp_filter needs a route to the client's address).
	d.rs.IP(t, "route", "add", "default", "via", "198.18.1.1")
	d.rs.IP(t, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	d.rs.Sysctl(t, ipv4Conf("all", "rp_filter"), "1") // strict, as many distributions
	d.rs.Sysctl(t, ipv4Conf("default", "rp_filter"), "1")

	cfg := Config{VIPs: vips, Tun: true, StateDir: t.TempDir()}
	var res Result
	err := d.rs.Do(func() (err error) {
		if res, err = Setup(cfg); err != nil {
			return err
		}
		d.decap, err = OpenDecap(DecapConfig{VIPs: vips, Encaps: res.User})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Kernel != 0 {
		t.Skipf("skipped: this kernel decapsulates %v itself; the user-space decapsulator is for kernels without", res.Kernel)
	}
	go func() { d.runErr <- d.decap.Run() }()
	t.Cleanup(func() {
		d.decap.Close()
		d.rs.Do(func() error { return Teardown(cfg) })
	})
	return d
}

// send sends inner from the director to the real server inside an outer
// header made by the kernel: a raw socket of protocol 4 or 41 puts the
// payload behind an IPv4 or IPv6 header of that protocol.
func (d *decapTopo) send(t *testing.T, e Encaps, inner []byte) {
	t.Helper()
	err := d.dir.Do(func() error {
		family := unix.AF_INET
		var to unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{198, 18, 1, 2}}
		if e.outer6() {
			family = unix.AF_INET6
			to = &unix.SockaddrInet6{Addr: netip.MustParseAddr("2001:db8:1::2").As16()}
		}
		fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(e.proto()))
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Sendto(fd, inner, 0, to)
	})
	if err != nil {
		t.Fatalf("send %v: %v", e, err)
	}
}

// listenUDP binds a UDP socket in the real server's namespace.
func (d *decapTopo) listenUDP(t *testing.T, at netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	if err := d.rs.Do(func() (err error) { c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(at)); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// expectUDP waits (boundedly) for one datagram on c and checks it.
func expectUDP(t *testing.T, c *net.UDPConn, from netip.Addr, payload string) {
	t.Helper()
	buf := make([]byte, 2048)
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, src, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("waiting for %q: %v", payload, err)
	}
	if string(buf[:n]) != payload || src.Addr().Unmap() != from {
		t.Errorf("got %q from %v, want %q from %v", buf[:n], src, payload, from)
	}
}

// waitCounters polls until cond holds (bounded), for counters that a
// reader goroutine updates after the kernel delivered.
func waitCounters(t *testing.T, d *Decap, what string, cond func(DecapCounters) bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond(d.Counters()) {
		if time.Now().After(deadline) {
			t.Fatalf("counters never showed %s: %+v", what, d.Counters())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Every encapsulation, through the real kernel: a UDP datagram sent
// tunnelled by the director reaches a socket on the VIP with the client's
// source address.
func TestNetnsDecapAllEncaps(t *testing.T) {
	vips := mustAddrs(t, "198.18.100.1,2001:db8:100::1")
	d := newDecapTopo(t, vips)
	if got := d.decap.Encaps(); got != allEncaps {
		t.Fatalf("Decap receives %v, want all four", got)
	}
	u4 := d.listenUDP(t, netip.AddrPortFrom(vip4, 7000))
	u6 := d.listenUDP(t, netip.AddrPortFrom(vip6, 7000))
	c4, c6 := netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(client6, 40000)

	for i, tc := range []struct {
		e   Encaps
		pkt []byte
		c   *net.UDPConn
		src netip.Addr
	}{
		{IPIP, udpPacket(c4, netip.AddrPortFrom(vip4, 7000), []byte("via ipip")), u4, client4},
		{SIT, udpPacket(c6, netip.AddrPortFrom(vip6, 7000), []byte("via sit")), u6, client6},
		{IP6IP6, udpPacket(c6, netip.AddrPortFrom(vip6, 7000), []byte("via ip6ip6")), u6, client6},
		{IPIP6, udpPacket(c4, netip.AddrPortFrom(vip4, 7000), []byte("via ipip6")), u4, client4},
	} {
		d.send(t, tc.e, tc.pkt)
		expectUDP(t, tc.c, tc.src, "via "+tc.e.String())
		waitCounters(t, d.decap, fmt.Sprintf("%d injected", i+1), func(c DecapCounters) bool { return c.Injected == uint64(i+1) })
	}

	// Not for a VIP: dropped and counted, never delivered.
	d.send(t, IPIP, udpPacket(c4, netip.AddrPortFrom(other4, 7000), []byte("not for us")))
	d.send(t, IP6IP6, udpPacket(c6, netip.AddrPortFrom(other6, 7000), []byte("not for us")))
	waitCounters(t, d.decap, "2 not-VIP", func(c DecapCounters) bool { return c.NotVIP == 2 })

	// A partial checksum, as a veth or GRO leaves it: completed, delivered.
	for _, e := range []Encaps{IPIP, IP6IP6} {
		c, src, dst := u4, c4, netip.AddrPortFrom(vip4, 7000)
		if e.inner6() {
			c, src, dst = u6, c6, netip.AddrPortFrom(vip6, 7000)
		}
		p := udpPacket(src, dst, []byte("partial"))
		makePartial(p)
		d.send(t, e, p)
		expectUDP(t, c, src.Addr(), "partial")
	}
	waitCounters(t, d.decap, "2 completed", func(c DecapCounters) bool { return c.ChecksumCompleted == 2 })

	if c := d.decap.Counters(); c.Malformed != 0 || c.WriteErrors != 0 || c.Received != 8 {
		t.Errorf("counters %+v: want 8 received, no malformed, no write errors", c)
	}

	// Close: Run returns nil, the device is gone.
	if err := d.decap.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-d.runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	err := d.rs.Do(func() error { _, err := netlink.LinkByName(DefaultTunName); return err })
	if !isNotFound(err) {
		t.Errorf("%s after Close: %v, want not found", DefaultTunName, err)
	}
}

// Why completePartial exists: a TUN device without a virtio header marks
// what is written CHECKSUM_NONE, and the stack verifies the transport
// checksum, so a partial one is dropped (UdpInCsumErrors) where the
// kernel's own decapsulation would have kept the skb's CHECKSUM_PARTIAL
// and delivered it.
func TestNetnsTUNDropsPartialChecksum(t *testing.T) {
	nstest.Require(t)
	rs := nstest.New(t, "rs")
	rs.IP(t, "addr", "add", "198.18.100.1/32", "dev", "lo")
	rs.IP(t, "route", "add", "198.18.0.0/24", "dev", "lo") // loose rp_filter: the client is "somewhere"
	var tun int
	err := rs.Do(func() error {
		var err error
		if tun, err = unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
			return err
		}
		ifr, _ := unix.NewIfreq("golvstun9")
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(tun, unix.TUNSETIFF, ifr); err != nil {
			return err
		}
		l, err := netlink.LinkByName("golvstun9")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tun)
	u := (&decapTopo{rs: rs}).listenUDP(t, netip.AddrPortFrom(vip4, 7000))
	csumErrors := func() int {
		out := rs.MustExec(t, "cat", "/proc/net/snmp")
		var hdr []string
		for _, l := range strings.Split(out, "\n") {
			f := strings.Fields(l)
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if hdr == nil {
				hdr = f
				continue
			}
			for i, h := range hdr {
				if h == "InCsumErrors" {
					var n int
					fmt.Sscan(f[i], &n)
					return n
				}
			}
		}
		t.Fatalf("no Udp InCsumErrors in /proc/net/snmp:\n%s", out)
		return 0
	}

	p := udpPacket(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(vip4, 7000), []byte("partial"))
	makePartial(p)
	before := csumErrors()
	if _, err := unix.Write(tun, p); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for csumErrors() == before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if csumErrors() != before+1 {
		t.Errorf("UdpInCsumErrors %d -> %d: the partial checksum was not rejected", before, csumErrors())
	}
	if !completePartial(p) {
		t.Fatal("completePartial did not recognise it")
	}
	if _, err := unix.Write(tun, p); err != nil {
		t.Fatal(err)
	}
	expectUDP(t, u, client4, "partial")
}
