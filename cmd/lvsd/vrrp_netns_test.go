package main

// Namespace tests of lvsd's VRRP (package vrrpd) with the real binary:
// election, failover after SIGKILL with the client's neighbour cache
// following the gratuitous ARPs and unsolicited neighbour adverts,
// preemption and nopreempt on restart, the priority-0 advert of a clean
// SIGTERM, and interoperation with the real keepalived 2.2.7 in both
// directions. The directors run without a data plane (--interfaces none):
// the VIPs are answered by their kernels (an nshelper HTTP server in each
// director says which one answered); TestNetnsVRRP runs them with their
// data plane (--interfaces all: AF_PACKET and the ingress table), which
// must leave VRRP and the announcements alone.
//
//	client cl  eth0 198.18.6.1/24 2001:db8:6::1/64 ─┐
//	director d0 eth0 198.18.6.2/24 2001:db8:6::2/64 ─┤ bridge br0 (namespace sw)
//	director d1 eth0 198.18.6.3/24 2001:db8:6::3/64 ─┘
//	VIPs 198.18.6.10/32 (VRID 51, VRRPv2) and 2001:db8:6::10/128 (VRID 52, VRRPv3)

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"golvs/internal/realserver/nstest"
)

const (
	vrVIP4 = "198.18.6.10"
	vrVIP6 = "2001:db8:6::10"
	// vrPoll is the period of the takeover measurements: small against
	// the 100 ms adverts.
	vrPoll = 2 * time.Millisecond
)

// vrNode is a namespace of the VRRP topology with an rtnetlink handle in
// it, for fast polling of its addresses and neighbours.
type vrNode struct {
	name string
	ns   *nstest.NS
	nl   *netlink.Handle
	mac  string
	work string
	proc *dpProc // lvsd or keepalived, when running
	conf string
}

type vrTopo struct {
	lvsd, helper string
	// dataPlane runs lvsd with its data plane on eth0 (--interfaces
	// all), as a director runs; otherwise --interfaces none.
	dataPlane bool
	sw        *nstest.NS
	cl        *vrNode
	d         [2]*vrNode
}

func newVRTopo(t *testing.T) *vrTopo {
	nstest.Require(t)
	x := &vrTopo{}
	bins := t.TempDir()
	if raceEnabled {
		x.lvsd = goBuild(t, bins, "lvsd", ".", "-race")
	} else {
		x.lvsd = goBuild(t, bins, "lvsd", ".")
	}
	x.helper = goBuild(t, bins, "nshelper", "./testdata/nshelper")
	x.sw = nstest.New(t, "vsw")
	x.sw.IP(t, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	x.sw.IP(t, "link", "set", "br0", "up")
	node := func(name string, i int) *vrNode {
		n := &vrNode{name: name, ns: nstest.New(t, "v"+name), work: t.TempDir()}
		// Link-local addresses usable at once (VRRPv3 over IPv6 speaks
		// from them).
		n.ns.Sysctl(t, "net/ipv6/conf/default/accept_dad", "0")
		n.ns.Sysctl(t, "net/ipv6/conf/all/accept_dad", "0")
		nstest.Veth(t, n.ns, "eth0", fmt.Sprintf("198.18.6.%d/24", i), x.sw, "p"+name, "")
		n.ns.IP(t, "addr", "add", fmt.Sprintf("2001:db8:6::%d/64", i), "dev", "eth0", "nodad")
		x.sw.IP(t, "link", "set", "p"+name, "master", "br0")
		h, err := netns.GetFromName(n.ns.Name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		if n.nl, err = netlink.NewHandleAt(h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(n.nl.Close)
		l, err := n.nl.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		n.mac = l.Attrs().HardwareAddr.String()
		return n
	}
	x.cl = node("cl", 1)
	for i := range x.d {
		x.d[i] = node(fmt.Sprintf("d%d", i), 2+i)
		startProc(t, t, x.d[i].ns.Command(x.helper, "serve", "-name", x.d[i].name, "-tcp", "80"), "ready")
	}
	// The link-local addresses finish coming up.
	for _, n := range append([]*vrNode{x.cl}, x.d[:]...) {
		vrWait(t, "link-local address of "+n.name, 5*time.Second, func() bool { return n.linkLocal() })
	}
	return x
}

// linkLocal reports whether n's eth0 has a usable IPv6 link-local address.
func (n *vrNode) linkLocal() bool {
	l, err := n.nl.LinkByName("eth0")
	if err != nil {
		return false
	}
	addrs, err := n.nl.AddrList(l, netlink.FAMILY_V6)
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if a.IP.IsLinkLocalUnicast() && a.Flags&syscall.IFA_F_TENTATIVE == 0 {
			return true
		}
	}
	return false
}

// has reports whether n holds address a.
func (n *vrNode) has(a string) bool {
	want := netip.MustParseAddr(a)
	addrs, err := n.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == want {
			return true
		}
	}
	return false
}

// neigh returns the MAC n's neighbour table has for a ("" for none).
func (n *vrNode) neigh(a string) string {
	want := netip.MustParseAddr(a)
	fam := netlink.FAMILY_V4
	if want.Is6() {
		fam = netlink.FAMILY_V6
	}
	ns, err := n.nl.NeighList(0, fam)
	if err != nil {
		return ""
	}
	for _, x := range ns {
		if ip, ok := netip.AddrFromSlice(x.IP); ok && ip.Unmap() == want && x.HardwareAddr != nil {
			return x.HardwareAddr.String()
		}
	}
	return ""
}

// vrWait polls cond every vrPoll until it holds, and returns how long it
// took; it fails the test after limit.
func vrWait(t *testing.T, what string, limit time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not after %v", what, limit)
		}
		time.Sleep(vrPoll)
	}
	return time.Since(start)
}

