package control

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golvs/internal/clock"
	"golvs/internal/service"
)

var (
	vip   = netip.MustParseAddr("198.18.0.100")
	rs1   = netip.MustParseAddr("198.19.0.11")
	rs2   = netip.MustParseAddr("198.19.0.12")
	rs3   = netip.MustParseAddr("198.19.0.13")
	web   = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 80}
	masq1 = service.DestConfig{Fwd: service.Masq, Weight: 1}
)

func newControl(t *testing.T) (*Control, *clock.Manual) {
	t.Helper()
	clk := clock.NewManual(time.Hour)
	return New(Config{Clock: clk}), clk
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func destAddrs(s *service.Service) []netip.Addr {
	var out []netip.Addr
	for _, d := range s.Dests {
		out = append(out, d.Addr)
	}
	return out
}

func TestErrorsMatchKernelClasses(t *testing.T) {
	c, _ := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
	other := web
	other.Port = 81
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"add existing service", c.AddService(web, service.Config{Sched: "wlc"}), ErrServiceExists},
		{"unknown scheduler", c.AddService(other, service.Config{Sched: "bogus"}), ErrSchedNotFound},
		{"unknown persistence engine", c.AddService(other, service.Config{Sched: "rr", PE: "bogus", Flags: service.FlagPersistent, Timeout: 10}), ErrSchedNotFound},
		{"edit missing service", c.EditService(other, service.Config{Sched: "rr"}), ErrNoService},
		{"delete missing service", c.DeleteService(other), ErrNoService},
		{"zero missing service", c.Zero(&other), ErrNoService},
		{"dest on missing service", c.AddDest(other, rs1, 80, masq1), ErrServiceUndef},
		{"edit missing dest", c.EditDest(web, rs1, 80, masq1), ErrNoDest},
		{"delete missing dest", c.DeleteDest(web, rs1, 80), ErrNoDest},
		{"lower above upper threshold", c.AddDest(web, rs2, 80, service.DestConfig{Weight: 1, UThreshold: 5, LThreshold: 10}), ErrRange},
		{"lower threshold without upper", c.AddDest(web, rs2, 80, service.DestConfig{Weight: 1, LThreshold: 7}), ErrRange},
		{"negative weight", c.AddDest(web, rs2, 80, service.DestConfig{Weight: -1}), ErrRange},
		{"IPv6 dest on IPv4 service", c.AddDest(web, netip.MustParseAddr("2001:db8::1"), 80, masq1), ErrAFNoSupport},
		{"multicast dest", c.AddDest(web, netip.MustParseAddr("224.0.0.1"), 80, masq1), ErrInvalid},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	mustOK(t, c.AddDest(web, rs1, 80, masq1))
	if err := c.AddDest(web, rs1, 80, masq1); !errors.Is(err, ErrDestExists) {
		t.Errorf("add existing dest: got %v", err)
	}
	// An IPv6 real server behind an IPv4 service is allowed for tunnels.
	mustOK(t, c.AddDest(web, netip.MustParseAddr("2001:db8::1"), 80, service.DestConfig{Fwd: service.Tunnel, Weight: 1}))
}

func TestDestsAtHeadInKernelOrder(t *testing.T) {
	c, _ := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
	for _, a := range []netip.Addr{rs1, rs2, rs3} {
		mustOK(t, c.AddDest(web, a, 80, masq1))
	}
	got := destAddrs(c.Snapshot().Get(web))
	want := []netip.Addr{rs3, rs2, rs1}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("dest order %v, want %v (newest first, as the kernel's list_add)", got, want)
	}
	// rr walks the list: rs3, rs2, rs1, rs3 ... (oracle README).
	s := c.Snapshot().Get(web)
	var seq []netip.Addr
	for range 4 {
		seq = append(seq, s.Sched.Schedule(s.Dests, &service.Packet{}).Addr)
	}
	if seq[0] != rs3 || seq[1] != rs2 || seq[2] != rs1 || seq[3] != rs3 {
		t.Fatalf("rr order %v", seq)
	}
}

func TestSnapshotsAreImmutable(t *testing.T) {
	c, _ := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "wlc"}))
	mustOK(t, c.AddDest(web, rs1, 80, masq1))
	old := c.Snapshot()
	mustOK(t, c.AddDest(web, rs2, 80, masq1))
	mustOK(t, c.EditService(web, service.Config{Sched: "rr"}))
	if n := len(old.Get(web).Dests); n != 1 {
		t.Fatalf("old snapshot changed: %d dests", n)
	}
	if old.Get(web).Config.Sched != "wlc" {
		t.Fatalf("old snapshot scheduler changed")
	}
	if got := c.Snapshot().Get(web); got.Config.Sched != "rr" || len(got.Dests) != 2 {
		t.Fatalf("new snapshot: %+v", got.Config)
	}
}

