package hostnet

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"golvs/internal/datapath"
)

// Probe is how NeighSync asks the kernel to resolve a neighbour.
type Probe uint8

const (
	// ProbeAuto uses ProbeNetlink, and ProbeUDP from the first time the
	// kernel refuses it.
	ProbeAuto Probe = iota
	// ProbeNetlink sends RTM_NEWNEIGH with NTF_USE: the kernel treats it
	// as a packet wanting the neighbour (neigh_event_send) and resolves
	// it as it would for its own traffic, with nothing sent to the
	// address itself. (An entry created as NUD_INCOMPLETE just sits there
	// unresolved, and NUD_PROBE is refused with EINVAL: measured on
	// kernel 6.18, 2026-11-22.)
	ProbeNetlink
	// ProbeUDP sends an empty UDP datagram to the discard port (9) of the
	// address from a socket bound to the interface: the kernel resolves
	// the next hop to send it. The datagram itself then reaches the
	// neighbour.
	ProbeUDP
)

func (p Probe) String() string {
	switch p {
	case ProbeAuto:
		return "auto"
	case ProbeNetlink:
		return "netlink"
	case ProbeUDP:
		return "udp"
	}
	return "probe?"
}

// Defaults of NeighConfig.
const (
	// DefaultResolveTimeout bounds one resolution. The kernel gives up
	// after mcast_solicit (3) probes retrans_time (1 s) apart and then
	// reports NUD_FAILED, which ends the wait sooner; the timeout covers
	// a kernel that says nothing (the entry deleted meanwhile) with a
	// margin over those 3 s.
	DefaultResolveTimeout = 5 * time.Second

	// DefaultMaxResolving bounds the resolutions in flight. Beyond it a
	// request fails at once (the packet's sender retransmits and asks
	// again): a scan towards an on-link client network must not make
	// the director probe the whole subnet.
	DefaultMaxResolving = 1024

	// eagerMax is how many kernel entries are copied into the data
	// path's table without being asked for. Each Set copies the table
	// (datapath.Neighbours is copy-on-write), so filling n entries costs
	// n²/2 copies: 1024 (the kernel's default gc_thresh3, the usual
	// ceiling of a neighbour table) costs about 10 ms once. Entries past
	// it are handed over when the data path first asks.
	eagerMax = 1024

	// discardPort is the UDP port of ProbeUDP's datagram: RFC 863
	// discard, which nothing answers.
	discardPort = 9
)

// NeighConfig configures SyncNeighbours.
type NeighConfig struct {
	// Send transmits the frames the data path parked while their next
	// hop was unknown (datapath.NewNeighbours's send).
	Send func(ifindex int, frame []byte)
	// Timeout bounds a resolution; 0 means DefaultResolveTimeout.
	Timeout time.Duration
	// MaxResolving bounds the resolutions in flight; 0 means
	// DefaultMaxResolving.
	MaxResolving int
	// Probe selects how resolutions are asked for.
	Probe Probe
	// Logger receives subscription failures; nil discards them.
	Logger *slog.Logger

	rcvbuf int // the subscription's socket buffer, for tests; 0 means subscribeBuffer
}

// NeighStats counts what NeighSync did.
type NeighStats struct {
	Requests  uint64 // resolutions the data path asked for
	FromTable uint64 // answered at once from the kernel's table
	Probes    uint64 // resolutions asked of the kernel
	Resolved  uint64 // probes answered
	Failed    uint64 // probes the kernel reported as failed (NUD_FAILED)
	TimedOut  uint64 // probes with no answer within the timeout
	Refused   uint64 // requests failed at once: too many in flight, or the probe could not be sent
	Refreshes uint64 // entries the data path uses that the kernel dropped, resolved again
	Updates   uint64 // Set calls made to the data path's table
	Resyncs   uint64 // subscriptions that failed (events lost) and were renewed
}

// neighKey identifies a neighbour: an address on an interface.
type neighKey struct {
	ifindex int
	addr    netip.Addr
}

