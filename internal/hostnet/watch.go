package hostnet

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"golvs/internal/datapath"
)

// Defaults of ViewConfig.
const (
	// DefaultDebounce is how long the watcher waits after a change before
	// it rebuilds the view: adding an address brings an address, a local
	// route and a connected route message within microseconds, and a
	// link going down a few dozen; 50 ms gathers such a burst into one
	// view while routing still follows within a blink.
	DefaultDebounce = 50 * time.Millisecond

	// resubscribeDelay is the pause before subscribing again after a
	// subscription failed (ENOBUFS when the host changed faster than the
	// watcher read): long enough not to spin on a persistent error, short
	// enough that the view is not stale for long.
	resubscribeDelay = 200 * time.Millisecond

	// subscribeBuffer is the rtnetlink socket receive buffer: a full
	// BGP-fed routing table can announce thousands of routes at once;
	// 1 MiB holds about 10,000 route messages. The kernel caps it at
	// net.core.rmem_max.
	subscribeBuffer = 1 << 20

	// updateQueue is the length of the channels between the library's
	// reader goroutines and the watcher.
	updateQueue = 64
)

// ViewConfig configures WatchView.
type ViewConfig struct {
	// Interfaces names the data path's interfaces; empty means every
	// up, non-loopback Ethernet interface that is not a bridge or bond
	// port (lvsd --interfaces).
	Interfaces []string
	// Debounce is the delay between a change and the rebuilt view;
	// 0 means DefaultDebounce.
	Debounce time.Duration
	// Logger receives subscription failures; nil discards them.
	Logger *slog.Logger

	rcvbuf int // the subscriptions' socket buffer, for tests; 0 means subscribeBuffer
}

