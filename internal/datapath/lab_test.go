package datapath_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	vip4     = director.VIP4
	vip6     = director.VIP6
	client4  = director.Client4
	dirAddr4 = director.DirAddr4
	rtrLan4  = director.RtrLan4
	rsAddr4  = director.RSAddr4
	rsAddr6  = director.RSAddr6
)

type lab struct {
	t      *testing.T
	top    *director.Topology
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

// newLab builds the test bed of director.NewTopology; method is how the
// real servers are set up (Masq: gateway = director; Route: VIP on lo;
// Tunnel: VIP on lo + decap).
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
	l := &lab{t: t}
	top, err := director.NewTopology(director.TopologyConfig{Net: cfg, Method: method,
		Director: director.Config{Seed: seed, Errorf: t.Errorf, Tap: l.tap}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = top.Net.Close() })
	if cfg.PCAPDir == "" {
		// Capture every segment in memory and keep the captures of a
		// failed test, so that a failure can be looked at in Wireshark.
		caps := map[string]*bytes.Buffer{}
		for _, seg := range []*lvslab.Segment{top.Front, top.LAN} {
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
	l.top, l.net, l.client, l.router, l.dir, l.rs = top, top.Net, top.Client, top.Router, top.DirHost, top.RS
	l.d = top.Director
	l.ctl, l.eng, l.w = l.d.Control, l.d.Engine, l.d.Worker
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

func (l *lab) get(vip netip.Addr, port uint16) (string, error) { return l.top.Request(vip, port) }

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
