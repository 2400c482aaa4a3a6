package datapath_test

import (
	"bytes"
	"testing"

	"golvs/internal/datapath"
	"golvs/internal/service"
)

// A frag-needed answer to a client whose MAC the director already knows
// leaves as built: the packet's own rewrite (here the tunnel) must not be
// applied to the ICMP error that took its place. (The first answer of
// TestTUNFragNeeded waits for the client's neighbour and is sent from the
// parking queue, which hid this.)
func TestFragNeededToKnownNeighbour(t *testing.T) {
	l := newLab(t, 15, service.Tunnel)
	k := tcpKey(vip4, 7)
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Tunnel, 7, 1)
	c := l.echo(vip4)
	l.roundTrip(c, []byte("the director learns the client's MAC"))
	l.roundTrip(c, bytes.Repeat([]byte("x"), 4000))
	d := l.w.Stats().Drops()
	if d[datapath.ReasonFragNeeded] == 0 {
		t.Fatal("no frag-needed sent")
	}
	if d[datapath.ReasonRewrite] != 0 {
		t.Errorf("%d rewrites failed: the frag-needed answer was rewritten as the packet it replaced", d[datapath.ReasonRewrite])
	}
	if errs := c.ICMPErrors(); len(errs) == 0 || errs[0].MTU != 1480 {
		t.Errorf("client saw %d ICMP errors (%+v), want frag-needed with MTU 1480", len(errs), errs)
	}
}
