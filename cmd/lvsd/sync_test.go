package main

import (
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/ipvssync"
	"golvs/internal/keepalived"
)

// parseSyncFlags parses args with the sync flags alone.
func parseSyncFlags(args ...string) (syncOpts, error) {
	var o syncOpts
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	return o, o.check()
}

func TestSyncFlags(t *testing.T) {
	o, err := parseSyncFlags("--sync-peers", "198.18.1.2, 198.18.1.3:9000,[2001:db8::2]:8848,2001:db8::3",
		"--sync-listen", "198.18.1.1", "--sync-sysctl", "sync_threshold=5 100", "--sync-sysctl", "sync_refresh_period=60",
		"--sync-sysctl", "sync_retries=2", "--sync-sysctl", "sync_persist_mode=1", "--sync-sysctl", "sync_version=0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := o.parse()
	if err != nil {
		t.Fatal(err)
	}
	wantPeers := []netip.AddrPort{netip.MustParseAddrPort("198.18.1.2:0"), netip.MustParseAddrPort("198.18.1.3:9000"),
		netip.MustParseAddrPort("[2001:db8::2]:8848"), netip.MustParseAddrPort("[2001:db8::3]:0")}
	if !slices.Equal(p.peers, wantPeers) || p.listen != netip.MustParseAddr("198.18.1.1") {
		t.Errorf("peers %v listen %v", p.peers, p.listen)
	}
	want := ipvssync.Sysctls{Version: 0, Threshold: 5, Period: 100, RefreshPeriod: time.Minute, Retries: 2, PersistMode: true}
	if p.sysctls != want {
		t.Errorf("sysctls %+v, want %+v", p.sysctls, want)
	}
	if o, _ := parseSyncFlags(); o != (syncOpts{}) {
		t.Errorf("defaults %+v", o)
	}
	if p, _ := (&syncOpts{}).parse(); p.sysctls != ipvssync.DefaultSysctls() || p.peers != nil {
		t.Errorf("default sysctls %+v", p)
	}
	for _, args := range [][]string{
		{"--sync-peers", "198.18.1"},
		{"--sync-peers", "224.0.0.81"},
		{"--sync-peers", "0.0.0.0:8848"},
		{"--sync-listen", "198.18.1.1"}, // without peers
		{"--sync-peers", "198.18.1.2", "--sync-listen", "x"},
		{"--sync-sysctl", "sync_threshold=3"},
		{"--sync-sysctl", "sync_threshold=50 50"}, // threshold not below the period
		{"--sync-sysctl", "sync_retries=4"},
		{"--sync-sysctl", "sync_version=2"},
		{"--sync-sysctl", "sync_refresh_period=-1"},
		{"--sync-sysctl", "sync_qlen_max=10"},
		{"--sync-sysctl", "sync_version"},
	} {
		if _, err := parseSyncFlags(args...); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// TestSyncHelp: every sync flag is documented in lvsd run --help.
func TestSyncHelp(t *testing.T) {
	var o syncOpts
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	o.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains("\n"+syncHelp, "\n    --"+f.Name+" ") {
			t.Errorf("--%s is not in syncHelp", f.Name)
		}
	})
}

func TestStartSync(t *testing.T) {
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 1024})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.WriteFile(keys, []byte("1 000102030405060708090a0b0c0d0e0f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := startSync(syncOpts{keyFile: keys}, eng, ctl, log)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if err := os.Chmod(keys, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := startSync(syncOpts{keyFile: keys}, eng, ctl, log); err == nil || !strings.Contains(err.Error(), "--sync-key-file") {
		t.Errorf("a world-readable key file: %v", err)
	}
	if _, err := startSync(syncOpts{keyFile: filepath.Join(dir, "none")}, eng, ctl, log); err == nil {
		t.Error("a missing key file was accepted")
	}
	// keepalived's lvs_sync_daemon: both roles without an instance, the
	// backup with one; none stops them.
	m, err = startSync(syncOpts{}, eng, ctl, log)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	roles := func() []string {
		var r []string
		for _, e := range m.List() {
			r = append(r, e.State+" "+e.MCastIfn)
		}
		return r
	}
	cfg := &keepalived.Config{}
	cfg.Global.LVSSyncDaemon = &keepalived.SyncDaemon{Interface: "lo", SyncID: 7, Port: 18848, TTL: 2, Group: ipvssync.DefaultGroup, MaxLen: 1200}
	if err := kaSyncDaemon(m, cfg); err != nil {
		t.Fatal(err)
	}
	if got := roles(); !slices.Equal(got, []string{"master lo", "backup lo"}) {
		t.Errorf("without an instance: %q", got)
	}
	if e := m.List()[0]; e != (ipvsadm.DaemonEntry{State: "master", MCastIfn: "lo", SyncID: 7, SyncMaxLen: 1200,
		MCastGroup: ipvssync.DefaultGroup, MCastPort: 18848, MCastTTL: 2}) {
		t.Errorf("master: %+v", e)
	}
	cfg.Global.LVSSyncDaemon.Instance = "VI_1"
	if err := kaSyncDaemon(m, cfg); err != nil {
		t.Fatal(err)
	}
	if got := roles(); !slices.Equal(got, []string{"backup lo"}) {
		t.Errorf("with an instance: %q", got)
	}
	if err := m.SetRole(true); err != nil || !slices.Equal(roles(), []string{"master lo"}) {
		t.Errorf("SetRole(true): %v %q", err, roles())
	}
	cfg.Global.LVSSyncDaemon = nil
	if err := kaSyncDaemon(m, cfg); err != nil || len(roles()) != 0 {
		t.Errorf("no lvs_sync_daemon: %v %q", err, roles())
	}
}
