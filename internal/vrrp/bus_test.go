package vrrp

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// epoch is the fake clock's zero: transcripts and the simulation count
// time from it.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fmtT formats a time as seconds since epoch, exactly ("3.609375").
func fmtT(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return fmtD(t.Sub(epoch))
}

// fmtD formats a duration as exact decimal seconds.
func fmtD(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	s := fmt.Sprintf("%s%d", sign, d/time.Second)
	if frac := d % time.Second; frac != 0 {
		s += strings.TrimRight(fmt.Sprintf(".%09d", frac), "0")
	}
	return s
}

// node is one instance on the fake bus.
type node struct {
	name     string
	cfg      Config
	in       *Instance
	crashed  bool      // gone silently: neither ticked nor delivered to
	linkDown bool      // cut off the bus (split brain) but running
	masterAt time.Time // last BecomeMaster
}

// bus is a fake LAN: every SendAdvert is encoded with the sender's codec,
// delivered at once (in FIFO order) to every other node of the same VRID
// and family, decoded with the receiver's codec and stepped. Loss drops a
// delivery with the given probability. Everything is deterministic.
type bus struct {
	nodes  []*node
	groups map[string]*Group
	now    time.Time
	loss   float64
	rng    *rand.Rand
	log    func(now time.Time, line string) // every action and discard
	// observe, if set, also sees every action (log belongs to the
	// transcript runner).
	observe func(now time.Time, a Action)
	buf     []byte
}

func newBus(seed uint64) *bus {
	return &bus{groups: map[string]*Group{}, now: epoch, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (b *bus) node(name string) *node {
	for _, n := range b.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// live reports whether n takes part: started, not crashed.
func (n *node) live() bool { return !n.crashed && n.in.State() != Init }

type delivery struct {
	from *node
	adv  Advert
}

// apply logs the actions of one step, records masters and delivers adverts.
func (b *bus) apply(acts []Action) {
	var queue []delivery
	b.record(acts, &queue)
	for len(queue) > 0 {
		d := queue[0]
		queue = queue[1:]
		for _, n := range b.nodes {
			if n == d.from || !n.live() || n.linkDown || n.cfg.VRID != d.adv.VRID || FamilyOf(n.cfg.LocalAddr) != d.adv.Family {
				continue
			}
			if b.loss > 0 && b.rng.Float64() < b.loss {
				continue
			}
			src := d.from.in.Config().LocalAddr
			dst := MulticastIPv4
			if d.adv.Family == IPv6 {
				dst = MulticastIPv6
			}
			b.buf = d.from.in.Codec().Append(b.buf[:0], d.adv, src, dst)
			adv, err := n.in.Codec().Decode(b.buf, d.adv.Family, src, dst)
			var acts []Action
			if err == nil {
				acts, err = n.in.Advert(b.now, src, adv)
			}
			if err != nil {
				if err != ErrInactive {
					b.logf("%s: discard from %s: %v", n.name, d.from.name, err)
				}
				continue
			}
			b.record(acts, &queue)
		}
	}
}

func (b *bus) record(acts []Action, queue *[]delivery) {
	for _, a := range acts {
		if b.log != nil {
			b.log(b.now, a.String())
		}
		if b.observe != nil {
			b.observe(b.now, a)
		}
		if a.Group != "" {
			continue
		}
		n := b.node(a.Instance)
		switch a.Kind {
		case BecomeMaster:
			n.masterAt = b.now
		case SendAdvert:
			if !n.linkDown {
				*queue = append(*queue, delivery{from: n, adv: n.in.Build(a.Priority)})
			}
		}
	}
}

func (b *bus) logf(format string, args ...any) {
	if b.log != nil {
		b.log(b.now, fmt.Sprintf(format, args...))
	}
}

// next returns the live node with the earliest deadline (the first declared
// on ties) and that deadline.
func (b *bus) next() (*node, time.Time) {
	var best *node
	var when time.Time
	for _, n := range b.nodes {
		if !n.live() {
			continue
		}
		if t := n.in.NextDeadline(); !t.IsZero() && (best == nil || t.Before(when)) {
			best, when = n, t
		}
	}
	return best, when
}

// run ticks the nodes at their deadlines up to until (inclusive), then sets
// the clock to until.
func (b *bus) run(until time.Time) {
	for {
		n, when := b.next()
		if n == nil || when.After(until) {
			break
		}
		if when.Before(b.now) {
			when = b.now // a deadline left in the past by a manual step
		}
		b.now = when
		b.apply(n.in.Tick(b.now))
	}
	if until.After(b.now) {
		b.now = until
	}
}

// masters returns the names of the live nodes in MASTER.
func (b *bus) masters() []string {
	var m []string
	for _, n := range b.nodes {
		if n.live() && n.in.State() == Master {
			m = append(m, n.name)
		}
	}
	return m
}
