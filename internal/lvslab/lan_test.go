package lvslab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// twoHosts builds a and b on one segment.
func twoHosts(t testing.TB, seed uint64, v6 bool) (*lab, *Host, *Host) {
	l := newLab(t, seed)
	lan := l.segment("lan")
	a := l.NewHost("a", HostConfig{})
	b := l.NewHost("b", HostConfig{})
	if v6 {
		a.AddInterface(lan, "eth0", pfx("2001:db8::1/64"))
		b.AddInterface(lan, "eth0", pfx("2001:db8::2/64"))
	} else {
		a.AddInterface(lan, "eth0", pfx("192.0.2.1/24"))
		b.AddInterface(lan, "eth0", pfx("192.0.2.2/24"))
	}
	return l, a, b
}

func TestTwoHosts(t *testing.T) {
	for _, fam := range []struct {
		name   string
		v6     bool
		aIP    string
		bIP    string
		solEth uint16
	}{
		{"IPv4", false, "192.0.2.1", "192.0.2.2", etherTypeARP},
		{"IPv6", true, "2001:db8::1", "2001:db8::2", etherTypeIPv6},
	} {
		t.Run(fam.name, func(t *testing.T) {
			l, a, b := twoHosts(t, 1, fam.v6)
			aIP, bIP := ip(fam.aIP), ip(fam.bIP)

			// Ping: resolution, then echo request and reply.
			p, err := a.Ping(netip.Addr{}, bIP, 56)
			if err != nil {
				t.Fatal(err)
			}
			if n := l.Drain(); n != 4 {
				t.Errorf("ping took %d deliveries, want 4 (solicit, advert, request, reply)", n)
			}
			if p.Replies != 1 || p.ReplyFrom != bIP || p.Err != nil {
				t.Fatalf("ping: %+v", p)
			}
			fr := l.frames("lan")
			if d := decode(fr[0]); d.dst.IsMulticast() == false || (d.etype != fam.solEth) {
				t.Errorf("first frame %s, want a multicast solicitation", Summarize(fr[0]))
			}
			bMAC := b.Interface(2).MAC()
			if n, ok := a.Neighbour(2, bIP); !ok || n.MAC != bMAC || n.State != NeighReachable {
				t.Errorf("a's entry for b: %+v %v", n, ok)
			}
			// b learnt a from the solicitation.
			if n, ok := b.Neighbour(2, aIP); !ok || n.MAC != a.Interface(2).MAC() {
				t.Errorf("b's entry for a: %+v %v", n, ok)
			}

			// TCP: request, named reply, server closes first.
			if _, err := b.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 80), ReplyAndClose([]byte("b"))); err != nil {
				t.Fatal(err)
			}
			c, err := a.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(bIP, 80), nil)
			if err != nil {
				t.Fatal(err)
			}
			l.Drain()
			if c.State() != TCPEstablished {
				t.Fatalf("after handshake: %v", c.State())
			}
			if c.MSS() != 1500-c.hdrLen() {
				t.Errorf("MSS %d, want %d", c.MSS(), 1500-c.hdrLen())
			}
			if _, err := c.Write([]byte("GET /\n")); err != nil {
				t.Fatal(err)
			}
			l.Drain()
			if got := string(c.Received()); got != "b" || !c.PeerClosed() || c.State() != TCPCloseWait {
				t.Fatalf("client got %q peerClosed=%v state %v", got, c.PeerClosed(), c.State())
			}
			srv := b.TCPConns()
			if len(srv) != 1 || srv[0].State() != TCPFinWait2 || string(srv[0].Received()) != "GET /\n" {
				t.Fatalf("server conns %v", srv)
			}
			c.Close()
			l.Drain()
			if c.State() != TCPClosed || c.Err() != nil {
				t.Errorf("client after close: %v %v", c.State(), c.Err())
			}
			if srv[0].State() != TCPTimeWait {
				t.Errorf("server after client's FIN: %v, want TIME_WAIT", srv[0].State())
			}
			l.Advance(tcpTimeWait)
			if srv[0].State() != TCPClosed || len(b.TCPConns()) != 0 {
				t.Errorf("server after 2MSL: %v", srv[0].State())
			}

			// UDP echo, replied from the address it was sent to.
			if _, err := b.ListenUDP(netip.AddrPortFrom(netip.Addr{}, 7), EchoUDP); err != nil {
				t.Fatal(err)
			}
			u, err := a.ListenUDP(netip.AddrPort{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := u.WriteTo([]byte("hello"), netip.AddrPortFrom(bIP, 7)); err != nil {
				t.Fatal(err)
			}
			l.Drain()
			dg, ok := u.Recv()
			if !ok || string(dg.Data) != "hello" || dg.Src != netip.AddrPortFrom(bIP, 7) || dg.Dst.Addr() != aIP {
				t.Fatalf("echo: %+v %v", dg, ok)
			}

			// UDP to a closed port: ICMP port unreachable to the socket.
			if err := u.WriteTo([]byte("x"), netip.AddrPortFrom(bIP, 9)); err != nil {
				t.Fatal(err)
			}
			l.Drain()
			if errs := u.Errors(); len(errs) != 1 || !errs[0].IsPortUnreachable() || errs[0].Dst != netip.AddrPortFrom(bIP, 9) {
				t.Errorf("udp errors %v", errs)
			}

			// TCP to a closed port: RST, connection refused.
			c2, err := a.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(bIP, 81), nil)
			if err != nil {
				t.Fatal(err)
			}
			l.Drain()
			if c2.State() != TCPClosed || !errors.Is(c2.Err(), ErrConnRefused) || !c2.WasReset() {
				t.Errorf("dial closed port: %v %v", c2.State(), c2.Err())
			}
			if ca, cb := a.Counters(), b.Counters(); ca.Corrupt()+cb.Corrupt() != 0 {
				t.Errorf("corrupt: a %v b %v", ca, cb)
			}
		})
	}
}

