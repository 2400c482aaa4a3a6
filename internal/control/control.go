// Package control applies ipvsadm-equivalent operations to the service model
// with the kernel's semantics (net/netfilter/ipvs/ip_vs_ctl.c): add, edit
// (a full re-specification), delete and flush of virtual services and their
// destinations, destination trash and revival, zeroing of counters, and the
// publication of each result as an immutable service.Snapshot that the data
// path reads without locks.
//
// Failures are reported with the sentinel errors below, one per failure class
// of the kernel; the mapping to ipvsadm's messages and exit codes, and to HTTP
// statuses, lives with the ipvsadm and api packages. The sentinels' texts are
// the kernel's messages as ipvsadm prints them.
package control

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golvs/internal/clock"
	"golvs/internal/estimator"
	"golvs/internal/sched"
	"golvs/internal/service"
	"golvs/internal/stats"
)

// Failure classes of the kernel (errno as ipvsadm's ipvs_strerror names it).
var (
	ErrServiceExists = errors.New("Service already exists")                                                      // EEXIST on add service
	ErrSchedNotFound = errors.New("Scheduler or persistence engine not found")                                   // ENOENT on add/edit service
	ErrNoService     = errors.New("No such service")                                                             // ESRCH on edit/delete/zero service
	ErrServiceUndef  = errors.New("Service not defined")                                                         // ESRCH on destination operations
	ErrDestExists    = errors.New("Destination already exists")                                                  // EEXIST on add destination
	ErrNoDest        = errors.New("No such destination")                                                         // ENOENT on edit/delete destination
	ErrRange         = errors.New("Numerical result out of range")                                               // ERANGE: weight < 0, lower > upper threshold
	ErrAFNoSupport   = errors.New("Operation not supported with specified address family")                       // EAFNOSUPPORT
	ErrInvalid       = errors.New("Invalid operation.  Possibly wrong module version, address not unicast, ...") // EINVAL
	ErrTooManyDests  = errors.New("Memory allocation problem")                                                   // ENOMEM: the destination ID space is exhausted
)

// trashPeriod is IP_VS_DEST_TRASH_PERIOD: a deleted destination that no
// connection refers to any more is freed after it has been idle this long,
// checked every trashPeriod/2. Until then re-adding it revives it with its
// counters.
const trashPeriod = 120 * time.Second

// Config configures a Control.
type Config struct {
	// Clock gives the time for the trash; nil means clock.Real.
	Clock clock.Clock
	// StatsShards is the number of shards of every stats.Counters (the
	// number of data-path workers); 0 means 1.
	StatsShards int
	// SchedRand, when set, is passed to schedulers that draw random
	// numbers (twos), for deterministic tests.
	SchedRand func(n uint32) uint32
	// LBLCExpiration and LBLCRExpiration are the sysctls of the same names
	// (0 = 24 h).
	LBLCExpiration, LBLCRExpiration time.Duration
}

// Control owns the virtual-service configuration. It is safe for concurrent
// use: changes are serialised by mu; Snapshot is lock-free.
type Control struct {
	cfg      Config
	clock    clock.Clock
	registry *service.Registry
	total    *stats.Counters // global counters (ip_vs_stats)
	snap     atomic.Pointer[service.Snapshot]

	// est estimates the rates of every stats object of a linked service
	// or destination and of the totals (ip_vs_est.c).
	est *estimator.Set

	mu       sync.Mutex
	services []*service.Service                   // guarded by mu: current services in creation order
	changed  chan struct{}                        // guarded by mu: closed by the next publish (Changed)
	trash    []*service.Dest                      // guarded by mu: deleted destinations still referenced or recently idle
	entries  map[*stats.Counters]*estimator.Entry // guarded by mu: the estimator entry of each stats object
	batching bool                                 // guarded by mu: inside Batch, publication waits
	dirty    bool                                 // guarded by mu: a change waits for publication
}

