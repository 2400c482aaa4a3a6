package main

// lvsd -f keepalived.conf: the file's vrrp_instance and vrrp_sync_group
// blocks, run by package vrrpd (keepalived's VRRP process), and the hook
// that gives the connection-sync daemon its role from lvs_sync_daemon's
// instance.

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"golvs/internal/keepalived"
	"golvs/internal/vrrp"
	"golvs/internal/vrrpd"
)

// directorVRRP is lvsd's VRRP: a vrrpd.Daemon, made when a configuration
// first has a vrrp_instance (a file without one opens no socket), given
// every configuration after that. Safe for concurrent use; Apply and Stop
// are serialised.
type directorVRRP struct {
	log *slog.Logger

	mu      sync.Mutex
	d       *vrrpd.Daemon // nil until a configuration has an instance
	stopped bool
	// dp is d for Status, which must not wait for mu: Apply holds mu
	// while instances stop, and their OnState hook may wait for roleMu,
	// held by SetSyncRole while it reads the status.
	dp atomic.Pointer[vrrpd.Daemon]

	// syncInst is lvs_sync_daemon's instance ("" for none: the sync
	// daemon's role does not follow VRRP). Read by the instances'
	// goroutines.
	syncInst atomic.Pointer[string]
	// roleMu orders the calls of setRole, the sync daemon's SetRole.
	roleMu  sync.Mutex
	setRole func(master bool)
}

// startVRRP runs the VRRP instances of cfg (none is fine: a reload may
// bring some). An instance that cannot start (its interface is missing)
// is an error, as keepalived refuses to start; the caller stops lvsd.
func startVRRP(cfg *keepalived.Config, log *slog.Logger) (*directorVRRP, error) {
	v := &directorVRRP{log: log}
	if err := v.Apply(cfg); err != nil {
		v.Stop(context.Background())
		return nil, err
	}
	return v, nil
}

// SetSyncRole sets the function called with true when lvs_sync_daemon's
// instance becomes MASTER and false when it leaves MASTER (BACKUP, FAULT,
// STOP): the connection-sync daemon's role. It is called at once with the
// instance's current role if the instance runs, so that a transition
// before SetSyncRole (an address owner is MASTER at start) is not lost.
func (v *directorVRRP) SetSyncRole(f func(master bool)) {
	v.roleMu.Lock()
	defer v.roleMu.Unlock()
	v.setRole = f
	inst := v.syncInst.Load()
	if f == nil || inst == nil || *inst == "" {
		return
	}
	for _, s := range v.Status() {
		if s.Instance == *inst && s.State != vrrp.Init {
			f(s.State == vrrp.Master)
		}
	}
}

// onState is the daemon's OnState hook: it drives the connection-sync
// role of lvs_sync_daemon's instance (keepalived's
// vrrp_state_become_master / leave_master calling
// ipvs_syncd_master/ipvs_syncd_backup). The daemon updates the status
// before it calls the hook, so SetSyncRole's replay and the hook's calls,
// serialised by roleMu, end with the current role.
func (v *directorVRRP) onState(instance string, st vrrp.State) {
	inst := v.syncInst.Load()
	if inst == nil || *inst != instance {
		return
	}
	v.roleMu.Lock()
	defer v.roleMu.Unlock()
	if v.setRole != nil {
		v.setRole(st == vrrp.Master)
	}
}

// Apply makes cfg's instances the running ones (at start and on every
// reload: unchanged instances keep running, see vrrpd.Daemon.Apply).
func (v *directorVRRP) Apply(cfg *keepalived.Config) error {
	inst := ""
	if sd := cfg.Global.LVSSyncDaemon; sd != nil {
		inst = sd.Instance
	}
	v.syncInst.Store(&inst)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return vrrpd.ErrClosed
	}
	if v.d == nil {
		if len(cfg.VRRPInstances) == 0 {
			return nil
		}
		d, err := vrrpd.New(vrrpd.Options{Log: v.log, OnState: v.onState})
		if err != nil {
			return err
		}
		v.d = d
		v.dp.Store(d)
	}
	return v.d.Apply(cfg)
}

// Stop stops every instance as keepalived does on SIGTERM: masters send
// priority 0 (their backups take over within skew time) and remove their
// VIPs, notify_stop scripts run (waited for until ctx ends). Stopping
// again does nothing.
func (v *directorVRRP) Stop(ctx context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return nil
	}
	v.stopped = true
	if v.d == nil {
		return nil
	}
	return v.d.Close(ctx)
}

// Status is every instance's state and counters (for the API).
func (v *directorVRRP) Status() []vrrpd.Status {
	d := v.dp.Load()
	if d == nil {
		return nil
	}
	return d.Status()
}