// vrConfig is a keepalived.conf with the two instances (the same for lvsd
// and keepalived), state BACKUP.
func vrConfig(prio int, advertInt string, nopreempt bool) string {
	extra := ""
	if nopreempt {
		extra += "    nopreempt\n"
	}
	v4version := ""
	if strings.Contains(advertInt, ".") {
		v4version = "    version 3\n" // VRRPv2 counts whole seconds
	}
	return fmt.Sprintf(`global_defs {
    router_id golvs-vrrp-test
}
vrrp_instance V4 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %[1]d
    advert_int %[2]s
%[3]s%[4]s    virtual_ipaddress {
        %[5]s/32
    }
}
vrrp_instance V6 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority %[1]d
    advert_int %[2]s
%[3]s    virtual_ipaddress {
        %[6]s/128
    }
}
`, prio, advertInt, extra, v4version, vrVIP4, vrVIP6)
}

// writeConf writes n's configuration file.
func (n *vrNode) writeConf(t *testing.T, text string) {
	t.Helper()
	n.conf = filepath.Join(n.work, "keepalived.conf")
	if err := os.WriteFile(n.conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startLvsd runs lvsd with n's configuration.
func (x *vrTopo) startLvsd(t *testing.T, n *vrNode) {
	t.Helper()
	ifaces := "none"
	if x.dataPlane {
		ifaces = "all"
	}
	cmd := n.ns.Command(x.lvsd, "run", "--interfaces", ifaces, "-f", n.conf,
		"--socket", filepath.Join(n.work, "lvsd.sock"), "--state", filepath.Join(n.work, "state"))
	n.proc = startProc(t, t, cmd, "director running")
	if strings.Contains(n.proc.out.String(), "not acted on yet: vrrp_instance") {
		t.Skip("skipped: this lvsd does not run VRRP yet (cmd/lvsd/vrrp.go is not wired into keepalived.go)")
	}
	n.proc.waitLog(t, 0, regexp.MustCompile(`VRRP state.* instance=V6 state=BACKUP`), dpStartTimeout)
}

// startKeepalived runs keepalived's VRRP process with n's configuration
// until the test ends; cleanup stops it and its VRRP child (by PID).
func (x *vrTopo) startKeepalived(t *testing.T, n *vrNode) {
	t.Helper()
	pid, vpid := filepath.Join(n.work, "keepalived.pid"), filepath.Join(n.work, "vrrp.pid")
	os.Remove(pid)
	os.Remove(vpid)
	// -n: no daemon; -l -D: log details to the console; -G: no syslog;
	// -P: VRRP only; -R: no respawn (a killed VRRP child stays dead).
	cmd := n.ns.Command("keepalived", "-n", "-l", "-D", "-G", "-P", "-R", "-f", n.conf, "-p", pid, "-r", vpid)
	p := startProc(t, t, cmd, "(V6) Entering BACKUP STATE")
	n.proc = p
	child := vrPidFile(t, vpid)
	t.Cleanup(func() {
		// The parent stops its child on SIGTERM; a child left by a
		// killed parent is killed here, if it is still keepalived.
		if !p.wait(0) {
			p.cmd.Process.Signal(syscall.SIGTERM)
			if !p.wait(dpStopTimeout) {
				p.kill()
			}
		}
		if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", child)); err == nil && strings.Contains(string(cmdline), n.conf) {
			syscall.Kill(child, syscall.SIGKILL)
		}
	})
}

// vrPidFile reads a PID file keepalived writes, waiting for it.
func vrPidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	vrWait(t, "PID file "+path, dpStartTimeout, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && pid > 0
	})
	return pid
}

