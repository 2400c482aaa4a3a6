package datapath_test

import (
	"bytes"
	"golvs/internal/datapath"
	"net/netip"
	"testing"
	"time"

	"golvs/internal/lvslab"
	"golvs/internal/service"
)

func TestNATRoundTripTCP(t *testing.T) {
	for _, vip := range []netip.Addr{vip4, vip6} {
		t.Run(vip.String(), func(t *testing.T) {
			l := newLab(t, 1, service.Masq)
			k := tcpKey(vip, 80)
			l.addService(k, service.Config{Sched: "rr"})
			// Port mapping: VIP:80 -> RS:8080.
			l.addDests(k, service.Masq, 8080, 1, 1, 1)
			got := l.counts(vip, 80, 30)
			wantCounts(t, got, map[string]int{"rs1": 10, "rs2": 10, "rs3": 10})
			// The client talked to the VIP only: a reply from a real
			// server's own address would have been reset.
			for _, c := range l.client.TCPConns() {
				if c.RemoteAddr().Addr() != vip {
					t.Errorf("client connection to %v", c.RemoteAddr())
				}
			}
			if n := l.w.Stats().Drops(); n[datapath.ReasonMalformed] != 0 || n[datapath.ReasonNeighbour] != 0 {
				t.Errorf("drops %v", n)
			}
		})
	}
}

func TestNATUDPEcho(t *testing.T) {
	for _, vip := range []netip.Addr{vip4, vip6} {
		t.Run(vip.String(), func(t *testing.T) {
			l := newLab(t, 2, service.Masq)
			k := service.Key{Family: service.FamilyOf(vip), Proto: service.ProtoUDP, Addr: vip, Port: 53}
			l.addService(k, service.Config{Sched: "rr"})
			l.addDests(k, service.Masq, 53, 1, 1)
			u, err := l.client.ListenUDP(netip.AddrPort{}, nil)
			must(t, err)
			for i := range 4 {
				msg := []byte{'q', byte('0' + i)}
				must(t, u.WriteTo(msg, netip.AddrPortFrom(vip, 53)))
				l.net.AdvanceUntil(func() bool { return u.Queued() > 0 }, 100*time.Millisecond, 5*time.Second)
				d, ok := u.Recv()
				if !ok || d.Src != netip.AddrPortFrom(vip, 53) || !bytes.Equal(d.Data, msg) {
					t.Fatalf("datagram %d: %+v %v", i, d, ok)
				}
			}
		})
	}
}

func TestWRRDistribution(t *testing.T) {
	l := newLab(t, 3, service.Masq)
	k := tcpKey(vip4, 80)
	l.addService(k, service.Config{Sched: "wrr"})
	l.addDests(k, service.Masq, 80, 1, 2, 3)
	wantCounts(t, l.counts(vip4, 80, 30), map[string]int{"rs1": 5, "rs2": 10, "rs3": 15})
}

func TestDRRepliesBypassDirector(t *testing.T) {
	for _, vip := range []netip.Addr{vip4, vip6} {
		t.Run(vip.String(), func(t *testing.T) {
			l := newLab(t, 4, service.Route)
			k := tcpKey(vip, 80)
			l.addService(k, service.Config{Sched: "rr"})
			l.addDests(k, service.Route, 80, 1, 1, 1)
			wantCounts(t, l.counts(vip, 80, 30), map[string]int{"rs1": 10, "rs2": 10, "rs3": 10})
			if l.repliesSeen != 0 {
				t.Errorf("the director saw %d frames from real servers", l.repliesSeen)
			}
		})
	}
}

func TestTUNRepliesBypassDirector(t *testing.T) {
	for _, vip := range []netip.Addr{vip4, vip6} {
		t.Run(vip.String(), func(t *testing.T) {
			l := newLab(t, 5, service.Tunnel)
			k := tcpKey(vip, 80)
			l.addService(k, service.Config{Sched: "rr"})
			l.addDests(k, service.Tunnel, 80, 1, 1, 1)
			wantCounts(t, l.counts(vip, 80, 30), map[string]int{"rs1": 10, "rs2": 10, "rs3": 10})
			if l.repliesSeen != 0 {
				t.Errorf("the director saw %d frames from real servers", l.repliesSeen)
			}
			for _, rs := range l.rs {
				if rs.Counters().Decapsulated == 0 {
					t.Errorf("%s decapsulated nothing", rs.Name())
				}
			}
		})
	}
}

