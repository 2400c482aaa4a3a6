package sched

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"golvs/internal/service"
	"golvs/internal/stats"
)

// This file is the shared differential harness: every scheduler is driven
// side by side with a slow, obvious transcription of the kernel algorithm
// (its "reference", in <name>_ref_test.go) over random add / delete / edit /
// load / schedule sequences, and both must choose the same destination at
// every step.

var testSvc = service.Key{Family: service.IPv4, Proto: service.ProtoTCP,
	Addr: netip.MustParseAddr("198.18.0.100"), Port: 80}

// newTestDest returns a destination 198.19.x.y:80 numbered n.
func newTestDest(n int, weight int32) *service.Dest {
	a := netip.AddrFrom4([4]byte{198, 19, byte(n >> 8), byte(n)})
	return service.NewDest(uint32(n+1), testSvc, a, 80,
		service.DestConfig{Fwd: service.Masq, Weight: weight}, stats.New(1))
}

// newTestDest6 returns destination 2001:db8:5::n port 80.
func newTestDest6(n int, weight int32) *service.Dest {
	b := netip.MustParseAddr("2001:db8:5::").As16()
	b[14], b[15] = byte(n>>8), byte(n)
	return service.NewDest(uint32(n+1), testSvc, netip.AddrFrom16(b), 80,
		service.DestConfig{Fwd: service.Masq, Weight: weight}, stats.New(1))
}

// prepend returns a new list with d at the head (the kernel's list_add_rcu).
func prepend(dests []*service.Dest, d *service.Dest) []*service.Dest {
	out := make([]*service.Dest, 0, len(dests)+1)
	return append(append(out, d), dests...)
}

// without returns a new list without d.
func without(dests []*service.Dest, d *service.Dest) []*service.Dest {
	out := make([]*service.Dest, 0, len(dests))
	for _, x := range dests {
		if x != d {
			out = append(out, x)
		}
	}
	return out
}

// diffConfig tunes runDifferential for one scheduler.
type diffConfig struct {
	steps      int
	maxDests   int
	maxWeight  int32
	zeroWeight float64 // probability that a new weight is 0
	ipv6       bool    // also use IPv6 destinations and clients
	thresholds bool    // set random upper/lower thresholds
	udp        bool    // connections are never active (UDP)
	srcPool    int     // number of distinct client addresses (0 = random)
	dstPool    int     // number of distinct packet destinations (0 = 1)
	clock      *int64  // if set, advanced by the harness each step
}

// runDifferential drives real and ref through the same random operations on
// shared destinations and fails at the first differing choice.
func runDifferential(t *testing.T, seed uint64, cfg diffConfig, real, ref service.Scheduler) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	if cfg.steps == 0 {
		cfg.steps = 3000
	}
	if cfg.maxDests == 0 {
		cfg.maxDests = 12
	}
	if cfg.maxWeight == 0 {
		cfg.maxWeight = 10
	}
	var now int64
	var dests []*service.Dest
	nextID := 0
	weight := func() int32 {
		if r.Float64() < cfg.zeroWeight {
			return 0
		}
		return 1 + r.Int32N(cfg.maxWeight)
	}
	mkDest := func() *service.Dest {
		nextID++
		var d *service.Dest
		if cfg.ipv6 && r.IntN(2) == 0 {
			d = newTestDest6(nextID, weight())
		} else {
			d = newTestDest(nextID, weight())
		}
		if cfg.thresholds && r.IntN(3) == 0 {
			c := d.Config()
			c.UThreshold = uint32(1 + r.IntN(20))
			if r.IntN(2) == 0 {
				c.LThreshold = uint32(r.IntN(int(c.UThreshold)))
			}
			d.SetConfig(c)
		}
		return d
	}
	addr := func(pool int) netip.Addr {
		var n int
		if pool > 0 {
			n = r.IntN(pool)
		} else {
			n = r.IntN(1 << 24)
		}
		if cfg.ipv6 && r.IntN(2) == 0 {
			b := netip.MustParseAddr("2001:db8:c::").As16()
			b[13], b[14], b[15] = byte(n>>16), byte(n>>8), byte(n)
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)})
	}
	// Start with a few destinations, then init.
	for i, n := 0, r.IntN(cfg.maxDests+1); i < n; i++ {
		dests = prepend(dests, mkDest())
	}
	initErr1 := real.Init(dests)
	initErr2 := ref.Init(dests)
	if (initErr1 == nil) != (initErr2 == nil) {
		t.Fatalf("Init: real err %v, ref err %v", initErr1, initErr2)
	}
	type bound struct {
		d      *service.Dest
		active bool
	}
	var conns []bound
	for step := 0; step < cfg.steps; step++ {
		if cfg.clock != nil {
			now += int64(r.IntN(5000)) * int64(time.Millisecond)
			*cfg.clock = now
		}
		op := r.IntN(100)
		switch {
		case op < 6 && len(dests) < cfg.maxDests:
			d := mkDest()
			dests = prepend(dests, d)
			real.AddDest(dests, d)
			ref.AddDest(dests, d)
		case op < 10 && len(dests) > 0:
			d := dests[r.IntN(len(dests))]
			dests = without(dests, d)
			d.SetAvailable(false)
			real.DelDest(dests, d)
			ref.DelDest(dests, d)
		case op < 18 && len(dests) > 0:
			d := dests[r.IntN(len(dests))]
			c := d.Config()
			c.Weight = weight()
			d.SetConfig(c)
			real.UpdDest(dests, d)
			ref.UpdDest(dests, d)
		case op < 30 && len(conns) > 0:
			// A connection ends or changes state.
			i := r.IntN(len(conns))
			b := conns[i]
			if b.active && r.IntN(2) == 0 {
				b.d.ToInactive()
				conns[i].active = false
				break
			}
			b.d.Unbind(false, !b.active)
			conns[i] = conns[len(conns)-1]
			conns = conns[:len(conns)-1]
		case op < 36 && len(conns) > 0:
			i := r.IntN(len(conns))
			if !conns[i].active && !cfg.udp {
				conns[i].d.ToActive()
				conns[i].active = true
			}
		default:
			p := &service.Packet{
				Src:     addr(cfg.srcPool),
				SrcPort: uint16(1024 + r.IntN(60000)),
				Proto:   service.ProtoTCP,
				DstPort: 80,
				Now:     now,
			}
			if cfg.dstPool > 0 {
				p.Dst = addr(cfg.dstPool)
			} else {
				p.Dst = testSvc.Addr
			}
			if cfg.udp {
				p.Proto = service.ProtoUDP
			}
			got := real.Schedule(dests, p)
			want := ref.Schedule(dests, p)
			if got != want {
				t.Fatalf("seed %d step %d: %s chose %s, kernel reference chose %s\ndests: %s",
					seed, step, real.Name(), destName(got), destName(want), dumpDests(dests))
			}
			if got != nil {
				active := !cfg.udp && r.IntN(2) == 0
				got.Bind(false, !active)
				conns = append(conns, bound{got, active})
			}
		}
		if e, ok := real.(service.Expirer); ok && r.IntN(50) == 0 {
			e.Expire(now)
			ref.(service.Expirer).Expire(now)
		}
	}
}

func destName(d *service.Dest) string {
	if d == nil {
		return "<nil>"
	}
	return netip.AddrPortFrom(d.Addr, d.Port).String()
}

func dumpDests(dests []*service.Dest) string {
	s := ""
	for _, d := range dests {
		s += fmt.Sprintf("\n  %s w=%d act=%d inact=%d overload=%v", destName(d), d.Weight(),
			d.ActiveConns(), d.InactConns(), d.Overloaded())
	}
	return s
}