// NeighSync keeps a datapath.Neighbours in step with the kernel's
// neighbour table (ARP and NDP) and resolves the neighbours the data path
// asks for through the kernel.
//
// It mirrors the kernel's valid entries (reachable, stale, delay, probe,
// permanent, noarp) and copies them into the data path's table: all of
// them at start up to eagerMax, later ones when they appear, and past
// that limit when the data path first misses them. A data path miss
// (Neighbours.Park) calls the resolver, which only queues the request;
// the goroutine answers it from the mirror or asks the kernel to resolve
// the address and waits for the answer on its rtnetlink subscription
// (Set with ok true), the kernel's NUD_FAILED, or the timeout (Set with
// ok false, so that the parked frames are dropped and the next packet asks
// again). An entry the kernel reports failed (a neighbour that stopped
// answering, or `ip neigh del`) leaves the data path's table at once.
//
// The kernel does not know the data path uses an entry, so it lets it go
// stale and, once its table is over gc_thresh1, deletes it after
// gc_stale_time (RTM_DELNEIGH without NUD_FAILED; a change of the
// interface's MAC flushes its entries the same way). An entry the data
// path has is then kept in its table and resolved again in the
// background: it is replaced by the answer, or forgotten if the neighbour
// is gone, rather than making packets wait.
//
// One goroutine, started by SyncNeighbours and stopped by Close, owns the
// subscription and all state except the request queue; the methods are
// safe for concurrent use.
type NeighSync struct {
	h     *Host
	cfg   NeighConfig
	log   *slog.Logger
	neigh *datapath.Neighbours
	probe atomic.Uint32 // the Probe in use (ProbeAuto turns into one)

	// The request queue, filled by the data path's resolver callback.
	mu   sync.Mutex
	reqs []neighKey // guarded by mu
	wake chan struct{}

	// Owned by the goroutine.
	spare     []neighKey             // the other request queue
	kernel    map[neighKey][6]byte   // the kernel's valid entries
	told      map[neighKey][6]byte   // what the data path's table holds
	resolving map[neighKey]time.Time // probes in flight, with their deadline
	udp4      int                    // ProbeUDP sockets, -1 until opened
	udp6      int
	timer     *time.Timer

	stats struct {
		requests, fromTable, probes, resolved, failed, timedOut, refused, refreshes, updates, resyncs atomic.Uint64
	}

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// SyncNeighbours starts following the kernel's neighbour table and returns
// once the data path's table holds its current entries.
func (h *Host) SyncNeighbours(cfg NeighConfig) (*NeighSync, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultResolveTimeout
	}
	if cfg.MaxResolving <= 0 {
		cfg.MaxResolving = DefaultMaxResolving
	}
	if cfg.rcvbuf == 0 {
		cfg.rcvbuf = subscribeBuffer
	}
	s := &NeighSync{
		h: h, cfg: cfg, log: logger(cfg.Logger, "hostnet.neigh"),
		wake:   make(chan struct{}, 1),
		kernel: map[neighKey][6]byte{}, told: map[neighKey][6]byte{}, resolving: map[neighKey]time.Time{},
		udp4: -1, udp6: -1,
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	s.probe.Store(uint32(cfg.Probe))
	s.neigh = datapath.NewNeighbours(s.resolve, cfg.Send)
	s.timer = time.NewTimer(time.Hour)
	s.timer.Stop()
	sub, err := s.subscribe()
	if err != nil {
		return nil, err
	}
	if err := s.resync(); err != nil {
		sub.close()
		return nil, err
	}
	go s.run(sub)
	return s, nil
}

// Neighbours returns the data path's neighbour table.
func (s *NeighSync) Neighbours() *datapath.Neighbours { return s.neigh }

// Probe returns the probe method in use.
func (s *NeighSync) Probe() Probe { return Probe(s.probe.Load()) }

// Stats returns the counters.
func (s *NeighSync) Stats() NeighStats {
	return NeighStats{
		Requests: s.stats.requests.Load(), FromTable: s.stats.fromTable.Load(),
		Probes: s.stats.probes.Load(), Resolved: s.stats.resolved.Load(),
		Failed: s.stats.failed.Load(), TimedOut: s.stats.timedOut.Load(),
		Refused: s.stats.refused.Load(), Refreshes: s.stats.refreshes.Load(),
		Updates: s.stats.updates.Load(), Resyncs: s.stats.resyncs.Load(),
	}
}

// Close stops the goroutine and waits for it. Parked frames stay parked.
func (s *NeighSync) Close() error {
	s.closeOnce.Do(func() { close(s.stop) })
	<-s.done
	return nil
}

// resolve is the data path's resolver callback: it runs on a worker's
// miss path, so it only queues the request.
func (s *NeighSync) resolve(ifindex int, addr netip.Addr) {
	s.stats.requests.Add(1)
	s.mu.Lock()
	s.reqs = append(s.reqs, neighKey{ifindex, addr})
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// neighSub is one neighbour subscription.
type neighSub struct {
	done chan struct{}
	ch   chan netlink.NeighUpdate
}

func (n *neighSub) close() {
	close(n.done)
	for range n.ch {
	}
}

func (s *NeighSync) subscribe() (*neighSub, error) {
	n := &neighSub{done: make(chan struct{}), ch: make(chan netlink.NeighUpdate, updateQueue)}
	err := netlink.NeighSubscribeWithOptions(n.ch, n.done, netlink.NeighSubscribeOptions{
		Namespace: s.h.nsOption(),
		ErrorCallback: func(err error) {
			select {
			case <-n.done:
			default:
				s.log.Warn("neighbour subscription failed", "err", err)
			}
		},
		ReceiveBufferSize: s.cfg.rcvbuf,
	})
	if err != nil {
		close(n.done)
		return nil, fmt.Errorf("hostnet: subscribe to neighbours: %w", err)
	}
	return n, nil
}

func (s *NeighSync) run(sub *neighSub) {
	defer close(s.done)
	defer func() {
		if sub != nil {
			sub.close()
		}
		s.closeSockets()
	}()
	var retry <-chan time.Time
	for {
		var events <-chan netlink.NeighUpdate
		if sub != nil {
			events = sub.ch
		}
		select {
		case <-s.stop:
			return
		case u, ok := <-events:
			if !ok {
				// Events were lost (ENOBUFS): subscribe again and
				// compare the table with a fresh dump.
				sub.close()
				sub = nil
				retry = time.After(resubscribeDelay)
				continue
			}
			s.event(u)
		case <-retry:
			retry = nil
			var err error
			if sub, err = s.subscribe(); err == nil {
				s.stats.resyncs.Add(1)
				err = s.resync()
			}
			if err != nil {
				s.log.Warn("neighbour resync failed", "err", err)
				retry = time.After(resubscribeDelay)
			}
		case <-s.wake:
			// Swap the queue with the spare one, so that a steady
			// trickle of misses reuses two arrays.
			s.mu.Lock()
			reqs := s.reqs
			s.reqs = s.spare[:0]
			s.mu.Unlock()
			for _, k := range reqs {
				s.request(k)
			}
			s.spare = reqs
		case <-s.timer.C:
			s.expire(time.Now())
		}
		s.arm()
	}
}

// set hands an answer to the data path's table and notes what it holds.
func (s *NeighSync) set(k neighKey, mac [6]byte, ok bool) {
	s.stats.updates.Add(1)
	if ok {
		s.told[k] = mac
	} else {
		delete(s.told, k)
	}
	delete(s.resolving, k)
	s.neigh.Set(k.ifindex, k.addr, mac, ok)
}

// request answers one resolution request of the data path.
func (s *NeighSync) request(k neighKey) {
	if mac, ok := s.kernel[k]; ok {
		s.stats.fromTable.Add(1)
		s.set(k, mac, true)
		return
	}
	if _, ok := s.resolving[k]; ok {
		return
	}
	if !s.startProbe(k) {
		s.stats.refused.Add(1)
		s.set(k, [6]byte{}, false)
	}
}

// startProbe asks the kernel to resolve k and records the deadline.
func (s *NeighSync) startProbe(k neighKey) bool {
	if len(s.resolving) >= s.cfg.MaxResolving {
		return false
	}
	if err := s.sendProbe(k); err != nil {
		s.log.Debug("neighbour probe failed", "addr", k.addr, "ifindex", k.ifindex, "err", err)
		return false
	}
	s.stats.probes.Add(1)
	s.resolving[k] = time.Now().Add(s.cfg.Timeout)
	return true
}

// sendProbe asks the kernel to resolve k by the configured method.
func (s *NeighSync) sendProbe(k neighKey) error {
	switch Probe(s.probe.Load()) {
	case ProbeUDP:
		return s.probeUDP(k)
	case ProbeNetlink:
		return s.probeNetlink(k)
	}
	err := s.probeNetlink(k)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
		s.log.Info("kernel refuses NTF_USE neighbour requests; resolving through UDP datagrams", "err", err)
		s.probe.Store(uint32(ProbeUDP))
		return s.probeUDP(k)
	}
	if err == nil {
		s.probe.Store(uint32(ProbeNetlink))
	}
	return err
}

// probeNetlink sends RTM_NEWNEIGH, NLM_F_CREATE|NLM_F_REPLACE, NTF_USE:
// neigh_add in net/core/neighbour.c then calls neigh_event_send, which
// starts resolution of a new (or failed) entry and re-confirmation of a
// stale one, and leaves a valid entry's state alone.
func (s *NeighSync) probeNetlink(k neighKey) error {
	family := netlink.FAMILY_V4
	if k.addr.Is6() {
		family = netlink.FAMILY_V6
	}
	return s.h.nl.NeighSet(&netlink.Neigh{
		LinkIndex: k.ifindex, Family: family, IP: k.addr.AsSlice(),
		State: netlink.NUD_NONE, Flags: netlink.NTF_USE,
	})
}

// probeUDP sends an empty datagram to the discard port of k's address
// out of k's interface.
func (s *NeighSync) probeUDP(k neighKey) error {
	fd, err := s.udpSocket(k.addr.Is6())
	if err != nil {
		return err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BINDTOIFINDEX, k.ifindex); err != nil {
		return fmt.Errorf("hostnet: bind probe socket to interface %d: %w", k.ifindex, err)
	}
	var sa unix.Sockaddr
	if k.addr.Is4() {
		sa = &unix.SockaddrInet4{Port: discardPort, Addr: k.addr.As4()}
	} else {
		// A link-local next hop needs its interface as the scope.
		sa = &unix.SockaddrInet6{Port: discardPort, Addr: k.addr.As16(), ZoneId: uint32(k.ifindex)}
	}
	if err := unix.Sendto(fd, nil, unix.MSG_DONTWAIT, sa); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("hostnet: probe datagram to %v: %w", k.addr, err)
	}
	return nil
}