func TestPersistenceKeepsClient(t *testing.T) {
	l := newLab(t, 6, service.Masq)
	k := tcpKey(vip4, 80)
	l.addService(k, service.Config{Sched: "rr", Flags: service.FlagPersistent, Timeout: 300})
	l.addDests(k, service.Masq, 80, 1, 1, 1)
	got := l.counts(vip4, 80, 12)
	if len(got) != 1 {
		t.Fatalf("persistent client spread over %v", got)
	}
}

// echo opens a long-lived connection to the echo port and checks one
// round trip.
func (l *lab) echo(vip netip.Addr) *lvslab.TCPConn {
	l.t.Helper()
	c, err := l.client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(vip, 7), nil)
	must(l.t, err)
	l.roundTrip(c, []byte("hello"))
	return c
}

func (l *lab) roundTrip(c *lvslab.TCPConn, msg []byte) {
	l.t.Helper()
	before := len(c.Received())
	if _, err := c.Write(msg); err != nil {
		l.t.Fatalf("write: %v", err)
	}
	if !l.net.AdvanceUntil(func() bool { return len(c.Received()) >= before+len(msg) }, 100*time.Millisecond, 10*time.Second) {
		l.t.Fatalf("echo of %d bytes not received (state %v, err %v, got %d)", len(msg), c.State(), c.Err(), len(c.Received())-before)
	}
}

// serverOf returns the real server whose listener holds the client's
// connection c.
func (l *lab) serverOf(c *lvslab.TCPConn) int {
	for i, rs := range l.rs {
		for _, sc := range rs.TCPConns() {
			if sc.RemoteAddr().Port() == c.LocalAddr().Port() {
				return i
			}
		}
	}
	return -1
}

func TestWeightZeroDrains(t *testing.T) {
	l := newLab(t, 7, service.Masq)
	k := tcpKey(vip4, 7)
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Masq, 7, 1, 1, 1)
	c := l.echo(vip4)
	i := l.serverOf(c)
	if i < 0 {
		t.Fatal("no server holds the connection")
	}
	must(t, l.ctl.EditDest(k, rsAddr4(i), 7, service.DestConfig{Fwd: service.Masq, Weight: 0}))
	for range 6 {
		n := l.echo(vip4)
		if l.serverOf(n) == i {
			t.Fatalf("new connection went to the quiesced rs%d", i+1)
		}
	}
	// The existing connection keeps working.
	l.roundTrip(c, []byte("still there"))
}

func TestRemovedServerExpireNodestConn(t *testing.T) {
	for _, expire := range []bool{false, true} {
		t.Run(map[bool]string{false: "keep", true: "expire"}[expire], func(t *testing.T) {
			l := newLab(t, 8, service.Masq)
			s := l.eng.Settings()
			s.ExpireNodestConn = expire
			l.eng.SetSettings(s)
			k := tcpKey(vip4, 7)
			l.addService(k, service.Config{Sched: "rr"})
			l.addDests(k, service.Masq, 7, 1, 1, 1)
			c := l.echo(vip4)
			i := l.serverOf(c)
			must(t, l.ctl.DeleteDest(k, rsAddr4(i), 7))
			if _, err := c.Write([]byte("lost?")); err != nil {
				t.Fatal(err)
			}
			l.net.Advance(3 * time.Second)
			drops := l.w.Stats().Drops()[datapath.ReasonDestUnavailable]
			if !expire {
				// Dropped until the connection times out; the client
				// retransmits into the void.
				if drops == 0 || c.Err() != nil || len(c.Received()) != len("hello") {
					t.Fatalf("drops %d err %v received %q", drops, c.Err(), c.Received())
				}
				return
			}
			// Expired at once; the data segment matches nothing, goes
			// to the director's own stack, which resets it.
			if drops != 0 || !c.WasReset() {
				t.Fatalf("drops %d reset %v state %v", drops, c.WasReset(), c.State())
			}
			// New connections use the remaining servers.
			n := l.echo(vip4)
			if j := l.serverOf(n); j == i || j < 0 {
				t.Fatalf("new connection on rs%d", j+1)
			}
		})
	}
}

func TestFINClosedConnectionGoesInactiveThenExpires(t *testing.T) {
	l := newLab(t, 9, service.Masq)
	k := tcpKey(vip4, 80)
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Masq, 80, 1)
	if _, err := l.get(vip4, 80); err != nil {
		t.Fatal(err)
	}
	d := l.ctl.Snapshot().Get(k).Dests[0]
	if d.ActiveConns() != 0 || d.InactConns() != 1 {
		t.Fatalf("after close: active %d inactive %d", d.ActiveConns(), d.InactConns())
	}
	// The server closed first: FIN_WAIT, then the client's FIN: TIME_WAIT
	// (2 min).
	l.net.Advance(110 * time.Second)
	l.eng.Tick()
	if d.InactConns() != 1 {
		t.Fatalf("expired early")
	}
	l.net.Advance(11 * time.Second)
	l.eng.Tick()
	if d.InactConns() != 0 {
		t.Fatalf("not expired after the TIME_WAIT timeout: %d", d.InactConns())
	}
}

