package vsmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golvs/internal/control"
	"golvs/internal/service"
)

// Manager programs IPVS from the virtual servers of the configuration and
// the health checkers' reports, as keepalived's check process does. It is
// safe for concurrent use: Apply, SetHealth, Status and Shutdown are
// serialised by its mutex, which is taken before control's (lock order:
// Manager.mu, then control's). Scripts run on goroutines the Manager owns;
// Shutdown waits for them.
type Manager struct {
	ctl           *control.Control
	opts          Options
	log           *slog.Logger
	run           func(context.Context, string) error
	scriptTimeout time.Duration
	now           func() time.Time

	// scriptCtx is the parent of every script's context; cancelled by
	// Shutdown when its own context ends first.
	scriptCtx     context.Context
	cancelScripts context.CancelFunc
	scripts       sync.WaitGroup // running scripts; Add only under mu while !shut

	mu     sync.Mutex
	vss    []*vsState          // guarded by mu: configuration order
	byName map[string]*vsState // guarded by mu
	shut   bool                // guarded by mu: Shutdown has run
}

// New returns a Manager that programs ctl. It has no virtual servers
// until Apply.
func New(ctl *control.Control, opts Options) *Manager {
	m := &Manager{ctl: ctl, opts: opts, log: opts.Log, run: opts.RunScript,
		scriptTimeout: opts.ScriptTimeout, now: opts.Now, byName: map[string]*vsState{}}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	m.log = m.log.With("component", "vsmgr")
	if m.run == nil {
		m.run = runShell
	}
	if m.scriptTimeout <= 0 {
		m.scriptTimeout = defaultScriptTimeout
	}
	if m.now == nil {
		m.now = time.Now
	}
	m.scriptCtx, m.cancelScripts = context.WithCancel(context.Background())
	return m
}

// event collects what one call does: the control operations go to ctl
// inside one Batch; scripts and errors are gathered for the end.
type event struct {
	ctl      *control.Control
	log      *slog.Logger
	opts     *Options
	now      time.Time
	stopping bool
	scripts  []scriptRun
	errs     []error
}

func (m *Manager) newEvent(stopping bool) *event {
	return &event{ctl: m.ctl, log: m.log, opts: &m.opts, now: m.now(), stopping: stopping}
}

// notifyRS queues notify_up or notify_down of r, by its state
// (do_rs_notifies).
func (ev *event) notifyRS(vs *vsState, r *rsState) {
	cmd, kind := r.cfg.NotifyDown, "notify_down"
	if r.alive {
		cmd, kind = r.cfg.NotifyUp, "notify_up"
	}
	if cmd != "" {
		ev.scripts = append(ev.scripts, scriptRun{cmd: cmd, kind: kind, vs: vs.cfg.Name, rs: r.key().String(), stopping: ev.stopping})
	}
}

// notifyVS queues quorum_up or quorum_down (do_vs_notifies).
func (ev *event) notifyVS(vs *vsState) {
	cmd, kind := vs.cfg.QuorumDown, "quorum_down"
	if vs.quorumUp {
		cmd, kind = vs.cfg.QuorumUp, "quorum_up"
	}
	if cmd != "" {
		ev.scripts = append(ev.scripts, scriptRun{cmd: cmd, kind: kind, vs: vs.cfg.Name, stopping: ev.stopping})
	}
}

