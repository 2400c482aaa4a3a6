package hostnet

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// sentFrames records the frames the neighbour table hands to send.
type sentFrames struct {
	mu     sync.Mutex
	frames map[int][][]byte
}

func (s *sentFrames) send(ifindex int, frame []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frames == nil {
		s.frames = map[int][][]byte{}
	}
	s.frames[ifindex] = append(s.frames[ifindex], append([]byte(nil), frame...))
}

func (s *sentFrames) get(ifindex int) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames[ifindex]
}

// resolveWithin bounds a resolution between two namespaces: one ARP or
// NDP round trip over a veth, with a wide margin.
const resolveWithin = 3 * time.Second

func macOf(t *testing.T, n *testNS, ifname string) [6]byte {
	t.Helper()
	h := n.host(t)
	l, err := h.nl.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	var m [6]byte
	copy(m[:], l.Attrs().HardwareAddr)
	return m
}

func TestNeighbours(t *testing.T) {
	for _, probe := range []Probe{ProbeNetlink, ProbeUDP} {
		t.Run(probe.String(), func(t *testing.T) { testNeighbours(t, probe) })
	}
}

func testNeighbours(t *testing.T, probe Probe) {
	tp := newTopo(t)
	h := tp.d.host(t)
	d0 := mustLink(t, h, "d0")
	peerMAC := macOf(t, tp.p, "p0")

	// A permanent entry that exists before the sync starts.
	tp.d.ip(t, "neigh add 198.18.0.77 lladdr 02:00:00:00:00:77 nud permanent dev d0")

	var sent sentFrames
	s, err := h.SyncNeighbours(NeighConfig{Send: sent.send, Probe: probe, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := s.Neighbours()

	if mac, ok := n.Lookup(d0, netip.MustParseAddr("198.18.0.77")); !ok || mac != [6]byte{2, 0, 0, 0, 0, 0x77} {
		t.Errorf("permanent entry: %x %v", mac, ok)
	}

	// A miss parks the frame and resolves through the kernel; the frame
	// then leaves addressed to the peer.
	for i, addr := range []netip.Addr{peer4, peer6} {
		frame := make([]byte, 60)
		frame[59] = byte(i)
		if !n.Park(d0, addr, frame) {
			t.Fatalf("Park(%v) refused", addr)
		}
		eventually(t, resolveWithin, "resolution of "+addr.String(), func() bool { return len(sent.get(d0)) > i })
		got := sent.get(d0)[i]
		if [6]byte(got[0:6]) != peerMAC || got[59] != byte(i) {
			t.Errorf("sent frame % x, want destination %x", got[:6], peerMAC)
		}
		if mac, ok := n.Lookup(d0, addr); !ok || mac != peerMAC {
			t.Errorf("Lookup(%v) = %x %v", addr, mac, ok)
		}
	}
	if s.Probe() != probe {
		t.Errorf("probe method %v, want %v", s.Probe(), probe)
	}

	// An address nobody has: the resolution fails (the timeout, or the
	// kernel's NUD_FAILED) and the parked frame is dropped; the next
	// packet asks again.
	ghost := netip.MustParseAddr("198.18.0.99")
	n.Park(d0, ghost, make([]byte, 60))
	eventually(t, resolveWithin, "failed resolution", func() bool {
		st := s.Stats()
		return st.TimedOut+st.Failed >= 1
	})
	if _, ok := n.Lookup(d0, ghost); ok {
		t.Errorf("unresolvable address resolved")
	}
	req := s.Stats().Requests
	n.Park(d0, ghost, make([]byte, 60))
	if s.Stats().Requests != req+1 {
		t.Errorf("a packet after a failed resolution did not ask again")
	}

	// Kernel changes reach the table.
	tp.d.ip(t, "neigh replace 198.18.0.77 lladdr 02:00:00:00:00:78 nud permanent dev d0")
	eventually(t, resolveWithin, "changed MAC", func() bool {
		mac, ok := n.Lookup(d0, netip.MustParseAddr("198.18.0.77"))
		return ok && mac[5] == 0x78
	})
	// An entry the administrator deletes (the kernel reports it failed)
	// is forgotten.
	tp.d.ip(t, "neigh del 198.18.0.77 dev d0")
	eventually(t, resolveWithin, "deleted entry forgotten", func() bool {
		_, ok := n.Lookup(d0, netip.MustParseAddr("198.18.0.77"))
		return !ok
	})
	t.Logf("stats %+v", s.Stats())
}

// TestNeighbourRefresh: the kernel drops an entry without reporting it
// failed (RTM_DELNEIGH alone: its GC taking a stale entry it does not see
// used, as the data path's use is invisible to it; here, the flush when
// the interface's MAC changes, which the test can cause without touching
// the host-wide GC settings). The entry is resolved again in the
// background and stays usable all along.
func TestNeighbourRefresh(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	d0 := mustLink(t, h, "d0")
	peerMAC := macOf(t, tp.p, "p0")
	var sent sentFrames
	s, err := h.SyncNeighbours(NeighConfig{Send: sent.send})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := s.Neighbours()
	for _, a := range []netip.Addr{peer4, peer6} {
		n.Park(d0, a, make([]byte, 60))
	}
	eventually(t, resolveWithin, "resolution", func() bool { return len(sent.get(d0)) == 2 })
	tp.d.ip(t, "link set d0 address 02:00:00:00:01:01")
	deadline := time.Now().Add(resolveWithin)
	for s.Stats().Refreshes < 2 || s.Stats().Resolved < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("entries not refreshed; stats %+v", s.Stats())
		}
		for _, a := range []netip.Addr{peer4, peer6} {
			if mac, ok := n.Lookup(d0, a); !ok || mac != peerMAC {
				t.Fatalf("entry %v lost while the kernel flushed it: %x %v; stats %+v", a, mac, ok, s.Stats())
			}
		}
		time.Sleep(time.Millisecond)
	}
	if st := s.Stats(); st.TimedOut != 0 || st.Failed != 0 {
		t.Errorf("stats %+v: want refreshes answered", st)
	}
}

