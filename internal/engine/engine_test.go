package engine

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golvs/internal/clock"
	"golvs/internal/conntable"
	"golvs/internal/control"
	"golvs/internal/proto"
	"golvs/internal/service"
)

var (
	testVIP = netip.MustParseAddr("198.18.0.100")
	testSvc = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: testVIP, Port: 80}
)

type fixture struct {
	clk *clock.Manual
	ctl *control.Control
	e   *Engine
}

func newFixture(t testing.TB, sched string, flags service.Flags, nDests, maxConns int) *fixture {
	t.Helper()
	clk := clock.NewManual(time.Hour)
	ctl := control.New(control.Config{Clock: clk, StatsShards: 4})
	e, err := New(Config{Control: ctl, Clock: clk, MaxConns: maxConns, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	cfg := service.Config{Sched: sched, Flags: flags}
	if flags&service.FlagPersistent != 0 {
		cfg.Timeout = 300
	}
	if err := ctl.AddService(testSvc, cfg); err != nil {
		t.Fatal(err)
	}
	udp := testSvc
	udp.Proto = service.ProtoUDP
	if err := ctl.AddService(udp, cfg); err != nil {
		t.Fatal(err)
	}
	for i := range nDests {
		a := netip.AddrFrom4([4]byte{198, 19, byte(i >> 8), byte(i + 1)})
		for _, k := range []service.Key{testSvc, udp} {
			if err := ctl.AddDest(k, a, 80, service.DestConfig{Fwd: service.Masq, Weight: int32(1 + i%3)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &fixture{clk: clk, ctl: ctl, e: e}
}

func client(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
}

// TestCountsMatchTable drives random traffic, time and configuration
// changes, and checks after every step that each real server's
// ActiveConn / InActConn / PersistConn equal what the connection table
// holds: the accounting that lc, wlc, sed, nq and the thresholds rest on.
func TestCountsMatchTable(t *testing.T) {
	seeds, steps := uint64(8), 2000
	if testing.Short() {
		// CI runs -short under the race detector, which slows the
		// table walks of checkCounts twentyfold.
		seeds, steps = 3, 1000
	}
	for _, persist := range []bool{false, true} {
		for seed := range seeds {
			var flags service.Flags
			if persist {
				flags = service.FlagPersistent
			}
			f := newFixture(t, "wlc", flags, 4, 4096)
			w := f.e.NewWorker(0)
			r := rand.New(rand.NewPCG(seed, 1))
			flagsSeq := []uint8{proto.FlagSYN, proto.FlagACK, proto.FlagFIN | proto.FlagACK, proto.FlagRST, proto.FlagSYN | proto.FlagACK}
			for step := range steps {
				switch op := r.IntN(100); {
				case op < 3:
					f.clk.Advance(time.Duration(r.IntN(200)) * time.Second)
					f.e.Tick()
				case op < 5:
					// Quiesce or revive a server.
					a := netip.AddrFrom4([4]byte{198, 19, 0, byte(1 + r.IntN(4))})
					_ = f.ctl.EditDest(testSvc, a, 80, service.DestConfig{Fwd: service.Masq, Weight: int32(r.IntN(3))})
				case op < 6:
					a := netip.AddrFrom4([4]byte{198, 19, 0, byte(1 + r.IntN(4))})
					if f.ctl.DeleteDest(testSvc, a, 80) != nil {
						_ = f.ctl.AddDest(testSvc, a, 80, service.DestConfig{Fwd: service.Masq, Weight: 1})
					}
				case op < 8:
					s := f.e.Settings()
					s.ExpireNodestConn = r.IntN(2) == 0
					s.ExpireQuiescentTemplate = r.IntN(2) == 0
					f.e.SetSettings(s)
				default:
					p := Packet{Proto: service.ProtoTCP, Src: client(r.IntN(30)), SrcPort: uint16(40000 + r.IntN(20)),
						Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: flagsSeq[r.IntN(len(flagsSeq))]}
					if r.IntN(4) == 0 {
						p.Proto, p.TCPFlags = service.ProtoUDP, 0
					}
					w.Begin()
					d := w.In(&p)
					if d.Verdict == Forward && r.IntN(2) == 0 {
						// The real server answers.
						q := Packet{Proto: p.Proto, Src: d.DAddr, SrcPort: d.DPort, Dst: p.Src, DstPort: p.SrcPort,
							Len: 60, TCPFlags: flagsSeq[r.IntN(len(flagsSeq))]}
						if q.Proto == service.ProtoUDP {
							q.TCPFlags = 0
						}
						if o := w.Out(&q); o.Verdict != Forward {
							t.Fatalf("seed %d step %d: reply not matched: %v", seed, step, o.Verdict)
						}
					}
				}
				// Walking the table is slow next to a packet: check
				// every few steps (a miscount persists, so it is caught).
				if step%20 == 0 {
					checkCounts(t, f, seed, step)
				}
			}
			checkCounts(t, f, seed, -1)
		}
	}
}

func checkCounts(t *testing.T, f *fixture, seed uint64, step int) {
	t.Helper()
	type counts struct{ act, inact, persist int32 }
	want := map[uint32]*counts{}
	f.e.Conns().Walk(func(c conntable.Conn) bool {
		n := want[c.DestID]
		if n == nil {
			n = &counts{}
			want[c.DestID] = n
		}
		switch {
		case c.Flags&conntable.FlagTemplate != 0:
			n.persist++
		case c.Flags&conntable.FlagInactive != 0:
			n.inact++
		default:
			n.act++
		}
		if active := proto.IsActive(c.Proto, proto.State(c.State)); c.Flags&conntable.FlagTemplate == 0 && active == (c.Flags&conntable.FlagInactive != 0) {
			t.Fatalf("seed %d step %d: conn state %d with INACTIVE=%v", seed, step, c.State, c.Flags&conntable.FlagInactive != 0)
		}
		return true
	})
	seen := map[*service.Dest]bool{}
	check := func(d *service.Dest) {
		if seen[d] {
			return
		}
		seen[d] = true
		w := want[d.ID]
		if w == nil {
			w = &counts{}
		}
		if d.ActiveConns() != w.act || d.InactConns() != w.inact || d.PersistConns() != w.persist {
			t.Fatalf("seed %d step %d: dest %v counts act=%d inact=%d persist=%d, table has %d/%d/%d",
				seed, step, d.Addr, d.ActiveConns(), d.InactConns(), d.PersistConns(), w.act, w.inact, w.persist)
		}
	}
	for _, s := range f.ctl.Snapshot().Services() {
		for _, d := range s.Dests {
			check(d)
		}
	}
	for _, d := range f.ctl.Trash() {
		check(d)
	}
}

func TestTableFullDropsNewKeepsEstablished(t *testing.T) {
	f := newFixture(t, "rr", 0, 2, 64)
	w := f.e.NewWorker(0)
	w.Begin()
	var est []Packet
	for i := 0; ; i++ {
		p := Packet{Proto: service.ProtoTCP, Src: client(i), SrcPort: 40000, Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: proto.FlagSYN}
		d := w.In(&p)
		if d.Verdict == Drop {
			if d.Reason != DropTableFull {
				t.Fatalf("drop reason %v", d.Reason)
			}
			break
		}
		if i > 1000 {
			t.Fatal("table never filled")
		}
		p.TCPFlags = proto.FlagACK
		est = append(est, p)
	}
	if got := w.Drops()[DropTableFull]; got != 1 {
		t.Fatalf("table-full drops counted %d", got)
	}
	for _, p := range est {
		if d := w.In(&p); d.Verdict != Forward {
			t.Fatalf("established flow %v not forwarded when table full: %v", p.Src, d.Verdict)
		}
	}
	// Counts stay exact: nothing was bound for the dropped connection.
	checkCounts(t, f, 0, 0)
}

func TestZeroAllocs(t *testing.T) {
	f := newFixture(t, "wlc", 0, 10, 1<<16)
	w := f.e.NewWorker(0)
	w.Begin()
	syn := Packet{Proto: service.ProtoTCP, Src: client(1), SrcPort: 40000, Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: proto.FlagSYN}
	d := w.In(&syn)
	ack := syn
	ack.TCPFlags = proto.FlagACK
	reply := Packet{Proto: service.ProtoTCP, Src: d.DAddr, SrcPort: d.DPort, Dst: syn.Src, DstPort: syn.SrcPort, Len: 60, TCPFlags: proto.FlagACK}
	if n := testing.AllocsPerRun(200, func() { w.In(&ack) }); n != 0 {
		t.Errorf("established In: %v allocs", n)
	}
	if n := testing.AllocsPerRun(200, func() { w.Out(&reply) }); n != 0 {
		t.Errorf("established Out: %v allocs", n)
	}
	port := uint16(1)
	newConn := func() {
		p := Packet{Proto: service.ProtoTCP, Src: client(2), SrcPort: port, Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: proto.FlagSYN}
		port++
		if d := w.In(&p); d.Verdict == Forward {
			f.e.Conns().Delete(d.Conn)
		}
	}
	for range 1000 { // warm the table's free lists
		newConn()
	}
	if n := testing.AllocsPerRun(500, newConn); n != 0 {
		t.Errorf("new connection: %v allocs", n)
	}
	if n := testing.AllocsPerRun(200, w.Begin); n != 0 {
		t.Errorf("Begin: %v allocs", n)
	}
}

func TestWorkersConcurrently(t *testing.T) {
	f := newFixture(t, "wlc", service.FlagPersistent, 8, 1<<14)
	var wg sync.WaitGroup
	for id := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := f.e.NewWorker(id)
			r := rand.New(rand.NewPCG(uint64(id), 2))
			for range 5000 {
				w.Begin()
				p := Packet{Proto: service.ProtoTCP, Src: client(id*64 + r.IntN(64)), SrcPort: uint16(1024 + r.IntN(100)),
					Dst: testVIP, DstPort: 80, Len: 100, TCPFlags: []uint8{proto.FlagSYN, proto.FlagACK, proto.FlagRST}[r.IntN(3)]}
				if d := w.In(&p); d.Verdict == Forward {
					q := Packet{Proto: p.Proto, Src: d.DAddr, SrcPort: d.DPort, Dst: p.Src, DstPort: p.SrcPort, Len: 100, TCPFlags: proto.FlagACK}
					w.Out(&q)
				}
			}
		}()
	}
	for i := range 50 {
		f.clk.Advance(time.Second)
		f.e.Tick()
		a := netip.AddrFrom4([4]byte{198, 19, 0, byte(1 + i%8)})
		_ = f.ctl.EditDest(testSvc, a, 80, service.DestConfig{Fwd: service.Masq, Weight: int32(i % 3)})
	}
	wg.Wait()
	checkCounts(t, f, 0, 0)
}
