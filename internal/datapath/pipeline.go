package datapath

import (
	"net/netip"
	"sync/atomic"

	"golvs/internal/addrset"
	"golvs/internal/engine"
	"golvs/internal/flow"
	"golvs/internal/forward"
	"golvs/internal/fwmark"
	"golvs/internal/header"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// BatchSize is the number of frames a link hands a worker at once: 32
// amortises the per-batch work (clock read, settings load, amortised
// expiry) to a few nanoseconds per frame while a batch of full-size
// buffers (32 x 2 KiB) still fits in L1/L2 cache.
const BatchSize = 32

// Frame is one received frame in its buffer, as a link hands it over.
type Frame struct {
	Buf forward.Buf
	// Ifindex is the interface the frame arrived on.
	Ifindex int
	// PartialCsum says the frame's transport checksum is a partial one
	// left for offload (PACKET_AUXDATA TP_STATUS_CSUMNOTREADY, a
	// virtio-net header's NEEDS_CSUM).
	PartialCsum bool
}

// Action is what the link does with a processed frame.
type Action uint8

const (
	// Drop: discard the frame; Result.Reason says why.
	Drop Action = iota
	// Transmit: send Frame.Buf's frame out of Result.Ifindex.
	Transmit
	// ToHost: hand the frame (possibly rewritten, for a local real
	// server) to the host's own stack, as if it had just arrived.
	ToHost
)

func (a Action) String() string {
	switch a {
	case Drop:
		return "drop"
	case Transmit:
		return "transmit"
	case ToHost:
		return "to-host"
	}
	return "action?"
}

// Result is the verdict on one frame.
type Result struct {
	Action  Action
	Ifindex int    // egress interface, with Transmit
	Reason  Reason // with Drop
}

// Config configures a Pipeline.
type Config struct {
	Engine     *engine.Engine
	View       *View
	Neighbours *Neighbours
	// NoPMTUDisc is the sysctl pmtu_disc=0: tunnelled IPv4 packets that
	// are too big are fragmented instead of answered with frag-needed.
	NoPMTUDisc bool
}

// Pipeline holds what the workers share. Safe for concurrent use.
type Pipeline struct {
	eng        *engine.Engine
	view       atomic.Pointer[View]
	neigh      *Neighbours
	noPMTUDisc bool
	ipID       atomic.Uint32 // IPv4 IDs of the headers the director writes
	// marks classifies packets to local addresses into firewall marks
	// for fwmark services (nil: none).
	marks atomic.Pointer[fwmark.Classifier]
	// deny holds the clients whose packets to local addresses are
	// dropped (nil: none).
	deny atomic.Pointer[addrset.Set]
}

// New returns a pipeline.
func New(cfg Config) *Pipeline {
	p := &Pipeline{eng: cfg.Engine, neigh: cfg.Neighbours, noPMTUDisc: cfg.NoPMTUDisc}
	if p.neigh == nil {
		p.neigh = NewNeighbours(nil, nil)
	}
	v := cfg.View
	if v == nil {
		v = NewView(nil, nil)
	}
	p.view.Store(v)
	return p
}

// SetView publishes a new picture of the host's interfaces and routes.
func (p *Pipeline) SetView(v *View) { p.view.Store(v) }

// SetMarks publishes the mark rules that classify packets for
// firewall-mark services (nil: no packet is marked). The data path takes
// packets before netfilter, so it evaluates the director's MARK rules
// itself (package fwmark).
func (p *Pipeline) SetMarks(c *fwmark.Classifier) {
	if c.Len() == 0 {
		c = nil
	}
	p.marks.Store(c)
}

// SetDeny publishes the deny list: packets from its addresses to the
// director's addresses are dropped (ReasonDenied), as the director's
// INPUT filter would drop them before IPVS saw them. nil: none.
func (p *Pipeline) SetDeny(s *addrset.Set) {
	if s.Len() == 0 {
		s = nil
	}
	p.deny.Store(s)
}

// View returns the current view.
func (p *Pipeline) View() *View { return p.view.Load() }

// Neighbours returns the neighbour view.
func (p *Pipeline) Neighbours() *Neighbours { return p.neigh }

// Worker processes batches of frames. It is owned by one goroutine.
type Worker struct {
	p  *Pipeline
	ew *engine.Worker
	v  *View // the view of the current batch
	// marks are the mark rules of the current batch; mp is the packet
	// they look at (a field, so that it does not escape per packet).
	marks *fwmark.Classifier
	mp    fwmark.Packet
	deny  *addrset.Set // the deny list of the current batch
	f     flow.Parsed
	pkt   engine.Packet
	tun   forward.Tunnel

	stats Counters
}

// NewWorker returns worker id (0-based; it selects the counter shards).
func (p *Pipeline) NewWorker(id int) *Worker {
	return &Worker{p: p, ew: p.eng.NewWorker(id)}
}

// Stats returns the worker's counters.
func (w *Worker) Stats() *Counters { return &w.stats }

// Process decides on a batch of frames: res[i] is the verdict on frames[i]
// (whose buffer may have been rewritten in place). len(res) must be at
// least len(frames).
func (w *Worker) Process(frames []Frame, res []Result) {
	w.ew.Begin()
	w.v = w.p.view.Load()
	w.marks = w.p.marks.Load()
	w.deny = w.p.deny.Load()
	for i := range frames {
		res[i] = w.one(&frames[i])
		w.stats.count(res[i])
	}
}

func drop(r Reason) Result { return Result{Action: Drop, Reason: r} }

var toHost = Result{Action: ToHost}

// one decides on one frame.
func (w *Worker) one(fr *Frame) Result {
	b := &fr.Buf
	f := &w.f
	frame := b.Frame()
	f.Decode(frame)
	if f.Reason != flow.ReasonNone {
		w.stats.parse[f.Reason].Add(1)
		// Let the host judge what it can still make sense of (the
		// kernel only drops in IPVS what IPVS would handle).
		if f.Reason == flow.ReasonShortEthernet || f.Reason == flow.ReasonBadARP {
			return toHost
		}
		return drop(ReasonMalformed)
	}
	if !f.Tuple.IsValid() {
		return toHost // ARP and other non-IP traffic
	}
	// Frames not unicast to this host are the host's business.
	eth := header.Ethernet(frame)
	if dst := eth.Destination(); dst[0]&1 != 0 {
		return toHost
	}
	ifc := w.v.Interface(fr.Ifindex)
	if ifc != nil && eth.Destination() != ifc.MAC {
		return toHost
	}
	dstLocal := w.v.IsLocal(f.Tuple.DstAddr())
	switch f.Tuple.Proto {
	case service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP:
	case header.ProtoICMPv4, header.ProtoICMPv6:
		if f.ICMPError && relevantICMP(f) {
			return w.icmp(fr, dstLocal)
		}
		return toHost
	default:
		return toHost
	}
	if f.IsFragment && !f.IsFirstFragment {
		// The kernel reassembles before IPVS; a non-first fragment
		// carries no ports to find its connection with.
		return drop(ReasonFragment)
	}
	if fr.PartialCsum {
		// A frame from a local sender (veth, a VM) may carry a partial
		// transport checksum left for offload. The frame leaves through a
		// raw socket that offloads nothing, so finish it now (the
		// kernel's skb_checksum_help); the rewrites are then ordinary.
		if r := forward.CompleteChecksum(&fr.Buf, f); r != forward.Done {
			return w.rewriteFail(r)
		}
		fr.PartialCsum = false
	}

	pk := &w.pkt
	*pk = engine.Packet{
		Proto:    f.Tuple.Proto,
		Src:      f.Tuple.SrcAddr(),
		Dst:      f.Tuple.DstAddr(),
		SrcPort:  f.Tuple.SrcPort,
		DstPort:  f.Tuple.DstPort,
		TCPFlags: f.TCPFlags,
		Len:      f.IPLen,
		Fragment: f.IsFragment && !f.IsFirstFragment,
	}
	if f.Tuple.Proto == service.ProtoSCTP {
		pk.TCPFlags = proto.SCTPEffectiveChunk(f.SCTPChunk, f.SCTPAbortBundled)
	}
	if dstLocal && w.deny != nil && w.deny.Contains(pk.Src) {
		return drop(ReasonDenied)
	}
	if dstLocal && w.marks != nil {
		// The mark the director's PREROUTING rules would give the
		// packet (IPVS looks fwmark services up by skb->mark).
		w.mp = fwmark.Packet{Proto: pk.Proto, Src: pk.Src, Dst: pk.Dst, SrcPort: pk.SrcPort, DstPort: pk.DstPort, HasPorts: !pk.Fragment}
		if ifc != nil {
			w.mp.InIface = ifc.Name
		}
		pk.Mark = w.marks.Classify(&w.mp)
	}
	var d engine.Decision
	if dstLocal {
		d = w.ew.In(pk)
	} else {
		d = w.ew.Out(pk)
	}
	switch d.Verdict {
	case engine.Pass:
		return toHost
	case engine.Drop:
		return drop(engineReason(d.Reason))
	case engine.Reject:
		return w.icmpError(fr, forward.PortUnreachable, 0, ReasonRejected)
	}
	if dstLocal {
		return w.request(fr, &d)
	}
	return w.reply(fr, &d)
}

// rewriteFail counts a failed rewrite and drops the frame.
func (w *Worker) rewriteFail(r forward.Result) Result {
	w.stats.rewrite[r].Add(1)
	return drop(ReasonRewrite)
}

// relevantICMP reports the ICMP errors IPVS handles as related to a
// connection: IPv4 destination unreachable, source quench and time
// exceeded; every ICMPv6 error.
func relevantICMP(f *flow.Parsed) bool {
	if f.Tuple.Family == flow.FamilyIPv6 {
		return f.ICMPType < 128
	}
	switch f.ICMPType {
	case 3, 4, 11:
		return true
	}
	return false
}

// request transmits a client's packet to its real server by the
// connection's method (ip_vs_{nat,dr,tunnel}_xmit, or the local stack).
func (w *Worker) request(fr *Frame, d *engine.Decision) Result {
	b, f := &fr.Buf, &w.f
	if w.v.IsLocal(d.DAddr) || d.Fwd == service.LocalNode {
		// The director is itself the real server: the local stack
		// takes the packet as sent, to the VIP, so that its replies
		// leave from the VIP. (The kernel would also map the port and
		// SNAT the replies in its LOCAL_OUT hook; GoLVS has no hook on
		// the host's output, so a local real server must listen on the
		// virtual port.)
		return toHost
	}
	switch d.Fwd {
	case service.Masq:
		rt, nh, ok := w.v.Lookup(d.DAddr)
		if !ok {
			return drop(ReasonNoRoute)
		}
		if r, ok := w.mtu(fr, rt, nil); !ok {
			return r
		}
		if r := forward.DecTTL(b, f); r != forward.Done {
			return w.ttl(fr, r)
		}
		if r := forward.DNAT(b, f, d.DAddr, d.DPort, fr.PartialCsum); r != forward.Done {
			return w.rewriteFail(r)
		}
		return w.toNextHop(b, rt, nh)
	case service.Route:
		rt, _, ok := w.v.Lookup(d.DAddr)
		if !ok {
			return drop(ReasonNoRoute)
		}
		if r, ok := w.mtu(fr, rt, nil); !ok {
			return r
		}
		if r := forward.DecTTL(b, f); r != forward.Done {
			return w.ttl(fr, r)
		}
		// The real server must be on-link: the frame goes to its MAC
		// whatever the route's gateway (FLOWI_FLAG_KNOWN_NH).
		return w.toNextHop(b, rt, d.DAddr)
	case service.Tunnel:
		rt, nh, ok := w.v.Lookup(d.DAddr)
		if !ok {
			return drop(ReasonNoRoute)
		}
		src := rt.Src
		if !src.IsValid() || src.Is4() != d.DAddr.Is4() {
			src = w.v.SourceFor(d.DAddr)
		}
		t := &w.tun
		*t = forward.Tunnel{Src: src, Dst: d.DAddr, NoPMTUDisc: w.p.noPMTUDisc}
		if d.Dest != nil {
			c := d.Dest.Config()
			t.Type = forward.TunnelType(c.TunType)
			t.Port = c.TunPort
			t.Csum = c.TunFlags&service.TunCsum != 0
		}
		if r, ok := w.mtu(fr, rt, t); !ok {
			return r
		}
		if r := forward.DecTTL(b, f); r != forward.Done {
			return w.ttl(fr, r)
		}
		hash := uint32(f.Tuple.SrcPort)<<16 | uint32(f.Tuple.DstPort)
		if r := forward.Encap(b, f, t, uint16(w.p.ipID.Add(1)), hash); r != forward.Done {
			return w.rewriteFail(r)
		}
		return w.toNextHop(b, rt, nh)
	}
	return drop(ReasonBadMethod)
}

// reply forwards a real server's packet to its client: NAT puts the
// virtual address back (SNAT). A reply of another method that happens to
// cross the director was counted and its state stepped by the engine, and
// is left to the host's routing, as the kernel's ip_vs_out accepts it.
func (w *Worker) reply(fr *Frame, d *engine.Decision) Result {
	if d.Fwd != service.Masq {
		return toHost
	}
	b, f := &fr.Buf, &w.f
	rt, nh, ok := w.v.Lookup(f.Tuple.DstAddr())
	if !ok {
		return drop(ReasonNoRoute)
	}
	if r, ok := w.mtu(fr, rt, nil); !ok {
		return r
	}
	if r := forward.DecTTL(b, f); r != forward.Done {
		return w.ttl(fr, r)
	}
	if r := forward.SNAT(b, f, d.VAddr, d.VPort, fr.PartialCsum); r != forward.Done {
		return w.rewriteFail(r)
	}
	return w.toNextHop(b, rt, nh)
}

// mtu applies the MTU rules before a packet leaves by route rt (t is the
// tunnel for TUN). ok means "go on": the packet may leave. Otherwise r is
// what became of it: an ICMP error sent in its place (a Transmit of the
// error, which must not be rewritten further), or a drop.
func (w *Worker) mtu(fr *Frame, rt *Route, t *forward.Tunnel) (r Result, ok bool) {
	v, mtu := forward.CheckMTU(&w.f, w.v.mtu(rt), t)
	switch v {
	case forward.MTUFits, forward.MTUFragment:
		// MTUFragment: GoLVS does not fragment; the frame goes out
		// whole and the link drops it if it truly cannot carry it.
		// Counted, so that a misconfigured MTU shows.
		if v == forward.MTUFragment {
			w.stats.fragNeededUnsent.Add(1)
		}
		return Result{}, true
	case forward.MTUFragNeeded:
		return w.icmpError(fr, forward.FragNeeded, mtu, ReasonFragNeeded), false
	case forward.MTUTunnelTooSmall:
		return drop(ReasonTunnelMTU), false
	}
	return drop(ReasonTooBig), false
}

// ttl answers a packet whose TTL ran out with ICMP time exceeded.
func (w *Worker) ttl(fr *Frame, r forward.Result) Result {
	if r != forward.TTLExpired {
		return w.rewriteFail(r)
	}
	return w.icmpError(fr, forward.TimeExceeded, 0, ReasonTTLExpired)
}

// icmpError turns the frame into an ICMP error of kind about it, sent back
// to its source, and transmits that. The source of the error is the
// packet's destination if it is the director's (the VIP, as the kernel's
// icmp_send picks), else the director's address towards the client. why
// is counted as the reason the original packet did not go on.
func (w *Worker) icmpError(fr *Frame, kind forward.ICMPKind, mtu int, why Reason) Result {
	b, f := &fr.Buf, &w.f
	to := f.Tuple.SrcAddr()
	src := f.Tuple.DstAddr()
	if !w.v.IsLocal(src) {
		src = w.v.SourceFor(to)
	}
	rt, nh, ok := w.v.Lookup(to)
	if !ok || !src.IsValid() {
		return drop(ReasonNoRoute)
	}
	if r := forward.ICMPError(b, f, kind, mtu, src, uint16(w.p.ipID.Add(1))); r != forward.Done {
		return drop(why)
	}
	// The original packet is counted under why; the error sent in its
	// place as what becomes of it (transmitted, or parked for a
	// neighbour).
	w.stats.drops[why].Add(1)
	return w.toNextHop(b, rt, nh)
}

// toNextHop addresses the frame to the next hop on the route's interface.
func (w *Worker) toNextHop(b *forward.Buf, rt *Route, nh netip.Addr) Result {
	ifc := w.v.Interface(rt.Ifindex)
	if ifc == nil {
		return drop(ReasonNoRoute)
	}
	mac, ok := w.p.neigh.Lookup(rt.Ifindex, nh)
	if r := forward.SetMACs(b, mac, ifc.MAC); r != forward.Done {
		return w.rewriteFail(r)
	}
	if !ok {
		if w.p.neigh.Park(rt.Ifindex, nh, b.Frame()) {
			return drop(ReasonNeighbourParked)
		}
		return drop(ReasonNeighbour)
	}
	return Result{Action: Transmit, Ifindex: rt.Ifindex}
}

// icmp handles an ICMP error that may be about a connection
// (ip_vs_in_icmp towards a real server, ip_vs_out_icmp towards a client).
func (w *Worker) icmp(fr *Frame, dstLocal bool) Result {
	b, f := &fr.Buf, &w.f
	in := &f.Inner
	if in.Reason != flow.ReasonNone || !in.HasPorts {
		return toHost
	}
	switch in.Tuple.Proto {
	case service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP:
	default:
		return toHost
	}
	// The quoted packet went the other way: turn it around.
	t := in.Tuple.Reverse()
	pk := &w.pkt
	*pk = engine.Packet{Proto: t.Proto, Src: t.SrcAddr(), Dst: t.DstAddr(), SrcPort: t.SrcPort, DstPort: t.DstPort}
	var d engine.Decision
	if dstLocal {
		// An error about a packet the director sent to a client
		// (src VIP): find the connection as a client packet.
		d = w.ew.InRelated(pk, f.IPLen)
	} else {
		// An error from a real server about a client's packet.
		d = w.ew.OutRelated(pk, f.IPLen)
	}
	if d.Verdict != engine.Forward {
		return toHost
	}
	if dstLocal {
		if d.Fwd != service.Masq {
			// DR, TUN: forward the error unchanged by the method.
			return w.request(fr, &d)
		}
		rt, nh, ok := w.v.Lookup(d.DAddr)
		if !ok {
			return drop(ReasonNoRoute)
		}
		if r := forward.DecTTL(b, f); r != forward.Done {
			return drop(ReasonTTLExpired) // no error about an error
		}
		if r := forward.NATICMPIn(b, f, d.DAddr, d.DPort); r != forward.Done {
			return w.rewriteFail(r)
		}
		return w.toNextHop(b, rt, nh)
	}
	rt, nh, ok := w.v.Lookup(f.Tuple.DstAddr())
	if !ok {
		return drop(ReasonNoRoute)
	}
	if r := forward.DecTTL(b, f); r != forward.Done {
		return drop(ReasonTTLExpired)
	}
	if d.Fwd == service.Masq {
		if r := forward.NATICMPOut(b, f, d.VAddr, d.VPort); r != forward.Done {
			return w.rewriteFail(r)
		}
	}
	return w.toNextHop(b, rt, nh)
}
