package hostnet

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// blockedWithin is how long a client waits for a SYN-ACK that must not
// come: the first SYN retransmission is 1 s away, and an answer over a
// veth takes microseconds.
const blockedWithin = 400 * time.Millisecond

// listenTCP accepts (and closes) connections on addr in n.
func listenTCP(t *testing.T, n *testNS, addr netip.AddrPort) {
	t.Helper()
	var l net.Listener
	n.do(t, func() {
		var err error
		if l, err = net.Listen("tcp", addr.String()); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

// dialTCP connects from n to addr.
func dialTCP(t *testing.T, n *testNS, addr netip.AddrPort) error {
	t.Helper()
	var err error
	n.do(t, func() {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr.String(), blockedWithin)
		if err == nil {
			c.Close()
		}
	})
	return err
}

// isTimeout tells a connection attempt that got no answer from one refused.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// listenUDP opens a UDP socket on addr in n.
func listenUDP(t *testing.T, n *testNS, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	n.do(t, func() {
		var err error
		if c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr)); err != nil {
			t.Fatal(err)
		}
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// sendUDP sends one datagram from n, from src to dst.
func sendUDP(t *testing.T, n *testNS, src, dst netip.AddrPort) {
	t.Helper()
	n.do(t, func() {
		c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(src), net.UDPAddrFromAddrPort(dst))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("golvs")); err != nil {
			t.Fatal(err)
		}
	})
}

// received reports whether c gets a datagram within d.
func received(c *net.UDPConn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	var b [64]byte
	_, err := c.Read(b[:])
	return err == nil
}

// tap is an AF_PACKET ETH_P_ALL socket on an interface, as the data
// path's link opens it.
type tap struct {
	mu     sync.Mutex
	frames [][]byte
	fd     int
	done   chan struct{}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func openTap(t *testing.T, n *testNS, ifname string) *tap {
	t.Helper()
	tp := &tap{fd: -1, done: make(chan struct{})}
	n.do(t, func() {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			t.Fatal(err)
		}
		tp.fd = fd
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			t.Fatal(err)
		}
		// Bounded reads, so that the reader sees Close.
		tv := unix.NsecToTimeval((50 * time.Millisecond).Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			t.Fatal(err)
		}
	})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		buf := make([]byte, 2048)
		for {
			select {
			case <-tp.done:
				return
			default:
			}
			n, _, err := unix.Recvfrom(tp.fd, buf, 0)
			if err != nil {
				continue
			}
			tp.mu.Lock()
			tp.frames = append(tp.frames, append([]byte(nil), buf[:n]...))
			tp.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		close(tp.done)
		<-stopped
		unix.Close(tp.fd)
	})
	return tp
}

// sawSYN reports whether the tap saw a TCP SYN (IPv4 or IPv6) to dst.
func (tp *tap) sawSYN(dst netip.AddrPort) bool {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	for _, f := range tp.frames {
		if len(f) < 14 {
			continue
		}
		ip := f[14:]
		var l4 []byte
		var to netip.Addr
		switch binary.BigEndian.Uint16(f[12:14]) {
		case unix.ETH_P_IP:
			if len(ip) < 20 || ip[9] != unix.IPPROTO_TCP {
				continue
			}
			to = netip.AddrFrom4([4]byte(ip[16:20]))
			l4 = ip[int(ip[0]&0xf)*4:]
		case unix.ETH_P_IPV6:
			if len(ip) < 40 || ip[6] != unix.IPPROTO_TCP {
				continue
			}
			to = netip.AddrFrom16([16]byte(ip[24:40]))
			l4 = ip[40:]
		default:
			continue
		}
		if len(l4) >= 14 && to == dst.Addr() && binary.BigEndian.Uint16(l4[2:4]) == dst.Port() && l4[13]&0x02 != 0 {
			return true
		}
	}
	return false
}

// inputCounters installs, in n, the administrator's firewall of the
// issue's note: `table inet fw { chain input { type filter hook input
// priority 0; tcp dport P counter } }` for each port, and returns a reader
// of the counters.
func inputCounters(t *testing.T, h *Host, ports ...uint16) func() map[uint16]uint64 {
	t.Helper()
	c, err := h.nftConn()
	if err != nil {
		t.Fatal(err)
	}
	tb := c.AddTable(&nftables.Table{Name: "fw", Family: nftables.TableFamilyINet})
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: tb, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	for _, p := range ports {
		c.AddRule(&nftables.Rule{Table: tb, Chain: ch, UserData: binaryutil.BigEndian.PutUint16(p), Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(p)},
			&expr.Counter{},
		}})
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	return func() map[uint16]uint64 {
		rules, err := c.GetRules(tb, ch)
		if err != nil {
			t.Fatal(err)
		}
		out := map[uint16]uint64{}
		for _, r := range rules {
			for _, e := range r.Exprs {
				if n, ok := e.(*expr.Counter); ok && len(r.UserData) == 2 {
					out[binary.BigEndian.Uint16(r.UserData)] = n.Packets
				}
			}
		}
		return out
	}
}