func mustLink(t *testing.T, h *Host, name string) int {
	t.Helper()
	l, err := h.nl.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return l.Attrs().Index
}

// TestNeighbourEntries checks which kernel entries are taken, without root.
func TestNeighbourEntries(t *testing.T) {
	mac := net.HardwareAddr{2, 0, 0, 0, 0, 1}
	for _, tc := range []struct {
		name   string
		n      netlink.Neigh
		entry  bool
		usable bool
	}{
		{"reachable", netlink.Neigh{Family: unix.AF_INET, LinkIndex: 2, IP: net.ParseIP("198.18.0.2"), State: netlink.NUD_REACHABLE, HardwareAddr: mac}, true, true},
		{"stale v6", netlink.Neigh{Family: unix.AF_INET6, LinkIndex: 2, IP: net.ParseIP("2001:db8::2"), State: netlink.NUD_STALE, HardwareAddr: mac}, true, true},
		{"permanent", netlink.Neigh{Family: unix.AF_INET, LinkIndex: 2, IP: net.ParseIP("198.18.0.3"), State: netlink.NUD_PERMANENT, HardwareAddr: mac}, true, true},
		{"delay", netlink.Neigh{Family: unix.AF_INET, LinkIndex: 2, IP: net.ParseIP("198.18.0.3"), State: netlink.NUD_DELAY, HardwareAddr: mac}, true, true},
		{"incomplete", netlink.Neigh{Family: unix.AF_INET, LinkIndex: 2, IP: net.ParseIP("198.18.0.4"), State: netlink.NUD_INCOMPLETE}, true, false},
		{"failed", netlink.Neigh{Family: unix.AF_INET, LinkIndex: 2, IP: net.ParseIP("198.18.0.4"), State: netlink.NUD_FAILED}, true, false},
		{"multicast", netlink.Neigh{Family: unix.AF_INET6, LinkIndex: 2, IP: net.ParseIP("ff02::1"), State: netlink.NUD_NOARP, HardwareAddr: mac}, false, true},
		{"bridge fdb", netlink.Neigh{Family: unix.AF_BRIDGE, LinkIndex: 2, HardwareAddr: mac, State: netlink.NUD_PERMANENT}, false, true},
		{"proxy", netlink.Neigh{Family: unix.AF_INET, LinkIndex: 2, IP: net.ParseIP("198.18.0.5"), Flags: netlink.NTF_PROXY}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, entry := entryOf(&tc.n)
			if entry != tc.entry || usable(&tc.n) != tc.usable {
				t.Errorf("entryOf = %v, usable = %v; want %v, %v", entry, usable(&tc.n), tc.entry, tc.usable)
			}
		})
	}
}

// TestNeighbourEventsLost: a burst of kernel changes overflows a small
// subscription buffer (ENOBUFS); the sync subscribes again, compares with a
// fresh dump and ends up with every entry.
func TestNeighbourEventsLost(t *testing.T) {
	tp := newTopo(t)
	h := tp.d.host(t)
	d0 := mustLink(t, h, "d0")
	s, err := h.SyncNeighbours(NeighConfig{rcvbuf: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const entries = 1000 // under eagerMax, so that all are copied without being asked for
	var b strings.Builder
	for i := range entries {
		fmt.Fprintf(&b, "neigh add 198.19.%d.%d lladdr 02:00:00:00:%02x:%02x nud permanent dev d0\n", i/256, i%256, i/256, i%256)
	}
	cmd := exec.Command("ip", "-n", tp.d.name, "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	n := s.Neighbours()
	eventually(t, 5*time.Second, "every entry", func() bool {
		for i := range entries {
			a := netip.AddrFrom4([4]byte{198, 19, byte(i / 256), byte(i % 256)})
			if mac, ok := n.Lookup(d0, a); !ok || mac != [6]byte{2, 0, 0, 0, byte(i / 256), byte(i % 256)} {
				return false
			}
		}
		return true
	})
	t.Logf("stats %+v", s.Stats())
	if s.Stats().Resyncs == 0 {
		t.Logf("the burst did not overflow the subscription; resync not exercised")
	}
}

// TestResolveDoesNotBlock: the resolver callback runs on a data path
// worker; it only queues, however far behind the sync goroutine is.
func TestResolveDoesNotBlock(t *testing.T) {
	s := &NeighSync{wake: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		for i := range 10000 {
			s.resolve(2, netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("resolve blocked with nobody reading")
	}
	if len(s.reqs) != 10000 || s.Stats().Requests != 10000 {
		t.Errorf("%d requests queued, %d counted", len(s.reqs), s.Stats().Requests)
	}
}

// BenchmarkResolve measures the data path's cost of a neighbour miss
// beyond the parking itself (Neighbours.Park).
func BenchmarkResolve(b *testing.B) {
	s := &NeighSync{wake: make(chan struct{}, 1)}
	a := netip.MustParseAddr("198.18.0.2")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.resolve(2, a)
		if i%1024 == 0 {
			s.mu.Lock()
			s.reqs = s.reqs[:0]
			s.mu.Unlock()
		}
	}
}