// TestTCPCloseOrders covers client-first, server-first and simultaneous
// close, checking who ends in TIME_WAIT.
func TestTCPCloseOrders(t *testing.T) {
	cases := []struct {
		name               string
		handler            TCPHandler
		clientCloses       bool
		simultaneous       bool
		wantClientTimeWait bool
	}{
		{name: "client first", handler: EchoTCP, clientCloses: true, wantClientTimeWait: true},
		{name: "server first", handler: ReplyAndClose([]byte("bye")), wantClientTimeWait: false},
		{name: "simultaneous", handler: func(*TCPConn, TCPEvent) {}, simultaneous: true, wantClientTimeWait: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l, a, b := twoHosts(t, 2, false)
			ln, err := b.ListenTCP(ap("192.0.2.2:80"), tc.handler)
			if err != nil {
				t.Fatal(err)
			}
			c, err := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:80"), nil)
			if err != nil {
				t.Fatal(err)
			}
			l.Drain()
			s := ln.Conns()[0]
			switch {
			case tc.simultaneous:
				c.Close()
				s.Close() // both FINs in flight before either arrives
				l.Drain()
				if c.State() != TCPTimeWait || s.State() != TCPTimeWait {
					t.Fatalf("simultaneous close: client %v server %v", c.State(), s.State())
				}
			case tc.clientCloses:
				c.Write([]byte("ping"))
				c.Close()
				l.Drain()
				if string(c.Received()) != "ping" {
					t.Errorf("echo %q", c.Received())
				}
			default:
				c.Write([]byte("hi"))
				l.Drain()
				c.Close()
				l.Drain()
			}
			if got := c.State() == TCPTimeWait; got != tc.wantClientTimeWait {
				t.Errorf("client %v, TIME_WAIT wanted %v", c.State(), tc.wantClientTimeWait)
			}
			if !tc.simultaneous {
				if got := s.State() == TCPTimeWait; got == tc.wantClientTimeWait {
					t.Errorf("server %v", s.State())
				}
			}
			l.Advance(tcpTimeWait)
			if c.State() != TCPClosed || s.State() != TCPClosed || c.Err() != nil || s.Err() != nil {
				t.Errorf("after 2MSL: client %v %v, server %v %v", c.State(), c.Err(), s.State(), s.Err())
			}
			if l.Pending() != 0 {
				t.Errorf("%d frames pending", l.Pending())
			}
		})
	}
}

// TestTCPLargeTransfer moves data in many segments both ways.
func TestTCPLargeTransfer(t *testing.T) {
	l, a, b := twoHosts(t, 3, false)
	if _, err := b.ListenTCP(anyPort(9), EchoTCP); err != nil {
		t.Fatal(err)
	}
	c, err := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:9"), nil)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 200_000) // three full windows and then some
	for i := range data {
		data[i] = byte(i * 7)
	}
	c.Write(data) // queued until the handshake completes
	l.Drain()
	c.Close()
	l.Drain()
	if !bytes.Equal(c.Received(), data) {
		t.Fatalf("echoed %d bytes, want %d", len(c.Received()), len(data))
	}
	if c.Retransmits() != 0 {
		t.Errorf("%d retransmits on a lossless link", c.Retransmits())
	}
	for _, f := range l.frames("lan") {
		if d := decode(f); d.hasIP && d.ip.tlen > 1500 {
			t.Fatalf("frame over MTU: %s", Summarize(f))
		}
	}
}

