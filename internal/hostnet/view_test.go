package hostnet

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"golvs/internal/datapath"
)

// viewSink collects the views a watcher publishes.
type viewSink struct {
	mu    sync.Mutex
	views []*datapath.View
}

func (s *viewSink) publish(v *datapath.View) {
	s.mu.Lock()
	s.views = append(s.views, v)
	s.mu.Unlock()
}

func (s *viewSink) last() *datapath.View {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.views) == 0 {
		return nil
	}
	return s.views[len(s.views)-1]
}

func (s *viewSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.views)
}

// changeWithin is how long a change may take to reach the view: the
// debounce plus a dump, with a wide margin for a loaded CI machine.
const changeWithin = 2 * time.Second

func TestViewFromKernel(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	var sink viewSink
	w, err := h.WatchView(ViewConfig{}, sink.publish)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if sink.count() != 1 {
		t.Fatalf("WatchView published %d views before returning, want 1", sink.count())
	}
	v := sink.last()
	s := w.Snapshot()

	// Interfaces: d0 and d1, not lo; MACs and MTUs as the kernel has them.
	var names []string
	for _, ifc := range s.Interfaces {
		names = append(names, ifc.Name)
		l, err := h.nl.LinkByName(ifc.Name)
		if err != nil {
			t.Fatal(err)
		}
		if ifc.Index != l.Attrs().Index || net.HardwareAddr(ifc.MAC[:]).String() != l.Attrs().HardwareAddr.String() || ifc.MTU != 1500 {
			t.Errorf("interface %s = %+v, kernel has index %d MAC %v", ifc.Name, ifc, l.Attrs().Index, l.Attrs().HardwareAddr)
		}
		if v.Interface(ifc.Index) == nil {
			t.Errorf("view lacks interface %s", ifc.Name)
		}
	}
	if diff := cmp.Diff([]string{"d0", "d1"}, names); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
	d0, d1 := s.Interface("d0"), s.Interface("d1")
	for _, want := range []string{"198.18.0.1/24", "2001:db8::1/64"} {
		if !containsPrefix(d0.Addrs, want) {
			t.Errorf("d0 addresses %v lack %s", d0.Addrs, want)
		}
	}

	// Local addresses: the interfaces', and the VIPs on lo.
	for _, a := range []netip.Addr{dir0, vip4, vip6, netip.MustParseAddr("198.18.1.1")} {
		if !v.IsLocal(a) {
			t.Errorf("IsLocal(%v) = false", a)
		}
	}
	if v.IsLocal(peer4) {
		t.Errorf("IsLocal(%v) = true", peer4)
	}

	// Routes: connected, and the default routes via the peer.
	for _, tc := range []struct {
		name    string
		dst     string
		ifindex int
		nexthop string
	}{
		{"connected v4", "198.18.0.2", d0.Index, "198.18.0.2"},
		{"connected v4 d1", "198.18.1.2", d1.Index, "198.18.1.2"},
		{"default v4", "198.19.5.5", d0.Index, "198.18.0.2"},
		{"connected v6", "2001:db8:1::2", d1.Index, "2001:db8:1::2"},
		{"default v6", "2001:db8:77::1", d0.Index, "2001:db8::2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, nh, ok := v.Lookup(netip.MustParseAddr(tc.dst))
			if !ok || r.Ifindex != tc.ifindex || nh != netip.MustParseAddr(tc.nexthop) {
				t.Errorf("Lookup(%s) = %+v, %v, %v; want ifindex %d next hop %s", tc.dst, r, nh, ok, tc.ifindex, tc.nexthop)
			}
		})
	}
	if src := v.SourceFor(netip.MustParseAddr("198.19.5.5")); src != dir0 {
		t.Errorf("SourceFor(default) = %v, want %v", src, dir0)
	}

	// Changes reach the view within a bounded time.
	n := sink.count()
	tp.d.ip(t, "addr add 198.18.2.1/24 dev d1")
	eventually(t, changeWithin, "new address", func() bool { return sink.last().IsLocal(netip.MustParseAddr("198.18.2.1")) })
	tp.d.ip(t, "route add 198.18.60.0/24 via 198.18.1.2 src 198.18.1.1 mtu 1400")
	eventually(t, changeWithin, "new route", func() bool {
		r, nh, ok := sink.last().Lookup(netip.MustParseAddr("198.18.60.9"))
		return ok && r.Ifindex == d1.Index && nh == cli4 && r.MTU == 1400 && r.Src == netip.MustParseAddr("198.18.1.1")
	})
	tp.d.ip(t, "addr add 198.18.100.2/32 dev lo")
	eventually(t, changeWithin, "VIP on lo", func() bool { return sink.last().IsLocal(netip.MustParseAddr("198.18.100.2")) })
	tp.d.ip(t, "link set d1 mtu 1400")
	eventually(t, changeWithin, "MTU", func() bool {
		ifc := sink.last().Interface(d1.Index)
		return ifc != nil && ifc.MTU == 1400
	})
	tp.d.ip(t, "route del 198.18.60.0/24")
	eventually(t, changeWithin, "deleted route", func() bool {
		r, _, ok := sink.last().Lookup(netip.MustParseAddr("198.18.60.9"))
		return ok && r.Dst.Bits() == 0 // the default route again
	})
	tp.d.ip(t, "link set d1 down")
	eventually(t, changeWithin, "interface down", func() bool { return sink.last().Interface(d1.Index) == nil })
	if sink.count() <= n {
		t.Errorf("no view published after changes")
	}
	if n := w.Stats().Failures; n != 0 {
		t.Errorf("%d subscription failures", n)
	}

	// A change in another table does not rebuild the view. (Wait for
	// the notifications of the changes above to settle first.)
	before := w.Stats().Rebuilds
	for range 20 {
		time.Sleep(3 * DefaultDebounce)
		if n := w.Stats().Rebuilds; n == before {
			break
		} else {
			before = n
		}
	}
	tp.d.ip(t, "route add 198.18.70.0/24 via 198.18.0.2 table 100")
	time.Sleep(3 * DefaultDebounce)
	if got := w.Stats().Rebuilds; got != before {
		t.Errorf("route in table 100 caused %d rebuilds", got-before)
	}
}