// New returns a Control with no services.
func New(cfg Config) *Control {
	c := &Control{cfg: cfg, clock: cfg.Clock, registry: service.NewRegistry()}
	if c.clock == nil {
		c.clock = clock.Real{}
	}
	c.total = stats.New(cfg.StatsShards)
	c.snap.Store(service.NewSnapshot(nil))
	c.changed = make(chan struct{})
	c.est = estimator.NewSet(c.clock.Nanotime())
	c.entries = make(map[*stats.Counters]*estimator.Entry)
	c.startEstimator(c.total)
	return c
}

// startEstimator starts (or, for a revived destination, resumes) the rate
// estimation of st. Called with mu held, or before c is shared.
func (c *Control) startEstimator(st *stats.Counters) {
	e := c.entries[st]
	if e == nil {
		e = estimator.NewEntry(st)
		c.entries[st] = e
	}
	c.est.Add(e)
}

// stopEstimator stops the estimation of st; forget also drops its state
// (the object is gone for good). Called with mu held.
func (c *Control) stopEstimator(st *stats.Counters, forget bool) {
	if e := c.entries[st]; e != nil {
		c.est.Remove(e)
		if forget {
			delete(c.entries, st)
		}
	}
}

// Rates returns the rate estimate of the stats object st (a service's, a
// destination's or the totals').
func (c *Control) Rates(st *stats.Counters) estimator.Rates {
	c.mu.Lock()
	e := c.entries[st]
	c.mu.Unlock()
	if e == nil {
		return estimator.Rates{}
	}
	return e.Rates()
}

// TickEstimators runs the rate estimation that is due (every
// estimator.Slot a fiftieth of the objects, each once per 2 s).
func (c *Control) TickEstimators(now int64) { c.est.Tick(now) }

// Snapshot returns the current immutable view of the services.
func (c *Control) Snapshot() *service.Snapshot { return c.snap.Load() }

// Registry returns the destination registry that connections refer to.
func (c *Control) Registry() *service.Registry { return c.registry }

// Total returns the global counters.
func (c *Control) Total() *stats.Counters { return c.total }

// Changed returns a channel that is closed when a snapshot newer than the
// current one is published: a follower of the configuration (the data
// plane's packet filter and ingress rule) calls Changed, then Snapshot,
// acts on it, and waits on the channel, so that no change is missed and
// none is polled for.
func (c *Control) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Batch runs fn, which makes several changes, and publishes one snapshot
// at its end instead of one per change (a restore of thousands of lines
// would otherwise rebuild the snapshot thousands of times). Changes within
// fn take effect for the data path together, when Batch returns. fn must
// not call Batch.
func (c *Control) Batch(fn func()) {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.batching = false
		if c.dirty {
			c.dirty = false
			c.publish()
		}
		c.mu.Unlock()
	}()
	fn()
}

// publish builds and stores a new snapshot and wakes the waiters of
// Changed, or within a Batch notes that one is due. Called with mu held.
func (c *Control) publish() {
	if c.batching {
		c.dirty = true
		return
	}
	list := make([]*service.Service, len(c.services))
	copy(list, c.services)
	c.snap.Store(service.NewSnapshot(list))
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Control) find(k service.Key) (int, *service.Service) {
	for i, s := range c.services {
		if sameService(s.Key, k) {
			return i, s
		}
	}
	return -1, nil
}

// sameService compares keys as the kernel's service tables do: fwmark
// services by (family, mark), others by (family, protocol, address, port).
func sameService(a, b service.Key) bool {
	if a.IsFWMark() || b.IsFWMark() {
		return a.FWMark == b.FWMark && a.Family == b.Family
	}
	return a == b
}

func (c *Control) newScheduler(cfg service.Config) (service.Scheduler, error) {
	if cfg.Sched == "none" {
		// The kernel accepts the literal "none": no scheduler, new
		// connections fail unless a template or sync creates them.
		return nil, nil
	}
	s, err := sched.New(cfg.Sched, sched.Options{
		Flags:           cfg.Flags,
		Rand:            c.cfg.SchedRand,
		LBLCExpiration:  c.cfg.LBLCExpiration,
		LBLCRExpiration: c.cfg.LBLCRExpiration,
	})
	if err != nil {
		return nil, ErrSchedNotFound
	}
	return s, nil
}