// udpSocket returns the probe socket of a family, opening it in the
// host's namespace the first time.
func (s *NeighSync) udpSocket(v6 bool) (int, error) {
	p, domain := &s.udp4, unix.AF_INET
	if v6 {
		p, domain = &s.udp6, unix.AF_INET6
	}
	if *p >= 0 {
		return *p, nil
	}
	err := s.h.do(func() error {
		fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return err
		}
		*p = fd
		return nil
	})
	if err != nil {
		return -1, fmt.Errorf("hostnet: probe socket: %w", err)
	}
	return *p, nil
}

func (s *NeighSync) closeSockets() {
	for _, p := range []*int{&s.udp4, &s.udp6} {
		if *p >= 0 {
			unix.Close(*p)
			*p = -1
		}
	}
}

// expire fails the resolutions whose deadline passed.
func (s *NeighSync) expire(now time.Time) {
	for k, d := range s.resolving {
		if !now.Before(d) {
			s.stats.timedOut.Add(1)
			s.set(k, [6]byte{}, false)
		}
	}
}

// arm sets the timer to the earliest deadline.
func (s *NeighSync) arm() {
	var first time.Time
	for _, d := range s.resolving {
		if first.IsZero() || d.Before(first) {
			first = d
		}
	}
	s.timer.Stop()
	if !first.IsZero() {
		s.timer.Reset(time.Until(first))
	}
}