func TestViewConfiguredInterfaces(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	var sink viewSink
	w, err := h.WatchView(ViewConfig{Interfaces: []string{"d0", "d9"}}, sink.publish)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	s := w.Snapshot()
	if len(s.Interfaces) != 1 || s.Interfaces[0].Name != "d0" {
		t.Fatalf("interfaces = %+v, want d0 only", s.Interfaces)
	}
	v := sink.last()
	// d1's address is still the host's, but d1 is not the data path's.
	if !v.IsLocal(netip.MustParseAddr("198.18.1.1")) {
		t.Errorf("d1's address is not local")
	}
	if r, _, ok := v.Lookup(cli4); !ok || v.Interface(r.Ifindex) != nil {
		t.Errorf("route to d1's network = %+v, %v; want a route whose interface is not in the view", r, ok)
	}
	// A configured interface that appears later joins the view.
	tp.d.ip(t, "link add d9 type veth peer name d9p") // no dummy driver on every kernel
	eventually(t, changeWithin, "configured interface created", func() bool { return w.Snapshot().Interface("d9") != nil })
}

func containsPrefix(ps []netip.Prefix, s string) bool {
	want := netip.MustParsePrefix(s)
	for _, p := range ps {
		if p == want {
			return true
		}
	}
	return false
}