func validateService(k service.Key, cfg service.Config) error {
	if !k.IsFWMark() {
		switch k.Proto {
		case service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP:
		default:
			return fmt.Errorf("protocol %d: %w", k.Proto, ErrInvalid)
		}
		if !k.Addr.IsValid() || service.FamilyOf(k.Addr) != k.Family {
			return fmt.Errorf("virtual address %v: %w", k.Addr, ErrInvalid)
		}
	} else if k.Family != service.IPv4 && k.Family != service.IPv6 {
		return fmt.Errorf("family %v: %w", k.Family, ErrAFNoSupport)
	}
	if k.Family == service.IPv6 && cfg.Persistent() && (cfg.Netmask < 1 || cfg.Netmask > 128) {
		return fmt.Errorf("IPv6 prefix length %d: %w", cfg.Netmask, ErrInvalid)
	}
	if cfg.PE != "" && cfg.PE != "sip" {
		return ErrSchedNotFound
	}
	return nil
}

// normalise fills the kernel's view of a service key and configuration.
func normalise(k service.Key, cfg service.Config) (service.Key, service.Config) {
	if k.IsFWMark() {
		k.Proto, k.Addr, k.Port = 0, netip.Addr{}, 0
	}
	cfg.Flags &^= service.FlagHashed
	if k.Family == service.IPv6 && cfg.Netmask == 0 {
		cfg.Netmask = 128
	}
	if k.Family == service.IPv4 && cfg.Netmask == 0 {
		cfg.Netmask = 0xffffffff
	}
	return k, cfg
}

// AddService adds a virtual service (ipvsadm -A).
func (c *Control) AddService(k service.Key, cfg service.Config) error {
	k, cfg = normalise(k, cfg)
	if err := validateService(k, cfg); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, s := c.find(k); s != nil {
		return ErrServiceExists
	}
	sc, err := c.newScheduler(cfg)
	if err != nil {
		return err
	}
	if sc != nil {
		if err := sc.Init(nil); err != nil {
			return fmt.Errorf("scheduler %s: %w", cfg.Sched, ErrInvalid)
		}
	}
	s := &service.Service{Key: k, Config: cfg, Sched: sc, Stats: stats.New(c.cfg.StatsShards)}
	c.startEstimator(s.Stats)
	c.services = append(c.services, s)
	c.publish()
	return nil
}

// EditService replaces a service's configuration (ipvsadm -E). Destinations,
// connections and counters stay. A new scheduler is bound only when the name
// changes (the old one's state is lost, as in the kernel), or when sh or mh
// get different scheduler flags (their tables derive from the destinations,
// so rebinding is invisible).
func (c *Control) EditService(k service.Key, cfg service.Config) error {
	k, cfg = normalise(k, cfg)
	if err := validateService(k, cfg); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i, old := c.find(k)
	if old == nil {
		return ErrNoService
	}
	sc := old.Sched
	const schedFlags = service.FlagSched1 | service.FlagSched2 | service.FlagSched3
	rebind := cfg.Sched != old.Config.Sched ||
		((cfg.Sched == "sh" || cfg.Sched == "mh") && cfg.Flags&schedFlags != old.Config.Flags&schedFlags)
	if rebind {
		n, err := c.newScheduler(cfg)
		if err != nil {
			return err
		}
		// Unbind the old scheduler before binding the new one, as the
		// kernel does: both register as the destinations' observers.
		if d, ok := sc.(service.Doner); ok {
			d.Done()
		}
		if n != nil {
			if err := n.Init(old.Dests); err != nil {
				// Keep the old scheduler (its position state restarts).
				if sc != nil {
					_ = sc.Init(old.Dests)
				}
				return fmt.Errorf("scheduler %s: %w", cfg.Sched, ErrInvalid)
			}
		}
		sc = n
	}
	ns := *old
	ns.Config = cfg
	ns.Sched = sc
	c.services[i] = &ns
	c.publish()
	return nil
}

// DeleteService removes a service (ipvsadm -D); its destinations go to the
// trash, where connections that still refer to them keep them alive.
func (c *Control) DeleteService(k service.Key) error {
	k, _ = normalise(k, service.Config{})
	c.mu.Lock()
	defer c.mu.Unlock()
	i, s := c.find(k)
	if s == nil {
		return ErrNoService
	}
	c.unlinkService(s)
	c.services = append(c.services[:i:i], c.services[i+1:]...)
	c.publish()
	return nil
}

