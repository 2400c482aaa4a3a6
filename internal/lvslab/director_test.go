package lvslab

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// miniDirector is a toy LVS director built on the hook API exactly as the
// data-path adapter will use it: SetIngressHook to take VIP traffic,
// Resolve for the real server's MAC, Transmit for the result, and the
// host's own stack (hook returns false) for everything else (ARP for the
// VIP, forwarded replies). It picks a real server by client port and
// keeps no state.
type miniDirector struct {
	h      *Host
	vip    netip.Addr
	port   uint16
	rips   []netip.Addr
	tunnel bool
	// Frames the hook saw whose source was the VIP: a DR or TUN
	// director never sees the replies.
	repliesSeen int
}

func (d *miniDirector) attach() { d.h.SetIngressHook(d.hook) }

func (d *miniDirector) hook(ifindex int, frame []byte) bool {
	x := decode(frame)
	if !x.hasIP {
		return false
	}
	if x.ip.src == d.vip {
		d.repliesSeen++
	}
	if x.ip.dst != d.vip || x.ip.isFragment() || len(x.l4) < 4 || be16(x.l4[2:]) != d.port {
		return false
	}
	pkt := slices.Clone(frame[ethHdrLen : ethHdrLen+x.ip.tlen])
	// Pick by source port so a connection's packets stay on one server.
	rip := d.rips[int(be16(x.l4[0:]))%len(d.rips)]
	r, ok := d.h.RouteTo(rip)
	if !ok {
		return true
	}
	out := d.h.Interface(r.IfIndex)
	if d.tunnel {
		// ip_vs_tunnel_xmit: the inner TTL is decremented, the outer
		// header copies TTL and DF, and a DF packet that no longer fits
		// gets frag-needed with the tunnel MTU (ensure_mtu_is_adequate).
		pkt[8]--
		ipv4HeaderChecksumFix(pkt)
		mtu := out.MTU() - ipv4HdrLen
		if len(pkt) > mtu && x.ip.df {
			d.h.sendICMPError(frame[ethHdrLen:ethHdrLen+x.ip.tlen], x.ip, icmpDestUnreach, unreachFragNeeded, uint32(mtu))
			return true
		}
		src := d.h.sourceFor(r, rip)
		outer := make([]byte, ipv4HdrLen+len(pkt))
		d.h.ipID++
		putIPv4Header(outer, len(outer), d.h.ipID, x.ip.df, pkt[8], protoIPIP, src, rip)
		copy(outer[ipv4HdrLen:], pkt)
		pkt = outer
	}
	d.h.Resolve(out.Index(), r.nextHop(rip), func(mac MAC, ok bool) {
		if !ok {
			return
		}
		f := make([]byte, ethHdrLen+len(pkt))
		copy(f, mac[:])
		src := out.MAC()
		copy(f[6:], src[:])
		put16(f[12:], etherTypeIPv4)
		copy(f[ethHdrLen:], pkt)
		if err := d.h.Transmit(out.Index(), f); err != nil {
			panic(err)
		}
	})
	return true
}

var vip = ip("192.0.2.100")

// drNet: client, director and two real servers on one segment, the VIP
// on the director's eth0 and on each real server's lo.
func drNet(t *testing.T, seed uint64, rsConfig HostConfig) (*lab, *Host, *miniDirector, []*Host) {
	l := newLab(t, seed)
	lan := l.segment("lan")
	client := l.NewHost("client", HostConfig{})
	client.AddInterface(lan, "eth0", pfx("192.0.2.10/24"))
	dir := l.NewHost("director", HostConfig{})
	dir.AddInterface(lan, "eth0", pfx("192.0.2.1/24"), pfx("192.0.2.100/32"))
	var rss []*Host
	d := &miniDirector{h: dir, vip: vip, port: 80}
	for i, rip := range []string{"192.0.2.21", "192.0.2.22"} {
		rs := l.NewHost("rs"+string(rune('1'+i)), rsConfig)
		rs.AddInterface(lan, "eth0", netip.PrefixFrom(ip(rip), 24))
		rs.Loopback().AddAddr(netip.PrefixFrom(vip, 32))
		if _, err := rs.ListenTCP(netip.AddrPortFrom(vip, 80), ReplyAndClose([]byte(rs.Name()))); err != nil {
			t.Fatal(err)
		}
		if _, err := rs.ListenUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 53), EchoUDP); err != nil {
			t.Fatal(err)
		}
		rss = append(rss, rs)
		d.rips = append(d.rips, ip(rip))
	}
	d.attach()
	return l, client, d, rss
}