// TestBuildSnapshot checks the conversion of rtnetlink dumps without root.
func TestBuildSnapshot(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	links := []netlink.Link{
		&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: 1, Name: "lo", Flags: net.FlagUp | net.FlagLoopback, EncapType: "loopback", MTU: 65536}},
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 3, Name: "eth1", Flags: net.FlagUp, EncapType: "ether", HardwareAddr: mac, MTU: 9000}},
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 2, Name: "eth0", Flags: net.FlagUp, EncapType: "ether", HardwareAddr: mac, MTU: 1500}},
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 4, Name: "eth2", EncapType: "ether", HardwareAddr: mac}},                                     // down
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Index: 5, Name: "port0", Flags: net.FlagUp, EncapType: "ether", HardwareAddr: mac, MasterIndex: 6}}, // bridge port
		&netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Index: 7, Name: "tun0", Flags: net.FlagUp, EncapType: "none"}},
	}
	ipnet := func(s string) *net.IPNet {
		ip, n, err := net.ParseCIDR(s)
		if err != nil {
			t.Fatal(err)
		}
		n.IP = ip
		return n
	}
	addrs := []netlink.Addr{
		{IPNet: ipnet("127.0.0.1/8"), LinkIndex: 1},
		{IPNet: ipnet("198.18.100.1/32"), LinkIndex: 1},
		{IPNet: ipnet("198.18.0.1/24"), LinkIndex: 2},
		{IPNet: ipnet("2001:db8::1/64"), LinkIndex: 2},
		{IPNet: ipnet("2001:db8::9/64"), LinkIndex: 2, Flags: unix.IFA_F_TENTATIVE},
		{IPNet: ipnet("198.18.1.1/24"), LinkIndex: 3},
		{IPNet: ipnet("198.18.9.1/24"), LinkIndex: 7},
	}
	routes := []netlink.Route{
		{Family: netlink.FAMILY_V4, Type: unix.RTN_UNICAST, Gw: net.ParseIP("198.18.0.2"), LinkIndex: 2, Priority: 100},
		{Family: netlink.FAMILY_V4, Type: unix.RTN_UNICAST, Gw: net.ParseIP("198.18.1.2"), LinkIndex: 3, Priority: 10},
		{Family: netlink.FAMILY_V6, Dst: ipnet("2001:db8:5::/48"), Type: unix.RTN_UNICAST, LinkIndex: 2,
			MultiPath: []*netlink.NexthopInfo{{LinkIndex: 3, Gw: net.ParseIP("2001:db8:1::2")}, {LinkIndex: 2, Gw: net.ParseIP("2001:db8::2")}}},
		{Family: netlink.FAMILY_V4, Dst: ipnet("198.18.50.0/24"), Type: unix.RTN_BLACKHOLE},
		{Family: netlink.FAMILY_V4, Dst: ipnet("198.18.51.0/24"), Type: unix.RTN_UNICAST, LinkIndex: 2, Src: net.ParseIP("198.18.0.1"), MTU: 1400,
			Gw: net.ParseIP("198.18.0.3")},
		{Family: netlink.FAMILY_V4, Dst: ipnet("198.18.52.0/24"), Type: unix.RTN_UNICAST, LinkIndex: 2, Flags: unix.RTNH_F_DEAD},
		{Family: netlink.FAMILY_V4, Dst: ipnet("198.18.0.0/24"), Type: unix.RTN_UNICAST, LinkIndex: 2, Scope: netlink.SCOPE_LINK},
	}
	p := netip.MustParsePrefix
	a := netip.MustParseAddr
	m := [6]byte{2, 0, 0, 0, 0, 1}
	want := &Snapshot{
		Interfaces: []datapath.Interface{
			{Index: 2, Name: "eth0", MAC: m, MTU: 1500, Addrs: []netip.Prefix{p("198.18.0.1/24"), p("2001:db8::1/64")}},
			{Index: 3, Name: "eth1", MAC: m, MTU: 9000, Addrs: []netip.Prefix{p("198.18.1.1/24")}},
		},
		Routes: []datapath.Route{ // IPv4 first, then by metric
			{Dst: p("198.18.50.0/24")}, // blackhole: no interface
			{Dst: p("198.18.51.0/24"), Gateway: a("198.18.0.3"), Ifindex: 2, Src: a("198.18.0.1"), MTU: 1400},
			{Dst: p("198.18.0.0/24"), Ifindex: 2},
			{Dst: p("0.0.0.0/0"), Gateway: a("198.18.1.2"), Ifindex: 3}, // metric 10 before 100
			{Dst: p("0.0.0.0/0"), Gateway: a("198.18.0.2"), Ifindex: 2},
			{Dst: p("2001:db8:5::/48"), Gateway: a("2001:db8:1::2"), Ifindex: 3}, // first hop of the multipath
		},
		Local: []netip.Addr{a("127.0.0.1"), a("198.18.100.1"), a("198.18.9.1")},
	}
	got := buildSnapshot(links, addrs, routes, nil)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(x, y netip.Addr) bool { return x == y }),
		cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if !got.Equal(want) || got.Equal(&Snapshot{}) {
		t.Errorf("Equal is wrong")
	}

	// A configured list takes interfaces whatever their state.
	got = buildSnapshot(links, addrs, routes, []string{"eth2", "port0"})
	if len(got.Interfaces) != 2 || got.Interfaces[0].Name != "eth2" || got.Interfaces[1].Name != "port0" {
		t.Errorf("configured interfaces = %+v", got.Interfaces)
	}

	v := buildSnapshot(links, addrs, routes, nil).View()
	if r, nh, ok := v.Lookup(a("198.18.50.7")); !ok || v.Interface(r.Ifindex) != nil {
		t.Errorf("blackhole route: %+v %v %v", r, nh, ok)
	}
	if r, nh, _ := v.Lookup(a("198.19.0.1")); r.Ifindex != 3 || nh != a("198.18.1.2") {
		t.Errorf("default route with the lowest metric: %+v %v", r, nh)
	}
}

