package lvslab

import (
	"container/heap"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golvs/internal/clock"
)

// DefaultMaxSteps bounds one Drain: far more frames than any lab scenario
// needs (a 1 MB TCP transfer is about 1,500 frames), few enough that a
// forwarding or ARP loop is reported within a second.
const DefaultMaxSteps = 100_000

// Config configures a Network. The zero value is a valid configuration.
type Config struct {
	// Seed seeds every random choice (TCP ISNs, ephemeral ports, IP IDs).
	// Each host draws from its own source, seeded from Seed and its name,
	// so adding a host does not perturb the others.
	Seed uint64

	// Clock is the time the network runs on; nil means a new manual clock
	// at 0. Share it with the code under test (connection expiry) and move
	// it only through Network.Advance, which fires the timers due.
	Clock *clock.Manual

	// MaxSteps bounds the frames one Drain or Advance may deliver between
	// quiet points; 0 means DefaultMaxSteps. Exceeding it calls Fatalf.
	MaxSteps int

	// Trace, when set, receives one line per delivered frame and per drop.
	Trace io.Writer

	// PCAPDir, when set, makes every segment write DIR/<segment>.pcap.
	// Network.Close closes the files.
	PCAPDir string

	// OnDrop, when set, is called for every frame or packet dropped by a
	// host or a segment's drop filter. Test helpers fail the test for the
	// reasons whose Corrupt method is true. It is called from the goroutine
	// that drives the network (or that called Host.Transmit).
	OnDrop func(Drop)

	// Fatalf reports an unrecoverable condition (Drain exceeding MaxSteps);
	// nil means panic. Tests pass t.Fatalf.
	Fatalf func(format string, args ...any)
}

// Network is a simulated L2/L3 network: segments, hosts, a clock and a
// queue of frames in flight.
//
// Concurrency: a Network and everything on it is driven by one goroutine
// (Step, Drain, Advance and all Host, socket and hook calls, which are made
// synchronously during delivery). Host.Transmit and Host.Inject only queue
// frames and may also be called from other goroutines, e.g. a data-path
// worker.
type Network struct {
	cfg      Config
	clk      *clock.Manual
	maxSteps int

	// Set up before the run, then read-only.
	segments []*Segment
	hosts    []*Host
	nextMAC  uint32
	files    []*os.File

	// mu guards queue, the frames and local deliveries in flight.
	mu    sync.Mutex
	queue []event
	head  int

	// reportMu serialises OnDrop and Trace, which Transmit may reach from
	// another goroutine.
	reportMu sync.Mutex

	// Owned by the driving goroutine.
	rng      *rand.Rand
	timers   timerHeap
	timerSeq uint64
	steps    uint64
}

// event is a unit of delivery: a frame on a segment, or a frame handed to a
// host's own stack (Host.Inject, loopback traffic).
type event struct {
	seg   *Segment   // frame on a segment, sent from the interface from
	from  *Interface // sending interface (nil for Inject)
	host  *Host      // local delivery to host's stack, on ifindex
	ifidx int
	frame []byte
}

// New returns an empty network.
func New(cfg Config) *Network {
	n := &Network{cfg: cfg, clk: cfg.Clock, maxSteps: cfg.MaxSteps}
	if n.clk == nil {
		n.clk = clock.NewManual(0)
	}
	if n.maxSteps <= 0 {
		n.maxSteps = DefaultMaxSteps
	}
	return n
}

// Clock returns the network's clock.
func (n *Network) Clock() *clock.Manual { return n.clk }

// Now returns the network's current time.
func (n *Network) Now() time.Duration { return time.Duration(n.clk.Nanotime()) }

// Hosts returns the hosts in creation order.
func (n *Network) Hosts() []*Host { return n.hosts }

// Segments returns the segments in creation order.
func (n *Network) Segments() []*Segment { return n.segments }

// Host returns the host called name, or nil.
func (n *Network) Host(name string) *Host {
	for _, h := range n.hosts {
		if h.name == name {
			return h
		}
	}
	return nil
}