// Apply makes the manager's virtual servers those of vss. The first call
// creates everything (init_services); a later one is a reload
// (clear_diff_services, then init_services) and touches only what
// changed:
//
//   - A virtual server absent from vss is removed with its real servers;
//     those that were up and in IPVS run notify_down, and quorum_down runs
//     if the quorum was up (with FlushOnStop other than FlushNone only the
//     latter, as keepalived's clear_service_vs).
//   - An unchanged virtual server is not touched: no control call, so its
//     destinations keep their connections and counters.
//   - A changed one has its scheduler and flags edited (EditService) if
//     they changed; its services deleted with ipvsadm are created again;
//     removed real servers are deleted (their connections stay with the
//     destination in the trash: §3.8); real servers that stay keep their
//     health, checker states and weight adjustments, and are edited if
//     their forwarding, thresholds or weight changed; new ones start as
//     at startup (alpha checkers down). The quorum is then re-evaluated
//     with the new quorum and hysteresis.
//
// Services that exist already when the manager creates them are adopted
// (see addService). Apply validates vss first and changes nothing when it
// is invalid (ErrConfig). Errors of control operations do not stop it:
// they are logged, joined and returned with the Diff of what was applied.
func (m *Manager) Apply(vss []VirtualServer) (Diff, error) {
	if err := validate(vss); err != nil {
		return Diff{}, err
	}
	cfgs := make([]VirtualServer, len(vss))
	for i := range vss {
		cfgs[i] = cloneVS(vss[i])
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut {
		return Diff{}, ErrShutdown
	}
	ev := m.newEvent(false)
	var d Diff
	newByName := make(map[string]*VirtualServer, len(cfgs))
	for i := range cfgs {
		newByName[cfgs[i].Name] = &cfgs[i]
	}
	// Services deleted behind the manager's back, as the data path sees
	// them now (within the batch below the snapshot does not move).
	snap := m.ctl.Snapshot()
	missing := map[service.Key]bool{}
	for _, vs := range m.vss {
		for _, k := range vs.keys {
			if snap.Get(k) == nil {
				missing[k] = true
			}
		}
	}
	next := make([]*vsState, 0, len(cfgs))
	m.ctl.Batch(func() {
		// Removals first, so that a key that moves to another virtual
		// server is free when that one is created.
		for _, vs := range m.vss {
			nc := newByName[vs.cfg.Name]
			if nc == nil {
				m.log.Info("virtual server removed", "vs", vs.cfg.Name, "reason", "reload")
				for _, r := range vs.reals {
					d.RemovedRS = append(d.RemovedRS, vs.rsID(r))
				}
				ev.removeVS(vs, false, true)
				d.RemovedVS = append(d.RemovedVS, vs.cfg.Name)
				continue
			}
			kept := vs.keys[:0]
			for _, k := range vs.keys {
				if slices.ContainsFunc(nc.Keys, func(n service.Key) bool { return sameKey(n, k) }) {
					kept = append(kept, k)
					continue
				}
				m.log.Info("service removed from virtual server", "vs", vs.cfg.Name, "service", k.String(), "reason", "reload")
				ev.delService(vs, k)
			}
			vs.keys = kept
		}
		for i := range cfgs {
			nc := &cfgs[i]
			vs := m.byName[nc.Name]
			switch {
			case vs == nil:
				vs = ev.initVS(nc)
				d.AddedVS = append(d.AddedVS, nc.Name)
				for _, r := range vs.reals {
					d.AddedRS = append(d.AddedRS, vs.rsID(r))
				}
			case equalVS(&vs.cfg, nc):
				d.UnchangedVS = append(d.UnchangedVS, nc.Name)
			default:
				ev.reloadVS(vs, nc, missing, &d)
				d.ChangedVS = append(d.ChangedVS, nc.Name)
			}
			next = append(next, vs)
		}
	})
	m.vss = next
	m.byName = make(map[string]*vsState, len(next))
	for _, vs := range next {
		m.byName[vs.cfg.Name] = vs
	}
	m.launch(ev.scripts)
	return d, errors.Join(ev.errs...)
}

// initVS creates a virtual server that is new to the manager
// (init_service_vs without reload): its services, its real servers that
// start up (all but those with alpha checkers), then the quorum with
// init set, which brings the sorry server in when the quorum is not met.
func (ev *event) initVS(cfg *VirtualServer) *vsState {
	vs := &vsState{cfg: *cfg, prog: map[destKey]service.DestConfig{}}
	// set_quorum_states ran before any server was alive.
	vs.quorumUp = 0 >= int64(cfg.Quorum)+int64(cfg.Hysteresis)
	for _, rc := range cfg.Reals {
		vs.reals = append(vs.reals, newRS(rc, ev.now))
	}
	if cfg.Sorry != nil {
		vs.sorry = newRS(*cfg.Sorry, ev.now)
		vs.sorry.checkers, vs.sorry.failed = nil, 0
	}
	ev.log.Info("virtual server added", "vs", cfg.Name, "reason", "configuration")
	fresh := map[service.Key]bool{}
	for _, k := range cfg.Keys {
		if ev.addService(vs, k, cfg.Config) {
			vs.keys = append(vs.keys, k)
			fresh[k] = true
		}
	}
	for _, r := range vs.reals {
		ev.initRS(vs, r)
	}
	ev.updateQuorumState(vs, true)
	ev.reconcile(vs, fresh)
	return vs
}

// initRS is init_service_rs for a real server new to the manager: up now
// unless a checker is down (alpha).
func (ev *event) initRS(vs *vsState, r *rsState) {
	if r.failed > 0 || r.alive {
		ev.log.Info("real server added", "vs", vs.cfg.Name, "rs", r.key().String(),
			"from", "none", "to", upDown(r.alive), "reason", "alpha: down until its first successful check")
		return
	}
	r.alive = true
	r.lastChange = ev.now
	ev.log.Info("real server added", "vs", vs.cfg.Name, "rs", r.key().String(),
		"from", "none", "to", "up", "reason", "configuration")
	if ev.opts.RSInitNotifies {
		ev.notifyRS(vs, r)
	}
}

// reloadVS applies a changed configuration to a surviving virtual server
// (clear_diff_services for one virtual server, then init_service_vs with
// reload). Keys no longer configured were deleted by the caller.
//
// Two departures from 2.2.7, both to avoid spurious scripts: keepalived
// runs update_vs_notifies on the old virtual server after removing real
// servers and then update_quorum_state on the new one, which can run
// quorum_down twice, or once while the quorum stays up; here the quorum is
// evaluated once, on the new configuration. And the sorry server's state
// is carried before the real servers' are, so that a real server coming
// up during the migration sees the sorry server that serves.
func (ev *event) reloadVS(vs *vsState, nc *VirtualServer, missing map[service.Key]bool, d *Diff) {
	old := vs.cfg
	ev.log.Info("virtual server changed", "vs", nc.Name, "reason", "reload")
	fresh := map[service.Key]bool{}
	var keys []service.Key
	for _, k := range nc.Keys {
		switch {
		case !vs.owns(k):
			// New in the group, or its creation failed before.
			if ev.addService(vs, k, nc.Config) {
				keys = append(keys, k)
				fresh[k] = true
			}
		case missing[k]:
			ev.log.Warn("re-creating service deleted behind the manager's back", "vs", nc.Name, "service", k.String(),
				"reason", "its virtual server changed at a reload")
			if ev.addService(vs, k, nc.Config) {
				keys = append(keys, k)
				fresh[k] = true
			}
		case nc.Config != old.Config:
			owned, recreated := ev.editService(vs, k, nc.Config)
			if owned {
				keys = append(keys, k)
				fresh[k] = recreated
			}
		default:
			keys = append(keys, k)
		}
	}
	vs.keys = keys

	// Real servers: carry the survivors, create the new ones.
	oldRS := make(map[destKey]*rsState, len(vs.reals))
	for _, r := range vs.reals {
		oldRS[r.key()] = r
	}
	type carried struct {
		r      *rsState
		before int64
	}
	var reals []*rsState
	var kept []carried
	var added []*rsState
	for _, rc := range nc.Reals {
		dk := destKey{rc.Addr, rc.Port}
		if r := oldRS[dk]; r != nil {
			delete(oldRS, dk)
			if !equalRS(&r.cfg, &rc) {
				d.ChangedRS = append(d.ChangedRS, RSID{nc.Name, rc.Addr, rc.Port})
			}
			before := r.effective()
			r.migrate(rc)
			reals = append(reals, r)
			kept = append(kept, carried{r, before})
			continue
		}
		r := newRS(rc, ev.now)
		reals = append(reals, r)
		added = append(added, r)
		d.AddedRS = append(d.AddedRS, RSID{nc.Name, rc.Addr, rc.Port})
	}
	for _, r := range vs.reals {
		if oldRS[r.key()] == nil {
			continue
		}
		ev.log.Info("real server removed", "vs", nc.Name, "rs", r.key().String(), "reason", "reload")
		ev.clearRS(vs, r, false)
		d.RemovedRS = append(d.RemovedRS, vs.rsID(r))
	}

	// The sorry server keeps its state if it is the same server.
	same := vs.sorry != nil && nc.Sorry != nil &&
		vs.sorry.cfg.Addr == nc.Sorry.Addr && vs.sorry.cfg.Port == nc.Sorry.Port
	if vs.sorry != nil && !same {
		ev.log.Info("sorry server removed", "vs", nc.Name, "rs", vs.sorry.key().String(),
			"from", sorryState(vs.sorry.alive), "to", "none", "reason", "reload")
	}
	switch {
	case nc.Sorry == nil:
		vs.sorry = nil
	case same:
		vs.sorry.cfg = *nc.Sorry
	default:
		vs.sorry = newRS(*nc.Sorry, ev.now)
		vs.sorry.checkers, vs.sorry.failed = nil, 0
	}
	vs.cfg = *nc
	vs.reals = reals

	// migrate_checkers: a surviving server with no failed checker left
	// is up.
	for _, c := range kept {
		if c.r.failed == 0 && !c.r.alive {
			ev.performSvrState(vs, c.r, true, "reload: no failed checker")
		}
	}
	// set_effective_weights, then init_service_rs on reloaded servers.
	for _, c := range kept {
		ev.updateWeight(vs, c.r, c.before, false)
	}
	for _, r := range added {
		ev.initRS(vs, r)
	}
	ev.updateQuorumState(vs, true)
	ev.reconcile(vs, fresh)
}

// removeVS is clear_service_vs: the real servers go (notify_down for
// those that were up and in IPVS, with FlushNone), the quorum goes down
// (quorum_down if it was up, or at shutdown with omega), and the services
// are deleted unless deleteServices is false (the caller flushed).
func (ev *event) removeVS(vs *vsState, stopping, deleteServices bool) {
	if ev.opts.FlushOnStop == FlushNone {
		if vs.sorry != nil {
			vs.sorry.alive = false
		}
		for _, r := range vs.reals {
			ev.clearRS(vs, r, stopping)
		}
	}
	ev.updateVSNotifies(vs, stopping)
	if deleteServices {
		for _, k := range vs.keys {
			ev.delService(vs, k)
		}
	}
	vs.keys = nil
	vs.prog = map[destKey]service.DestConfig{}
	vs.progOrder = nil
}

// SetHealth takes a checker's verdict on a real server: the checker's
// weight contribution first (update_svr_wgt, which may move the quorum),
// then its state (update_svr_checker_state). A report for a real server
// or checker the manager does not know (one removed by a reload) is
// ignored. The IPVS changes of one report are published as one snapshot.
func (m *Manager) SetHealth(id RSID, r Report) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shut {
		return
	}
	vs := m.byName[id.VS]
	var rs *rsState
	if vs != nil {
		rs = vs.findRS(id.Addr, id.Port)
	}
	if rs == nil || r.Checker < 0 || r.Checker >= len(rs.checkers) {
		m.log.Debug("health report ignored", "rs", id.String(), "checker", r.Checker,
			"reason", "no such real server or checker in the configuration")
		return
	}
	ev := m.newEvent(false)
	c := &rs.checkers[r.Checker]
	if r.Up && r.HasWeight {
		before := rs.effective()
		c.weight, c.hasWeight, c.absolute = r.Weight, true, r.Absolute
		ev.updateWeight(vs, rs, before, true)
	}
	if !r.Up {
		// A failed checker loses its weight contribution without an
		// IPVS edit (check_misc.c, track_file.c); the server is down.
		c.weight, c.hasWeight, c.absolute = 0, false, false
	}
	ev.checkerResult(vs, rs, r.Checker, r.Up)
	m.ctl.Batch(func() { ev.reconcile(vs, nil) })
	m.launch(ev.scripts)
}

