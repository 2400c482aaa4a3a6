package director

import (
	"fmt"
	"net/netip"
	"time"

	"golvs/internal/lvslab"
	"golvs/internal/service"
)

// The addresses of the test bed built by NewTopology:
//
//	client 198.18.0.10 ─front─ router ─lan─ director 198.19.0.1, VIP 198.19.0.100
//	2001:db8:c::10              .1 / .254     2001:db8:5::1, VIP 2001:db8:5::100
//	                                     └── rs1..rsN 198.19.0.11.., 2001:db8:5::11..
var (
	VIP4     = netip.MustParseAddr("198.19.0.100")
	VIP6     = netip.MustParseAddr("2001:db8:5::100")
	Client4  = netip.MustParseAddr("198.18.0.10")
	Client6  = netip.MustParseAddr("2001:db8:c::10")
	DirAddr4 = netip.MustParseAddr("198.19.0.1")
	DirAddr6 = netip.MustParseAddr("2001:db8:5::1")
	RtrLan4  = netip.MustParseAddr("198.19.0.254")
	RtrLan6  = netip.MustParseAddr("2001:db8:5::254")
)

// RSAddr4 and RSAddr6 return real server i's addresses (0-based).
func RSAddr4(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 0, byte(11 + i)}) }

// RSAddr6 returns real server i's IPv6 address.
func RSAddr6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("2001:db8:5::%d", 11+i)) }

// TopologyConfig configures NewTopology.
type TopologyConfig struct {
	// Net is the network's configuration (seed, clock, tracing, pcaps).
	Net lvslab.Config
	// Method sets the real servers up for a forwarding method: Masq
	// routes them through the director; Route and Tunnel give them the
	// VIPs on lo (without ARP for them) and route them through the
	// router, Tunnel also decapsulates IP-in-IP.
	Method service.FwdMethod
	// RealServers is the number of real servers (0: 3).
	RealServers int
	// Director configures the director.
	Director Config
}

// Topology is the classic LVS test bed on a simulated network: a client
// behind a router, and on the router's LAN the director and the real
// servers. Every real server listens on TCP 80 and 8080 (it answers the
// first data with its name and closes), TCP 7 (echo) and UDP 53 (echo).
type Topology struct {
	Net                     *lvslab.Network
	Front, LAN              *lvslab.Segment
	Client, Router, DirHost *lvslab.Host
	RS                      []*lvslab.Host
	Director                *Director
}

// NewTopology builds the test bed.
func NewTopology(cfg TopologyConfig) (*Topology, error) {
	if cfg.RealServers == 0 {
		cfg.RealServers = 3
	}
	n := lvslab.New(cfg.Net)
	t := &Topology{Net: n, Front: n.NewSegment("front"), LAN: n.NewSegment("lan")}
	var errs []error
	check := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	pfx := netip.MustParsePrefix

	t.Client = n.NewHost("client", lvslab.HostConfig{})
	t.Client.AddInterface(t.Front, "eth0", pfx("198.18.0.10/24"), pfx("2001:db8:c::10/64"))
	check(t.Client.SetDefaultGateway(netip.MustParseAddr("198.18.0.1")))
	check(t.Client.SetDefaultGateway(netip.MustParseAddr("2001:db8:c::1")))

	t.Router = n.NewHost("router", lvslab.HostConfig{Forwarding: true})
	t.Router.AddInterface(t.Front, "eth0", pfx("198.18.0.1/24"), pfx("2001:db8:c::1/64"))
	t.Router.AddInterface(t.LAN, "eth1", pfx("198.19.0.254/24"), pfx("2001:db8:5::254/64"))

	t.DirHost = n.NewHost("director", lvslab.HostConfig{})
	t.DirHost.AddInterface(t.LAN, "eth0", pfx("198.19.0.1/24"), pfx("198.19.0.100/32"),
		pfx("2001:db8:5::1/64"), pfx("2001:db8:5::100/128"))
	check(t.DirHost.SetDefaultGateway(RtrLan4))
	check(t.DirHost.SetDefaultGateway(RtrLan6))

	for i := range cfg.RealServers {
		name := fmt.Sprintf("rs%d", i+1)
		h := n.NewHost(name, lvslab.HostConfig{Decap: cfg.Method == service.Tunnel})
		h.AddInterface(t.LAN, "eth0", netip.PrefixFrom(RSAddr4(i), 24), netip.PrefixFrom(RSAddr6(i), 64))
		gw4, gw6 := RtrLan4, RtrLan6
		if cfg.Method == service.Masq {
			gw4, gw6 = DirAddr4, DirAddr6
		} else {
			h.Loopback().AddAddr(netip.PrefixFrom(VIP4, 32))
			h.Loopback().AddAddr(netip.PrefixFrom(VIP6, 128))
		}
		check(h.SetDefaultGateway(gw4))
		check(h.SetDefaultGateway(gw6))
		for _, port := range []uint16{80, 8080} {
			_, err := h.ListenTCP(netip.AddrPortFrom(netip.Addr{}, port), lvslab.ReplyAndClose([]byte(name)))
			check(err)
		}
		_, err := h.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 7), lvslab.EchoTCP)
		check(err)
		_, err = h.ListenUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 53), lvslab.EchoUDP)
		check(err)
		_, err = h.ListenUDP(netip.AddrPortFrom(netip.IPv6Unspecified(), 53), lvslab.EchoUDP)
		check(err)
		t.RS = append(t.RS, h)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("topology: %v", errs)
	}
	d, err := New(t.DirHost, n, cfg.Director)
	if err != nil {
		return nil, err
	}
	t.Director = d
	return t, nil
}

// Request opens one TCP connection from the client to vip:port, sends a
// request and returns what the server answered (a real server's name), as
// curl would, advancing the simulated clock as needed (at most 10 s).
func (t *Topology) Request(vip netip.Addr, port uint16) (string, error) {
	c, err := t.Client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(vip, port), nil)
	if err != nil {
		return "", err
	}
	ok := t.Net.AdvanceUntil(func() bool { return c.State() != lvslab.TCPSynSent }, 100*time.Millisecond, 10*time.Second)
	if !ok || c.Err() != nil {
		return "", fmt.Errorf("connect %v: state %v: %v", netip.AddrPortFrom(vip, port), c.State(), c.Err())
	}
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		return "", err
	}
	t.Net.AdvanceUntil(c.PeerClosed, 100*time.Millisecond, 10*time.Second)
	_ = c.Close()
	t.Net.Drain()
	return string(c.Received()), c.Err()
}