// TestViewEventsLost: a burst of changes overflows a small subscription
// buffer (ENOBUFS, as a full routing table arriving at once can); the
// watcher subscribes again and the view ends up complete.
func TestViewEventsLost(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	var sink viewSink
	// The kernel's minimum socket buffer (SOCK_MIN_RCVBUF, about 2 KiB
	// once doubled) holds a few dozen route messages.
	w, err := h.WatchView(ViewConfig{rcvbuf: 1024}, sink.publish)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const routes = 2000 // 198.19.0.0/16 has room; about 0.1 s of ip -batch
	var b strings.Builder
	for i := range routes {
		fmt.Fprintf(&b, "route add 198.19.%d.%d/32 via 198.18.0.2\n", i/256, i%256)
	}
	cmd := exec.Command("ip", "-n", tp.d.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	last := netip.MustParseAddr(fmt.Sprintf("198.19.%d.%d", (routes-1)/256, (routes-1)%256))
	eventually(t, 5*time.Second, "all routes in the view", func() bool {
		r, _, ok := sink.last().Lookup(last)
		return ok && r.Dst.Bits() == 32
	})
	if n := len(w.Snapshot().Routes); n < routes {
		t.Errorf("snapshot has %d routes, want at least %d", n, routes)
	}
	t.Logf("stats %+v", w.Stats())
	if w.Stats().Failures == 0 {
		t.Logf("the burst did not overflow the subscription (the reader kept up); resubscription not exercised")
	}
}

// TestLifecycle: closing the watchers ends every goroutine they started.
func TestLifecycle(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	base := runtime.NumGoroutine()
	w, err := h.WatchView(ViewConfig{}, func(*datapath.View) {})
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.SyncNeighbours(NeighConfig{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.Neighbours().Park(mustLink(t, h, "d0"), netip.MustParseAddr("198.18.0.99"), make([]byte, 60))
	tp.d.ip(t, "addr add 198.18.2.1/24 dev d1")
	time.Sleep(2 * DefaultDebounce)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close() // a second Close is harmless
	eventually(t, time.Second, "goroutines ended", func() bool { return runtime.NumGoroutine() <= base })
}