func tableExists(t *testing.T, h *Host, name string) bool {
	t.Helper()
	c, err := h.nftConn()
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyNetdev)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}

func TestIngress(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	ap := netip.AddrPortFrom
	vip80, vip81, vip6_80 := ap(vip4, 80), ap(vip4, 81), ap(vip6, 80)
	for _, a := range []netip.AddrPort{vip80, vip81, vip6_80, ap(vip4, 8080)} {
		listenTCP(t, tp.d, a)
	}
	dns := listenUDP(t, tp.d, ap(vip4, 53))
	health := listenUDP(t, tp.d, ap(dir0, 5001))
	client := listenUDP(t, tp.c, ap(cli4, 5000))
	fw := inputCounters(t, h, 80, 81)
	taps := openTap(t, tp.d, "d0")

	// Without the table, everything reaches the director's stack.
	for _, a := range []netip.AddrPort{vip80, vip81, vip6_80} {
		if err := dialTCP(t, tp.p, a); err != nil {
			t.Fatalf("before the table: dial %v: %v", a, err)
		}
	}

	g, err := h.OpenIngress("")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	rules := IngressRules{
		Interfaces: []string{"d0", "d1", "nosuch0"},
		Services: []Match{
			{Addr: netip.PrefixFrom(vip4, 32), Proto: protoTCP, Port: 80},
			{Addr: netip.PrefixFrom(vip6, 128), Proto: protoTCP, Port: 80},
			{Addr: netip.PrefixFrom(vip4, 32), Proto: protoUDP, Port: 53},
			{Addr: netip.PrefixFrom(vip4, 32), Proto: protoTCP, Port: 80}, // a duplicate
		},
		Replies: []Match{{Addr: netip.PrefixFrom(peer4, 32), Proto: protoUDP, Port: 8080}},
	}
	if err := g.Apply(rules); err != nil {
		t.Fatal(err)
	}
	fwBefore := fw()

	// The service's port: no answer at all from the director's stack
	// (no SYN-ACK, no RST), yet the AF_PACKET tap saw the SYN: netdev
	// ingress runs after the taps.
	for _, a := range []netip.AddrPort{vip80, vip6_80} {
		if err := dialTCP(t, tp.p, a); !isTimeout(err) {
			t.Errorf("dial %v with the table: %v, want a timeout", a, err)
		}
		if !taps.sawSYN(a) {
			t.Errorf("the AF_PACKET tap did not see the SYN to %v", a)
		}
	}
	// Another port of the VIP still reaches the stack.
	if err := dialTCP(t, tp.p, vip81); err != nil {
		t.Errorf("dial %v (not a service): %v", vip81, err)
	}
	// UDP service.
	sendUDP(t, tp.p, ap(peer4, 40000), ap(vip4, 53))
	if received(dns, blockedWithin) {
		t.Errorf("the stack received a datagram to the UDP service")
	}
	// A NAT reply from the real server to a client is not forwarded by
	// the stack; the real server's packets to the director itself (a
	// health check's answer) still arrive.
	sendUDP(t, tp.p, ap(peer4, 8080), ap(cli4, 5000))
	if received(client, blockedWithin) {
		t.Errorf("the stack forwarded a NAT reply")
	}
	sendUDP(t, tp.p, ap(peer4, 8080), ap(dir0, 5001))
	if !received(health, time.Second) {
		t.Errorf("a real server's packet to the director was dropped")
	}

	cnt, err := g.Counters()
	if err != nil {
		t.Fatal(err)
	}
	if cnt.ServicePackets < 3 || cnt.ReplyPackets != 1 {
		t.Errorf("counters %+v: want >= 3 service packets (SYNs, datagram) and 1 reply", cnt)
	}
	// The firewall note: the administrator's inet input chain does not
	// see the service's traffic any more, and still sees the rest.
	fwAfter := fw()
	if fwAfter[80] != fwBefore[80] || fwAfter[81] <= fwBefore[81] {
		t.Errorf("inet filter input counters before %v after %v: want port 80 unchanged, port 81 counting", fwBefore, fwAfter)
	}

	// Rebuild with a firewall-mark class (a network and a port range):
	// the old rules go in the same transaction.
	rules.Services = []Match{{Addr: netip.MustParsePrefix("198.18.100.0/24"), Proto: protoTCP, Port: 8000, PortLast: 8100}}
	rules.Replies = nil
	if err := g.Apply(rules); err != nil {
		t.Fatal(err)
	}
	if err := dialTCP(t, tp.p, ap(vip4, 8080)); !isTimeout(err) {
		t.Errorf("dial %v in the class: %v, want a timeout", ap(vip4, 8080), err)
	}
	if err := dialTCP(t, tp.p, vip80); err != nil {
		t.Errorf("dial %v after the rebuild: %v", vip80, err)
	}

	// Close removes the table and the stack has everything back.
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if tableExists(t, h, DefaultTable) {
		t.Errorf("table still there after Close")
	}
	if err := dialTCP(t, tp.p, ap(vip4, 8080)); err != nil {
		t.Errorf("dial after Close: %v", err)
	}
	sendUDP(t, tp.p, ap(peer4, 40000), ap(vip4, 53))
	if !received(dns, time.Second) {
		t.Errorf("datagram to the UDP port not received after Close")
	}
	if err := g.Apply(rules); err == nil {
		t.Errorf("Apply after Close succeeded")
	}
}

