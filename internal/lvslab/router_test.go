package lvslab

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// routed builds client — router — server:
//
//	client 192.0.2.10/24 ──left── 192.0.2.1 router 198.51.100.1 ──right── 198.51.100.10/24 server
//	       2001:db8:1::10/64         2001:db8:1::1   2001:db8:2::1            2001:db8:2::10/64
type routedNet struct {
	*lab
	client, router, server *Host
}

func routed(t *testing.T, seed uint64) *routedNet {
	l := newLab(t, seed)
	left, right := l.segment("left"), l.segment("right")
	r := &routedNet{lab: l}
	r.client = l.NewHost("client", HostConfig{})
	r.router = l.NewHost("router", HostConfig{Forwarding: true})
	r.server = l.NewHost("server", HostConfig{})
	r.client.AddInterface(left, "eth0", pfx("192.0.2.10/24"), pfx("2001:db8:1::10/64"))
	r.router.AddInterface(left, "eth0", pfx("192.0.2.1/24"), pfx("2001:db8:1::1/64"))
	r.router.AddInterface(right, "eth1", pfx("198.51.100.1/24"), pfx("2001:db8:2::1/64"))
	r.server.AddInterface(right, "eth0", pfx("198.51.100.10/24"), pfx("2001:db8:2::10/64"))
	mustGW(t, r.client, "192.0.2.1")
	mustGW(t, r.client, "2001:db8:1::1")
	mustGW(t, r.server, "198.51.100.1")
	mustGW(t, r.server, "2001:db8:2::1")
	return r
}

func TestRouterForwards(t *testing.T) {
	for _, fam := range []struct{ name, srv string }{{"IPv4", "198.51.100.10"}, {"IPv6", "2001:db8:2::10"}} {
		t.Run(fam.name, func(t *testing.T) {
			r := routed(t, 20)
			srv := ip(fam.srv)
			p, err := r.client.Ping(netip.Addr{}, srv, 32)
			if err != nil {
				t.Fatal(err)
			}
			r.Drain()
			if p.Replies != 1 || p.ReplyFrom != srv {
				t.Fatalf("ping through the router: %+v", p)
			}
			// Hop count: one router, one decrement each way.
			for _, f := range r.frames("right") {
				if d := decode(f); d.hasIP && d.ip.src.Is4() == srv.Is4() && d.ip.src != srv && d.ttl() != ndHopLimit && d.ttl() != defaultTTL-1 {
					t.Errorf("forwarded with TTL %d: %s", d.ttl(), Summarize(f))
				}
			}
			if got := r.router.Counters().Forwarded; got != 2 {
				t.Errorf("router forwarded %d, want 2", got)
			}

			r.server.ListenTCP(netip.AddrPortFrom(srv, 80), ReplyAndClose([]byte("server")))
			c, err := r.client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(srv, 80), nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Drain()
			c.Write([]byte("GET\n"))
			r.Drain()
			if string(c.Received()) != "server" || !c.PeerClosed() {
				t.Fatalf("got %q", c.Received())
			}

			// Forwarding off: the router drops, nothing comes back.
			r.router.SetForwarding(false)
			p, _ = r.client.Ping(netip.Addr{}, srv, 32)
			r.Drain()
			if p.Replies != 0 || r.router.Counters().Dropped(DropNotLocal) != 1 {
				t.Errorf("forwarding off: %+v, %v", p, r.router.Counters())
			}
		})
	}
}

// TestNoRoute: a router without a route answers net unreachable.
func TestNoRoute(t *testing.T) {
	r := routed(t, 21)
	p, _ := r.client.Ping(netip.Addr{}, ip("203.0.113.5"), 8)
	r.Drain()
	if p.Err == nil || p.Err.Type != icmpDestUnreach || p.Err.Code != unreachNet || p.Err.From != ip("192.0.2.1") {
		t.Fatalf("ping to nowhere: %+v err %v", p, p.Err)
	}
	if _, err := r.server.DialTCP(netip.AddrPort{}, ap("[2001:db8:99::1]:80"), nil); err != nil {
		t.Fatal(err) // the server has a default route; the router does not
	}
	r.Drain()
	if errs := r.server.ICMPErrors(); len(errs) != 1 || !errs[0].V6 || errs[0].Type != icmp6DestUnreach {
		t.Errorf("IPv6 no route: %v", errs)
	}
	if c := r.server.TCPConns(); len(c) != 0 {
		t.Errorf("connect survived a hard ICMP error: %v", c[0].State())
	}
}

// TestRoutingLoopTTL: two routers pointing at each other bounce a packet
// until its TTL runs out; the client gets time exceeded.
func TestRoutingLoopTTL(t *testing.T) {
	l := newLab(t, 22)
	left, core := l.segment("left"), l.segment("core")
	client := l.NewHost("client", HostConfig{})
	r1 := l.NewHost("r1", HostConfig{Forwarding: true})
	r2 := l.NewHost("r2", HostConfig{Forwarding: true})
	client.AddInterface(left, "eth0", pfx("192.0.2.10/24"))
	r1.AddInterface(left, "eth0", pfx("192.0.2.1/24"))
	r1.AddInterface(core, "eth1", pfx("198.51.100.1/24"))
	r2.AddInterface(core, "eth0", pfx("198.51.100.2/24"))
	mustGW(t, client, "192.0.2.1")
	mustGW(t, r1, "198.51.100.2")
	mustGW(t, r2, "198.51.100.1")
	p, _ := client.Ping(netip.Addr{}, ip("203.0.113.5"), 8)
	l.Drain()
	if p.Err == nil || p.Err.Type != icmpTimeExceeded {
		t.Fatalf("got %+v", p)
	}
	if got := r1.Counters().Forwarded + r2.Counters().Forwarded; got < defaultTTL-2 {
		t.Errorf("only %d forwards before TTL expiry", got)
	}
	if r1.Counters().Dropped(DropTTLExceeded)+r2.Counters().Dropped(DropTTLExceeded) != 1 {
		t.Error("TTL expiry not counted once")
	}
}