func TestEditKeepsDestsAndCounters(t *testing.T) {
	c, _ := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "wlc"}))
	mustOK(t, c.AddDest(web, rs1, 80, masq1))
	d := c.Snapshot().Get(web).Dests[0]
	d.Bind(false, false)
	d.Stats.AddConn(0)
	// -E is a full respecification: a new scheduler, no persistence.
	mustOK(t, c.EditService(web, service.Config{Sched: "lc"}))
	s := c.Snapshot().Get(web)
	if s.Dests[0] != d || d.ActiveConns() != 1 || d.Stats.Read().Conns != 1 {
		t.Fatalf("edit lost the destination or its counters")
	}
	if s.Sched.Name() != "lc" {
		t.Fatalf("scheduler %s", s.Sched.Name())
	}
	// The edited destination object is the one connections point to.
	mustOK(t, c.EditDest(web, rs1, 80, service.DestConfig{Fwd: service.Route, Weight: 0}))
	if d.Weight() != 0 || d.LastWeight() != 1 || d.Fwd() != service.Route {
		t.Fatalf("edit dest: weight %d last %d fwd %v", d.Weight(), d.LastWeight(), d.Fwd())
	}
}

func TestTrashRevivesWithCounters(t *testing.T) {
	// Oracle finding: deleting a service and re-adding the same real
	// servers revives the old destination objects with their ActiveConn /
	// InActConn counters.
	c, clk := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
	mustOK(t, c.AddDest(web, rs1, 80, masq1))
	d := c.Snapshot().Get(web).Dests[0]
	d.Bind(false, false) // one active connection
	mustOK(t, c.DeleteService(web))
	if d.Available() {
		t.Fatal("deleted dest still available")
	}
	if c.Snapshot().Get(web) != nil {
		t.Fatal("service still in snapshot")
	}
	mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
	mustOK(t, c.AddDest(web, rs1, 80, masq1))
	d2 := c.Snapshot().Get(web).Dests[0]
	if d2 != d || d2.ActiveConns() != 1 || !d2.Available() {
		t.Fatalf("not revived: same=%v active=%d", d2 == d, d2.ActiveConns())
	}
	if c.Registry().Lookup(d.ID) != d {
		t.Fatal("registry lost the dest")
	}

	// Once deleted again and unreferenced, the trash frees it after 120 s.
	mustOK(t, c.DeleteDest(web, rs1, 80))
	if n := c.CollectTrash(); n != 0 {
		t.Fatalf("freed a referenced dest")
	}
	d.Unbind(false, false)
	clk.Advance(119 * time.Second)
	if n := c.CollectTrash(); n != 0 {
		t.Fatalf("freed before the trash period")
	}
	clk.Advance(time.Second)
	if n := c.CollectTrash(); n != 1 {
		t.Fatalf("freed %d, want 1", n)
	}
	if c.Registry().Lookup(d.ID) != nil {
		t.Fatal("registry still has the freed dest")
	}
}

func TestFwmarkKeysIgnoreProtoAndAddr(t *testing.T) {
	c, _ := newControl(t)
	fw := service.Key{Family: service.IPv4, FWMark: 1}
	mustOK(t, c.AddService(fw, service.Config{Sched: "rr"}))
	if err := c.AddService(service.Key{Family: service.IPv4, FWMark: 1, Proto: service.ProtoTCP}, service.Config{Sched: "rr"}); !errors.Is(err, ErrServiceExists) {
		t.Fatalf("duplicate fwmark: %v", err)
	}
	// The same mark in IPv6 is another service.
	mustOK(t, c.AddService(service.Key{Family: service.IPv6, FWMark: 1}, service.Config{Sched: "rr"}))
	mustOK(t, c.AddDest(fw, rs1, 0, masq1))
	s := c.Snapshot().Lookup(service.ProtoTCP, vip, 443, 1)
	if s == nil || s.Key.FWMark != 1 || len(s.Dests) != 1 {
		t.Fatalf("fwmark lookup: %+v", s)
	}
}

