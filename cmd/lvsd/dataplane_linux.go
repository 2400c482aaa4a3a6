package main

// The director's data plane on AF_PACKET: the wiring of hostnet (the
// host's view, neighbours and ingress rule), link/afpacket (the rings and
// their filter) and datapath (the pipeline over the engine), following the
// control plane's services.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"golvs/internal/control"
	"golvs/internal/datapath"
	"golvs/internal/engine"
	"golvs/internal/header"
	"golvs/internal/hostnet"
	"golvs/internal/link"
	"golvs/internal/link/afpacket"
	"golvs/internal/service"
	"golvs/internal/web"
)

const (
	// maxDefaultQueues caps the default number of queues (data-path
	// workers), which is GOMAXPROCS: each queue maps a 16 MiB receive
	// ring per interface (afpacket's default geometry), so a director
	// with 4 interfaces on a 64-core machine would pin 4 GiB for
	// workers the traffic of one director rarely needs; 2 is what the
	// machines this was measured on have (feasibility.md: 2 cores).
	// More are asked for with dataPlaneConfig.Queues.
	maxDefaultQueues = 2

	// retryInterval is how long the data plane waits before it applies
	// the filter and ingress rule again after a failure (nftables
	// refusing a transaction, a socket option failing): long enough not
	// to spin on a persistent error, short enough that a transient one
	// costs little traffic.
	retryInterval = time.Second
)

// dataPlaneQueues returns the number of queues for a configured count n
// (0: the default, min(GOMAXPROCS, maxDefaultQueues)). The control
// plane's stats.Counters should have at least that many shards
// (control.Config.StatsShards): worker i adds to shard i.
func dataPlaneQueues(n int) int {
	if n > 0 {
		return n
	}
	return max(1, min(runtime.GOMAXPROCS(0), maxDefaultQueues))
}

// afPlane is a running AF_PACKET data plane. The fields are set by
// startAFPacket before any goroutine starts and not changed after.
type afPlane struct {
	log    *slog.Logger
	ctl    *control.Control
	ifaces []string

	host    *hostnet.Host
	ingress *hostnet.Ingress
	neigh   *hostnet.NeighSync
	view    *hostnet.ViewWatcher
	pipe    *datapath.Pipeline
	lnk     atomic.Pointer[afpacket.Link] // set once opened; read by the neighbours' send
	workers []*datapath.Worker

	kick     chan struct{} // the host's view changed (buffered, 1)
	stop     chan struct{} // closed by halt: the goroutines end
	haltOnce sync.Once
	wg       sync.WaitGroup // the workers, follow, and the ctx watcher

	parkedSendErrors atomic.Uint64 // parked frames the link refused

	// marks are the mark rules for firewall-mark services (set by
	// startAFPacket, then by watchMarks; read by follow).
	marks atomic.Pointer[markState]
	// markLogged are the mark messages logged (logMarks), so that each
	// is logged once while it holds.
	markLogMu  sync.Mutex
	markLogged map[string]bool
	denySets   []string // --deny-set, for the log

	// Owned by follow (startAFPacket before it starts).
	applied   planeRules
	lastErr   string
	wasCoarse bool

	// followIfaces: --interfaces all, so the link follows the set of
	// eligible interfaces (relink). queues is the number of workers.
	followIfaces bool
	queues       int
	// wmu guards the workers' generation: wstop stops the workers of
	// the current link (closed by relink and by shutdown), wwg waits for
	// them; oldStats adds up the counters of links replaced by relink.
	wmu      sync.Mutex
	wstop    chan struct{}
	wwg      sync.WaitGroup
	oldStats afpacket.Stats

	// batches is the distribution of frames per batch, over all
	// workers (an atomic add per batch).
	batches *web.Histogram
}