func (c *Control) unlinkService(s *service.Service) {
	now := c.clock.Nanotime()
	for _, d := range s.Dests {
		c.toTrash(d, now)
	}
	if d, ok := s.Sched.(service.Doner); ok {
		d.Done()
	}
	c.stopEstimator(s.Stats, true)
}

// Flush deletes every service (ipvsadm -C).
func (c *Control) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.services {
		c.unlinkService(s)
	}
	c.services = nil
	c.publish()
}

func (c *Control) toTrash(d *service.Dest, now int64) {
	c.stopEstimator(d.Stats, false)
	d.SetObserver(nil)
	d.SetAvailable(false)
	d.SetIdleSince(now)
	c.trash = append(c.trash, d)
}

func findDest(s *service.Service, addr netip.Addr, port uint16) (int, *service.Dest) {
	for i, d := range s.Dests {
		if d.Addr == addr && d.Port == port {
			return i, d
		}
	}
	return -1, nil
}

func (c *Control) validateDest(s *service.Service, addr netip.Addr, dc service.DestConfig) error {
	if dc.Weight < 0 {
		return ErrRange
	}
	if dc.LThreshold > dc.UThreshold {
		return ErrRange
	}
	if !addr.IsValid() || addr.IsUnspecified() || addr.IsMulticast() ||
		(addr.Is4() && addr == netip.AddrFrom4([4]byte{255, 255, 255, 255})) {
		return fmt.Errorf("destination %v: %w", addr, ErrInvalid)
	}
	if service.FamilyOf(addr) != s.Key.Family && dc.Fwd != service.Tunnel {
		return ErrAFNoSupport
	}
	switch dc.Fwd {
	case service.Masq, service.LocalNode, service.Tunnel, service.Route, service.Bypass:
	default:
		return fmt.Errorf("forwarding method %d: %w", dc.Fwd, ErrInvalid)
	}
	// ip_vs_add_dest / ip_vs_edit_dest: an unknown tunnel type, or GUE
	// without a port, is EINVAL.
	if dc.TunType > service.TunGRE {
		return fmt.Errorf("tunnel type %d: %w", dc.TunType, ErrInvalid)
	}
	if dc.Fwd == service.Tunnel && dc.TunType == service.TunGUE && dc.TunPort == 0 {
		return fmt.Errorf("GUE tunnel without a port: %w", ErrInvalid)
	}
	return nil
}

// AddDest adds a real server to a service (ipvsadm -a). A destination with
// the same address and port deleted earlier and still in the trash is
// revived with its counters, as the kernel does.
func (c *Control) AddDest(k service.Key, addr netip.Addr, port uint16, dc service.DestConfig) error {
	k, _ = normalise(k, service.Config{})
	addr = addr.Unmap()
	c.mu.Lock()
	defer c.mu.Unlock()
	i, s := c.find(k)
	if s == nil {
		return ErrServiceUndef
	}
	if err := c.validateDest(s, addr, dc); err != nil {
		return err
	}
	if _, d := findDest(s, addr, port); d != nil {
		return ErrDestExists
	}
	d := c.reviveFromTrash(s.Key, addr, port)
	if d != nil {
		d.SetConfig(dc)
		d.SetAvailable(true)
		c.startEstimator(d.Stats)
	} else {
		id, ok := c.registry.Alloc()
		if !ok {
			return ErrTooManyDests
		}
		d = service.NewDest(id, s.Key, addr, port, dc, stats.New(c.cfg.StatsShards))
		c.registry.Set(d)
		c.startEstimator(d.Stats)
	}
	d.SetSvcStats(s.Stats)
	dests := make([]*service.Dest, 0, len(s.Dests)+1)
	dests = append(append(dests, d), s.Dests...)
	ns := *s
	ns.Dests = dests
	if ns.Sched != nil {
		ns.Sched.AddDest(dests, d)
	}
	c.services[i] = &ns
	c.publish()
	return nil
}

