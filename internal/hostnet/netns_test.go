package hostnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Namespace test rig. Every namespace is named golvs-<random>, uses only
// 198.18.0.0/15 and 2001:db8::/32, and is deleted by t.Cleanup.

// requireNetNS skips t unless it can build namespaces.
func requireNetNS(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network-namespace test: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("network-namespace test: needs the ip command (iproute2)")
	}
}

// testNS is one network namespace of a test.
type testNS struct {
	name string
	h    netns.NsHandle
}

// newNS creates a namespace with lo up.
func newNS(t *testing.T) *testNS {
	t.Helper()
	name := fmt.Sprintf("golvs-%08x", rand.Uint32())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open namespace %s: %v", name, err)
	}
	t.Cleanup(func() { h.Close() })
	n := &testNS{name: name, h: h}
	n.ip(t, "link set lo up")
	// No duplicate address detection on the interfaces created later:
	// until DAD of its link-local address ends (1 to 2 s), an interface
	// cannot send neighbour solicitations of its own.
	n.sysctl(t, "net/ipv6/conf/default/accept_dad", "0")
	return n
}

// ip runs `ip -n NS args...` (args split on spaces).
func (n *testNS) ip(t testing.TB, args string) {
	t.Helper()
	a := append([]string{"-n", n.name}, strings.Fields(args)...)
	if out, err := exec.Command("ip", a...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(a, " "), err, out)
	}
}

// do runs fn on a thread inside the namespace (sockets created by fn stay
// there).
func (n *testNS) do(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("current namespace: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(n.h); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("enter %s: %v", n.name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime retires it.
			panic(fmt.Sprintf("restore namespace: %v", err))
		}
		runtime.UnlockOSThread()
	}()
	fn()
}

// sysctl writes a namespaced sysctl (path under /proc/sys).
func (n *testNS) sysctl(t testing.TB, path, value string) {
	t.Helper()
	n.do(t, func() {
		if err := os.WriteFile("/proc/sys/"+path, []byte(value), 0o644); err != nil {
			t.Fatalf("sysctl %s: %v", path, err)
		}
	})
}

// host opens a Host on the namespace.
func (n *testNS) host(t *testing.T) *Host {
	t.Helper()
	h, err := Open(n.h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// topo is the test topology:
//
//	peer p0 ---- d0 director d1 ---- c0 client
//	198.18.0.2   198.18.0.1  198.18.1.1   198.18.1.2
//	2001:db8::2  2001:db8::1 2001:db8:1::1 2001:db8:1::2
//
// with the VIPs 198.18.100.1 and 2001:db8:100::1 on the director's lo,
// the director's default routes via the peer, and forwarding on.
type topo struct {
	d, p, c *testNS
}

var (
	vip4  = netip.MustParseAddr("198.18.100.1")
	vip6  = netip.MustParseAddr("2001:db8:100::1")
	dir0  = netip.MustParseAddr("198.18.0.1")
	peer4 = netip.MustParseAddr("198.18.0.2")
	peer6 = netip.MustParseAddr("2001:db8::2")
	cli4  = netip.MustParseAddr("198.18.1.2")
)

func newTopo(t *testing.T) *topo {
	t.Helper()
	requireNetNS(t)
	tp := &topo{d: newNS(t), p: newNS(t), c: newNS(t)}
	veth := func(a *testNS, an string, b *testNS, bn string) {
		// Created inside a, then one end moved to b.
		a.ip(t, "link add "+an+" type veth peer name "+bn+" netns "+b.name)
	}
	veth(tp.d, "d0", tp.p, "p0")
	veth(tp.d, "d1", tp.c, "c0")
	for _, c := range []string{
		"addr add 198.18.0.1/24 dev d0", "addr add 2001:db8::1/64 dev d0 nodad",
		"addr add 198.18.1.1/24 dev d1", "addr add 2001:db8:1::1/64 dev d1 nodad",
		"addr add 198.18.100.1/32 dev lo", "addr add 2001:db8:100::1/128 dev lo",
		"link set d0 up", "link set d1 up",
		"route add default via 198.18.0.2", "route add default via 2001:db8::2",
	} {
		tp.d.ip(t, c)
	}
	for _, c := range []string{
		"addr add 198.18.0.2/24 dev p0", "addr add 2001:db8::2/64 dev p0 nodad", "link set p0 up",
		"route add 198.18.100.0/24 via 198.18.0.1", "route add 198.18.1.0/24 via 198.18.0.1",
		"route add 2001:db8:100::/64 via 2001:db8::1", "route add 2001:db8:1::/64 via 2001:db8::1",
	} {
		tp.p.ip(t, c)
	}
	for _, c := range []string{
		"addr add 198.18.1.2/24 dev c0", "addr add 2001:db8:1::2/64 dev c0 nodad", "link set c0 up",
		"route add default via 198.18.1.1", "route add default via 2001:db8:1::1",
	} {
		tp.c.ip(t, c)
	}
	tp.d.sysctl(t, "net/ipv4/ip_forward", "1")
	tp.d.sysctl(t, "net/ipv6/conf/all/forwarding", "1")
	return tp
}

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
