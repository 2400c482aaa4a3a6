package main

// lvsd -f keepalived.conf: the virtual servers of the file (package
// vsmgr, keepalived's ipwrapper), their health checkers (package check),
// and reloads on SIGHUP and through the API.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golvs/internal/api"
	"golvs/internal/check"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/keepalived"
	"golvs/internal/service"
	"golvs/internal/syncd"
	"golvs/internal/vsmgr"
	"golvs/internal/web"
)

// kaRuntime runs a keepalived.conf. Reloads and the monitors map are
// serialised by mu; the Manager has its own lock, and Monitors call it
// from their goroutines.
type kaRuntime struct {
	path string
	log  *slog.Logger
	ctl  *control.Control
	eng  *engine.Engine
	mgr  *vsmgr.Manager

	mu       sync.Mutex
	cfg      *keepalived.Config
	monitors map[vsmgr.RSID]*rsMonitor
	warned   map[string]bool // warnings already logged (once per text)
	stopped  bool
	syncMgr  *syncd.Manager // lvs_sync_daemon's manager (setSync); nil before
	vrrp     *directorVRRP  // the file's VRRP instances (vrrp.go); nil while starting
}

// rsMonitor is the health checking of one real server of one virtual
// server: a check.Monitor and what it was made from, so that a reload
// that leaves them unchanged keeps it running.
type rsMonitor struct {
	m  *check.Monitor
	fp string
	// lat[i] is checker i's probe durations (nil for FILE_CHECK, which
	// probes nothing).
	lat []*web.Histogram
}

// loadKeepalived parses path, returning the configuration, its warnings
// as text, and an error wrapping api.ErrBadConfig with every error.
func loadKeepalived(path string) (*keepalived.Config, []string, error) {
	cfg, diags, err := keepalived.Parse(path, keepalived.Options{})
	var warnings []string
	for _, d := range diags {
		if d.Warning {
			warnings = append(warnings, d.String())
		}
	}
	if err != nil {
		var msgs []string
		for _, d := range diags {
			if !d.Warning {
				msgs = append(msgs, d.String())
			}
		}
		if len(msgs) == 0 {
			msgs = append(msgs, err.Error())
		}
		return nil, warnings, fmt.Errorf("%w: %s", api.ErrBadConfig, strings.Join(msgs, "; "))
	}
	return cfg, warnings, nil
}