// NewSegment adds an L2 segment. Names must be unique; they name the pcap
// files and trace lines.
func (n *Network) NewSegment(name string) *Segment {
	for _, s := range n.segments {
		if s.name == name {
			panic(fmt.Sprintf("lvslab: duplicate segment %q", name))
		}
	}
	s := &Segment{n: n, name: name, fdb: make(map[MAC]*Interface)}
	n.segments = append(n.segments, s)
	if n.cfg.PCAPDir != "" {
		f, err := os.Create(filepath.Join(n.cfg.PCAPDir, name+".pcap"))
		if err != nil {
			n.fatalf("lvslab: pcap for segment %s: %v", name, err)
			return s
		}
		n.files = append(n.files, f)
		if err := s.SetPCAP(f); err != nil {
			n.fatalf("lvslab: pcap for segment %s: %v", name, err)
		}
	}
	return s
}

// NewHost adds a host with a loopback interface (ifindex 1, 127.0.0.1/8 and
// ::1/128) and no other interfaces. Names must be unique.
func (n *Network) NewHost(name string, cfg HostConfig) *Host {
	if n.Host(name) != nil {
		panic(fmt.Sprintf("lvslab: duplicate host %q", name))
	}
	h := newHost(n, name, cfg, rand.New(rand.NewPCG(n.cfg.Seed, nameHash(name))))
	n.hosts = append(n.hosts, h)
	return h
}

func nameHash(s string) uint64 {
	f := fnv.New64a()
	f.Write([]byte(s))
	return f.Sum64()
}

// allocMAC returns the next locally administered unicast address,
// 02:00:00:xx:xx:xx (IEEE 802 §8.2: U/L bit set, I/G bit clear).
func (n *Network) allocMAC() MAC {
	n.nextMAC++
	v := n.nextMAC
	return MAC{0x02, 0x00, 0x00, byte(v >> 16), byte(v >> 8), byte(v)}
}

// Close closes the pcap files opened for Config.PCAPDir.
func (n *Network) Close() error {
	var first error
	for _, f := range n.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	n.files = nil
	return first
}

func (n *Network) fatalf(format string, args ...any) {
	if n.cfg.Fatalf != nil {
		n.cfg.Fatalf(format, args...)
		return
	}
	panic(fmt.Sprintf(format, args...))
}

func (n *Network) enqueue(ev event) {
	n.mu.Lock()
	n.queue = append(n.queue, ev)
	n.mu.Unlock()
}

func (n *Network) dequeue() (event, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.head == len(n.queue) {
		n.queue, n.head = n.queue[:0], 0
		return event{}, false
	}
	ev := n.queue[n.head]
	n.queue[n.head] = event{}
	n.head++
	// Reclaim the consumed front once it is half the slice.
	if n.head > 64 && n.head*2 > len(n.queue) {
		m := copy(n.queue, n.queue[n.head:])
		clear(n.queue[m:])
		n.queue, n.head = n.queue[:m], 0
	}
	return ev, true
}

// Pending returns the number of frames waiting for delivery.
func (n *Network) Pending() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.queue) - n.head
}

// Steps returns how many deliveries the network has made.
func (n *Network) Steps() uint64 { return n.steps }

// Step delivers the oldest queued frame (to every port it reaches on its
// segment, or to a host's stack) and reports whether there was one.
func (n *Network) Step() bool {
	ev, ok := n.dequeue()
	if !ok {
		return false
	}
	n.steps++
	if ev.seg != nil {
		ev.seg.deliver(ev.from, ev.frame)
	} else {
		n.traceLocal(ev.host, ev.ifidx, ev.frame)
		ev.host.stackInput(ev.ifidx, ev.frame)
	}
	return true
}

// Drain delivers frames until none is queued and returns how many it
// delivered. More than MaxSteps deliveries means the network never goes
// quiet (a forwarding loop): Drain reports the last frames through Fatalf.
func (n *Network) Drain() int {
	steps := 0
	for n.Step() {
		steps++
		if steps >= n.maxSteps {
			n.loopDetected(steps)
			return steps
		}
	}
	return steps
}

// loopDetected reports a network that does not go quiet, with the next few
// frames as evidence, and discards the queue.
func (n *Network) loopDetected(steps int) {
	var b strings.Builder
	for i := 0; i < 10; i++ {
		ev, ok := n.dequeue()
		if !ok {
			break
		}
		if ev.seg != nil {
			fmt.Fprintf(&b, "\n  %s %s: %s", ev.seg.name, ev.from.fullName(), Summarize(ev.frame))
		} else {
			fmt.Fprintf(&b, "\n  %s local: %s", ev.host.name, Summarize(ev.frame))
		}
	}
	n.mu.Lock()
	clear(n.queue)
	n.queue, n.head = n.queue[:0], 0
	n.mu.Unlock()
	n.fatalf("lvslab: network not quiet after %d deliveries (a loop?); next frames:%s", steps, b.String())
}