func (c *Control) reviveFromTrash(k service.Key, addr netip.Addr, port uint16) *service.Dest {
	for i, d := range c.trash {
		if d.Addr == addr && d.Port == port && sameService(d.Svc, k) {
			c.trash = append(c.trash[:i:i], c.trash[i+1:]...)
			return d
		}
	}
	return nil
}

// EditDest replaces a real server's configuration (ipvsadm -e).
func (c *Control) EditDest(k service.Key, addr netip.Addr, port uint16, dc service.DestConfig) error {
	k, _ = normalise(k, service.Config{})
	addr = addr.Unmap()
	c.mu.Lock()
	defer c.mu.Unlock()
	_, s := c.find(k)
	if s == nil {
		return ErrServiceUndef
	}
	if err := c.validateDest(s, addr, dc); err != nil {
		return err
	}
	_, d := findDest(s, addr, port)
	if d == nil {
		return ErrNoDest
	}
	d.SetConfig(dc)
	if s.Sched != nil {
		s.Sched.UpdDest(s.Dests, d)
	}
	// The Service value is unchanged (the Dest is shared), but publish so
	// that readers of the snapshot see a new version for the edit.
	c.publish()
	return nil
}

// DeleteDest removes a real server from a service (ipvsadm -d). Its
// connections keep it alive in the trash.
func (c *Control) DeleteDest(k service.Key, addr netip.Addr, port uint16) error {
	k, _ = normalise(k, service.Config{})
	addr = addr.Unmap()
	c.mu.Lock()
	defer c.mu.Unlock()
	i, s := c.find(k)
	if s == nil {
		return ErrServiceUndef
	}
	j, d := findDest(s, addr, port)
	if d == nil {
		return ErrNoDest
	}
	dests := make([]*service.Dest, 0, len(s.Dests)-1)
	dests = append(append(dests, s.Dests[:j]...), s.Dests[j+1:]...)
	c.toTrash(d, c.clock.Nanotime())
	ns := *s
	ns.Dests = dests
	if ns.Sched != nil {
		ns.Sched.DelDest(dests, d)
	}
	c.services[i] = &ns
	c.publish()
	return nil
}

// Zero resets the counters and rates of one service and its destinations
// (ipvsadm -Z -t ...), or with k nil of every service and the global totals.
func (c *Control) Zero(k *service.Key) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k != nil {
		nk, _ := normalise(*k, service.Config{})
		_, s := c.find(nk)
		if s == nil {
			return ErrNoService
		}
		c.zeroService(s)
		return nil
	}
	for _, s := range c.services {
		c.zeroService(s)
	}
	c.zeroStats(c.total)
	return nil
}

// zeroService zeroes the counters and rates of a service and its
// destinations (ip_vs_zero_service). Called with mu held.
func (c *Control) zeroService(s *service.Service) {
	c.zeroStats(s.Stats)
	for _, d := range s.Dests {
		c.zeroStats(d.Stats)
	}
}

func (c *Control) zeroStats(st *stats.Counters) {
	if e := c.entries[st]; e != nil {
		e.Zero()
		return
	}
	st.Zero()
}

// Trash returns the deleted destinations still kept (for listings and tests).
func (c *Control) Trash() []*service.Dest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*service.Dest(nil), c.trash...)
}

// CollectTrash frees trashed destinations that no connection refers to and
// that have been idle for the trash period (the kernel's
// ip_vs_dest_trash_expire). It returns how many were freed. The owner calls
// it every trashPeriod/2.
func (c *Control) CollectTrash() int {
	now := c.clock.Nanotime()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	kept := c.trash[:0]
	for _, d := range c.trash {
		if d.Conns() == 0 && d.PersistConns() == 0 && now-d.IdleSince() >= int64(trashPeriod) {
			c.registry.Free(d.ID)
			c.stopEstimator(d.Stats, true)
			n++
			continue
		}
		kept = append(kept, d)
	}
	clear(c.trash[len(kept):])
	c.trash = kept
	return n
}

// TrashInterval is how often the owner should call CollectTrash.
const TrashInterval = trashPeriod / 2