// startKeepalived loads path and applies it. A file that does not parse
// stops the director from starting.
func startKeepalived(path string, ctl *control.Control, eng *engine.Engine, log *slog.Logger) (*kaRuntime, error) {
	cfg, warnings, err := loadKeepalived(path)
	if err != nil {
		return nil, err
	}
	k := &kaRuntime{path: path, log: log, ctl: ctl, eng: eng, monitors: map[vsmgr.RSID]*rsMonitor{}, warned: map[string]bool{}}
	k.mgr = vsmgr.New(ctl, vsmgr.Options{Log: log, FlushOnStop: flushMode(cfg.Global.LVSFlushOnStop)})
	if cfg.Global.LVSFlush {
		ctl.Flush()
		log.Info("lvs_flush: flushed the virtual services")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.apply(cfg, warnings); err != nil {
		k.stopMonitorsLocked()
		return nil, err
	}
	v, err := startVRRP(cfg, log.With("subsystem", "vrrp"))
	if err != nil {
		k.stopMonitorsLocked()
		_ = k.mgr.Shutdown(context.Background())
		return nil, fmt.Errorf("%w: %w", api.ErrBadConfig, err)
	}
	k.vrrp = v
	return k, nil
}

func flushMode(f keepalived.FlushOnStop) vsmgr.FlushMode {
	switch f {
	case keepalived.FlushOnStopAll:
		return vsmgr.FlushAll
	case keepalived.FlushOnStopVS:
		return vsmgr.FlushVS
	}
	return vsmgr.FlushNone
}

// Reload reads the file again and applies the difference. A bad file
// changes nothing and is reported (api.ErrBadConfig).
func (k *kaRuntime) Reload() ([]string, error) {
	cfg, warnings, err := loadKeepalived(k.path)
	if err != nil {
		k.log.Error("configuration reload refused; keeping the running configuration", "file", k.path, "err", err)
		return warnings, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.stopped {
		return nil, errors.New("lvsd is stopping")
	}
	if err := k.apply(cfg, warnings); err != nil {
		k.log.Error("configuration reload applied with errors", "file", k.path, "err", err)
		return warnings, err
	}
	return warnings, nil
}

// apply makes cfg the running configuration. Called with mu held.
func (k *kaRuntime) apply(cfg *keepalived.Config, warnings []string) error {
	for _, w := range warnings {
		if !k.warned[w] {
			k.warned[w] = true
			k.log.Warn("configuration", "warning", w)
		}
	}
	k.warnUnacted(cfg)
	if t := cfg.Global.LVSTimeouts; t.TCP != 0 || t.TCPFin != 0 || t.UDP != 0 {
		if err := k.eng.SetTimeouts(t.TCP, t.TCPFin, t.UDP); err != nil {
			return fmt.Errorf("%w: lvs_timeouts: %w", api.ErrBadConfig, err)
		}
	}
	vss := virtualServers(cfg)
	diff, err := k.mgr.Apply(vss)
	if err != nil && errors.Is(err, vsmgr.ErrConfig) {
		return fmt.Errorf("%w: %w", api.ErrBadConfig, err)
	}
	k.cfg = cfg
	k.syncMonitors(cfg)
	if k.syncMgr != nil {
		if serr := kaSyncDaemon(k.syncMgr, cfg); serr != nil {
			k.log.Warn("lvs_sync_daemon", "err", serr)
		}
	}
	if k.vrrp != nil {
		if verr := k.vrrp.Apply(cfg); verr != nil {
			err = errors.Join(err, verr)
		}
	}
	k.log.Info("configuration applied", "file", k.path,
		"virtual_servers", len(vss), "added", len(diff.AddedVS), "removed", len(diff.RemovedVS), "changed", len(diff.ChangedVS),
		"real_servers_added", len(diff.AddedRS), "real_servers_removed", len(diff.RemovedRS), "real_servers_changed", len(diff.ChangedRS))
	return err // control errors: applied as far as possible, logged by vsmgr
}

// warnUnacted says, once, which parts of the file lvsd does not act on
// yet.
func (k *kaRuntime) warnUnacted(cfg *keepalived.Config) {
	var parts []string
	if cfg.Global.LVSSyncDaemon != nil {
		parts = append(parts, "lvs_sync_daemon")
	}
	if cfg.BGP != nil {
		parts = append(parts, "bgp")
	}
	if len(parts) == 0 {
		return
	}
	msg := "parsed and validated, not acted on yet: " + strings.Join(parts, ", ")
	if !k.warned[msg] {
		k.warned[msg] = true
		k.log.Warn("configuration", "warning", msg)
	}
}

// vsName is a virtual server's identity across reloads.
func vsName(vs *keepalived.VirtualServer) string {
	if vs.Group != "" {
		proto := "fwmark"
		switch vs.Protocol {
		case service.ProtoTCP:
			proto = "TCP"
		case service.ProtoUDP:
			proto = "UDP"
		case service.ProtoSCTP:
			proto = "SCTP"
		}
		return "group " + vs.Group + " " + proto
	}
	return vsmgr.KeyName(vs.Keys[0])
}

// scriptLine is a notify or quorum script's command line ("" for none).
func scriptLine(s *keepalived.Script) string {
	if s == nil {
		return ""
	}
	return s.Cmd
}

// checkerID identifies a checker across reloads: its kind and complete
// configuration.
func checkerID(s *check.Spec) string { return fmt.Sprintf("%+v", *s) }

// virtualServers converts the file's virtual servers for vsmgr.
func virtualServers(cfg *keepalived.Config) []vsmgr.VirtualServer {
	var out []vsmgr.VirtualServer
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		if len(vs.Keys) == 0 {
			continue
		}
		v := vsmgr.VirtualServer{
			Name:       vsName(vs),
			Keys:       vs.Keys,
			Config:     vs.ServiceConfig(),
			Quorum:     int(vs.Quorum),
			Hysteresis: int(vs.Hysteresis),
			QuorumUp:   scriptLine(vs.QuorumUp),
			QuorumDown: scriptLine(vs.QuorumDown),
			Omega:      vs.Omega,
		}
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			r := vsmgr.RealServer{
				Addr:             rs.Addr,
				Port:             rs.Port,
				Dest:             rs.DestConfig(),
				InhibitOnFailure: rs.InhibitOnFailure,
				NotifyUp:         scriptLine(rs.NotifyUp),
				NotifyDown:       scriptLine(rs.NotifyDown),
			}
			for c := range rs.Checkers {
				s := &rs.Checkers[c].Spec
				r.Checkers = append(r.Checkers, vsmgr.Checker{ID: checkerID(s), Alpha: s.Alpha})
			}
			v.Reals = append(v.Reals, r)
		}
		if ss := vs.SorryServer; ss != nil {
			v.Sorry = &vsmgr.RealServer{Addr: ss.Addr, Port: ss.Port, Dest: ss.DestConfig()}
			v.SorryInhibit = ss.Inhibit
		}
		out = append(out, v)
	}
	return out
}