// Status returns the state of every virtual server in configuration
// order. Whether a destination is in IPVS is read from the current
// snapshot.
func (m *Manager) Status() []VSStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	snap := m.ctl.Snapshot()
	out := make([]VSStatus, 0, len(m.vss))
	for _, vs := range m.vss {
		st := VSStatus{
			Name:        vs.cfg.Name,
			Keys:        slices.Clone(vs.cfg.Keys),
			QuorumUp:    vs.quorumUp,
			Quorum:      vs.cfg.Quorum,
			Hysteresis:  vs.cfg.Hysteresis,
			WeightSum:   vs.weightSum(),
			SorryActive: vs.sorryActive(),
		}
		for _, r := range vs.reals {
			st.Reals = append(st.Reals, vs.rsStatus(r, snap))
		}
		if vs.sorry != nil {
			s := vs.rsStatus(vs.sorry, snap)
			st.Sorry = &s
		}
		out = append(out, st)
	}
	return out
}

func (vs *vsState) rsStatus(r *rsState, snap *service.Snapshot) RSStatus {
	st := RSStatus{
		ID:               vs.rsID(r),
		ConfiguredWeight: r.cfg.Dest.Weight,
		EffectiveWeight:  realWeight(r.effective()),
		Up:               r.alive,
		FailedCheckers:   r.failed,
		LastChange:       r.lastChange,
		InIPVS:           len(vs.cfg.Keys) > 0,
	}
	for i, k := range vs.cfg.Keys {
		var d *service.Dest
		if svc := snap.Get(k); svc != nil {
			port := destPort(k, r.cfg.Port, r.cfg.Dest.Fwd)
			for _, x := range svc.Dests {
				if x.Addr == r.cfg.Addr && x.Port == port {
					d = x
					break
				}
			}
		}
		if d == nil {
			st.InIPVS = false
			continue
		}
		if i == 0 {
			st.IPVSWeight = d.Weight()
		}
	}
	return st
}

