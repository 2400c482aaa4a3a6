package vsmgr

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/service"
)

func TestShutdown(t *testing.T) {
	tests := []struct {
		name      string
		omega     bool
		sorryOn   bool // the sorry server serves at shutdown
		flush     FlushMode
		scripts   string
		ipvsadmOK bool // the ipvsadm service survives
	}{
		{"omega runs notify_down and quorum_down", true, false, FlushNone, "down a down b qdown", true},
		{"without omega no script", false, false, FlushNone, "", true},
		// Alive servers replaced by the sorry server are not in IPVS:
		// clear_service_rs skips their notify_down. quorum_down runs
		// at shutdown even though the quorum was already down.
		{"omega with the sorry server serving", true, true, FlushNone, "qdown", true},
		{"lvs_flush_on_stop VS", true, false, FlushVS, "qdown", true},
		{"lvs_flush_on_stop", true, false, FlushAll, "qdown", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Options{FlushOnStop: tt.flush})
			mustOK(t, f.ctl.AddService(web2, service.Config{Sched: "wlc"}))
			vs := mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1))
			vs.Omega = tt.omega
			if tt.sorryOn {
				vs.Sorry, vs.Quorum = sorry(), 3
			}
			f.apply(t, vs)
			f.event(t, vs.Name, "c-")
			f.rec.take(f.m)
			if err := f.m.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			if s := f.rec.take(f.m); s != tt.scripts {
				t.Errorf("scripts %q, want %q", s, tt.scripts)
			}
			if f.ctl.Snapshot().Get(web) != nil {
				t.Error("service left")
			}
			if (f.ctl.Snapshot().Get(web2) != nil) != tt.ipvsadmOK {
				t.Error("ipvsadm service: wrong fate")
			}
			if st := f.m.Status(); len(st) != 0 {
				t.Errorf("status after shutdown: %v", st)
			}
			// Later calls do nothing.
			if _, err := f.m.Apply([]VirtualServer{vs}); !errors.Is(err, ErrShutdown) {
				t.Errorf("Apply after shutdown: %v", err)
			}
			f.event(t, vs.Name, "a-")
			if err := f.m.Shutdown(t.Context()); err != nil {
				t.Error(err)
			}
			if f.ctl.Snapshot().Get(web) != nil || f.rec.take(f.m) != "" {
				t.Error("calls after shutdown acted")
			}
		})
	}
}

// goroutines waits for the goroutine count to fall to at most n.
func goroutines(n int) int {
	var g int
	for range 100 {
		if g = runtime.NumGoroutine(); g <= n {
			return g
		}
		time.Sleep(10 * time.Millisecond)
	}
	return g
}

// Scripts never block the manager; Shutdown waits for them and kills
// those still running when its context ends; no goroutine is left.
func TestScriptsAsyncAndShutdownKills(t *testing.T) {
	base := runtime.NumGoroutine()
	ctl := control.New(control.Config{Clock: clock.NewManual(time.Hour)})
	rec := &recorder{block: make(chan struct{})}
	m := New(ctl, Options{RunScript: rec.run})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1))
	if _, err := m.Apply([]VirtualServer{vs}); err != nil {
		t.Fatal(err)
	}
	// quorum_up blocks; the manager goes on.
	m.SetHealth(RSID{vs.Name, rsAddr("a"), 80}, Report{Up: false})
	m.SetHealth(RSID{vs.Name, rsAddr("b"), 80}, Report{Up: false})
	if got := dests(ctl, web); got != "" {
		t.Fatalf("ipvs %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	if g := goroutines(base); g > base {
		t.Fatalf("%d goroutines left (%d before)", g, base)
	}
	rec.mu.Lock()
	n := len(rec.calls)
	rec.mu.Unlock()
	if n != 4 { // qup, down a, down b, qdown
		t.Fatalf("%d scripts ran, want 4", n)
	}
}

// Omega scripts at shutdown get 1 s, as keepalived gives them.
func TestOmegaScriptBound(t *testing.T) {
	ctl := control.New(control.Config{Clock: clock.NewManual(time.Hour)})
	rec := &recorder{block: make(chan struct{})}
	m := New(ctl, Options{RunScript: rec.run})
	vs := mkVS(mkRS("a", 1))
	vs.Omega, vs.QuorumUp = true, ""
	if _, err := m.Apply([]VirtualServer{vs}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := m.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < shutdownScriptTimeout || d > shutdownScriptTimeout+4*time.Second {
		t.Fatalf("Shutdown waited %v for blocked omega scripts", d)
	}
}

// Failing scripts are logged.
func TestScriptErrorLogged(t *testing.T) {
	f := newFixture(t, Options{})
	logs := &logSink{}
	m := New(f.ctl, Options{Log: slog.New(logs), RunScript: func(context.Context, string) error { return errors.New("exit status 3") }})
	vs := mkVS(mkRS("a", 1))
	vs.Keys = []service.Key{web2}
	if _, err := m.Apply([]VirtualServer{vs}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, m.Shutdown(t.Context()))
	recs := logs.records("script failed")
	if len(recs) != 1 || recs[0]["script"] != "quorum_up" || recs[0]["cmd"] != "qup" || !strings.Contains(recs[0]["err"], "exit status 3") {
		t.Fatalf("records %v", recs)
	}
}

func TestRunShell(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	if err := runShell(t.Context(), "echo \"$0\" $# > "+out); err != nil {
		t.Fatal(err)
	}
	// No arguments are added: keepalived runs LVS notify scripts as
	// configured.
	if b, _ := os.ReadFile(out); string(b) != "/bin/sh 0\n" {
		t.Fatalf("script saw %q", b)
	}
	if err := runShell(t.Context(), "exit 3"); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("exit 3: %v", err)
	}
	// A script that outlives its bound is killed with its children.
	pidFile := filepath.Join(dir, "pid")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := runShell(ctx, "sleep 30 & echo $! > "+pidFile+"; wait")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("timed-out script: %v after %v", err, time.Since(start))
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	var state string
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		// Killed but not reaped (its parent, the shell, is gone and
		// this machine's init may be slow to reap): dead too.
		st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if f := strings.Fields(string(st)); len(f) > 2 {
			if state = f[2]; state == "Z" || state == "X" {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the script's child %d survived (state %q)", pid, state)
}
