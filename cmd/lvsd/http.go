package main

// lvsd run --http ADDR: the status page, /metrics and /api/status
// (package web), with the providers lvsd has.

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/syncd"
	"golvs/internal/vrrpd"
	"golvs/internal/web"
)

// httpSampleInterval is how often the page's rate history is sampled:
// the estimator's own 2 s period, so each sample is a fresh estimate.
const httpSampleInterval = 2 * time.Second

// startHTTP listens on addr and serves the status handler until ctx ends;
// the returned function stops it and waits. dp may be nil (no data plane),
// ka nil (no configuration file).
func startHTTP(ctx context.Context, addr, token string, ctl *control.Control, eng *engine.Engine, maxConns int,
	dp func() web.DataPlaneStats, ka *kaRuntime, sm *syncd.Manager, log *slog.Logger) (stop func(), err error) {
	src := web.Source{
		Control:   ctl,
		Conns:     web.EngineConnTable(eng, maxConns),
		DataPlane: dp,
	}
	if ka != nil {
		src.Health = ka.WebHealth
		if ka.vrrp != nil {
			src.VRRP = func() []web.VRRPInstance { return webVRRP(ka.vrrp.Status()) }
		}
	}
	if sm != nil {
		src.Sync = func() []web.SyncDaemon { return webSync(sm.List(), sm.Stats(), time.Now()) }
	}
	h := web.NewHandler(src, web.Options{Token: token, Log: log})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 2)
	go func() {
		defer func() { done <- struct{}{} }()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP listener stopped", "err", err)
		}
	}()
	go func() {
		defer func() { done <- struct{}{} }()
		t := time.NewTicker(httpSampleInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				h.Sample()
			}
		}
	}()
	log.Info("status page and metrics", "url", "http://"+ln.Addr().String()+"/", "token", token != "")
	return func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer scancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		<-done
		<-done
	}, nil
}

// webVRRP converts the VRRP instances' state for the status page.
func webVRRP(st []vrrpd.Status) []web.VRRPInstance {
	out := make([]web.VRRPInstance, 0, len(st))
	for _, s := range st {
		v := web.VRRPInstance{
			Name: s.Instance, Interface: s.Interface, VRID: s.VRID, State: s.State.String(),
			Priority: int(s.EffectivePriority), SyncGroup: s.Group,
			Transitions: s.Transitions, LastTransition: s.LastTransition,
		}
		for _, p := range s.VIPs {
			v.VIPs = append(v.VIPs, p.Addr())
		}
		out = append(out, v)
	}
	return out
}

// webSync converts the sync daemons' state: the master's figures are the
// sending ones, the backup's the receiving ones; a backup's lag is the age
// of the last message it accepted.
func webSync(ds []ipvsadm.DaemonEntry, st syncd.Stats, now time.Time) []web.SyncDaemon {
	var out []web.SyncDaemon
	for _, d := range ds {
		w := web.SyncDaemon{SyncID: d.SyncID, Interface: d.MCastIfn}
		if d.State == ipvsadm.DaemonMaster {
			w.Role = web.SyncMaster
			w.Sent, w.SentConns, w.LastMessage = st.MessagesSent, st.EntriesSent, st.LastSent
		} else {
			w.Role = web.SyncBackup
			w.Received, w.ReceivedConns, w.LastMessage = st.MessagesReceived, st.EntriesReceived, st.LastReceived
			w.Rejected = map[string]uint64{}
			for r, n := range st.Rejects {
				if n > 0 {
					w.Rejected[syncd.Reason(r).String()] = n
				}
			}
			if !st.LastReceived.IsZero() {
				w.Lag = now.Sub(st.LastReceived)
			}
		}
		out = append(out, w)
	}
	return out
}