// ViewWatcher keeps a datapath.View in step with the host: it rebuilds
// the view from a fresh dump whenever rtnetlink reports a link, address or
// main-table route change, and publishes it when it differs from the last
// one. One goroutine, started by WatchView and stopped by Close, owns the
// subscriptions; the methods are safe for concurrent use.
type ViewWatcher struct {
	h       *Host
	cfg     ViewConfig
	publish func(*datapath.View)
	log     *slog.Logger

	snap atomic.Pointer[Snapshot] // the last published snapshot

	// Counters, for tests and metrics.
	rebuilds  atomic.Uint64
	published atomic.Uint64
	failures  atomic.Uint64

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// WatchView reads the host's configuration, publishes its view through
// publish (before it returns), then follows changes until Close. publish
// runs on the watcher's goroutine, one call at a time.
func (h *Host) WatchView(cfg ViewConfig, publish func(*datapath.View)) (*ViewWatcher, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	if cfg.rcvbuf == 0 {
		cfg.rcvbuf = subscribeBuffer
	}
	w := &ViewWatcher{
		h: h, cfg: cfg, publish: publish, log: logger(cfg.Logger, "hostnet.view"),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	// Subscribe before the dump: a change between the two then comes as
	// an event and triggers another rebuild, rather than being lost.
	sub, err := w.subscribe()
	if err != nil {
		return nil, err
	}
	if err := w.rebuild(); err != nil {
		sub.close()
		return nil, err
	}
	go w.run(sub)
	return w, nil
}

// ViewStats counts what a ViewWatcher did.
type ViewStats struct {
	Rebuilds  uint64 // dumps of the host
	Published uint64 // views published (dumps that found a change)
	Failures  uint64 // subscriptions that failed (events lost) and were renewed
}

// Stats returns the counters.
func (w *ViewWatcher) Stats() ViewStats {
	return ViewStats{Rebuilds: w.rebuilds.Load(), Published: w.published.Load(), Failures: w.failures.Load()}
}

// Snapshot returns the configuration of the last published view.
func (w *ViewWatcher) Snapshot() *Snapshot { return w.snap.Load() }

// Close stops the watcher and waits for its goroutine.
func (w *ViewWatcher) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	<-w.done
	return nil
}

// rtSubs is one generation of the three rtnetlink subscriptions.
type rtSubs struct {
	done  chan struct{}
	link  chan netlink.LinkUpdate
	addr  chan netlink.AddrUpdate
	route chan netlink.RouteUpdate
}

// close ends the subscriptions and drains their channels until the
// library's reader goroutines have closed them (a reader blocked on a full
// channel would otherwise never see the closed socket).
func (s *rtSubs) close() {
	close(s.done)
	for range s.link {
	}
	for range s.addr {
	}
	for range s.route {
	}
}

func (w *ViewWatcher) subscribe() (*rtSubs, error) {
	s := &rtSubs{
		done:  make(chan struct{}),
		link:  make(chan netlink.LinkUpdate, updateQueue),
		addr:  make(chan netlink.AddrUpdate, updateQueue),
		route: make(chan netlink.RouteUpdate, updateQueue),
	}
	fail := func(err error) {
		// Called by the readers; the closed channel is what the
		// watcher acts on. Errors after Close are the closed socket.
		select {
		case <-s.done:
		default:
			w.failures.Add(1)
			w.log.Warn("rtnetlink subscription failed", "err", err)
		}
	}
	ns := w.h.nsOption()
	if err := netlink.LinkSubscribeWithOptions(s.link, s.done, netlink.LinkSubscribeOptions{
		Namespace: ns, ErrorCallback: fail, ReceiveBufferSize: w.cfg.rcvbuf,
	}); err != nil {
		close(s.done)
		return nil, fmt.Errorf("hostnet: subscribe to links: %w", err)
	}
	if err := netlink.AddrSubscribeWithOptions(s.addr, s.done, netlink.AddrSubscribeOptions{
		Namespace: ns, ErrorCallback: fail, ReceiveBufferSize: w.cfg.rcvbuf,
	}); err != nil {
		close(s.done)
		for range s.link {
		}
		return nil, fmt.Errorf("hostnet: subscribe to addresses: %w", err)
	}
	if err := netlink.RouteSubscribeWithOptions(s.route, s.done, netlink.RouteSubscribeOptions{
		Namespace: ns, ErrorCallback: fail, ReceiveBufferSize: w.cfg.rcvbuf,
	}); err != nil {
		close(s.done)
		for range s.link {
		}
		for range s.addr {
		}
		return nil, fmt.Errorf("hostnet: subscribe to routes: %w", err)
	}
	return s, nil
}

// rebuild dumps the host and publishes the view if it changed.
func (w *ViewWatcher) rebuild() error {
	w.rebuilds.Add(1)
	s, err := w.h.Snapshot(w.cfg.Interfaces)
	if err != nil {
		return err
	}
	if s.Equal(w.snap.Load()) {
		return nil
	}
	w.snap.Store(s)
	w.published.Add(1)
	w.publish(s.View())
	return nil
}

func (w *ViewWatcher) run(sub *rtSubs) {
	defer close(w.done)
	defer func() {
		if sub != nil {
			sub.close()
		}
	}()
	var timer <-chan time.Time // armed while a rebuild is due
	arm := func(d time.Duration) {
		if timer == nil {
			timer = time.After(d)
		}
	}
	for {
		var link <-chan netlink.LinkUpdate
		var addr <-chan netlink.AddrUpdate
		var route <-chan netlink.RouteUpdate
		if sub != nil {
			link, addr, route = sub.link, sub.addr, sub.route
		}
		ok := true
		select {
		case <-w.stop:
			return
		case _, ok = <-link:
		case _, ok = <-addr:
		case u, open := <-route:
			ok = open
			if ok && u.Table != unix.RT_TABLE_MAIN {
				continue // local table, policy tables: not the view's
			}
		case <-timer:
			timer = nil
			if sub == nil {
				var err error
				if sub, err = w.subscribe(); err != nil {
					w.log.Warn("rtnetlink resubscribe failed", "err", err)
					arm(resubscribeDelay)
					continue
				}
			}
			if err := w.rebuild(); err != nil {
				w.log.Warn("rebuild of the host view failed", "err", err)
				arm(resubscribeDelay)
			}
			continue
		}
		if !ok {
			// A reader stopped (ENOBUFS: events were lost). Start
			// over: new subscriptions, then a full dump.
			sub.close()
			sub = nil
			timer = nil
			arm(resubscribeDelay)
			continue
		}
		arm(w.cfg.Debounce)
	}
}

// logger returns l (or a discarding logger) tagged with the component.
func logger(l *slog.Logger, component string) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.With("component", component)
}