// Shutdown removes what the manager put in IPVS, as keepalived does when
// it stops (clear_services): with FlushNone each real server, then each
// service; with FlushVS each service; with FlushAll everything in IPVS.
// With omega, notify_down runs for each real server that was up and in
// IPVS (FlushNone only) and quorum_down for the virtual server, each
// bounded to 1 s as keepalived bounds them at exit. Shutdown then waits
// for every script still running until ctx is done, when it kills them.
// Later calls do nothing. It returns the errors of control operations.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.shut {
		m.mu.Unlock()
		return nil
	}
	m.shut = true
	ev := m.newEvent(true)
	m.ctl.Batch(func() {
		if m.opts.FlushOnStop == FlushAll {
			m.log.Info("flushing IPVS", "reason", "shutdown, lvs_flush_on_stop")
			m.ctl.Flush()
		}
		for _, vs := range m.vss {
			m.log.Info("virtual server removed", "vs", vs.cfg.Name, "reason", "shutdown")
			ev.removeVS(vs, true, m.opts.FlushOnStop != FlushAll)
		}
	})
	m.vss, m.byName = nil, map[string]*vsState{}
	m.launch(ev.scripts)
	m.mu.Unlock()

	done := make(chan struct{})
	go func() {
		m.scripts.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		m.cancelScripts()
		<-done
	}
	m.cancelScripts()
	return errors.Join(ev.errs...)
}

