package datapath_test

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golvs/internal/control"
	"golvs/internal/datapath"
	"golvs/internal/engine"
	"golvs/internal/flow"
	"golvs/internal/lvslab"
	"golvs/internal/lvslab/director"
	"golvs/internal/service"
)

// The end-to-end scenarios of the packet path run on lvslab's simulated
// network (style.md §10.7): a client, a router, the director running the
// real pipeline behind its ingress hook, and three real servers, all
// exchanging real Ethernet frames with a manual clock and seeded
// randomness. LVSLAB_TRACE=1 prints every frame; LVSLAB_PCAPDIR=dir writes
// a pcap per segment.
//
//	client 198.18.0.10 ─front─ router ─lan─ director 198.19.0.1, VIP 198.19.0.100
//	2001:db8:c::10              .1 / .254     2001:db8:5::1, VIP 2001:db8:5::100
//	                                     └── rs1..rs3 198.19.0.11-13, 2001:db8:5::11-13
//
// NAT real servers route through the director; DR and TUN real servers
// hold the VIP on lo (no ARP for it) and route through the router.

var (
	vip4     = netip.MustParseAddr("198.19.0.100")
	vip6     = netip.MustParseAddr("2001:db8:5::100")
	client4  = netip.MustParseAddr("198.18.0.10")
	client6  = netip.MustParseAddr("2001:db8:c::10")
	dirAddr4 = netip.MustParseAddr("198.19.0.1")
	dirAddr6 = netip.MustParseAddr("2001:db8:5::1")
	rtrLan4  = netip.MustParseAddr("198.19.0.254")
	rtrLan6  = netip.MustParseAddr("2001:db8:5::254")
)

func rsAddr4(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 0, byte(11 + i)}) }
func rsAddr6(i int) netip.Addr {
	return netip.MustParseAddr(fmt.Sprintf("2001:db8:5::%d", 11+i))
}

type lab struct {
	t      *testing.T
	net    *lvslab.Network
	client *lvslab.Host
	router *lvslab.Host
	dir    *lvslab.Host
	rs     []*lvslab.Host
	d      *director.Director
	ctl    *control.Control
	eng    *engine.Engine
	w      *datapath.Worker
	// Frames the director's pipeline saw that came from a real server
	// (replies); DR and TUN must see none.
	repliesSeen int
}