// fetch asks the VIP over TCP (port 80, the directors' nshelper) from the
// client and returns which director answered.
func (x *vrTopo) fetch(t *testing.T, vip string) string {
	t.Helper()
	var c net.Conn
	err := x.cl.ns.Do(func() error {
		var err error
		c, err = net.DialTimeout("tcp", net.JoinHostPort(vip, "80"), 2*time.Second)
		return err
	})
	if err != nil {
		t.Fatalf("connect to %s: %v", vip, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: vip\r\n\r\n")
	var last string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		last = sc.Text()
	}
	name, _, _ := strings.Cut(last, " ")
	return name
}

// master waits until n alone holds both VIPs.
func (x *vrTopo) master(t *testing.T, n *vrNode, limit time.Duration) time.Duration {
	t.Helper()
	other := x.d[0]
	if other == n {
		other = x.d[1]
	}
	return vrWait(t, n.name+" alone holds the VIPs", limit, func() bool {
		return n.has(vrVIP4) && n.has(vrVIP6) && !other.has(vrVIP4) && !other.has(vrVIP6)
	})
}

// served checks that the client reaches n through both VIPs.
func (x *vrTopo) served(t *testing.T, n *vrNode) {
	t.Helper()
	for _, vip := range []string{vrVIP4, vrVIP6} {
		if got := x.fetch(t, vip); got != n.name {
			t.Errorf("%s answered by %q, want %s", vip, got, n.name)
		}
	}
}

// takeover measures, from since, when the client's neighbour cache
// points both VIPs at n (its gratuitous ARP and neighbour advert) and
// when n holds them, and checks that the client is served by n.
func (x *vrTopo) takeover(t *testing.T, n *vrNode, since time.Time, limit time.Duration) (arp, nd time.Duration) {
	t.Helper()
	for arp == 0 || nd == 0 {
		if arp == 0 && x.cl.neigh(vrVIP4) == n.mac {
			arp = time.Since(since)
		}
		if nd == 0 && x.cl.neigh(vrVIP6) == n.mac {
			nd = time.Since(since)
		}
		if time.Since(since) > limit+2*time.Second {
			t.Fatalf("the client's neighbours %s=%s %s=%s, want %s's %s, %v after",
				vrVIP4, x.cl.neigh(vrVIP4), vrVIP6, x.cl.neigh(vrVIP6), n.name, n.mac, time.Since(since))
		}
		time.Sleep(vrPoll)
	}
	if !n.has(vrVIP4) || !n.has(vrVIP6) {
		t.Errorf("%s announced the VIPs but does not hold them", n.name)
	}
	if arp > limit || nd > limit {
		t.Errorf("takeover by %s: ARP %v, ND %v, want <= %v", n.name, arp, nd, limit)
	}
	x.served(t, n)
	return arp, nd
}

// sigkill kills n's process as a crash would, and returns when.
func (n *vrNode) sigkill(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	n.proc.cmd.Process.Kill()
	if !n.proc.wait(dpStopTimeout) {
		t.Fatalf("%s still runs after SIGKILL", n.name)
	}
	return at
}

// sigterm asks n's process to stop and returns when it was asked;
// exited waits for the exit.
func (n *vrNode) sigterm(t *testing.T) time.Time {
	t.Helper()
	at := time.Now()
	if err := n.proc.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	return at
}

// exited waits until n's process has exited after SIGTERM, cleanly.
func (n *vrNode) exited(t *testing.T) {
	t.Helper()
	if !n.proc.wait(dpStopTimeout) {
		t.Fatalf("%s still runs %v after SIGTERM:\n%s", n.name, dpStopTimeout, n.proc.out.String())
	}
	if n.proc.err != nil {
		t.Errorf("%s after SIGTERM: %v\n%s", n.name, n.proc.err, n.proc.out.String())
	}
}

// TestNetnsVRRP: two lvsd directors (priority 150 and 100, advert_int
// 1 s). The higher one becomes master; killed (SIGKILL), the other takes
// over within Master_Down_Interval (3.609 s after the last advert, so at
// most that after the kill; target 3.7 s) and the client's neighbour
// cache follows its gratuitous ARP and neighbour advert. Restarted, the
// old master removes the VIPs it left behind, preempts and takes them
// back. Stopped with SIGTERM, its priority-0 advert lets the backup take
// over within Skew_Time (0.61 s).
func TestNetnsVRRP(t *testing.T) {
	dpTools(t) // the data plane needs nft
	x := newVRTopo(t)
	x.dataPlane = true
	d0, d1 := x.d[0], x.d[1]
	d0.writeConf(t, vrConfig(150, "1", false))
	d1.writeConf(t, vrConfig(100, "1", false))
	x.startLvsd(t, d0)
	x.startLvsd(t, d1)
	x.master(t, d0, 6*time.Second)
	x.served(t, d0)

	killed := d0.sigkill(t)
	arp, nd := x.takeover(t, d1, killed, 3700*time.Millisecond)
	t.Logf("takeover after SIGKILL at advert_int 1 s: client ARP %v, ND %v", arp, nd)
	if !d0.has(vrVIP4) {
		t.Errorf("the killed lvsd's VIP is gone: the test no longer covers VIPs left behind")
	}

	x.startLvsd(t, d0)
	d0.proc.waitLog(t, 0, regexp.MustCompile(`removed a VIP left on its interface`), dpStartTimeout)
	took := x.master(t, d0, 6*time.Second)
	x.takeover(t, d0, time.Now(), time.Second)
	t.Logf("preemption by the restarted master after %v", took)

	stopped := d0.sigterm(t)
	arp, nd = x.takeover(t, d1, stopped, 700*time.Millisecond)
	t.Logf("takeover after SIGTERM (priority 0, Skew_Time 0.609 s): client ARP %v, ND %v", arp, nd)
	d0.exited(t)
	if d0.has(vrVIP4) || d0.has(vrVIP6) {
		t.Errorf("%s kept its VIPs after SIGTERM", d0.name)
	}
	d1.sigterm(t)
	d1.exited(t)
	if d1.has(vrVIP4) || d1.has(vrVIP6) {
		t.Errorf("%s kept its VIPs after SIGTERM", d1.name)
	}
}

// TestNetnsVRRPFast: VRRPv3 with 100 ms adverts: the backup takes over
// within 0.4 s of a SIGKILL (Master_Down_Interval 0.361 s); the old
// master, restarted with nopreempt, stays BACKUP; stopping the master
// (SIGTERM) hands the VIPs back at once.
func TestNetnsVRRPFast(t *testing.T) {
	x := newVRTopo(t)
	d0, d1 := x.d[0], x.d[1]
	d0.writeConf(t, vrConfig(150, "0.1", true))
	d1.writeConf(t, vrConfig(100, "0.1", false))
	x.startLvsd(t, d0)
	x.startLvsd(t, d1)
	x.master(t, d0, 2*time.Second)
	x.served(t, d0)

	killed := d0.sigkill(t)
	arp, nd := x.takeover(t, d1, killed, 400*time.Millisecond)
	t.Logf("takeover after SIGKILL at advert_int 0.1 s (VRRPv3): client ARP %v, ND %v", arp, nd)

	x.startLvsd(t, d0)
	time.Sleep(1500 * time.Millisecond) // four Master_Down_Intervals
	if !d1.has(vrVIP4) || d0.has(vrVIP4) || d0.has(vrVIP6) {
		t.Errorf("nopreempt: d0 holds %v/%v, d1 %v; want d1 to stay master", d0.has(vrVIP4), d0.has(vrVIP6), d1.has(vrVIP4))
	}
	stopped := d1.sigterm(t)
	arp, nd = x.takeover(t, d0, stopped, 100*time.Millisecond)
	t.Logf("takeover after SIGTERM at advert_int 0.1 s (Skew_Time 41 ms): client ARP %v, ND %v", arp, nd)
	d1.exited(t)
	d0.sigterm(t)
	d0.exited(t)
}

// TestNetnsVRRPKeepalived: lvsd and the real keepalived 2.2.7 as VRRP
// peers (VRRPv2 over IPv4, VRRPv3 over IPv6), both ways: each elects the
// other as master by priority, takes over when the other is killed,
// gives the VIPs back when the other returns with a higher priority, and
// takes over at once on the other's priority-0 advert.
func TestNetnsVRRPKeepalived(t *testing.T) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		t.Skip("skipped: needs keepalived (scripts/test installs it)")
	}
	x := newVRTopo(t)
	d0, d1 := x.d[0], x.d[1]
	start := map[bool]func(*testing.T, *vrNode){true: x.startLvsd, false: x.startKeepalived}
	for _, lvsdMaster := range []bool{true, false} {
		name := map[bool]string{true: "lvsd master, keepalived backup", false: "keepalived master, lvsd backup"}[lvsdMaster]
		t.Run(name, func(t *testing.T) {
			d0.writeConf(t, vrConfig(150, "1", false))
			d1.writeConf(t, vrConfig(100, "1", false))
			start[lvsdMaster](t, d0)
			start[!lvsdMaster](t, d1)
			x.master(t, d0, 6*time.Second)
			x.served(t, d0)

			var killed time.Time
			if lvsdMaster {
				killed = d0.sigkill(t)
			} else {
				// keepalived's VRRP child is what crashes; with -R the
				// parent does not respawn it, and exits.
				child := vrPidFile(t, filepath.Join(d0.work, "vrrp.pid"))
				killed = time.Now()
				syscall.Kill(child, syscall.SIGKILL)
				if !d0.proc.wait(dpStopTimeout) {
					d0.sigkill(t)
				}
			}
			arp, nd := x.takeover(t, d1, killed, 3700*time.Millisecond)
			t.Logf("%s: takeover after SIGKILL: client ARP %v, ND %v", name, arp, nd)

			start[lvsdMaster](t, d0)
			x.master(t, d0, 6*time.Second)
			x.takeover(t, d0, time.Now(), time.Second)

			stopped := d0.sigterm(t)
			arp, nd = x.takeover(t, d1, stopped, 2*time.Second)
			t.Logf("%s: takeover after SIGTERM: client ARP %v, ND %v", name, arp, nd)
			d0.exited(t)
			d1.sigterm(t)
			d1.exited(t)
			if d1.has(vrVIP4) || d1.has(vrVIP6) {
				t.Errorf("%s kept its VIPs after SIGTERM", d1.name)
			}
		})
	}
}
