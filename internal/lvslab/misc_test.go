package lvslab

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestLoopbackTraffic: a host talking to its own addresses (an LVS
// director that is also a real server) goes through lo, not the wire.
func TestLoopbackTraffic(t *testing.T) {
	l, a, _ := twoHosts(t, 70, false)
	a.Loopback().AddAddr(pfx("203.0.113.100/32"))
	if _, err := a.ListenTCP(ap("203.0.113.100:80"), ReplyAndClose([]byte("local"))); err != nil {
		t.Fatal(err)
	}
	c, err := a.DialTCP(netip.AddrPort{}, ap("203.0.113.100:80"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.LocalAddr().Addr() != ip("203.0.113.100") || c.RemoteAddr() != ap("203.0.113.100:80") {
		t.Errorf("local %v remote %v", c.LocalAddr(), c.RemoteAddr())
	}
	l.Drain()
	c.Write([]byte("x"))
	l.Drain()
	if string(c.Received()) != "local" {
		t.Fatalf("got %q", c.Received())
	}
	p, _ := a.Ping(netip.Addr{}, ip("192.0.2.1"), 8)
	u, _ := a.ListenUDP(ap("127.0.0.1:5353"), nil)
	u.WriteTo([]byte("self"), ap("127.0.0.1:5353"))
	l.Drain()
	if p.Replies != 1 {
		t.Error("no reply from self")
	}
	if d, ok := u.Recv(); !ok || string(d.Data) != "self" || d.IfIndex != loIndex {
		t.Errorf("udp to self: %+v", d)
	}
	if got := l.Segments()[0].Delivered(); got != 0 {
		t.Errorf("%d frames on the wire for local traffic", got)
	}
	u.Close()
	if err := u.WriteTo([]byte("x"), ap("127.0.0.1:1")); !errors.Is(err, ErrClosed) {
		t.Errorf("write on closed socket: %v", err)
	}
}

// TestMulticast: UDP to a group reaches the hosts that joined it (the
// IPVS sync daemon's 224.0.0.81:8848), with TTL 1 and the mapped MAC.
func TestMulticast(t *testing.T) {
	l, a, b := twoHosts(t, 71, false)
	group := ip("224.0.0.81")
	rx, _ := b.ListenUDP(anyPort(8848), nil)
	tx, _ := a.ListenUDP(netip.AddrPort{}, nil)
	tx.WriteTo([]byte("sync"), netip.AddrPortFrom(group, 8848))
	l.Drain()
	if rx.Queued() != 0 {
		t.Fatal("received a group not joined")
	}
	b.JoinGroup(group)
	tx.WriteTo([]byte("sync"), netip.AddrPortFrom(group, 8848))
	l.Drain()
	d, ok := rx.Recv()
	if !ok || d.Dst.Addr() != group || string(d.Data) != "sync" {
		t.Fatalf("got %+v %v", d, ok)
	}
	fr := l.frames("lan")
	x := decode(fr[len(fr)-1])
	if x.dst != (MAC{0x01, 0x00, 0x5e, 0x00, 0x00, 0x51}) || x.ttl() != 1 {
		t.Errorf("multicast frame %s ttl %d", Summarize(fr[len(fr)-1]), x.ttl())
	}
	b.LeaveGroup(group)
	tx.WriteTo([]byte("sync"), netip.AddrPortFrom(group, 8848))
	l.Drain()
	if rx.Queued() != 0 {
		t.Error("received after leaving")
	}
	if len(tx.Errors()) != 0 {
		t.Error("ICMP error about a multicast datagram")
	}
}

// TestAbort: Abort sends RST; the peer sees the reset.
func TestAbort(t *testing.T) {
	l, a, b := twoHosts(t, 72, false)
	var events []TCPEvent
	ln, _ := b.ListenTCP(anyPort(80), func(c *TCPConn, ev TCPEvent) { events = append(events, ev) })
	c, _ := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:80"), nil)
	l.Drain()
	c.Abort()
	l.Drain()
	s := ln.Conns()[0]
	if c.State() != TCPClosed || !errors.Is(c.Err(), ErrAborted) {
		t.Errorf("aborter %v %v", c.State(), c.Err())
	}
	if s.State() != TCPClosed || !s.WasReset() || !errors.Is(s.Err(), ErrConnReset) {
		t.Errorf("peer %v %v", s.State(), s.Err())
	}
	if len(events) != 2 || events[0] != TCPEventEstablished || events[1] != TCPEventClosed {
		t.Errorf("events %v", events)
	}
	ln.Close()
	c2, _ := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:80"), nil)
	l.Drain()
	if !errors.Is(c2.Err(), ErrConnRefused) {
		t.Errorf("after listener close: %v", c2.Err())
	}
}

// TestGratuitousARP: a gratuitous ARP (as VRRP sends on failover) moves
// the VIP in the caches that have it, creates no entry elsewhere, and the
// switch relearns the port.
func TestGratuitousARP(t *testing.T) {
	l := newLab(t, 73)
	lan := l.segment("lan")
	client := l.NewHost("client", HostConfig{})
	client.AddInterface(lan, "eth0", pfx("192.0.2.10/24"))
	other := l.NewHost("other", HostConfig{})
	other.AddInterface(lan, "eth0", pfx("192.0.2.11/24"))
	d1 := l.NewHost("d1", HostConfig{})
	d1.AddInterface(lan, "eth0", pfx("192.0.2.1/24"), pfx("192.0.2.100/32"))
	d2 := l.NewHost("d2", HostConfig{})
	d2.AddInterface(lan, "eth0", pfx("192.0.2.2/24"))
	client.Ping(netip.Addr{}, vip, 8)
	l.Drain()
	if n, _ := client.Neighbour(2, vip); n.MAC != d1.Interface(2).MAC() {
		t.Fatalf("before failover %v", n)
	}
	// Failover: d2 takes the VIP and announces it.
	d2.Interface(2).AddAddr(pfx("192.0.2.100/32"))
	d2.sendARP(d2.Interface(2), arpRequest, BroadcastMAC, vip, MAC{}, vip)
	l.Drain()
	if n, _ := client.Neighbour(2, vip); n.MAC != d2.Interface(2).MAC() {
		t.Errorf("after gratuitous ARP %v", n)
	}
	if _, ok := other.Neighbour(2, vip); ok {
		t.Error("gratuitous ARP created an entry")
	}
	p, _ := client.Ping(netip.Addr{}, vip, 8)
	l.Drain()
	if p.Replies != 1 || d2.Counters().Delivered == 0 {
		t.Error("ping after failover did not reach d2")
	}
}

// TestStrings pins the formats tests and traces rely on.
func TestStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{TCPEstablished.String(), "ESTABLISHED"},
		{TCPState(99).String(), "TCPState(99)"},
		{NeighReachable.String(), "REACHABLE"},
		{DropBadL4Checksum.String(), "bad-l4-checksum"},
		{DropReason(200).String(), "DropReason(200)"},
		{MAC{2, 0, 0, 0, 0xab, 1}.String(), "02:00:00:00:ab:01"},
		{Route{Dst: pfx("0.0.0.0/0"), Gateway: ip("192.0.2.1"), IfIndex: 2}.String(), "0.0.0.0/0 via 192.0.2.1 dev 2"},
		{fmtTime(1500 * 1e6), "   1.500000"},
		{Summarize([]byte{1}), "short frame (1 bytes)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	e := &ICMPError{From: ip("192.0.2.1"), Type: 3, Code: 4, MTU: 1400, Dst: ap("198.51.100.1:80")}
	if s := e.Error(); !strings.Contains(s, "mtu 1400") || !e.IsFragNeeded() || e.IsUnreachable() {
		t.Errorf("%s", s)
	}
	var c Counters
	c.drops[DropFilter] = 2
	if s := c.String(); !strings.Contains(s, "drop[filter]=2") {
		t.Errorf("counters %s", s)
	}
}

// TestPortReuse: a client reusing its port while the server holds the old
// connection in TIME_WAIT gets through, by the SYN reopening TIME_WAIT or,
// when the new ISN is lower, by the RST that answers the TIME_WAIT ACK
// (RFC 1337 hazard, Linux tcp_rfc1337=0) and the SYN's retransmission.
func TestPortReuse(t *testing.T) {
	l, a, b := twoHosts(t, 74, false)
	b.ListenTCP(anyPort(80), ReplyAndClose([]byte("ok")))
	for i := range 6 {
		c, err := a.DialTCP(ap("192.0.2.1:40000"), ap("192.0.2.2:80"), nil)
		if err != nil {
			t.Fatal(i, err)
		}
		l.advanceUntil(func() bool { return c.State() == TCPEstablished }, 100*time.Millisecond, 3*time.Second)
		c.Write([]byte("x"))
		l.Drain()
		c.Close()
		l.Drain()
		if string(c.Received()) != "ok" || c.State() != TCPClosed {
			t.Fatalf("round %d: %q %v", i, c.Received(), c.State())
		}
		if tw := b.TCPConns(); len(tw) != 1 || tw[0].State() != TCPTimeWait {
			t.Fatalf("round %d: server conns %v", i, tw)
		}
	}
}

// TestCloseInSynReceived: a server that closes before the handshake's ACK
// arrives sends its FIN once the handshake completes.
func TestCloseInSynReceived(t *testing.T) {
	l, a, b := twoHosts(t, 75, false)
	aMAC := a.Interface(2).MAC()
	dropped := false
	l.Segments()[0].SetDropFilter(func(f []byte) bool {
		x := decode(f)
		if x.hasTCP && x.src == aMAC && x.tcp.flags == tcpACK && !dropped {
			dropped = true
			return true
		}
		return false
	})
	ln, _ := b.ListenTCP(anyPort(80), nil)
	c, _ := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:80"), nil)
	l.Drain()
	s := ln.Conns()[0]
	if s.State() != TCPSynReceived || c.State() != TCPEstablished {
		t.Fatalf("server %v client %v", s.State(), c.State())
	}
	s.Close()
	c.Write([]byte("x")) // carries the ACK the server missed
	l.Drain()
	if string(s.Received()) != "x" || s.State() != TCPFinWait2 || !c.PeerClosed() {
		t.Fatalf("server %v %q, client peer closed %v", s.State(), s.Received(), c.PeerClosed())
	}
	c.Close()
	l.Drain()
	if c.State() != TCPClosed || s.State() != TCPTimeWait || c.Err() != nil {
		t.Errorf("client %v %v server %v", c.State(), c.Err(), s.State())
	}
}

// TestNoMulticastNoise: hosts ignore neighbour solicitations for other
// hosts' addresses at the link layer, as a NIC's multicast filter does.
func TestNoMulticastNoise(t *testing.T) {
	l := newLab(t, 76)
	lan := l.segment("lan")
	var hs []*Host
	for i := range 3 {
		h := l.NewHost(string(rune('a'+i)), HostConfig{})
		h.AddInterface(lan, "eth0", netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)}), 64))
		hs = append(hs, h)
	}
	hs[0].Ping(netip.Addr{}, ip("2001:db8::2"), 8)
	l.Drain()
	if got := hs[2].Counters(); got.Delivered != 0 || got.Dropped(DropNotLocal) != 0 || got.Dropped(DropOtherHost) != 1 {
		t.Errorf("bystander %v", got)
	}
}