// TestTCPRetransmit loses a SYN, a data segment in the middle of a flight,
// a SYN-ACK and a FIN, once each, and checks TCP recovers on its timers.
func TestTCPRetransmit(t *testing.T) {
	l, a, b := twoHosts(t, 4, false)
	lan := l.Segments()[0]
	aMAC := a.Interface(2).MAC()
	lost := map[string]bool{}
	dataSegs := 0
	lan.SetDropFilter(func(f []byte) bool {
		d := decode(f)
		if !d.hasTCP {
			return false
		}
		fromA := d.src == aMAC
		var what string
		switch fl := d.tcp.flags; {
		case fl&tcpSYN != 0 && fromA:
			what = "syn"
		case fl&tcpSYN != 0:
			what = "synack"
		case fl&tcpFIN != 0 && !fromA:
			what = "fin"
		case len(d.tcp.data) > 0 && fromA:
			dataSegs++
			if dataSegs == 3 {
				what = "data3"
			}
		}
		if what != "" && !lost[what] {
			lost[what] = true
			return true
		}
		return false
	})
	if _, err := b.ListenTCP(anyPort(80), EchoTCP); err != nil {
		t.Fatal(err)
	}
	c, err := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:80"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Drain()
	if c.State() != TCPSynSent {
		t.Fatalf("state %v with the SYN lost", c.State())
	}
	// SYN retransmitted after 1 s; its SYN-ACK is lost, the server resends
	// it after its own 1 s.
	l.advanceUntil(func() bool { return c.State() == TCPEstablished }, 100*time.Millisecond, 5*time.Second)
	data := bytes.Repeat([]byte("0123456789"), 1000) // 7 segments
	c.Write(data)
	l.Drain()
	if len(c.Received()) >= len(data) {
		t.Fatal("all data echoed although a segment was lost")
	}
	l.advanceUntil(func() bool { return len(c.Received()) == len(data) }, 50*time.Millisecond, 5*time.Second)
	if !bytes.Equal(c.Received(), data) {
		t.Fatal("echo differs")
	}
	c.Close()
	l.advanceUntil(func() bool { return c.State() == TCPTimeWait || c.State() == TCPClosed }, 50*time.Millisecond, 5*time.Second)
	for _, w := range []string{"syn", "synack", "data3", "fin"} {
		if !lost[w] {
			t.Errorf("%s never lost: the filter did not see it", w)
		}
	}
	if c.Retransmits() < 2 {
		t.Errorf("client retransmits %d, want at least 2 (SYN, data)", c.Retransmits())
	}
	if lan.Filtered() != 4 {
		t.Errorf("filtered %d, want 4", lan.Filtered())
	}
}

// TestTCPGivesUp: a SYN to a silent host times out after the kernel's
// retries.
func TestTCPGivesUp(t *testing.T) {
	l, a, _ := twoHosts(t, 5, false)
	l.Segments()[0].SetDropFilter(func(f []byte) bool { return decode(f).hasTCP })
	c, err := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:80"), nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Advance(10 * time.Minute)
	if c.State() != TCPClosed || !errors.Is(c.Err(), ErrTimeout) || c.Retransmits() != tcpSynRetries {
		t.Errorf("state %v err %v retransmits %d", c.State(), c.Err(), c.Retransmits())
	}
}

func TestARPFailure(t *testing.T) {
	l, a, _ := twoHosts(t, 6, false)
	var seen []Neighbour
	a.SetNeighbourHook(func(n Neighbour) { seen = append(seen, n) })
	p, err := a.Ping(netip.Addr{}, ip("192.0.2.99"), 8)
	if err != nil {
		t.Fatal(err)
	}
	var resolved, ok bool
	a.Resolve(2, ip("192.0.2.99"), func(_ MAC, got bool) { resolved, ok = true, got })
	l.Advance(2 * time.Second)
	if resolved {
		t.Fatal("resolution finished before 3 solicitations")
	}
	l.Advance(time.Second)
	if !resolved || ok || p.Replies != 0 {
		t.Errorf("resolved=%v ok=%v replies=%d", resolved, ok, p.Replies)
	}
	if got := a.Counters().Dropped(DropNoNeighbour); got != 1 {
		t.Errorf("no-neighbour drops %d, want 1", got)
	}
	reqs := 0
	for _, f := range l.frames("lan") {
		if d := decode(f); d.arpOp == arpRequest {
			reqs++
		}
	}
	if reqs != neighSolicits {
		t.Errorf("%d ARP requests, want %d", reqs, neighSolicits)
	}
	if len(seen) != 1 || seen[0].State != NeighFailed {
		t.Errorf("neighbour hook saw %v", seen)
	}
	if _, ok := a.Neighbour(2, ip("192.0.2.99")); ok {
		t.Error("failed entry kept")
	}
}

