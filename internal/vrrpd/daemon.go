package vrrpd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"golvs/internal/keepalived"
	"golvs/internal/vrrp"
)

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("vrrpd: daemon closed")

// Options configures a Daemon.
type Options struct {
	// Log receives the daemon's messages (state transitions at Info);
	// nil discards them.
	Log *slog.Logger
	// OnState, if set, is called after every state change of an
	// instance (BACKUP, MASTER, FAULT, STOP), once the change's actions
	// are done (the VIPs added or removed). It runs on the instance's
	// goroutine and must return quickly; lvsd drives the connection-sync
	// role with it (keepalived's lvs_sync_daemon ... inst NAME).
	OnState func(instance string, state vrrp.State)
	// NotifyTimeout bounds each notify script; 0 means
	// DefaultNotifyTimeout.
	NotifyTimeout time.Duration
}

// DefaultNotifyTimeout bounds a notify script. keepalived does not bound
// them; GoLVS does so that a hung script cannot pile up one process per
// transition. 30 s is vsmgr's bound for its scripts, and keepalived's own
// smtp_connect_timeout default: a script mailing an alert has time.
const DefaultNotifyTimeout = 30 * time.Second

// Daemon runs the vrrp_instance blocks of a keepalived configuration.
//
// Ownership: Apply and Close are serialised (applyMu) and own the set of
// units. Each unit, a lone instance or a vrrp_sync_group, has one
// goroutine that owns its vrrp.Instance (or vrrp.Group) and performs its
// actions: adverts, addresses, announcements. Each instance has a reader
// goroutine on its socket feeding the unit. The daemon owns the link
// watcher (track_interface and the instances' interfaces), one goroutine
// per vrrp_script in use, and the notify scripts (one goroutine per unit
// with scripts queued, running them in order). Trackers' results live in
// the daemon (mu) and units are kicked to re-read them. All methods are
// safe for concurrent use.
type Daemon struct {
	log           *slog.Logger
	onState       func(string, vrrp.State)
	notifyTimeout time.Duration
	sys           netSys
	// runScript runs a script (the tests replace it).
	runScript func(ctx context.Context, args []string, s *keepalived.Script) error

	ctx    context.Context // the daemon's life: watcher, scripts
	cancel context.CancelFunc
	bg     sync.WaitGroup // the link watcher and the track scripts' goroutines

	applyMu sync.Mutex
	started bool // the first Apply ran (vrrp_startup_delay is for it only)
	closed  bool

	mu      sync.Mutex
	units   map[string]*unit // by unitSpec.Key; changed under applyMu and mu
	links   map[string]bool  // interface name -> up and running
	scripts map[string]*trackScriptState
	held    map[netip.Prefix]string // VIPs added by a unit (its key)

	notify notifier
}

// New returns a daemon acting on the host's network namespace (that of
// the calling thread) with no instance; Apply gives it a configuration.
func New(opts Options) (*Daemon, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sys, err := newHostSys(log)
	if err != nil {
		return nil, err
	}
	d, err := newDaemon(opts, log, sys)
	if err != nil {
		sys.Close()
		return nil, err
	}
	return d, nil
}

// newDaemon starts a daemon over sys, which it closes on Close.
func newDaemon(opts Options, log *slog.Logger, sys netSys) (*Daemon, error) {
	d := &Daemon{
		log: log, onState: opts.OnState, notifyTimeout: opts.NotifyTimeout, sys: sys,
		runScript: runScript,
		units:     map[string]*unit{}, links: map[string]bool{},
		scripts: map[string]*trackScriptState{}, held: map[netip.Prefix]string{},
	}
	if d.notifyTimeout <= 0 {
		d.notifyTimeout = DefaultNotifyTimeout
	}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.notify.init(d)
	// The link watcher: New returns once it has reported every existing
	// link, so that units start with the links' state.
	ready := make(chan error, 1)
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		err := sys.WatchLinks(d.ctx, d.setLink, func() { ready <- nil })
		select {
		case ready <- err: // it failed (or ended) before it started
		default:
			if err != nil {
				d.log.Error("interface tracking stopped", "err", err)
			}
		}
	}()
	if err := <-ready; err != nil {
		d.cancel()
		d.bg.Wait()
		return nil, fmt.Errorf("vrrpd: watch interfaces: %w", err)
	}
	return d, nil
}

