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

	// syncInst is lvs_sync_daemon's instance ("" for none: the sync
	// daemon's role does not follow VRRP); setRole is the sync daemon's
	// SetRole. Read by the instances' goroutines.
	syncInst atomic.Pointer[string]
	setRole  atomic.Pointer[func(master bool)]
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
// STOP): the connection-sync daemon's role.
func (v *directorVRRP) SetSyncRole(f func(master bool)) {
	v.setRole.Store(&f)
}

// onState is the daemon's OnState hook: it drives the connection-sync
// role of lvs_sync_daemon's instance (keepalived's
// vrrp_state_become_master / leave_master calling
// ipvs_syncd_master/ipvs_syncd_backup).
func (v *directorVRRP) onState(instance string, st vrrp.State) {
	inst := v.syncInst.Load()
	if inst == nil || *inst != instance {
		return
	}
	if f := v.setRole.Load(); f != nil && *f != nil {
		(*f)(st == vrrp.Master)
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
	v.mu.Lock()
	d := v.d
	v.mu.Unlock()
	if d == nil {
		return nil
	}
	return d.Status()
}