func TestSchedulerRebindOnlyWhenNeeded(t *testing.T) {
	c, _ := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
	for _, a := range []netip.Addr{rs1, rs2, rs3} {
		mustOK(t, c.AddDest(web, a, 80, masq1))
	}
	s := c.Snapshot().Get(web)
	first := s.Sched.Schedule(s.Dests, &service.Packet{})
	// Editing only the persistence keeps the rr instance and its position.
	mustOK(t, c.EditService(web, service.Config{Sched: "rr", Flags: service.FlagPersistent, Timeout: 300}))
	s2 := c.Snapshot().Get(web)
	if s2.Sched != s.Sched {
		t.Fatal("rr rebound on an edit that kept the scheduler")
	}
	if next := s2.Sched.Schedule(s2.Dests, &service.Packet{}); next == first {
		t.Fatal("rr position lost")
	}
	mustOK(t, c.EditService(web, service.Config{Sched: "sh"}))
	sh := c.Snapshot().Get(web).Sched
	mustOK(t, c.EditService(web, service.Config{Sched: "sh", Flags: service.FlagSHPort}))
	if c.Snapshot().Get(web).Sched == sh {
		t.Fatal("sh kept the old flags")
	}
}

func TestConcurrentReadersSeeConsistentSnapshots(t *testing.T) {
	c, _ := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "wlc"}))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := &service.Packet{Src: rs1}
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := c.Snapshot().Lookup(service.ProtoTCP, vip, 80, 0)
				if s == nil {
					continue
				}
				if d := s.Sched.Schedule(s.Dests, p); d != nil {
					d.Bind(false, true)
					d.Unbind(false, true)
				}
			}
		}()
	}
	for i := range 200 {
		a := netip.AddrFrom4([4]byte{198, 19, 1, byte(i)})
		mustOK(t, c.AddDest(web, a, 80, masq1))
		if i%3 == 0 {
			mustOK(t, c.DeleteDest(web, a, 80))
		}
		if i%50 == 0 {
			mustOK(t, c.EditService(web, service.Config{Sched: []string{"rr", "wlc", "lc", "sh", "mh"}[i/50%5]}))
		}
	}
	close(stop)
	wg.Wait()
}

func TestRatesAndZero(t *testing.T) {
	c, clk := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
	mustOK(t, c.AddDest(web, rs1, 80, masq1))
	s := c.Snapshot().Get(web)
	d := s.Dests[0]
	// 1000 connections per second for 60 s, estimated every 40 ms slot
	// (the EWMA takes 1/4 of the difference every 2 s).
	for range 1500 {
		for range 40 {
			d.Stats.AddConn(0)
			s.Stats.AddConn(0)
		}
		clk.Advance(40 * time.Millisecond)
		c.TickEstimators(clk.Nanotime())
	}
	if r := c.Rates(s.Stats); r.CPS < 990 || r.CPS > 1000 {
		t.Fatalf("service cps %d, want about 1000", r.CPS)
	}
	if r := c.Rates(d.Stats); r.CPS < 990 || r.CPS > 1000 {
		t.Fatalf("dest cps %d", r.CPS)
	}
	mustOK(t, c.Zero(&web))
	if r := c.Rates(s.Stats); r.CPS != 0 || s.Stats.Read().Conns != 0 || d.Stats.Read().Conns != 0 {
		t.Fatalf("after -Z: cps %d conns %d", r.CPS, s.Stats.Read().Conns)
	}
}

func TestBatchPublishesOnce(t *testing.T) {
	c, _ := newControl(t)
	before := c.Snapshot()
	ch := c.Changed()
	c.Batch(func() {
		mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
		mustOK(t, c.AddDest(web, rs1, 80, masq1))
		// Errors inside a batch still come back, and nothing shows yet.
		if err := c.AddService(web, service.Config{Sched: "rr"}); !errors.Is(err, ErrServiceExists) {
			t.Fatalf("duplicate in batch: %v", err)
		}
		if c.Snapshot() != before {
			t.Fatal("a change was published inside the batch")
		}
	})
	select {
	case <-ch:
	default:
		t.Fatal("Changed not signalled after the batch")
	}
	s := c.Snapshot().Get(web)
	if s == nil || len(s.Dests) != 1 {
		t.Fatalf("batch result not published: %+v", s)
	}
}

func TestTunnelChecks(t *testing.T) {
	c, _ := newControl(t)
	mustOK(t, c.AddService(web, service.Config{Sched: "rr"}))
	if err := c.AddDest(web, rs1, 80, service.DestConfig{Fwd: service.Tunnel, Weight: 1, TunType: service.TunGRE + 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown tunnel type: %v", err)
	}
	if err := c.AddDest(web, rs1, 80, service.DestConfig{Fwd: service.Tunnel, Weight: 1, TunType: service.TunGUE}); !errors.Is(err, ErrInvalid) {
		t.Errorf("GUE without a port: %v", err)
	}
	mustOK(t, c.AddDest(web, rs1, 80, service.DestConfig{Fwd: service.Tunnel, Weight: 1, TunType: service.TunGUE, TunPort: 5555}))
}