// Advance drains the network, then moves the clock forward by d, firing
// each timer that falls due at its deadline (the clock is set to the
// deadline first) and draining after each, in deadline order (ties in the
// order the timers were set).
func (n *Network) Advance(d time.Duration) {
	n.Drain()
	target := n.clk.Nanotime() + int64(d)
	fired := 0
	for len(n.timers) > 0 && n.timers[0].when <= target {
		t := heap.Pop(&n.timers).(*timer)
		n.clk.Set(time.Duration(t.when))
		t.fn()
		n.Drain()
		fired++
		if fired >= n.maxSteps {
			n.fatalf("lvslab: %d timers fired in one Advance (a timer re-arming itself?)", fired)
			return
		}
	}
	n.clk.Set(time.Duration(target))
}

// AdvanceUntil advances the clock in steps of step until cond holds,
// checking it after every step (and once before the first), and gives up
// after max. It reports whether cond held.
func (n *Network) AdvanceUntil(cond func() bool, step, max time.Duration) bool {
	n.Drain()
	for waited := time.Duration(0); !cond(); waited += step {
		if waited >= max {
			return false
		}
		n.Advance(step)
	}
	return true
}

// Rand returns a source seeded from Config.Seed for the test's own random
// choices (a lossy drop filter, traffic mixes), so they replay with the
// seed too. The hosts draw from their own sources.
func (n *Network) Rand() *rand.Rand {
	if n.rng == nil {
		// The second PCG word tells this stream apart from the hosts',
		// which use a hash of the host name.
		n.rng = rand.New(rand.NewPCG(n.cfg.Seed, 0x6c76736c6162)) // "lvslab"
	}
	return n.rng
}

// NextTimer returns how long until the earliest pending timer, and false if
// there is none.
func (n *Network) NextTimer() (time.Duration, bool) {
	if len(n.timers) == 0 {
		return 0, false
	}
	return time.Duration(n.timers[0].when - n.clk.Nanotime()), true
}

// timer is a callback due at an absolute time on the network's clock.
type timer struct {
	when  int64
	seq   uint64 // tie-break: order of arming
	fn    func()
	index int // position in the heap; -1 when not armed
}

// afterFunc arms a new timer.
func (n *Network) afterFunc(d time.Duration, fn func()) *timer {
	t := &timer{fn: fn, index: -1}
	n.resetTimer(t, d)
	return t
}

// resetTimer (re)arms t to fire d from now.
func (n *Network) resetTimer(t *timer, d time.Duration) {
	n.stopTimer(t)
	n.timerSeq++
	t.when = n.clk.Nanotime() + int64(d)
	t.seq = n.timerSeq
	heap.Push(&n.timers, t)
}

// stopTimer disarms t; a nil or disarmed t is fine.
func (n *Network) stopTimer(t *timer) {
	if t != nil && t.index >= 0 {
		heap.Remove(&n.timers, t.index)
	}
}

func (t *timer) armed() bool { return t != nil && t.index >= 0 }

type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].when != h[j].when {
		return h[i].when < h[j].when
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}

// DropReason says why a frame or packet was dropped.
type DropReason uint8