// validate checks what the parser guarantees and the manager relies on.
func validate(vss []VirtualServer) error {
	names := map[string]bool{}
	var keys []service.Key
	for i := range vss {
		vs := &vss[i]
		if vs.Name == "" {
			return fmt.Errorf("virtual server %d has no name: %w", i, ErrConfig)
		}
		if names[vs.Name] {
			return fmt.Errorf("virtual server %q twice: %w", vs.Name, ErrConfig)
		}
		names[vs.Name] = true
		if len(vs.Keys) == 0 {
			return fmt.Errorf("virtual server %q has no service: %w", vs.Name, ErrConfig)
		}
		for _, k := range vs.Keys {
			if slices.ContainsFunc(keys, func(o service.Key) bool { return sameKey(o, k) }) {
				return fmt.Errorf("service %v in two virtual servers (or twice in %q): %w", k, vs.Name, ErrConfig)
			}
			keys = append(keys, k)
		}
		if vs.Quorum < 0 || vs.Hysteresis < 0 {
			return fmt.Errorf("virtual server %q: negative quorum or hysteresis: %w", vs.Name, ErrConfig)
		}
		seen := map[destKey]bool{}
		for _, r := range vs.Reals {
			dk := destKey{r.Addr, r.Port}
			if !r.Addr.IsValid() || seen[dk] {
				return fmt.Errorf("virtual server %q: real server %v invalid or twice: %w", vs.Name, dk, ErrConfig)
			}
			seen[dk] = true
			if r.Dest.Weight < 0 {
				return fmt.Errorf("virtual server %q: real server %v: negative weight: %w", vs.Name, dk, ErrConfig)
			}
			ids := map[string]bool{}
			for _, c := range r.Checkers {
				if ids[c.ID] {
					return fmt.Errorf("virtual server %q: real server %v: checker ID %q twice: %w", vs.Name, dk, c.ID, ErrConfig)
				}
				ids[c.ID] = true
			}
		}
		if s := vs.Sorry; s != nil && (!s.Addr.IsValid() || s.Dest.Weight < 0) {
			return fmt.Errorf("virtual server %q: invalid sorry server: %w", vs.Name, ErrConfig)
		}
	}
	return nil
}