// entryOf converts a kernel entry; ok is false for entries that are not
// an IP neighbour of an Ethernet interface (bridge FDB, proxy entries,
// multicast mappings, lo).
func entryOf(n *netlink.Neigh) (k neighKey, mac [6]byte, ok bool) {
	if n.Family != netlink.FAMILY_V4 && n.Family != netlink.FAMILY_V6 {
		return k, mac, false
	}
	if n.Flags&netlink.NTF_PROXY != 0 {
		return k, mac, false
	}
	a := ipOf(n.IP)
	if !a.IsValid() || a.IsMulticast() || a.IsLoopback() {
		return k, mac, false
	}
	if len(n.HardwareAddr) == 6 {
		copy(mac[:], n.HardwareAddr)
	}
	return neighKey{n.LinkIndex, a}, mac, true
}

// validState holds the states in which an entry's MAC may be used
// (the kernel's NUD_VALID).
const validState = netlink.NUD_PERMANENT | netlink.NUD_NOARP | netlink.NUD_REACHABLE |
	netlink.NUD_PROBE | netlink.NUD_STALE | netlink.NUD_DELAY

// usable reports whether a kernel entry gives a MAC the data path can use.
func usable(n *netlink.Neigh) bool {
	return n.State&validState != 0 && len(n.HardwareAddr) == 6
}