// setLink records an interface's state and kicks the units.
func (d *Daemon) setLink(name string, up bool) {
	d.mu.Lock()
	old, known := d.links[name]
	d.links[name] = up
	d.mu.Unlock()
	if !known || old != up {
		d.kickAll()
	}
}

// linkUp reports an interface's state: the watcher's, else asked now.
func (d *Daemon) linkUp(name string) bool {
	d.mu.Lock()
	up, ok := d.links[name]
	d.mu.Unlock()
	if ok {
		return up
	}
	l, err := d.sys.Link(name)
	return err == nil && l.Up
}

// kickAll asks every unit to re-read its trackers.
func (d *Daemon) kickAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, u := range d.units {
		u.kickTrackers()
	}
}

// Apply makes cfg's VRRP instances the running ones (keepalived's reload
// on SIGHUP): instances and sync groups whose configuration is unchanged
// keep running untouched; removed ones stop (a master sends priority 0
// and removes its VIPs; notify_deleted, or notify_fault, runs); changed
// ones stop and start again; new ones start. An instance that cannot run
// (its interface is missing, ...) is left out and reported in the error;
// the others run.
func (d *Daemon) Apply(cfg *keepalived.Config) error {
	specs, warns, errs := buildSpecs(cfg)
	for _, w := range warns {
		d.log.Warn("configuration", "warning", w)
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if d.closed {
		return ErrClosed
	}
	var delay time.Duration
	if !d.started {
		d.started = true
		delay = cfg.Global.VRRPStartupDelay
	}
	want := map[string]*unitSpec{}
	for _, s := range specs {
		want[s.Key] = s
	}
	// Stop what goes or changes first: a changed unit frees its VIPs,
	// sockets and scripts before its new form takes them.
	d.mu.Lock()
	var stopping []*unit
	for key, u := range d.units {
		if s, ok := want[key]; !ok || s.FP != u.spec.FP {
			stopping = append(stopping, u)
		}
	}
	d.mu.Unlock()
	slices.SortFunc(stopping, func(a, b *unit) int { return cmp.Compare(a.spec.Key, b.spec.Key) })
	for _, u := range stopping {
		_, kept := want[u.spec.Key]
		u.stop(!kept)
		d.removeUnit(u)
		if kept {
			d.log.Info("VRRP configuration changed: restarting", "unit", u.spec.Key)
		} else {
			d.log.Info("VRRP instance removed", "unit", u.spec.Key)
		}
	}
	for _, s := range specs {
		d.mu.Lock()
		_, running := d.units[s.Key]
		d.mu.Unlock()
		if running {
			continue
		}
		u, err := d.startUnit(s, delay)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Key, err))
			d.log.Error("VRRP cannot start", "unit", s.Key, "err", err)
			continue
		}
		d.mu.Lock()
		d.units[s.Key] = u
		d.mu.Unlock()
		u.kickTrackers() // links may have changed since the unit read them
	}
	return errors.Join(errs...)
}

// removeUnit forgets a stopped unit and releases its scripts.
func (d *Daemon) removeUnit(u *unit) {
	d.mu.Lock()
	delete(d.units, u.spec.Key)
	d.mu.Unlock()
	d.releaseScripts(u.spec)
}

// Close stops every instance as keepalived stops (SIGTERM): a master
// sends a priority-0 advert so that its backup takes over within skew
// time, every VIP is removed, notify_stop and notify (STOP) run. It waits
// for the notify scripts until ctx ends, then kills them.
func (d *Daemon) Close(ctx context.Context) error {
	d.applyMu.Lock()
	if d.closed {
		d.applyMu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Lock()
	units := make([]*unit, 0, len(d.units))
	for _, u := range d.units {
		units = append(units, u)
	}
	d.mu.Unlock()
	// Stop the units together: each sends its priority-0 adverts at
	// once rather than after the others' shutdown.
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u.stop(false)
		}()
	}
	wg.Wait()
	for _, u := range units {
		d.removeUnit(u)
	}
	d.applyMu.Unlock()
	d.cancel()
	d.bg.Wait()
	err := d.notify.wait(ctx)
	return errors.Join(err, d.sys.Close())
}

// Status returns every instance's state and counters, by name.
func (d *Daemon) Status() []Status {
	d.mu.Lock()
	var ms []*member
	for _, u := range d.units {
		ms = append(ms, u.members...)
	}
	d.mu.Unlock()
	out := make([]Status, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.status())
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Instance, b.Instance) })
	return out
}