func TestResolve(t *testing.T) {
	l, a, b := twoHosts(t, 7, false)
	var got MAC
	calls := 0
	a.Resolve(2, ip("192.0.2.2"), func(m MAC, ok bool) {
		calls++
		if ok {
			got = m
		}
	})
	l.Drain()
	if calls != 1 || got != b.Interface(2).MAC() {
		t.Fatalf("calls %d mac %v", calls, got)
	}
	// Known now: answered synchronously without a frame.
	before := l.Steps()
	a.Resolve(2, ip("192.0.2.2"), func(m MAC, ok bool) { calls++ })
	if calls != 2 || l.Pending() != 0 || l.Steps() != before {
		t.Errorf("cached resolve: calls %d pending %d", calls, l.Pending())
	}
	a.AddNeighbour(2, ip("192.0.2.50"), MAC{2, 0, 0, 0, 0, 0x50})
	if n, _ := a.Neighbour(2, ip("192.0.2.50")); n.State != NeighPermanent {
		t.Errorf("static entry %v", n)
	}
	if got := len(a.Neighbours()); got != 2 {
		t.Errorf("%d entries", got)
	}
}

// TestChecksumValidation sends frames with broken checksums from a raw
// Transmit and checks the receiver counts and reports each.
func TestChecksumValidation(t *testing.T) {
	l, a, b := twoHosts(t, 8, false)
	l.allowCorrupt = true
	if _, err := b.ListenUDP(anyPort(7), nil); err != nil {
		t.Fatal(err)
	}
	bMAC, aMAC := b.Interface(2).MAC(), a.Interface(2).MAC()
	build := func(mutate func(pkt []byte)) []byte {
		payload := []byte("data")
		udp := make([]byte, udpHdrLen+len(payload))
		put16(udp[0:], 1000)
		put16(udp[2:], 7)
		put16(udp[4:], uint16(len(udp)))
		copy(udp[8:], payload)
		put16(udp[6:], l4Checksum(ip("192.0.2.1"), ip("192.0.2.2"), protoUDP, udp))
		pkt := make([]byte, ipv4HdrLen+len(udp))
		putIPv4Header(pkt, len(pkt), 1, false, 64, protoUDP, ip("192.0.2.1"), ip("192.0.2.2"))
		copy(pkt[ipv4HdrLen:], udp)
		mutate(pkt)
		frame := make([]byte, ethHdrLen+len(pkt))
		copy(frame, bMAC[:])
		copy(frame[6:], aMAC[:])
		put16(frame[12:], etherTypeIPv4)
		copy(frame[ethHdrLen:], pkt)
		return frame
	}
	cases := []struct {
		name   string
		mutate func([]byte)
		want   DropReason
	}{
		{"good", func([]byte) {}, 0},
		{"ip header", func(p []byte) { p[10] ^= 1 }, DropBadIPChecksum},
		{"udp", func(p []byte) { p[ipv4HdrLen+6] ^= 1 }, DropBadL4Checksum},
		{"udp payload", func(p []byte) { p[len(p)-1] ^= 0x40 }, DropBadL4Checksum},
		{"udp zero over IPv4", func(p []byte) { put16(p[ipv4HdrLen+6:], 0) }, 0},
		{"ip total length", func(p []byte) { put16(p[2:], 200); ipv4HeaderChecksumFix(p) }, DropMalformed},
	}
	for _, tc := range cases {
		before := b.Counters()
		ndrops := len(l.drops)
		if err := a.Transmit(2, build(tc.mutate)); err != nil {
			t.Fatal(err)
		}
		l.Drain()
		after := b.Counters()
		if tc.want == 0 {
			if after.Delivered != before.Delivered+1 || after.Corrupt() != before.Corrupt() {
				t.Errorf("%s: not delivered: %v", tc.name, after)
			}
			continue
		}
		if after.Dropped(tc.want) != before.Dropped(tc.want)+1 {
			t.Errorf("%s: %v not counted: %v", tc.name, tc.want, after)
		}
		if len(l.drops) != ndrops+1 || l.drops[ndrops].Reason != tc.want || l.drops[ndrops].Host != "b" {
			t.Errorf("%s: reported %v", tc.name, l.drops[ndrops:])
		}
	}
}