// event applies one kernel notification.
func (s *NeighSync) event(u netlink.NeighUpdate) {
	k, mac, ok := entryOf(&u.Neigh)
	if !ok {
		return
	}
	switch {
	case u.Type == unix.RTM_NEWNEIGH && usable(&u.Neigh):
		s.kernel[k] = mac
		s.learn(k, mac)
	case u.Type == unix.RTM_NEWNEIGH && u.Neigh.State&netlink.NUD_FAILED != 0:
		delete(s.kernel, k)
		_, asked := s.resolving[k]
		_, has := s.told[k]
		if asked {
			s.stats.failed.Add(1)
		}
		if asked || has {
			s.set(k, [6]byte{}, false)
		}
	case u.Type == unix.RTM_NEWNEIGH:
		// INCOMPLETE or NONE: being resolved; the answer follows.
		delete(s.kernel, k)
	case u.Type == unix.RTM_DELNEIGH:
		delete(s.kernel, k)
		s.lost(k)
	}
}

// learn passes a valid kernel entry to the data path where it helps.
func (s *NeighSync) learn(k neighKey, mac [6]byte) {
	if _, asked := s.resolving[k]; asked {
		s.stats.resolved.Add(1)
		s.set(k, mac, true)
		return
	}
	if old, has := s.told[k]; has {
		if old != mac {
			s.set(k, mac, true)
		}
		return
	}
	if len(s.told) < eagerMax {
		s.set(k, mac, true)
	}
}

// lost handles a kernel entry that went away while the data path may use it.
func (s *NeighSync) lost(k neighKey) {
	if _, has := s.told[k]; !has {
		return
	}
	if _, asked := s.resolving[k]; asked {
		return
	}
	s.stats.refreshes.Add(1)
	if !s.startProbe(k) {
		s.set(k, [6]byte{}, false)
	}
}

// resync replaces the mirror by a dump and reconciles the data path's table.
func (s *NeighSync) resync() error {
	list, err := s.h.nl.NeighList(0, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("hostnet: list neighbours: %w", err)
	}
	kernel := map[neighKey][6]byte{}
	for i := range list {
		if k, mac, ok := entryOf(&list[i]); ok && usable(&list[i]) {
			kernel[k] = mac
		}
	}
	s.kernel = kernel
	for k := range s.told {
		if _, ok := kernel[k]; !ok {
			s.lost(k)
		}
	}
	for k, mac := range kernel {
		s.learn(k, mac)
	}
	return nil
}