// TestDRRealServer: the real servers answer on the VIP held on lo when a
// frame arrives with their MAC, reply straight to the client from the VIP,
// and never answer ARP for it.
func TestDRRealServer(t *testing.T) {
	l, client, d, rss := drNet(t, 30, HostConfig{})
	got := map[string]int{}
	for i := range 4 {
		c, err := client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(vip, 80), nil)
		if err != nil {
			t.Fatal(err)
		}
		l.Drain()
		c.Write([]byte("GET /\n"))
		l.Drain()
		c.Close()
		l.Drain()
		if c.State() != TCPClosed || c.Err() != nil || !c.PeerClosed() { // the server closed first
			t.Fatalf("conn %d: %v %v", i, c.State(), c.Err())
		}
		got[string(c.Received())]++
	}
	if got["rs1"] == 0 || got["rs2"] == 0 || got["rs1"]+got["rs2"] != 4 {
		t.Errorf("replies %v", got)
	}
	dirMAC := d.h.Interface(2).MAC()
	if n, _ := client.Neighbour(2, vip); n.MAC != dirMAC {
		t.Errorf("client resolved the VIP to %v, want the director %v", n.MAC, dirMAC)
	}
	rsMACs := map[MAC]string{rss[0].Interface(2).MAC(): "rs1", rss[1].Interface(2).MAC(): "rs2"}
	synAcks := 0
	for _, f := range l.frames("lan") {
		x := decode(f)
		if x.etype == etherTypeARP {
			if name, ok := rsMACs[x.src]; ok && (x.arpSPA == vip) {
				t.Errorf("%s announced the VIP: %s", name, Summarize(f))
			}
			if x.arpOp == arpReply && x.arpSPA == vip && x.src != dirMAC {
				t.Errorf("ARP reply for the VIP not from the director: %s", Summarize(f))
			}
			continue
		}
		if x.hasTCP && x.tcp.flags&tcpSYN != 0 && x.tcp.flags&tcpACK != 0 {
			synAcks++
			if _, ok := rsMACs[x.src]; !ok || x.ip.src != vip {
				t.Errorf("SYN-ACK not straight from a real server's MAC with the VIP: %s", Summarize(f))
			}
		}
	}
	if synAcks != 4 {
		t.Errorf("%d SYN-ACKs", synAcks)
	}
	if d.repliesSeen != 0 {
		t.Errorf("director saw %d reply frames", d.repliesSeen)
	}

	// UDP: the real server's wildcard socket replies from the VIP.
	d.port = 53
	u, _ := client.ListenUDP(netip.AddrPort{}, nil)
	u.WriteTo([]byte("query"), netip.AddrPortFrom(vip, 53))
	l.Drain()
	if dg, ok := u.Recv(); !ok || dg.Src != netip.AddrPortFrom(vip, 53) || string(dg.Data) != "query" {
		t.Errorf("udp reply %+v %v", dg, ok)
	}
}

// TestDRARPIgnoreOff: with arp_ignore=0 the real servers answer ARP for
// the VIP on lo — the classic LVS-DR misconfiguration — and the client may
// bypass the director.
func TestDRARPIgnoreOff(t *testing.T) {
	l, client, _, _ := drNet(t, 31, HostConfig{ARPAnyLocal: true})
	client.Resolve(2, vip, nil)
	l.Drain()
	replies := 0
	for _, f := range l.frames("lan") {
		if x := decode(f); x.arpOp == arpReply && x.arpSPA == vip {
			replies++
		}
	}
	if replies != 3 {
		t.Errorf("%d ARP replies for the VIP, want 3 (director and both real servers)", replies)
	}
}

// tunNet is the classic LVS-TUN layout:
//
//	client 192.0.2.10 ──left── router ──right── director 198.51.100.2 (VIP on eth0)
//	                                      └──── rs1 198.51.100.21, rs2 .22 (VIP on lo, decap)
//
// The router sends VIP traffic to the director; real servers answer the
// client directly through the router.
func tunNet(t testing.TB, seed uint64, decap bool, opts ...func(*Config)) (*lab, *Host, *miniDirector, []*Host) {
	l := newLab(t, seed, opts...)
	left, right := l.segment("left"), l.segment("right")
	client := l.NewHost("client", HostConfig{})
	client.AddInterface(left, "eth0", pfx("192.0.2.10/24"))
	mustGW(t, client, "192.0.2.1")
	router := l.NewHost("router", HostConfig{Forwarding: true})
	router.AddInterface(left, "eth0", pfx("192.0.2.1/24"))
	router.AddInterface(right, "eth1", pfx("198.51.100.1/24"))
	tvip := ip("203.0.113.100")
	if err := router.AddRoute(Route{Dst: netip.PrefixFrom(tvip, 32), Gateway: ip("198.51.100.2")}); err != nil {
		t.Fatal(err)
	}
	dir := l.NewHost("director", HostConfig{})
	dir.AddInterface(right, "eth0", pfx("198.51.100.2/24"), netip.PrefixFrom(tvip, 32))
	mustGW(t, dir, "198.51.100.1")
	d := &miniDirector{h: dir, vip: tvip, port: 80, tunnel: true}
	var rss []*Host
	for i, rip := range []string{"198.51.100.21", "198.51.100.22"} {
		rs := l.NewHost("rs"+string(rune('1'+i)), HostConfig{Decap: decap})
		rs.AddInterface(right, "eth0", netip.PrefixFrom(ip(rip), 24))
		rs.Loopback().AddAddr(netip.PrefixFrom(tvip, 32))
		mustGW(t, rs, "198.51.100.1")
		rs.ListenTCP(netip.AddrPortFrom(tvip, 80), ReplyAndClose([]byte(rs.Name())))
		rss = append(rss, rs)
		d.rips = append(d.rips, ip(rip))
	}
	d.attach()
	return l, client, d, rss
}