// syncMonitors starts the checkers of new and changed real servers and
// stops those of removed and changed ones. Called with mu held.
func (k *kaRuntime) syncMonitors(cfg *keepalived.Config) {
	want := map[vsmgr.RSID]bool{}
	for i := range cfg.VirtualServers {
		vs := &cfg.VirtualServers[i]
		if len(vs.Keys) == 0 {
			continue
		}
		name := vsName(vs)
		for j := range vs.RealServers {
			rs := &vs.RealServers[j]
			if len(rs.Checkers) == 0 {
				continue
			}
			id := vsmgr.RSID{VS: name, Addr: rs.Addr, Port: rs.Port}
			specs := make([]check.Spec, len(rs.Checkers))
			var ids []string
			for c := range rs.Checkers {
				specs[c] = rs.Checkers[c].Spec
				ids = append(ids, checkerID(&specs[c]))
			}
			fp := fmt.Sprintf("%d|%s", rs.Weight, strings.Join(ids, "|"))
			want[id] = true
			if cur := k.monitors[id]; cur != nil {
				if cur.fp == fp {
					continue
				}
				cur.m.Stop()
				delete(k.monitors, id)
			}
			m, lat, err := k.newMonitor(id, rs, specs)
			if err != nil {
				k.log.Error("cannot start the health checkers of a real server", "real_server", id.String(), "err", err)
				continue
			}
			k.monitors[id] = &rsMonitor{m: m, fp: fp, lat: lat}
			m.Start()
		}
	}
	for id, cur := range k.monitors {
		if !want[id] {
			cur.m.Stop()
			delete(k.monitors, id)
		}
	}
}

// newMonitor makes the checkers of a real server, reporting to the
// manager: on each change of the server's health, every checker's state.
func (k *kaRuntime) newMonitor(id vsmgr.RSID, rs *keepalived.RealServer, specs []check.Spec) (*check.Monitor, []*web.Histogram, error) {
	target := check.Target{Addr: rs.Addr, Port: rs.Port}
	// Each probe's duration goes to its checker's histogram (the
	// checker latency of /metrics).
	probers := make([]check.Prober, len(specs))
	lat := make([]*web.Histogram, len(specs))
	for i := range specs {
		if specs[i].Kind == check.KindFile {
			continue
		}
		p, err := check.NewProber(specs[i], target)
		if err != nil {
			return nil, nil, err
		}
		h := web.NewHistogram(web.LatencyBuckets())
		lat[i] = h
		probers[i] = check.ProberFunc(func(ctx context.Context) check.Result {
			r := p.Probe(ctx)
			h.ObserveDuration(r.Duration)
			return r
		})
	}
	var m *check.Monitor
	var err error
	m, err = check.NewMonitor(check.Config{
		Target:   target,
		Weight:   int(rs.Weight),
		Checkers: specs,
		Probers:  probers,
		Logger:   k.log.With("real_server", id.String()),
		OnEvent: func(ev check.Event) {
			st := m.Status()
			for i, cs := range st.Checkers {
				r := vsmgr.Report{Checker: i, Up: cs.Up}
				if cs.Weight != check.NoWeight {
					r.Weight, r.HasWeight = int64(cs.Weight), true
				}
				k.mgr.SetHealth(id, r)
			}
		},
	})
	return m, lat, err
}

// stopMonitorsLocked stops every checker. Called with mu held.
func (k *kaRuntime) stopMonitorsLocked() {
	for id, cur := range k.monitors {
		cur.m.Stop()
		delete(k.monitors, id)
	}
}

// Shutdown stops the checkers and removes the file's virtual servers as
// keepalived does on stop (running omega scripts).
func (k *kaRuntime) Shutdown(ctx context.Context) error {
	verr := k.StopVRRP(ctx)
	k.mu.Lock()
	k.stopped = true
	k.stopMonitorsLocked()
	k.mu.Unlock()
	return errors.Join(verr, k.mgr.Shutdown(ctx))
}

// StopVRRP stops the VRRP instances (priority 0 from masters, VIPs
// removed, notify_stop); again does nothing.
func (k *kaRuntime) StopVRRP(ctx context.Context) error {
	if k.vrrp == nil {
		return nil
	}
	return k.vrrp.Stop(ctx)
}

// Owns reports whether the file's virtual servers include service key:
// those are not saved in the state file (the file is their source).
func (k *kaRuntime) Owns(key service.Key) bool {
	for _, st := range k.mgr.Status() {
		for _, kk := range st.Keys {
			if kk == key {
				return true
			}
		}
	}
	return false
}

