package check

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// script writes an executable shell script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMiscCheckExitStatus(t *testing.T) {
	dir := t.TempDir()
	exit := func(n int) string { return script(t, dir, "exit"+strconv.Itoa(n)+".sh", "exit "+strconv.Itoa(n)) }
	for _, tt := range []struct {
		name    string
		path    string
		dynamic bool
		ok      bool
		status  int
		weight  int
		hasW    bool
	}{
		{name: "0 succeeds", path: exit(0), ok: true},
		{name: "1 fails", path: exit(1), status: 1},
		{name: "5 fails without misc_dynamic", path: exit(5), status: 5},
		{name: "0 with misc_dynamic leaves the weight", path: exit(0), dynamic: true, ok: true},
		{name: "1 with misc_dynamic fails", path: exit(1), dynamic: true, status: 1},
		{name: "2 with misc_dynamic is weight 0", path: exit(2), dynamic: true, ok: true, status: 2, hasW: true},
		{name: "12 with misc_dynamic is weight 10", path: exit(12), dynamic: true, ok: true, status: 12, weight: 10, hasW: true},
		{name: "255 with misc_dynamic is weight 253", path: exit(255), dynamic: true, ok: true, status: 255, weight: 253, hasW: true},
		{name: "a command line with arguments, through sh -c", path: "test 3 -gt 2 && exit 0 || exit 1", ok: true},
		{name: "not found", path: filepath.Join(dir, "missing.sh"), status: 127},
		{name: "killed by a signal", path: "kill -9 $$", status: -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := probeOnce(t, Spec{Kind: KindMisc, MiscPath: tt.path, MiscDynamic: tt.dynamic, MiscTimeout: 5 * time.Second}, Target{})
			if tt.ok {
				wantOK(t, r)
			} else {
				wantFail(t, r, ErrExit)
			}
			if r.ExitStatus != tt.status || r.DynWeight != tt.weight || r.DynWeightSet != tt.hasW {
				t.Errorf("exit %d weight %d set %v, want %d %d %v", r.ExitStatus, r.DynWeight, r.DynWeightSet, tt.status, tt.weight, tt.hasW)
			}
		})
	}
}

// waitGone waits until pid has exited (or is a zombie) and fails after 5 s.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		// Field 3 is the state; after "(comm) ".
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 && strings.HasPrefix(string(b[i:]), ") Z") {
			return
		}
	}
	t.Errorf("process %d still running", pid)
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, _ := os.ReadFile(path)
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid
		}
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func TestMiscCheckTimeout(t *testing.T) {
	dir := t.TempDir()
	t.Run("the process group is killed", func(t *testing.T) {
		pidFile := filepath.Join(dir, "child.pid")
		path := script(t, dir, "hang.sh", "sleep 30 & echo $! > "+pidFile+"\nwait")
		// A loaded machine may kill the script before it wrote the pid:
		// then again with more time.
		for _, timeout := range []time.Duration{300 * time.Millisecond, 2 * time.Second} {
			start := time.Now()
			r := probeOnce(t, Spec{Kind: KindMisc, MiscPath: path, MiscTimeout: timeout}, Target{})
			wantFail(t, r, ErrTimeout)
			if el := time.Since(start); el > timeout+4*time.Second {
				t.Errorf("took %v", el)
			}
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
		}
		waitGone(t, readPid(t, pidFile))
	})
	t.Run("SIGKILL after the grace when SIGTERM is ignored", func(t *testing.T) {
		// The trap is in the group leader (sh -c) itself.
		p, err := newMiscProber(&Spec{Kind: KindMisc, MiscPath: "trap '' TERM; sleep 30; exit 0", MiscTimeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		p.grace = 200 * time.Millisecond
		start := time.Now()
		wantFail(t, p.Probe(context.Background()), ErrTimeout)
		if el := time.Since(start); el < 400*time.Millisecond || el > 4*time.Second {
			t.Errorf("took %v, want about 400ms", el)
		}
	})
	t.Run("misc_timeout 0 is delay_loop", func(t *testing.T) {
		p, err := newMiscProber(&Spec{Kind: KindMisc, MiscPath: "true", DelayLoop: 7 * time.Second})
		if err != nil || p.timeout != 7*time.Second {
			t.Fatalf("timeout %v, %v", p.timeout, err)
		}
	})
	t.Run("cancel kills at once", func(t *testing.T) {
		pidFile := filepath.Join(dir, "cancel.pid")
		path := script(t, dir, "cancel.sh", "echo $$ > "+pidFile+"\nsleep 30")
		p, err := NewProber(Spec{Kind: KindMisc, MiscPath: path, MiscTimeout: time.Minute}, Target{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		res := make(chan Result, 1)
		go func() { res <- p.Probe(ctx) }()
		pid := readPid(t, pidFile)
		cancel()
		select {
		case r := <-res:
			if r.OK || !errors.Is(r.Err, context.Canceled) {
				t.Errorf("result %+v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("probe still running 5 s after cancel")
		}
		waitGone(t, pid)
	})
}

func TestMiscCheckUser(t *testing.T) {
	if !isRoot() {
		if _, err := NewProber(Spec{Kind: KindMisc, MiscPath: "true", User: "root"}, Target{}); err == nil {
			t.Error("NewProber accepted another user without root")
		}
		t.Skip("running as another user needs root")
	}
	for _, tt := range []struct{ user, cond string }{
		{"nobody", `[ "$(id -u)" = 65534 ] && [ "$(id -g)" = 65534 ]`},
		{"nobody:root", `[ "$(id -u)" = 65534 ] && [ "$(id -g)" = 0 ] && [ "$(id -G)" = 0 ]`},
		{"root", `[ "$(id -u)" = 0 ]`},
	} {
		t.Run(tt.user, func(t *testing.T) {
			wantOK(t, probeOnce(t, Spec{Kind: KindMisc, MiscPath: tt.cond, User: tt.user, MiscTimeout: 5 * time.Second}, Target{}))
		})
	}
}