// TestUDPZeroChecksumIPv6: RFC 8200 §8.1 — an IPv6 receiver discards a UDP
// datagram with checksum zero.
func TestUDPZeroChecksumIPv6(t *testing.T) {
	l, a, b := twoHosts(t, 9, true)
	l.allowCorrupt = true
	u, _ := b.ListenUDP(anyPort(7), nil)
	src, dst := ip("2001:db8::1"), ip("2001:db8::2")
	udp := make([]byte, udpHdrLen+3)
	put16(udp[0:], 1000)
	put16(udp[2:], 7)
	put16(udp[4:], uint16(len(udp)))
	if err := a.sendIP(src, dst, protoUDP, udp, false); err != nil {
		t.Fatal(err)
	}
	l.Drain()
	if u.Queued() != 0 || b.Counters().Dropped(DropUDPZeroChecksum) != 1 || l.dropped("b", DropUDPZeroChecksum) != 1 {
		t.Errorf("zero-checksum IPv6 UDP: queued %d, %v", u.Queued(), b.Counters())
	}
}

func TestTransmitTooBig(t *testing.T) {
	l, a, _ := twoHosts(t, 10, false)
	frame := make([]byte, ethHdrLen+1501)
	if err := a.Transmit(2, frame); !errors.Is(err, ErrTooBig) {
		t.Errorf("err %v", err)
	}
	if a.Counters().Dropped(DropTooBig) != 1 || l.Pending() != 0 {
		t.Errorf("%v", a.Counters())
	}
	if err := a.Transmit(2, frame[:ethHdrLen+1500]); err != nil {
		t.Errorf("MTU-sized frame: %v", err)
	}
	if err := a.Transmit(7, frame[:60]); err == nil {
		t.Error("transmit on a missing interface succeeded")
	}
	l.Drain()
}

// TestIngressHook: a hook that consumes every frame and hands it back with
// Inject leaves the host working; one that consumes and drops makes it
// deaf.
func TestIngressHook(t *testing.T) {
	l, a, b := twoHosts(t, 11, false)
	var seen []int
	b.SetIngressHook(func(ifindex int, frame []byte) bool {
		seen = append(seen, ifindex)
		b.Inject(ifindex, frame)
		return true
	})
	p, _ := a.Ping(netip.Addr{}, ip("192.0.2.2"), 8)
	l.Drain()
	if p.Replies != 1 || len(seen) != 2 { // ARP request, echo request
		t.Fatalf("replies %d, hook saw %v", p.Replies, seen)
	}
	if c := b.Counters(); c.HookConsumed != 2 || c.RxFrames != 2 {
		t.Errorf("counters %v", c)
	}
	b.SetIngressHook(func(int, []byte) bool { return true })
	p, _ = a.Ping(netip.Addr{}, ip("192.0.2.2"), 8)
	l.Drain()
	if p.Replies != 0 {
		t.Error("reply although the hook ate the request")
	}
}

// TestDrainLoopGuard: two hosts that bridge two segments both ways make a
// broadcast storm; Drain must stop and say so.
func TestDrainLoopGuard(t *testing.T) {
	var msg string
	n := New(Config{MaxSteps: 500, Fatalf: func(f string, args ...any) { msg = fmt.Sprintf(f, args...) }})
	s1, s2 := n.NewSegment("s1"), n.NewSegment("s2")
	for _, name := range []string{"br1", "br2"} {
		h := n.NewHost(name, HostConfig{})
		h.AddInterface(s1, "eth0")
		h.AddInterface(s2, "eth1")
		h.SetIngressHook(func(ifindex int, frame []byte) bool {
			_ = h.Transmit(5-ifindex, frame) // 2 <-> 3
			return true
		})
	}
	a := n.NewHost("a", HostConfig{})
	a.AddInterface(s1, "eth0", pfx("192.0.2.1/24"))
	a.Ping(netip.Addr{}, ip("192.0.2.2"), 0)
	if got := n.Drain(); got != 500 {
		t.Errorf("drained %d", got)
	}
	if msg == "" || !bytes.Contains([]byte(msg), []byte("not quiet")) || !bytes.Contains([]byte(msg), []byte("ARP who-has 192.0.2.2")) {
		t.Errorf("fatal message %q", msg)
	}
	if n.Pending() != 0 {
		t.Error("queue kept after the loop report")
	}
}