// newLab builds the topology; method is how the real servers are set up
// (Masq: gateway = director; Route: VIP on lo; Tunnel: VIP on lo + decap).
func newLab(t *testing.T, seed uint64, method service.FwdMethod) *lab {
	t.Helper()
	cfg := lvslab.Config{Seed: seed, Fatalf: t.Fatalf}
	cfg.OnDrop = func(d lvslab.Drop) {
		if d.Reason.Corrupt() {
			t.Errorf("corrupt frame dropped by %s: %v", d.Host, d.Reason)
		}
	}
	if os.Getenv("LVSLAB_TRACE") == "1" {
		cfg.Trace = os.Stderr
	}
	if dir := os.Getenv("LVSLAB_PCAPDIR"); dir != "" {
		cfg.PCAPDir = dir + "/" + strings.ReplaceAll(t.Name(), "/", "_")
		_ = os.MkdirAll(cfg.PCAPDir, 0o755)
	}
	n := lvslab.New(cfg)
	t.Cleanup(func() { _ = n.Close() })
	l := &lab{t: t, net: n}
	front, lan := n.NewSegment("front"), n.NewSegment("lan")
	if cfg.PCAPDir == "" {
		// Capture every segment in memory and keep the captures of a
		// failed test, so that a failure can be looked at in Wireshark.
		caps := map[string]*bytes.Buffer{}
		for _, seg := range []*lvslab.Segment{front, lan} {
			caps[seg.Name()] = new(bytes.Buffer)
			must(t, seg.SetPCAP(caps[seg.Name()]))
		}
		t.Cleanup(func() {
			if !t.Failed() {
				return
			}
			dir, err := os.MkdirTemp("", "golvs-lab-")
			if err != nil {
				return
			}
			for name, b := range caps {
				_ = os.WriteFile(filepath.Join(dir, name+".pcap"), b.Bytes(), 0o644)
			}
			t.Logf("pcaps of the failed test: %s", dir)
		})
	}

	l.client = n.NewHost("client", lvslab.HostConfig{})
	l.client.AddInterface(front, "eth0", pfx("198.18.0.10/24"), pfx("2001:db8:c::10/64"))
	must(t, l.client.SetDefaultGateway(netip.MustParseAddr("198.18.0.1")))
	must(t, l.client.SetDefaultGateway(netip.MustParseAddr("2001:db8:c::1")))

	l.router = n.NewHost("router", lvslab.HostConfig{Forwarding: true})
	l.router.AddInterface(front, "eth0", pfx("198.18.0.1/24"), pfx("2001:db8:c::1/64"))
	l.router.AddInterface(lan, "eth1", pfx("198.19.0.254/24"), pfx("2001:db8:5::254/64"))

	l.dir = n.NewHost("director", lvslab.HostConfig{})
	l.dir.AddInterface(lan, "eth0", pfx("198.19.0.1/24"), pfx("198.19.0.100/32"),
		pfx("2001:db8:5::1/64"), pfx("2001:db8:5::100/128"))
	must(t, l.dir.SetDefaultGateway(rtrLan4))
	must(t, l.dir.SetDefaultGateway(rtrLan6))

	for i := range 3 {
		name := fmt.Sprintf("rs%d", i+1)
		h := n.NewHost(name, lvslab.HostConfig{Decap: method == service.Tunnel})
		h.AddInterface(lan, "eth0", netip.PrefixFrom(rsAddr4(i), 24), netip.PrefixFrom(rsAddr6(i), 64))
		gw4, gw6 := rtrLan4, rtrLan6
		if method == service.Masq {
			gw4, gw6 = dirAddr4, dirAddr6
		} else {
			h.Loopback().AddAddr(netip.PrefixFrom(vip4, 32))
			h.Loopback().AddAddr(netip.PrefixFrom(vip6, 128))
		}
		must(t, h.SetDefaultGateway(gw4))
		must(t, h.SetDefaultGateway(gw6))
		for _, port := range []uint16{80, 8080} {
			if _, err := h.ListenTCP(netip.AddrPortFrom(netip.Addr{}, port), lvslab.ReplyAndClose([]byte(name))); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := h.ListenTCP(netip.AddrPortFrom(netip.Addr{}, 7), lvslab.EchoTCP); err != nil {
			t.Fatal(err)
		}
		if _, err := h.ListenUDP(netip.AddrPortFrom(netip.IPv4Unspecified(), 53), lvslab.EchoUDP); err != nil {
			t.Fatal(err)
		}
		if _, err := h.ListenUDP(netip.AddrPortFrom(netip.IPv6Unspecified(), 53), lvslab.EchoUDP); err != nil {
			t.Fatal(err)
		}
		l.rs = append(l.rs, h)
	}

	d, err := director.New(l.dir, n, director.Config{Seed: seed, Errorf: t.Errorf, Tap: l.tap})
	if err != nil {
		t.Fatal(err)
	}
	l.d, l.ctl, l.eng, l.w = d, d.Control, d.Engine, d.Worker
	return l
}

// tap counts the frames from real servers that reach the director.
func (l *lab) tap(ifindex int, frame []byte, _ datapath.Result) {
	var f flow.Parsed
	f.Decode(frame)
	if !f.Tuple.IsValid() || (f.Tuple.Proto != service.ProtoTCP && f.Tuple.Proto != service.ProtoUDP) {
		return
	}
	for i := range l.rs {
		if a := f.Tuple.SrcAddr(); a == rsAddr4(i) || a == rsAddr6(i) {
			l.repliesSeen++
		}
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (l *lab) addService(k service.Key, cfg service.Config) {
	l.t.Helper()
	must(l.t, l.ctl.AddService(k, cfg))
}

func (l *lab) addDests(k service.Key, fwd service.FwdMethod, port uint16, weights ...int32) {
	l.t.Helper()
	for i, w := range weights {
		a := rsAddr4(i)
		if k.Family == service.IPv6 {
			a = rsAddr6(i)
		}
		must(l.t, l.ctl.AddDest(k, a, port, service.DestConfig{Fwd: fwd, Weight: w}))
	}
}

func tcpKey(vip netip.Addr, port uint16) service.Key {
	return service.Key{Family: service.FamilyOf(vip), Proto: service.ProtoTCP, Addr: vip, Port: port}
}

// get opens one TCP connection from the client to vip:port, sends a
// request and returns what the server answered (its name) and any error.
func (l *lab) get(vip netip.Addr, port uint16) (string, error) {
	c, err := l.client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(vip, port), nil)
	if err != nil {
		return "", err
	}
	ok := l.net.AdvanceUntil(func() bool { return c.State() != lvslab.TCPSynSent }, 100*time.Millisecond, 10*time.Second)
	if !ok || c.Err() != nil {
		return "", fmt.Errorf("connect: state %v err %v", c.State(), c.Err())
	}
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		return "", err
	}
	l.net.AdvanceUntil(c.PeerClosed, 100*time.Millisecond, 10*time.Second)
	_ = c.Close()
	l.net.Drain()
	if c.Err() != nil {
		return string(c.Received()), c.Err()
	}
	return string(c.Received()), nil
}

// counts makes n connections and counts the answers by server name.
func (l *lab) counts(vip netip.Addr, port uint16, n int) map[string]int {
	l.t.Helper()
	got := map[string]int{}
	for i := range n {
		name, err := l.get(vip, port)
		if err != nil {
			l.t.Fatalf("connection %d to %v: %v (got %q)", i, netip.AddrPortFrom(vip, port), err, name)
		}
		got[name]++
	}
	return got
}

func wantCounts(t *testing.T, got map[string]int, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("answers by server %v, want %v", got, want)
		}
	}
}
