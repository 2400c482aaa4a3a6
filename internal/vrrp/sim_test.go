package vrrp

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestSimulation runs random VRRP LANs on the fake bus: 3 to 6 instances of
// one VRID with random priorities (ties, all equal in a third of the runs,
// an address owner now and then),
// nopreempt and preempt_delay on some, started at random times; then a
// chaos phase with a lossy LAN (up to 30% of adverts lost) and random
// crashes, shutdowns, restarts, priority changes, faults and cut links;
// then a quiet phase (no loss, links and faults restored). Invariants:
//
//   - all along: VIPs are released exactly when they were added (a
//     BecomeMaster is never repeated without a release between, and
//     Release is set exactly after a BecomeMaster), deadlines move forward;
//   - after the quiet phase: exactly one MASTER among the live instances,
//     and when no instance has nopreempt or preempt_delay, one of the
//     highest priority.
func TestSimulation(t *testing.T) {
	runs := 200
	if testing.Short() {
		runs = 40
	}
	for seed := range uint64(runs) {
		simulate(t, seed)
	}
}

type simNode struct {
	vips bool // BecomeMaster seen and not released
}

func simulate(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	b := newBus(seed)
	var trace []string
	state := map[string]*simNode{}
	version := uint8(2 + rng.IntN(2))
	interval := time.Second
	if version == 3 && rng.IntN(2) == 0 {
		interval = 100 * time.Millisecond
	}
	fail := func(format string, args ...any) {
		t.Helper()
		var nodes []string
		for _, nd := range b.nodes {
			nodes = append(nodes, fmt.Sprintf("%s %v prio=%d/%d nopreempt=%v delay=%v crashed=%v link-down=%v deadline=%s",
				nd.name, nd.cfg.LocalAddr, nd.in.Priority(), nd.cfg.Priority, nd.cfg.NoPreempt, nd.cfg.PreemptDelay,
				nd.crashed, nd.linkDown, fmtT(nd.in.NextDeadline()))+" "+nd.in.State().String())
		}
		t.Fatalf("seed %d (v%d): %s\n%s\ntrace (last 60 lines):\n%s", seed, version, fmt.Sprintf(format, args...),
			strings.Join(nodes, "\n"), strings.Join(trace[max(0, len(trace)-60):], "\n"))
	}
	b.log = func(now time.Time, line string) {
		trace = append(trace, "t="+fmtT(now)+" "+line)
		name, rest, _ := strings.Cut(line, ": ")
		s := state[name]
		if s == nil {
			return
		}
		switch {
		case rest == "become MASTER":
			if s.vips {
				fail("%s: BecomeMaster with the VIPs already set", name)
			}
			s.vips = true
		case strings.HasPrefix(rest, "become BACKUP"), strings.HasPrefix(rest, "become FAULT"), strings.HasPrefix(rest, "stop"):
			if rel := strings.HasSuffix(rest, " release"); rel != s.vips {
				fail("%s: %q while VIPs set=%v", name, rest, s.vips)
			}
			s.vips = false
		}
	}

	n := 3 + rng.IntN(4)
	prios := []uint8{50, 100, 100, 150, 200, 254}
	if rng.IntN(3) == 0 {
		prios = []uint8{100} // all equal: the address decides between masters
	}
	preemptAll := true
	owner := rng.IntN(4) == 0
	for i := range n {
		cfg := Config{
			Name:      fmt.Sprintf("n%d", i),
			VRID:      1,
			Version:   version,
			AdvertInt: interval,
			LocalAddr: netip.AddrFrom4([4]byte{198, 18, 0, byte(1 + rng.IntN(200))}),
			VIPs:      []netip.Addr{netip.MustParseAddr("198.18.1.1")},
			Priority:  prios[rng.IntN(len(prios))],
		}
		for b.addrUsed(cfg.LocalAddr) {
			cfg.LocalAddr = cfg.LocalAddr.Next()
		}
		if owner && i == 0 {
			cfg.Priority = PriorityOwner
		}
		switch r := rng.IntN(10); {
		case r == 0 && cfg.Priority != PriorityOwner:
			cfg.NoPreempt, preemptAll = true, false
		case r == 1 && cfg.Priority != PriorityOwner:
			cfg.PreemptDelay, preemptAll = time.Duration(1+rng.IntN(5))*interval, false
		}
		in, err := NewInstance(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b.nodes = append(b.nodes, &node{name: cfg.Name, cfg: cfg, in: in})
		state[cfg.Name] = &simNode{}
	}
	// Staggered starts.
	for _, nd := range b.nodes {
		b.runChecked(b.now.Add(time.Duration(rng.IntN(2000))*interval/1000), fail)
		b.apply(nd.in.Start(b.now))
	}

	// Chaos.
	b.loss = 0.3 * rng.Float64()
	chaosEnd := b.now.Add(60 * interval)
	for b.now.Before(chaosEnd) {
		b.runChecked(b.now.Add(time.Duration(500+rng.IntN(2500))*interval/1000), fail)
		nd := b.nodes[rng.IntN(len(b.nodes))]
		now := b.now
		ev := rng.IntN(8)
		if nd.crashed && ev != 2 {
			continue // a crashed instance can only be restarted
		}
		switch ev {
		case 0: // crash: the process vanishes, its VIPs with it
			nd.crashed = true
			state[nd.name].vips = false
			trace = append(trace, "t="+fmtT(now)+" "+nd.name+": CRASH")
		case 1:
			b.apply(nd.in.Shutdown(now))
		case 2: // (re)start
			restart(b, nd, now, t)
		case 3:
			b.apply(nd.in.PriorityChange(now, uint8(1+rng.IntN(254))))
		case 4:
			b.apply(nd.in.Fault(now, true))
		case 5:
			b.apply(nd.in.Fault(now, false))
		case 6:
			nd.linkDown = !nd.linkDown
			trace = append(trace, fmt.Sprintf("t=%s %s: link down=%v", fmtT(now), nd.name, nd.linkDown))
		default: // let it run
		}
	}

	// Quiet: a lossless LAN, links up, faults cleared, some dead restarted,
	// at least one running instance.
	b.loss = 0
	for i, nd := range b.nodes {
		nd.linkDown = false
		if (nd.crashed || nd.in.State() == Stop || nd.in.State() == Init) && (rng.IntN(2) == 0 || i == len(b.nodes)-1 && len(b.running()) == 0) {
			restart(b, nd, b.now, t)
		}
		if !nd.crashed {
			b.apply(nd.in.Fault(b.now, false))
		}
	}
	trace = append(trace, "t="+fmtT(b.now)+" QUIET")
	// Convergence: a down interval (at most 3 intervals + 1 s of skew), a
	// preempt delay (at most 5 intervals), margin.
	b.runChecked(b.now.Add(20*interval+2*time.Second), fail)

	masters := b.masters()
	if len(masters) != 1 {
		var names []string
		for _, nd := range b.running() {
			names = append(names, nd.name)
		}
		fail("masters %v among %v", masters, names)
	}
	if preemptAll {
		// A backup does not preempt a master of equal priority (RFC 5798
		// §6.4.2 accepts "greater than or equal"), so any of the highest
		// priority may be master.
		var best uint8
		for _, nd := range b.running() {
			best = max(best, nd.in.Priority())
		}
		if m := b.node(masters[0]); m.in.Priority() != best {
			fail("master %s has priority %d, the highest is %d", m.name, m.in.Priority(), best)
		}
	}
}

// restart starts a node again: a fresh instance after a crash (a new
// process), Start after Shutdown.
func restart(b *bus, nd *node, now time.Time, t *testing.T) {
	if nd.crashed {
		in, err := NewInstance(nd.cfg)
		if err != nil {
			t.Fatal(err)
		}
		nd.in, nd.crashed = in, false
	}
	b.apply(nd.in.Start(now))
}

func (b *bus) addrUsed(a netip.Addr) bool {
	for _, n := range b.nodes {
		if n.cfg.LocalAddr == a {
			return true
		}
	}
	return false
}

// running returns the live nodes in BACKUP or MASTER.
func (b *bus) running() []*node {
	var r []*node
	for _, n := range b.nodes {
		if n.live() && n.in.running() {
			r = append(r, n)
		}
	}
	return r
}

// runChecked is run with a check that every tick moves the node's deadline
// forward and a bound on the number of steps.
func (b *bus) runChecked(until time.Time, fail func(string, ...any)) {
	for steps := 0; ; steps++ {
		n, when := b.next()
		if n == nil || when.After(until) {
			break
		}
		if steps > 1_000_000 {
			fail("more than a million steps before %s", fmtT(until))
		}
		if when.Before(b.now) {
			fail("%s: deadline %s in the past (now %s)", n.name, fmtT(when), fmtT(b.now))
		}
		b.now = when
		b.apply(n.in.Tick(b.now))
		if d := n.in.NextDeadline(); !d.IsZero() && !d.After(when) {
			fail("%s: deadline %s not after the tick at %s", n.name, fmtT(d), fmtT(when))
		}
	}
	if until.After(b.now) {
		b.now = until
	}
}