// Health is the checkers' state for the API.
func (k *kaRuntime) Health() []api.RealServerHealth {
	k.mu.Lock()
	mons := make(map[vsmgr.RSID]*check.Monitor, len(k.monitors))
	for id, cur := range k.monitors {
		mons[id] = cur.m
	}
	k.mu.Unlock()
	var out []api.RealServerHealth
	for _, vs := range k.mgr.Status() {
		add := func(rs vsmgr.RSStatus, sorry bool) {
			h := api.RealServerHealth{
				Service:         vs.Name,
				Server:          netip.AddrPortFrom(rs.ID.Addr, rs.ID.Port).String(),
				Up:              rs.Up,
				InService:       rs.InIPVS && rs.IPVSWeight > 0,
				Weight:          rs.ConfiguredWeight,
				EffectiveWeight: rs.IPVSWeight,
				Sorry:           sorry,
				LastChange:      rs.LastChange,
			}
			if m := mons[rs.ID]; m != nil && !sorry {
				for _, cs := range m.Status().Checkers {
					h.Checkers = append(h.Checkers, api.CheckerHealth{
						Kind:                cs.Kind.String(),
						Up:                  cs.Up,
						LastResult:          resultText(cs.Last),
						LastCheck:           lastCheck(cs.Last),
						LastDuration:        cs.Last.Duration,
						LastChange:          cs.LastChange,
						ConsecutiveFailures: cs.ConsecutiveFailures,
						Checks:              cs.Checks,
						Failures:            cs.Failures,
					})
				}
			}
			out = append(out, h)
		}
		for _, rs := range vs.Reals {
			add(rs, false)
		}
		if vs.Sorry != nil {
			add(*vs.Sorry, true)
		}
	}
	return out
}

// resultText says what a probe found: "ok" (with the HTTP status for
// HTTP checks) or why it failed; "" before the first probe.
func resultText(r check.Result) string {
	switch {
	case r.Start.IsZero():
		return ""
	case r.OK && r.HTTPStatus != 0:
		return fmt.Sprintf("ok (HTTP %d)", r.HTTPStatus)
	case r.OK:
		return "ok"
	}
	return r.Message()
}

// lastCheck is when a probe ended (zero before the first).
func lastCheck(r check.Result) time.Time {
	if r.Start.IsZero() {
		return time.Time{}
	}
	return r.Start.Add(r.Duration)
}

// WebHealth is the checkers' state for the status page and /metrics: one
// entry per service, real server and checker.
func (k *kaRuntime) WebHealth() []web.RealServerHealth {
	k.mu.Lock()
	mons := make(map[vsmgr.RSID]*rsMonitor, len(k.monitors))
	for id, cur := range k.monitors {
		mons[id] = cur
	}
	k.mu.Unlock()
	var out []web.RealServerHealth
	for _, vs := range k.mgr.Status() {
		for _, rs := range vs.Reals {
			m := mons[rs.ID]
			if m == nil {
				continue // no checker: always up, nothing to show
			}
			for i, cs := range m.m.Status().Checkers {
				var latency web.HistogramData
				if i < len(m.lat) && m.lat[i] != nil {
					latency = m.lat[i].Snapshot()
				}
				for _, key := range vs.Keys {
					out = append(out, web.RealServerHealth{
						Service:    key,
						Addr:       rs.ID.Addr,
						Port:       rs.ID.Port,
						Up:         cs.Up,
						Checker:    cs.Kind.String(),
						LastResult: resultText(cs.Last),
						LastCheck:  lastCheck(cs.Last),
						LastChange: cs.LastChange,
						Checks:     cs.Checks,
						Failures:   cs.Failures,
						Latency:    latency,
					})
				}
			}
		}
	}
	return out
}

// setSync gives the runtime the connection-sync manager: lvs_sync_daemon
// starts now and follows reloads, and with an instance its role follows
// that VRRP instance (master while MASTER, backup otherwise).
func (k *kaRuntime) setSync(m *syncd.Manager) {
	k.mu.Lock()
	k.syncMgr = m
	cfg := k.cfg
	k.mu.Unlock()
	if err := kaSyncDaemon(m, cfg); err != nil {
		k.log.Warn("lvs_sync_daemon", "err", err)
	}
	if k.vrrp != nil {
		k.vrrp.SetSyncRole(func(master bool) {
			if err := m.SetRole(master); err != nil {
				k.log.Warn("sync daemon role", "master", master, "err", err)
			}
		})
	}
}
