package vrrpd

import (
	"context"
	"errors"
	"time"

	"golvs/internal/keepalived"
	"golvs/internal/vrrp"
)

// errNoScript: a vrrp_script without a command fails.
var errNoScript = errors.New("no script command")

// trackScriptState is one vrrp_script in use: its goroutine and its
// result, shared by the instances that track it (keepalived runs each
// script once whatever the number of instances tracking it).
type trackScriptState struct {
	spec   keepalived.VRRPScript
	refs   int  // units using it
	up     bool // after rise/fall; under Daemon.mu
	runs   uint64
	cancel context.CancelFunc
	done   chan struct{}
}

// acquireScripts starts the scripts s uses that are not running yet.
func (d *Daemon) acquireScripts(s *unitSpec) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, sc := range s.Scripts {
		st := d.scripts[sc.Name]
		if st != nil {
			st.refs++
			continue
		}
		ctx, cancel := context.WithCancel(d.ctx)
		// keepalived's init_fail: the script is failed until it
		// succeeds; otherwise it counts as good until its first result.
		st = &trackScriptState{spec: sc, refs: 1, up: !sc.InitFail, cancel: cancel, done: make(chan struct{})}
		d.scripts[sc.Name] = st
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			defer close(st.done)
			d.runTrackScript(ctx, st)
		}()
	}
}

// releaseScripts stops the scripts no unit uses any more, waiting for
// their goroutines.
func (d *Daemon) releaseScripts(s *unitSpec) {
	var stopped []*trackScriptState
	d.mu.Lock()
	for _, sc := range s.Scripts {
		st := d.scripts[sc.Name]
		if st == nil {
			continue
		}
		if st.refs--; st.refs == 0 {
			delete(d.scripts, sc.Name)
			st.cancel()
			stopped = append(stopped, st)
		}
	}
	d.mu.Unlock()
	for _, st := range stopped {
		<-st.done
	}
}

// scriptUp reports a vrrp_script's result; an unknown script is down.
func (d *Daemon) scriptUp(name string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := d.scripts[name]
	return st != nil && st.up
}

// runTrackScript runs a vrrp_script every interval, each run bounded by
// its timeout (a run that times out fails), and applies rise and fall as
// keepalived's vrrp_script_child_thread does: the script goes down after
// fall consecutive failures and up after rise consecutive successes. The
// first result of a script not init_fail decides at once: keepalived
// starts its counter at rise-1 ("one success is enough"), which a first
// failure takes to 0.
func (d *Daemon) runTrackScript(ctx context.Context, st *trackScriptState) {
	sc := st.spec
	rise, fall := max(sc.Rise, 1), max(sc.Fall, 1)
	// result is keepalived's vscript->result: up when >= rise, in
	// 0..rise+fall-1.
	result := 0
	if !sc.InitFail {
		result = rise - 1
	}
	interval := sc.Interval
	if interval <= 0 {
		interval = time.Second // keepalived's default
	}
	timeout := sc.Timeout
	if timeout <= 0 {
		timeout = interval
	}
	script := sc.Script
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		start := time.Now()
		var err error
		if len(script.Args) == 0 {
			err = errNoScript
		} else {
			rctx, cancel := context.WithTimeout(ctx, timeout)
			err = d.runScript(rctx, script.Args, &script)
			cancel()
		}
		if ctx.Err() != nil {
			return
		}
		ok := err == nil
		switch {
		case ok && result < rise-1:
			result++
		case ok:
			result = rise + fall - 1
		case result > rise:
			result--
		default:
			result = 0
		}
		up := result >= rise
		d.mu.Lock()
		st.runs++
		changed := st.up != up
		st.up = up
		d.mu.Unlock()
		if changed {
			if up {
				d.log.Info("VRRP_Script succeeded", "script", sc.Name)
			} else {
				d.log.Info("VRRP_Script failed", "script", sc.Name, "err", err)
			}
			d.kickAll()
		}
		timer.Reset(max(0, interval-time.Since(start)))
	}
}

// trackers returns the state of m's tracked objects as vrrp weighs them,
// and why it is faulted ("interface d0 down", ...).
func (d *Daemon) trackers(m *member) ([]vrrp.Tracker, []string) {
	ts := make([]vrrp.Tracker, 0, len(m.spec.Trackers))
	var faults []string
	for _, t := range m.spec.Trackers {
		var up bool
		what := ""
		switch t.Kind {
		case trackLink:
			up = d.linkUp(t.Name)
			what = "interface " + t.Name + " down"
		case trackScript:
			up = d.scriptUp(t.Name)
			what = "script " + t.Name + " failed"
		}
		tr := vrrp.Tracker{Weight: t.Weight, Reverse: t.Reverse, Up: up}
		ts = append(ts, tr)
		if _, f := vrrp.EffectivePriority(m.spec.Proto.Priority, []vrrp.Tracker{tr}); f {
			if t.Reverse {
				what = t.Name + " up (reverse)"
			}
			faults = append(faults, what)
		}
	}
	return ts, faults
}