func TestNonServiceTrafficReachesDirector(t *testing.T) {
	l := newLab(t, 10, service.Masq)
	k := tcpKey(vip4, 80)
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Masq, 80, 1)
	if _, err := l.dir.ListenTCP(netip.AddrPortFrom(vip4, 22), lvslab.ReplyAndClose([]byte("director-ssh"))); err != nil {
		t.Fatal(err)
	}
	if got, err := l.get(vip4, 22); err != nil || got != "director-ssh" {
		t.Fatalf("ssh to the VIP: %q %v", got, err)
	}
	if got, err := l.get(vip4, 80); err != nil || got != "rs1" {
		t.Fatalf("service: %q %v", got, err)
	}
	p, err := l.client.Ping(client4, vip4, 56)
	must(t, err)
	l.net.Drain()
	if p.Replies == 0 {
		t.Fatalf("ping the VIP: %+v", p)
	}
}

func TestLocalRealServer(t *testing.T) {
	// The director is one of its own real servers (a real server address
	// local to the director): its connections go to its own stack.
	l := newLab(t, 11, service.Masq)
	if _, err := l.dir.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 80), lvslab.ReplyAndClose([]byte("director"))); err != nil {
		t.Fatal(err)
	}
	k := tcpKey(vip4, 80)
	l.addService(k, service.Config{Sched: "rr"})
	must(t, l.ctl.AddDest(k, dirAddr4, 80, service.DestConfig{Fwd: service.Masq, Weight: 1}))
	must(t, l.ctl.AddDest(k, rsAddr4(0), 80, service.DestConfig{Fwd: service.Masq, Weight: 1}))
	wantCounts(t, l.counts(vip4, 80, 4), map[string]int{"director": 2, "rs1": 2})
}

func TestNoDestinationRejects(t *testing.T) {
	l := newLab(t, 12, service.Masq)
	k := tcpKey(vip4, 80)
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Masq, 80, 0)
	_, err := l.get(vip4, 80)
	if err == nil {
		t.Fatal("connection to a service without available servers succeeded")
	}
	if n := l.w.Stats().Drops()[datapath.ReasonRejected]; n == 0 {
		t.Fatalf("no port unreachable sent: %v", err)
	}
}

func TestTUNFragNeeded(t *testing.T) {
	// A full-size DF segment no longer fits once encapsulated: the
	// director answers frag-needed with the tunnel MTU (1480), the client
	// lowers its segment size, and the transfer completes.
	l := newLab(t, 13, service.Tunnel)
	k := tcpKey(vip4, 7)
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Tunnel, 7, 1)
	c := l.echo(vip4)
	l.roundTrip(c, bytes.Repeat([]byte("x"), 4000))
	if n := l.w.Stats().Drops()[datapath.ReasonFragNeeded]; n == 0 {
		t.Fatal("no frag-needed sent")
	}
	var mtus []int
	for _, e := range c.ICMPErrors() {
		mtus = append(mtus, e.MTU)
	}
	if len(mtus) == 0 || mtus[0] != 1480 {
		t.Fatalf("client saw frag-needed MTUs %v, want 1480", mtus)
	}
}

func TestICMPErrorFromRealServerIsRewritten(t *testing.T) {
	// A UDP service whose real servers do not listen: each answers port
	// unreachable about the client's datagram (as sent to it, to its own
	// address); the director rewrites the error so the client sees it
	// from the VIP about the datagram it sent to the VIP.
	l := newLab(t, 14, service.Masq)
	k := service.Key{Family: service.IPv4, Proto: service.ProtoUDP, Addr: vip4, Port: 54}
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Masq, 54, 1)
	u, err := l.client.ListenUDP(netip.AddrPort{}, nil)
	must(t, err)
	must(t, u.WriteTo([]byte("anyone?"), netip.AddrPortFrom(vip4, 54)))
	l.net.Advance(time.Second)
	errs := u.Errors()
	if len(errs) != 1 {
		t.Fatalf("client saw %d ICMP errors", len(errs))
	}
	if e := errs[0]; e.From != vip4 || e.Type != 3 || e.Code != 3 {
		t.Fatalf("error %+v, want port unreachable from the VIP", e)
	}
}