// startAFPacket starts the data plane on cfg.Interfaces and returns its
// stop function (see startDataPlane). Order: the host (netlink, in the
// namespace lvsd runs in), a stale ingress table removed, neighbours and
// pipeline, the host's view, the link with the services' filter, the
// ingress rule, then one worker per queue and the goroutine that follows
// the configuration. Anything that fails undoes what was done.
func startAFPacket(ctx context.Context, cfg dataPlaneConfig, queues int, eng *engine.Engine, ctl *control.Control, log *slog.Logger) (_ *afPlane, err error) {
	p := &afPlane{log: log, ctl: ctl, kick: make(chan struct{}, 1), stop: make(chan struct{}),
		followIfaces: cfg.Interfaces == "" || cfg.Interfaces == allInterfaces, queues: queues,
		batches: web.NewHistogram(web.BatchSizeBuckets())}
	var undo []func() error
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if p.host, err = hostnet.Open(netns.None()); err != nil {
		return nil, err
	}
	undo = append(undo, p.host.Close)
	if p.ifaces, err = p.interfaces(cfg.Interfaces); err != nil {
		return nil, err
	}
	if removed, err := p.host.RemoveStaleIngress(hostnet.DefaultTable); err != nil {
		return nil, err
	} else if removed {
		log.Warn("removed the ingress table a previous lvsd left (killed without cleaning up)", "table", hostnet.DefaultTable)
	}

	p.neigh, err = p.host.SyncNeighbours(hostnet.NeighConfig{Send: p.sendParked, Logger: log})
	if err != nil {
		return nil, err
	}
	undo = append(undo, p.neigh.Close)
	p.pipe = datapath.New(datapath.Config{Engine: eng, Neighbours: p.neigh.Neighbours()})
	// With --interfaces all the view follows every eligible interface
	// (nil), and the link follows the view (relink).
	viewIfaces := p.ifaces
	if p.followIfaces {
		viewIfaces = nil
	}
	p.view, err = p.host.WatchView(hostnet.ViewConfig{Interfaces: viewIfaces, Logger: log}, func(v *datapath.View) {
		p.pipe.SetView(v)
		select {
		case p.kick <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return nil, err
	}
	undo = append(undo, p.view.Close)

	// The mark rules (a bad rules file stops the start here).
	fileRules, err := loadMarkFile(cfg.MarkRules)
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.DenySets {
		p.denySets = append(p.denySets, n.String())
	}
	ms, fileRules := p.readMarks(cfg, fileRules)
	p.setMarks(ms)
	p.logDeny(ms)

	// The configuration as it is now; follow applies later changes.
	changed := ctl.Changed()
	r := buildRules(ctl.Snapshot(), ctl.Trash(), localAddrs(p.view.Snapshot()), p.marks.Load())
	f := r.filter()
	l, err := afpacket.Open(afpacket.Config{Interfaces: p.ifaces, Queues: queues, Filter: &f, Reinject: true})
	if err != nil {
		return nil, err
	}
	p.lnk.Store(l)
	undo = append(undo, l.Close)
	if p.ingress, err = p.host.OpenIngress(hostnet.DefaultTable); err != nil {
		return nil, err
	}
	undo = append(undo, p.ingress.Close)
	if err := p.ingress.Apply(r.ingress(p.ifaces)); err != nil {
		return nil, err
	}
	p.applied = r
	p.logRules(r, l.Coarse())

	for i := range queues {
		p.workers = append(p.workers, p.pipe.NewWorker(i))
	}
	p.startWorkers(l)
	p.wg.Add(3)
	go func() {
		defer p.wg.Done()
		p.follow(changed)
	}()
	go func() {
		defer p.wg.Done()
		p.watchMarks(cfg, fileRules)
	}()
	go func() {
		defer p.wg.Done()
		select {
		case <-ctx.Done():
			p.halt()
		case <-p.stop:
		}
	}()
	log.Info("data plane running", "interfaces", strings.Join(p.ifaces, ","), "queues", queues,
		"neighbour_probe", p.neigh.Probe().String())
	return p, nil
}

// Worker restart back-off: a worker whose link failed starts again after
// workerBackoff, doubling up to workerBackoffMax, so that a transient
// socket error costs its queue's share of the flows a moment, and a
// persistent one does not spin.
const (
	workerBackoff    = 10 * time.Millisecond
	workerBackoffMax = 5 * time.Second
)

// runWorker runs one data-path worker on its queue until stop, starting
// it again after a failure of the link (the queue's flows, by client
// hash, would otherwise be lost until lvsd restarts).
func runWorker(q link.Batch, w link.Processor, stop <-chan struct{}, log *slog.Logger) {
	backoff := workerBackoff
	for {
		err := link.Run(q, w, stop)
		if err == nil || errors.Is(err, link.ErrClosed) {
			return
		}
		log.Error("data-path worker failed; restarting", "err", err, "after", backoff)
		_ = q.Release() // a batch the failed Send held
		select {
		case <-stop:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, workerBackoffMax)
	}
}

// startWorkers starts one worker per queue of l, a new generation that
// stopWorkers ends.
func (p *afPlane) startWorkers(l *afpacket.Link) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.wstop = make(chan struct{})
	for i, w := range p.workers {
		q := l.Queue(i)
		p.wwg.Add(1)
		go func(stop <-chan struct{}) {
			defer p.wwg.Done()
			runWorker(q, batchObserver{w, p.batches}, stop, p.log.With("queue", i))
		}(p.wstop)
	}
}

// batchObserver counts the size of each batch its worker processes.
type batchObserver struct {
	w *datapath.Worker
	h *web.Histogram
}

func (b batchObserver) Process(frames []datapath.Frame, res []datapath.Result) {
	b.h.Observe(float64(len(frames)))
	b.w.Process(frames, res)
}

// stopWorkers stops the current workers and waits for them.
func (p *afPlane) stopWorkers() {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.wstop != nil {
		close(p.wstop)
		p.wstop = nil
	}
	p.wwg.Wait()
}

// eligible returns the names of the interfaces the view holds (with
// --interfaces all: every up Ethernet interface that is not loopback nor
// a bridge or bond port), sorted by index as the view keeps them.
func eligible(s *hostnet.Snapshot) []string {
	if s == nil {
		return nil
	}
	var names []string
	for _, ifc := range s.Interfaces {
		names = append(names, ifc.Name)
	}
	return names
}

// relink moves the data plane to another set of interfaces: a new link
// opened with the filter in force, the workers stopped on the old one and
// started on the new one (the same pipeline workers, connection table and
// counters), the ingress table on the new set, the old link closed. The
// new link's rings hold what arrives in between. Called by follow.
func (p *afPlane) relink(names []string) error {
	f := p.applied.filter()
	nl, err := afpacket.Open(afpacket.Config{Interfaces: names, Queues: p.queues, Filter: &f, Reinject: true})
	if err != nil {
		return err
	}
	p.stopWorkers()
	old := p.lnk.Swap(nl)
	p.startWorkers(nl)
	st := old.Stats()
	p.wmu.Lock()
	p.oldStats.Add(&st)
	p.wmu.Unlock()
	if err := old.Close(); err != nil {
		p.log.Warn("closing the previous link", "err", err)
	}
	prev := p.ifaces
	p.ifaces = names
	if err := p.ingress.Apply(p.applied.ingress(names)); err != nil {
		return err
	}
	p.log.Info("data plane interfaces changed", "interfaces", strings.Join(names, ","), "before", strings.Join(prev, ","))
	return nil
}

// interfaces turns --interfaces into the list of interface names.
func (p *afPlane) interfaces(spec string) ([]string, error) {
	if spec == "" || spec == allInterfaces {
		s, err := p.host.Snapshot(nil)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, ifc := range s.Interfaces {
			names = append(names, ifc.Name)
		}
		if len(names) == 0 {
			return nil, errors.New("--interfaces all: no interface is up (Ethernet, not loopback, not a bridge or bond port)")
		}
		return names, nil
	}
	var names []string
	for _, n := range strings.Split(spec, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			return nil, fmt.Errorf("--interfaces %q: empty interface name", spec)
		}
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

// sendParked is the neighbour table's send: it transmits a frame parked
// while its next hop was being resolved.
func (p *afPlane) sendParked(ifindex int, frame []byte) {
	l := p.lnk.Load()
	if l == nil || l.WriteFrame(ifindex, frame) != nil {
		p.parkedSendErrors.Add(1)
	}
}

// follow re-applies the filter and ingress rule whenever the services
// (ctl.Changed) or the host's addresses (kick) change, until stop.
func (p *afPlane) follow(changed <-chan struct{}) {
	var retry <-chan time.Time
	for {
		select {
		case <-p.stop:
			return
		case <-changed:
		case <-p.kick:
		case <-retry:
		}
		// Take the channel before reading the snapshot: a change made
		// in between closes it, and the loop comes round again.
		changed = p.ctl.Changed()
		if p.followIfaces {
			if names := eligible(p.view.Snapshot()); len(names) > 0 && !slices.Equal(names, p.ifaces) {
				if err := p.relink(names); err != nil {
					p.log.Error("cannot move the data plane to the interfaces now up; retrying", "interfaces", strings.Join(names, ","), "err", err)
					retry = time.After(retryInterval)
					continue
				}
			}
		}
		r := buildRules(p.ctl.Snapshot(), p.ctl.Trash(), localAddrs(p.view.Snapshot()), p.marks.Load())
		if err := p.apply(r); err != nil {
			if msg := err.Error(); msg != p.lastErr {
				p.log.Error("cannot apply the data plane's rules; retrying", "err", err, "retry_s", retryInterval.Seconds())
				p.lastErr = msg
			}
			retry = time.After(retryInterval)
			continue
		}
		p.lastErr, retry = "", nil
	}
}

// apply moves the link's filter and the host's ingress rule from the
// rules applied to r. The two cannot change in one step, so the link
// first passes the union of both (it sees a new service's traffic before
// the host stops seeing it, and a removed service's until the host sees
// it again), then the ingress rule changes, then the link's filter
// narrows to r. In between the pipeline may get frames it hands back to
// the host (counted as to-host), which is harmless.
func (p *afPlane) apply(r planeRules) error {
	if r.equal(&p.applied) {
		return nil
	}
	l := p.lnk.Load()
	u := p.applied.union(&r)
	uf := u.filter()
	if err := l.SetFilter(&uf); err != nil {
		return err
	}
	if err := p.ingress.Apply(r.ingress(p.ifaces)); err != nil {
		return err
	}
	f := r.filter()
	if err := l.SetFilter(&f); err != nil {
		return err
	}
	p.applied = r
	p.logRules(r, l.Coarse())
	return nil
}

// logRules says what the data plane now takes from the host.
func (p *afPlane) logRules(r planeRules, coarse bool) {
	p.log.Info("data plane rules applied", "services", len(r.Services), "replies", len(r.Replies), "local_addrs", len(r.Local))
	p.logMarks(r.FWMark, r.MarkDests)
	if coarse && !p.wasCoarse {
		p.log.Warn("the socket filter compares addresses only (too many services for an exact classic BPF program): more traffic reaches user space and is handed back to the host")
	}
	p.wasCoarse = coarse
}

// webStats sums the workers' counters for the status page and /metrics.
func (p *afPlane) webStats() web.DataPlaneStats {
	cs := make([]*datapath.Counters, len(p.workers))
	for i, w := range p.workers {
		cs[i] = w.Stats()
	}
	st := web.SumDataPlane(cs)
	st.BatchSizes = p.batches.Snapshot()
	return st
}

// halt stops the goroutines (once).
func (p *afPlane) halt() { p.haltOnce.Do(func() { close(p.stop) }) }

// shutdown stops the workers, logs the counters, and removes everything
// the data plane installed: the ingress table first, so that the host's
// stack answers the services' addresses again, then the sockets.
func (p *afPlane) shutdown() error {
	p.halt()
	p.wg.Wait()
	p.stopWorkers()
	p.logStats()
	return errors.Join(
		p.view.Close(),
		p.ingress.Close(),
		p.neigh.Close(),
		p.lnk.Load().Close(),
		p.host.Close(),
	)
}

// logStats logs the link's, the pipeline's and the ingress rule's
// counters, for the operator and the namespace tests.
func (p *afPlane) logStats() {
	st := p.lnk.Load().Stats()
	p.wmu.Lock()
	st.Add(&p.oldStats)
	p.wmu.Unlock()
	p.log.Info("link counters",
		"rx_frames", st.RxFrames, "rx_bytes", st.RxBytes, "tx_frames", st.TxFrames, "tx_bytes", st.TxBytes,
		"to_host", st.ToHost, "reinjected", st.Reinjected, "ring_drops", st.RingDrops, "tx_errors", st.TxErrors,
		"gso_frames", st.GSOFrames, "gso_segments", st.GSOSegments, "gso_dropped", st.GSODropped,
		"parked_send_errors", p.parkedSendErrors.Load())
	var transmitted, toHost uint64
	var drops [datapath.NumReasons]uint64
	for _, w := range p.workers {
		c := w.Stats()
		transmitted += c.Transmitted()
		toHost += c.ToHost()
		for i, n := range c.Drops() {
			drops[i] += n
		}
	}
	attrs := []any{"transmitted", transmitted, "to_host", toHost}
	for i, n := range drops {
		if n > 0 {
			attrs = append(attrs, "drop_"+datapath.Reason(i).String(), n)
		}
	}
	p.log.Info("pipeline counters", attrs...)
	if c, err := p.ingress.Counters(); err == nil {
		p.log.Info("ingress counters", "service_packets", c.ServicePackets, "reply_packets", c.ReplyPackets)
	}
}

// planeRules is what the data plane takes from the host's stack, in a
// canonical order (sorted, without duplicates) so that two can be
// compared: the link's Filter and the host's ingress rule are both made
// from it, as package link requires.
type planeRules struct {
	// Services are the virtual services' destinations: VIP, protocol,
	// port (0: every port, a port-0 persistent service).
	Services []link.Match
	// Replies are the NAT real servers' sources (address, protocol,
	// port), of the services and of the trash (deleted real servers
	// whose connections live on).
	Replies []link.Match
	// Local are the director's addresses.
	Local []netip.Addr
	// FWMark are the firewall-mark services; MarkDests the destinations
	// of the mark rules that give their marks (also in Services).
	FWMark    []service.Key
	MarkDests []link.Match
}

// buildRules derives the rules from the services, the trash and the
// director's addresses.
//
// FTP: as the kernel's __ip_vs_service_find, a TCP service on port 21 of
// a VIP also gets the VIP's port 20 and unprivileged ports (1024-65535)
// for the data connections; the engine passes those it does not
// schedule back to the host, which the link then re-injects. Real
// servers' FTP data connections through NAT are not followed.
//
// Firewall-mark services take what the mark rules that give their marks
// cover (ms; package fwmark), and their NAT real servers' replies on
// every protocol.
func buildRules(snap *service.Snapshot, trash []*service.Dest, local []netip.Addr, ms *markState) planeRules {
	var r planeRules
	var marks []uint32
	isLocal := func(a netip.Addr) bool { return slices.Contains(local, a) }
	host := func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
	for _, s := range snap.Services() {
		if s.Key.IsFWMark() {
			r.FWMark = append(r.FWMark, s.Key)
			marks = append(marks, s.Key.FWMark)
			for _, d := range s.Dests {
				if d.Fwd() == service.Masq && !isLocal(d.Addr) {
					r.Replies = append(r.Replies, link.Match{Addr: host(d.Addr), Port: d.Port})
				}
			}
			continue
		}
		vip := host(s.Key.Addr)
		r.Services = append(r.Services, link.Match{Addr: vip, Proto: s.Key.Proto, Port: s.Key.Port})
		if s.Key.Proto == header.ProtoTCP && s.Key.Port == 21 {
			r.Services = append(r.Services,
				link.Match{Addr: vip, Proto: header.ProtoTCP, Port: 20},
				link.Match{Addr: vip, Proto: header.ProtoTCP, Port: 1024, PortLast: 65535})
		}
		for _, d := range s.Dests {
			// A real server that is the director answers from its
			// own stack: nothing comes in from it.
			if d.Fwd() == service.Masq && !isLocal(d.Addr) {
				r.Replies = append(r.Replies, link.Match{Addr: host(d.Addr), Proto: s.Key.Proto, Port: d.Port})
			}
		}
	}
	for _, d := range trash {
		if d.Fwd() != service.Masq || isLocal(d.Addr) {
			continue
		}
		r.Replies = append(r.Replies, link.Match{Addr: host(d.Addr), Proto: d.Svc.Proto, Port: d.Port})
	}
	r.MarkDests = canonMatches(markDests(ms, marks))
	r.Services = append(r.Services, r.MarkDests...)
	r.Services = canonMatches(r.Services)
	r.Replies = canonMatches(r.Replies)
	r.Local = slices.Clone(local)
	slices.SortFunc(r.Local, netip.Addr.Compare)
	r.Local = slices.Compact(r.Local)
	return r
}

// canonMatches sorts ms and removes duplicates.
func canonMatches(ms []link.Match) []link.Match {
	slices.SortFunc(ms, func(a, b link.Match) int {
		return cmp.Or(
			a.Addr.Addr().Compare(b.Addr.Addr()), cmp.Compare(a.Addr.Bits(), b.Addr.Bits()),
			cmp.Compare(a.Proto, b.Proto), cmp.Compare(a.Port, b.Port), cmp.Compare(a.PortLast, b.PortLast))
	})
	return slices.Compact(ms)
}

// localAddrs lists the director's addresses in a view's snapshot: those
// of the data path's interfaces and the others (VIPs on lo).
func localAddrs(s *hostnet.Snapshot) []netip.Addr {
	if s == nil {
		return nil
	}
	out := slices.Clone(s.Local)
	for _, ifc := range s.Interfaces {
		for _, p := range ifc.Addrs {
			out = append(out, p.Addr())
		}
	}
	return out
}

func (r *planeRules) equal(o *planeRules) bool {
	return slices.Equal(r.Services, o.Services) && slices.Equal(r.Replies, o.Replies) &&
		slices.Equal(r.Local, o.Local) && slices.Equal(r.FWMark, o.FWMark) && slices.Equal(r.MarkDests, o.MarkDests)
}

// union returns the rules that take what r or o takes.
func (r *planeRules) union(o *planeRules) planeRules {
	u := planeRules{
		Services: canonMatches(append(slices.Clone(r.Services), o.Services...)),
		Replies:  canonMatches(append(slices.Clone(r.Replies), o.Replies...)),
		Local:    append(slices.Clone(r.Local), o.Local...),
	}
	slices.SortFunc(u.Local, netip.Addr.Compare)
	u.Local = slices.Compact(u.Local)
	return u
}

// filter returns the link's filter.
func (r *planeRules) filter() link.Filter {
	return link.Filter{Services: r.Services, Replies: r.Replies, Local: r.Local, ICMPErrors: true}
}

// ingress returns the host's ingress rule on ifaces.
func (r *planeRules) ingress(ifaces []string) hostnet.IngressRules {
	conv := func(ms []link.Match) []hostnet.Match {
		out := make([]hostnet.Match, len(ms))
		for i, m := range ms {
			out[i] = hostnet.Match{Addr: m.Addr, Proto: m.Proto, Port: m.Port, PortLast: m.PortLast}
		}
		return out
	}
	return hostnet.IngressRules{Interfaces: ifaces, Services: conv(r.Services), Replies: conv(r.Replies)}
}