// cloneVS copies a configuration so that the caller may reuse its slices.
func cloneVS(v VirtualServer) VirtualServer {
	c := v
	c.Keys = make([]service.Key, len(v.Keys))
	for i, k := range v.Keys {
		c.Keys[i] = normKey(k)
	}
	c.Reals = make([]RealServer, len(v.Reals))
	for i, r := range v.Reals {
		c.Reals[i] = cloneRS(r)
	}
	if v.Sorry != nil {
		s := cloneRS(*v.Sorry)
		c.Sorry = &s
	}
	return c
}

func cloneRS(r RealServer) RealServer {
	r.Addr = r.Addr.Unmap()
	r.Checkers = slices.Clone(r.Checkers)
	return r
}

func equalRS(a, b *RealServer) bool {
	return a.Addr == b.Addr && a.Port == b.Port && a.Dest == b.Dest &&
		a.InhibitOnFailure == b.InhibitOnFailure && a.NotifyUp == b.NotifyUp &&
		a.NotifyDown == b.NotifyDown && slices.Equal(a.Checkers, b.Checkers)
}

// equalVS reports whether a reload leaves a virtual server unchanged.
func equalVS(a, b *VirtualServer) bool {
	if a.Name != b.Name || a.Config != b.Config || a.SorryInhibit != b.SorryInhibit ||
		a.Quorum != b.Quorum || a.Hysteresis != b.Hysteresis || a.QuorumUp != b.QuorumUp ||
		a.QuorumDown != b.QuorumDown || a.Omega != b.Omega ||
		!slices.Equal(a.Keys, b.Keys) || len(a.Reals) != len(b.Reals) || (a.Sorry == nil) != (b.Sorry == nil) {
		return false
	}
	for i := range a.Reals {
		if !equalRS(&a.Reals[i], &b.Reals[i]) {
			return false
		}
	}
	return a.Sorry == nil || equalRS(a.Sorry, b.Sorry)
}

func sorryState(in bool) string {
	if in {
		return "in"
	}
	return "out"
}
