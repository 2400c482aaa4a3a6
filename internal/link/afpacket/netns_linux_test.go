package afpacket

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Namespace test rig. Every namespace is named golvs-<random>, uses only
// 198.18.0.0/15 and 2001:db8::/32, and is deleted by t.Cleanup, failure
// or not.

// requireNetNS skips t unless it can build namespaces.
func requireNetNS(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network-namespace test: needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN)")
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

// newNS creates a namespace with lo up and no IPv6 duplicate address
// detection (addresses usable at once).
func newNS(t testing.TB) *testNS {
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
	n.sysctl(t, "net/ipv6/conf/default/accept_dad", "0")
	n.sysctl(t, "net/ipv6/conf/default/router_solicitations", "0")
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

// run runs a command inside the namespace (ip netns exec).
func (n *testNS) run(t testing.TB, name string, args ...string) {
	t.Helper()
	a := append([]string{"netns", "exec", n.name, name}, args...)
	if out, err := exec.Command("ip", a...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// sysctl sets a sysctl of the namespace (through /proc/sys on a thread
// inside it).
func (n *testNS) sysctl(t testing.TB, key, value string) {
	t.Helper()
	n.do(t, func() {
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
			t.Fatalf("sysctl %s=%s in %s: %v", key, value, n.name, err)
		}
	})
}

// do runs fn on a thread inside the namespace (sockets created by fn stay
// there) and returns the thread to the original namespace.
func (n *testNS) do(t testing.TB, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("current namespace: %v", err)
	}
	defer orig.Close()
	if err := netns.Set(n.h); err != nil {
		t.Fatalf("enter %s: %v", n.name, err)
	}
	defer func() {
		if err := netns.Set(orig); err != nil {
			// The thread is in the wrong namespace: it must not be
			// reused (a locked thread that exits with the goroutine
			// is discarded, which Goexit after the panic guarantees).
			panic(fmt.Sprintf("restore namespace: %v", err))
		}
	}()
	fn()
}

// mac returns the MAC address of an interface of the namespace.
func (n *testNS) mac(t testing.TB, ifname string) (m [6]byte) {
	t.Helper()
	n.do(t, func() {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		copy(m[:], ifc.HardwareAddr)
	})
	return m
}

// index returns an interface's index in the namespace.
func (n *testNS) index(t testing.TB, ifname string) (i int) {
	t.Helper()
	n.do(t, func() {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			t.Fatalf("%s: %v", n.name, err)
		}
		i = ifc.Index
	})
	return i
}

// topo is the test topology:
//
//	client A            director B                      real server C
//	a0 198.18.0.1 ---- b0 198.18.0.2 (VIP 198.18.0.10)
//	2001:db8::1        2001:db8::2 (VIP 2001:db8::10)
//	                   b1 198.18.1.1 ----------------- c0 198.18.1.2
//	                   2001:db8:1::1                   2001:db8:1::2
//
// A and C route each other's network through B, whose kernel does not
// forward (ip_forward 0): only the link under test moves frames across.
type topo struct {
	a, b, c                    *testNS
	macA0, macB0, macB1, macC0 [6]byte
	idxB0, idxB1               int
}

func newTopo(t testing.TB) *topo {
	t.Helper()
	requireNetNS(t)
	tp := &topo{a: newNS(t), b: newNS(t), c: newNS(t)}
	mustIP := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	mustIP("link", "add", "a0", "netns", tp.a.name, "type", "veth", "peer", "name", "b0", "netns", tp.b.name)
	mustIP("link", "add", "b1", "netns", tp.b.name, "type", "veth", "peer", "name", "c0", "netns", tp.c.name)
	tp.a.ip(t, "addr add 198.18.0.1/24 dev a0")
	tp.a.ip(t, "addr add 2001:db8::1/64 dev a0 nodad")
	tp.b.ip(t, "addr add 198.18.0.2/24 dev b0")
	tp.b.ip(t, "addr add 198.18.0.10/32 dev b0")
	tp.b.ip(t, "addr add 2001:db8::2/64 dev b0 nodad")
	tp.b.ip(t, "addr add 2001:db8::10/128 dev b0 nodad")
	tp.b.ip(t, "addr add 198.18.1.1/24 dev b1")
	tp.b.ip(t, "addr add 2001:db8:1::1/64 dev b1 nodad")
	tp.c.ip(t, "addr add 198.18.1.2/24 dev c0")
	tp.c.ip(t, "addr add 2001:db8:1::2/64 dev c0 nodad")
	tp.a.ip(t, "link set a0 up")
	tp.b.ip(t, "link set b0 up")
	tp.b.ip(t, "link set b1 up")
	tp.c.ip(t, "link set c0 up")
	tp.a.ip(t, "route add 198.18.1.0/24 via 198.18.0.2")
	tp.a.ip(t, "route add 2001:db8:1::/64 via 2001:db8::2")
	tp.c.ip(t, "route add 198.18.0.0/24 via 198.18.1.1")
	tp.c.ip(t, "route add 2001:db8::/64 via 2001:db8:1::1")
	tp.macA0, tp.macB0 = tp.a.mac(t, "a0"), tp.b.mac(t, "b0")
	tp.macB1, tp.macC0 = tp.b.mac(t, "b1"), tp.c.mac(t, "c0")
	tp.idxB0, tp.idxB1 = tp.b.index(t, "b0"), tp.b.index(t, "b1")
	// Static neighbours, so that no ARP or ND races the tests.
	tp.a.ip(t, "neigh replace 198.18.0.2 lladdr "+macString(tp.macB0)+" dev a0")
	tp.a.ip(t, "neigh replace 198.18.0.10 lladdr "+macString(tp.macB0)+" dev a0")
	tp.a.ip(t, "neigh replace 2001:db8::2 lladdr "+macString(tp.macB0)+" dev a0")
	tp.a.ip(t, "neigh replace 2001:db8::10 lladdr "+macString(tp.macB0)+" dev a0")
	tp.c.ip(t, "neigh replace 198.18.1.1 lladdr "+macString(tp.macB1)+" dev c0")
	tp.c.ip(t, "neigh replace 2001:db8:1::1 lladdr "+macString(tp.macB1)+" dev c0")
	return tp
}

func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }

// openLink opens a link in ns with cfg, closed at cleanup.
func openLink(t testing.TB, ns *testNS, cfg Config) *Link {
	t.Helper()
	var l *Link
	var err error
	ns.do(t, func() { l, err = Open(cfg) })
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rawSocket returns a packet socket bound to ifname in ns, to send
// hand-made frames with; closed at cleanup.
func rawSocket(t testing.TB, ns *testNS, ifname string) int {
	t.Helper()
	fd := -1
	ns.do(t, func() {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index}); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// listenUDP opens a UDP socket on addr in ns.
func listenUDP(t testing.TB, ns *testNS, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	ns.do(t, func() {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c, err = net.ListenUDP("udp", a)
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// openFDs counts the process's open file descriptors.
func openFDs(t testing.TB) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}
