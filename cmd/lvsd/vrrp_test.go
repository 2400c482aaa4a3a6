package main

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"

	"golvs/internal/keepalived"
	"golvs/internal/vrrp"
	"golvs/internal/vrrpd"
)

// TestDirectorVRRP: a configuration without vrrp_instance opens nothing;
// the state changes of lvs_sync_daemon's instance (and only those) give
// the connection-sync daemon its role; Stop is final.
func TestDirectorVRRP(t *testing.T) {
	cfg := &keepalived.Config{Global: keepalived.GlobalDefs{
		LVSSyncDaemon: &keepalived.SyncDaemon{Interface: "eth1", Instance: "VI_1"},
	}}
	v, err := startVRRP(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if v.d != nil || v.Status() != nil {
		t.Errorf("a daemon without any vrrp_instance")
	}
	var roles []bool
	v.onState("VI_1", vrrp.Master) // no SetSyncRole yet: nothing to call
	v.SetSyncRole(func(master bool) { roles = append(roles, master) })
	for _, s := range []struct {
		inst  string
		state vrrp.State
	}{{"VI_1", vrrp.Backup}, {"VI_2", vrrp.Master}, {"VI_1", vrrp.Master}, {"VI_1", vrrp.Fault}, {"VI_1", vrrp.Stop}} {
		v.onState(s.inst, s.state)
	}
	if want := []bool{false, true, false, false}; !slices.Equal(roles, want) {
		t.Errorf("roles %v, want %v", roles, want)
	}
	// A reload without lvs_sync_daemon: the role no longer follows.
	if err := v.Apply(&keepalived.Config{}); err != nil {
		t.Fatal(err)
	}
	v.onState("VI_1", vrrp.Master)
	if len(roles) != 4 {
		t.Errorf("role set without lvs_sync_daemon: %v", roles)
	}
	if err := v.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := v.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := v.Apply(cfg); !errors.Is(err, vrrpd.ErrClosed) {
		t.Errorf("Apply after Stop: %v, want vrrpd.ErrClosed", err)
	}
}