// Drop reasons. The Corrupt ones can only come from a sender that built a
// bad packet: in the lab that is a bug in the code under test.
const (
	_                    DropReason = iota
	DropMalformed                   // truncated or inconsistent headers
	DropBadIPChecksum               // IPv4 header checksum wrong
	DropBadL4Checksum               // TCP, UDP, ICMP or ICMPv6 checksum wrong
	DropUDPZeroChecksum             // IPv6 UDP with checksum 0 (RFC 8200 §8.1)
	DropOtherHost                   // Ethernet destination is not this interface
	DropUnknownEtherType            // neither ARP, IPv4 nor IPv6
	DropNotLocal                    // not for this host, and not forwardable
	DropNoRoute                     // no route to the destination
	DropTTLExceeded                 // TTL or hop limit ran out while forwarding
	DropFragNeeded                  // forwarding a DF packet over a smaller MTU
	DropTooBig                      // frame larger than the sending interface's MTU
	DropNoNeighbour                 // ARP / neighbour discovery failed, or its queue overflowed
	DropNoSocket                    // no UDP socket, TCP connection or listener
	DropNoProto                     // IP protocol not handled (e.g. IPIP without Decap)
	DropFragment                    // fragment not reassembled (timeout, overlap, IPv6)
	DropFilter                      // the segment's drop filter
	DropNoInterface                 // Transmit or Inject on a bad ifindex
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropMalformed:        "malformed",
	DropBadIPChecksum:    "bad-ip-checksum",
	DropBadL4Checksum:    "bad-l4-checksum",
	DropUDPZeroChecksum:  "udp-zero-checksum",
	DropOtherHost:        "other-host",
	DropUnknownEtherType: "unknown-ethertype",
	DropNotLocal:         "not-local",
	DropNoRoute:          "no-route",
	DropTTLExceeded:      "ttl-exceeded",
	DropFragNeeded:       "frag-needed",
	DropTooBig:           "too-big",
	DropNoNeighbour:      "no-neighbour",
	DropNoSocket:         "no-socket",
	DropNoProto:          "no-proto",
	DropFragment:         "fragment",
	DropFilter:           "filter",
	DropNoInterface:      "no-interface",
}

// String returns the reason's short name.
func (r DropReason) String() string {
	if r < numDropReasons && dropNames[r] != "" {
		return dropNames[r]
	}
	return fmt.Sprintf("DropReason(%d)", uint8(r))
}

// Corrupt reports whether r means the packet itself was bad (a checksum or
// a header), as opposed to a network condition.
func (r DropReason) Corrupt() bool {
	switch r {
	case DropMalformed, DropBadIPChecksum, DropBadL4Checksum, DropUDPZeroChecksum:
		return true
	}
	return false
}

// Drop describes one dropped frame or packet.
type Drop struct {
	Host    string // the host that dropped it; "" for a segment's filter
	Segment string // the segment it was on, if known
	IfIndex int    // the host's interface, if known
	Reason  DropReason
	// Packet is the frame dropped, or the IP packet if IP is set; valid
	// only during the call to OnDrop.
	Packet []byte
	IP     bool
}

// String formats d for logs.
func (d Drop) String() string {
	where := d.Host
	if where == "" {
		where = "segment " + d.Segment
	}
	what := ""
	if d.IP {
		what = SummarizeIP(d.Packet)
	} else {
		what = Summarize(d.Packet)
	}
	return fmt.Sprintf("%s dropped (%v): %s", where, d.Reason, what)
}

// report hands a drop to the trace and OnDrop.
func (n *Network) report(d Drop) {
	if n.cfg.OnDrop == nil && n.cfg.Trace == nil {
		return
	}
	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	if n.cfg.Trace != nil && d.Reason != DropOtherHost {
		fmt.Fprintf(n.cfg.Trace, "%s   drop %s\n", fmtTime(n.Now()), d)
	}
	if n.cfg.OnDrop != nil {
		n.cfg.OnDrop(d)
	}
}

// trace writes one line for a delivered frame.
func (n *Network) trace(seg *Segment, from *Interface, frame []byte, note string) {
	if n.cfg.Trace == nil {
		return
	}
	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	fmt.Fprintf(n.cfg.Trace, "%s %s %s: %s%s\n", fmtTime(n.Now()), seg.name, from.fullName(), Summarize(frame), note)
}

// traceLocal writes one line for a frame handed to a host's own stack
// (Inject, or loopback traffic).
func (n *Network) traceLocal(h *Host, ifindex int, frame []byte) {
	if n.cfg.Trace == nil {
		return
	}
	name := fmt.Sprintf("ifindex %d", ifindex)
	if ifc := h.Interface(ifindex); ifc != nil {
		name = ifc.name
	}
	what := ""
	if len(frame) >= ethHdrLen {
		what = SummarizeIP(frame[ethHdrLen:])
		if ifindex != loIndex {
			what = Summarize(frame)
		}
	}
	n.reportMu.Lock()
	defer n.reportMu.Unlock()
	fmt.Fprintf(n.cfg.Trace, "%s %s/%s (to stack): %s\n", fmtTime(n.Now()), h.name, name, what)
}

// fmtTime formats a network time as seconds with microseconds.
func fmtTime(d time.Duration) string {
	return fmt.Sprintf("%4d.%06d", d/time.Second, (d%time.Second)/time.Microsecond)
}