func TestIngressStale(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	vip80 := netip.AddrPortFrom(vip4, 80)
	listenTCP(t, tp.d, vip80)
	rules := IngressRules{Interfaces: []string{"d0"}, Services: []Match{{Addr: netip.PrefixFrom(vip4, 32), Proto: protoTCP, Port: 80}}}

	// A previous instance killed before Close left its table behind.
	killed, err := h.OpenIngress("")
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Apply(rules); err != nil {
		t.Fatal(err)
	}
	if err := dialTCP(t, tp.p, vip80); !isTimeout(err) {
		t.Fatalf("rule not in force: %v", err)
	}
	// The next instance removes it when it opens its own.
	g, err := h.OpenIngress("")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if tableExists(t, h, DefaultTable) {
		t.Fatalf("stale table not removed")
	}
	if err := dialTCP(t, tp.p, vip80); err != nil {
		t.Errorf("dial after the cleanup: %v", err)
	}
	// RemoveStaleIngress by itself, and with nothing to remove.
	if err := g.Apply(rules); err != nil {
		t.Fatal(err)
	}
	if removed, err := h.RemoveStaleIngress(""); err != nil || !removed {
		t.Errorf("RemoveStaleIngress = %v, %v; want true", removed, err)
	}
	if removed, err := h.RemoveStaleIngress(""); err != nil || removed {
		t.Errorf("RemoveStaleIngress of nothing = %v, %v; want false", removed, err)
	}
	// Close of a table someone else removed is not an error.
	if err := g.Close(); err != nil {
		t.Errorf("Close after the table went: %v", err)
	}
}

// TestMatchElements checks the set keys and the split between the set and
// rules of their own, without root.
func TestMatchElements(t *testing.T) {
	p := netip.MustParsePrefix
	ms := IngressRules{Services: []Match{
		{Addr: p("198.18.100.1/32"), Proto: protoTCP, Port: 80},
		{Addr: p("198.18.100.1/32"), Proto: protoTCP, Port: 80, PortLast: 80},
		{Addr: p("::ffff:198.18.100.2/128"), Proto: protoUDP, Port: 53},
		{Addr: p("2001:db8:100::1/128"), Proto: protoSCTP, Port: 3868},
		{Addr: p("198.18.100.1/32"), Proto: 0, Port: 443},       // all protocols: rules
		{Addr: p("198.18.100.0/24"), Proto: protoTCP, Port: 80}, // a network: rules
		{Addr: p("198.18.100.1/32"), Proto: protoTCP},           // every port: rules
		{Addr: p("198.18.100.1/32"), Proto: unix.IPPROTO_ICMP},  // not a service protocol: dropped
		{},
	}}.normalized()
	var keys4, keys6 [][]byte
	for _, e := range setElements(ms.Services, true) {
		keys4 = append(keys4, e.Key)
	}
	for _, e := range setElements(ms.Services, false) {
		keys6 = append(keys6, e.Key)
	}
	want4 := [][]byte{
		{198, 18, 100, 1, 6, 0, 0, 0, 0, 80, 0, 0},
		{198, 18, 100, 2, 17, 0, 0, 0, 0, 53, 0, 0},
	}
	want6 := [][]byte{
		{0x20, 0x01, 0x0d, 0xb8, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 132, 0, 0, 0, 0x0f, 0x1c, 0, 0},
	}
	if diff := cmp.Diff(want4, keys4); diff != "" {
		t.Errorf("IPv4 keys (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want6, keys6); diff != "" {
		t.Errorf("IPv6 keys (-want +got):\n%s", diff)
	}
	var wild int
	for _, m := range ms.Services {
		if !m.exact() {
			wild++
		}
	}
	if len(ms.Services) != 7 || wild != 3 {
		t.Errorf("normalized %d matches, %d for rules; want 7, 3", len(ms.Services), wild)
	}
	if got := maskBytes(p("198.18.100.0/22")); !cmp.Equal(got, []byte{255, 255, 252, 0}) {
		t.Errorf("mask = %v", got)
	}
	for _, tc := range []struct {
		m      Match
		lo, hi uint16
	}{
		{Match{}, 0, 0xffff},
		{Match{Port: 80}, 80, 80},
		{Match{Port: 80, PortLast: 90}, 80, 90},
		{Match{Port: 80, PortLast: 70}, 80, 80},
	} {
		if lo, hi := tc.m.ports(); lo != tc.lo || hi != tc.hi {
			t.Errorf("%+v ports = %d-%d, want %d-%d", tc.m, lo, hi, tc.lo, tc.hi)
		}
	}
}