// TestTUNDecap: IPIP arrives at the real server, is decapsulated and
// delivered to the VIP on lo; the reply leaves from the VIP, unencapsulated,
// towards the client's gateway.
func TestTUNDecap(t *testing.T) {
	l, client, d, rss := tunNet(t, 32, true)
	c, err := client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(d.vip, 80), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Drain()
	c.Write([]byte("GET /\n"))
	l.Drain()
	name := string(c.Received())
	if name != "rs1" && name != "rs2" || !c.PeerClosed() {
		t.Fatalf("client got %q, peer closed %v", name, c.PeerClosed())
	}
	rs := rss[0]
	if name == "rs2" {
		rs = rss[1]
	}
	if rs.Counters().Decapsulated == 0 {
		t.Errorf("%s decapsulated nothing: %v", name, rs.Counters())
	}
	rsMAC := rs.Interface(2).MAC()
	routerMAC := l.Host("router").Interface(3).MAC()
	ipip, replies := 0, 0
	for _, f := range l.frames("right") {
		x := decode(f)
		if !x.hasIP {
			continue
		}
		if x.ip.proto == protoIPIP {
			ipip++
			if x.dst != rsMAC {
				t.Errorf("tunnel packet to %v: %s", x.dst, Summarize(f))
			}
		}
		if x.src == rsMAC && x.hasTCP {
			replies++
			if x.ip.src != d.vip || x.dst != routerMAC {
				t.Errorf("reply not from the VIP to the router: %s", Summarize(f))
			}
		}
	}
	if ipip == 0 || replies == 0 {
		t.Errorf("ipip %d replies %d", ipip, replies)
	}
	if d.repliesSeen != 0 {
		t.Errorf("director saw %d replies", d.repliesSeen)
	}
}

// TestTUNWithoutDecap: a real server without the ipip module answers
// protocol unreachable and delivers nothing.
func TestTUNWithoutDecap(t *testing.T) {
	l, client, d, rss := tunNet(t, 33, false)
	c, _ := client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(d.vip, 80), nil)
	l.Drain()
	if c.State() != TCPSynSent {
		t.Fatalf("state %v", c.State())
	}
	drops := rss[0].Counters().Dropped(DropNoProto) + rss[1].Counters().Dropped(DropNoProto)
	if drops != 1 {
		t.Errorf("no-proto drops %d", drops)
	}
	errs := d.h.ICMPErrors()
	if len(errs) != 1 || errs[0].Type != icmpDestUnreach || errs[0].Code != unreachProto {
		t.Errorf("director's ICMP errors %v", errs)
	}
}

// TestTUNPMTU: the real server advertises MSS 1460, so the client's full
// segments no longer fit once encapsulated; the director answers
// frag-needed with the tunnel MTU and the client recovers.
func TestTUNPMTU(t *testing.T) {
	l, client, d, rss := tunNet(t, 34, true)
	for _, rs := range rss {
		rs.tcpListeners[netip.AddrPortFrom(d.vip, 80)].handler = EchoTCP
	}
	c, _ := client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(d.vip, 80), nil)
	l.Drain()
	if c.State() != TCPEstablished || c.MSS() != 1460 {
		t.Fatalf("state %v mss %d", c.State(), c.MSS())
	}
	data := bytes.Repeat([]byte("abcdefgh"), 2000)
	c.Write(data)
	l.advanceUntil(func() bool { return len(c.Received()) == len(data) }, 100*time.Millisecond, 10*time.Second)
	if !bytes.Equal(c.Received(), data) {
		t.Fatal("echo differs")
	}
	errs := c.ICMPErrors()
	if len(errs) == 0 || !errs[0].IsFragNeeded() || errs[0].MTU != 1480 || errs[0].From != d.vip {
		t.Fatalf("ICMP errors %v", errs)
	}
	if got := client.PathMTU(d.vip); got != 1480 || c.MSS() != 1440 {
		t.Errorf("client PMTU %d MSS %d, want 1480 1440", got, c.MSS())
	}
	for _, f := range l.frames("right") {
		if x := decode(f); x.hasIP && x.ip.tlen > 1500 {
			t.Errorf("oversize: %s", Summarize(f))
		}
	}
}