// TestPMTURouter: a narrow link behind a router; TCP learns the path MTU
// from frag-needed (IPv4) and packet too big (IPv6) and delivers all data.
func TestPMTURouter(t *testing.T) {
	for _, fam := range []struct {
		name string
		srv  string
		mtu  int
	}{{"IPv4", "198.51.100.10", 1400}, {"IPv6", "2001:db8:2::10", 1280}} {
		t.Run(fam.name, func(t *testing.T) {
			r := routed(t, 23)
			r.router.InterfaceByName("eth1").SetMTU(fam.mtu)
			srv := ip(fam.srv)
			ln, _ := r.server.ListenTCP(netip.AddrPortFrom(srv, 80), nil)
			c, err := r.client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(srv, 80), nil)
			if err != nil {
				t.Fatal(err)
			}
			r.Drain()
			if c.State() != TCPEstablished || c.MSS() != 1500-c.hdrLen() {
				t.Fatalf("state %v MSS %d", c.State(), c.MSS())
			}
			data := bytes.Repeat([]byte("x"), 10_000)
			c.Write(data)
			r.advanceUntil(func() bool { return c.Unacked() == 0 }, 100*time.Millisecond, 5*time.Second)
			if got := ln.Conns()[0].Received(); !bytes.Equal(got, data) {
				t.Fatalf("server got %d bytes", len(got))
			}
			if r.client.PathMTU(srv) != fam.mtu || c.MSS() != fam.mtu-c.hdrLen() {
				t.Errorf("PMTU %d MSS %d", r.client.PathMTU(srv), c.MSS())
			}
			errs := c.ICMPErrors()
			if len(errs) == 0 || !errs[0].IsFragNeeded() || errs[0].MTU != fam.mtu {
				t.Errorf("ICMP errors %v", errs)
			}
			if r.router.Counters().Dropped(DropFragNeeded) == 0 {
				t.Error("router counted no frag-needed drop")
			}
			for _, f := range r.frames("right") {
				if d := decode(f); d.hasIP && d.ip.tlen > fam.mtu {
					t.Errorf("oversize frame on the narrow link: %s", Summarize(f))
				}
			}
		})
	}
}

// TestFragmentation: UDP larger than the path is fragmented (by the sender
// once it knows the PMTU, or by a router for a packet without DF) and
// reassembled by the receiver.
func TestFragmentation(t *testing.T) {
	r := routed(t, 24)
	r.router.InterfaceByName("eth1").SetMTU(1000)
	srv, _ := r.server.ListenUDP(anyPort(9), nil)
	u, _ := r.client.ListenUDP(netip.AddrPort{}, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3200 bytes

	// Larger than the local MTU: fragmented at the source, then each
	// fragment (DF clear) refragmented by the router.
	if err := u.WriteTo(big, ap("198.51.100.10:9")); err != nil {
		t.Fatal(err)
	}
	r.Drain()
	d, ok := srv.Recv()
	if !ok || !bytes.Equal(d.Data, big) {
		t.Fatalf("reassembled: %v %d bytes", ok, len(d.Data))
	}
	if r.server.Counters().Reassembled != 1 {
		t.Errorf("server %v", r.server.Counters())
	}

	// Fits the local MTU, so sent with DF: the router answers frag-needed
	// and the next datagram is fragmented at the source.
	mid := big[:1200]
	u.WriteTo(mid, ap("198.51.100.10:9"))
	r.Drain()
	if errs := u.Errors(); len(errs) != 1 || !errs[0].IsFragNeeded() || errs[0].MTU != 1000 {
		t.Fatalf("errors %v", errs)
	}
	if srv.Queued() != 0 {
		t.Fatal("DF datagram crossed the narrow link")
	}
	u.WriteTo(mid, ap("198.51.100.10:9"))
	r.Drain()
	if d, ok := srv.Recv(); !ok || !bytes.Equal(d.Data, mid) {
		t.Fatal("second datagram lost")
	}
	for _, f := range r.frames("right") {
		if d := decode(f); d.hasIP && d.ip.tlen > 1000 {
			t.Errorf("oversize frame: %s", Summarize(f))
		}
	}

	// A missing fragment: the receiver times the datagram out and sends
	// time exceeded (reassembly) to the sender.
	n := 0
	r.Segments()[1].SetDropFilter(func(f []byte) bool {
		if d := decode(f); d.hasIP && d.ip.isFragment() && d.ip.fragOff > 0 {
			n++
			return n == 1
		}
		return false
	})
	u.WriteTo(big, ap("198.51.100.10:9"))
	r.Drain()
	r.Advance(fragTimeout)
	if srv.Queued() != 0 {
		t.Fatal("datagram delivered with a fragment missing")
	}
	errs := r.client.ICMPErrors()
	if last := errs[len(errs)-1]; last.Type != icmpTimeExceeded || last.Code != 1 {
		t.Errorf("last error %v", last)
	}
}
