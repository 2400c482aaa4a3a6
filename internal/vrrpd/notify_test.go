package vrrpd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golvs/internal/keepalived"
)

// TestRunScript: a script runs with its words as arguments (no shell)
// and fails on a non-zero exit; one still running when its context ends
// is killed with its children.
func TestRunScript(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "notify.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+out+"\nexit $EXIT\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := &keepalived.Script{Cmd: script + " 'a b'", Args: []string{script, "a b"}}
	if err := runScript(context.Background(), append(s.Args, "INSTANCE", "VI_1", "MASTER", "100"), s); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "a b INSTANCE VI_1 MASTER 100\n" {
		t.Errorf("arguments %q", b)
	}
	t.Setenv("EXIT", "3")
	if err := runScript(context.Background(), s.Args, s); err == nil {
		t.Errorf("exit 3: no error")
	}

	// A script whose child hangs: both go when the context ends.
	hang := filepath.Join(dir, "hang.sh")
	if err := os.WriteFile(hang, []byte("#!/bin/sh\nsleep 30 &\necho $! > "+out+"\nwait\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := runScript(ctx, []string{hang}, &keepalived.Script{}); err == nil {
		t.Errorf("hung script: no error")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("hung script returned after %v", d)
	}
	b, _ := os.ReadFile(out)
	pid := strings.TrimSpace(string(b))
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + pid); err != nil {
			break
		}
		if st, _ := os.ReadFile("/proc/" + pid + "/stat"); strings.Contains(string(st), ") Z ") {
			break // a zombie waiting for init: dead
		}
		if time.Now().After(deadline) {
			t.Errorf("the hung script's child %s still runs", pid)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNotifyJobs: the scripts and arguments of a transition, as
// keepalived 2.2.7 runs them (checked with a notify script recording its
// arguments): the state's own script first, then notify with INSTANCE or
// GROUP, the name, the state and the priority (0 for a group).
func TestNotifyJobs(t *testing.T) {
	sc := func(words ...string) *keepalived.Script {
		return &keepalived.Script{Cmd: strings.Join(words, " "), Args: words}
	}
	n := keepalived.Notify{Master: sc("/m"), Any: sc("/any", "x"), Deleted: sc("/del")}
	line := func(jobs []notifyJob) []string {
		var out []string
		for _, j := range jobs {
			out = append(out, strings.Join(append(append([]string(nil), j.script.Args...), j.extra...), " "))
		}
		return out
	}
	for _, tc := range []struct {
		got  []string
		want string
	}{
		{line(instanceNotify("u", "VI_1", &n, "MASTER", 150)), "/m|/any x INSTANCE VI_1 MASTER 150"},
		{line(instanceNotify("u", "VI_1", &n, "BACKUP", 150)), "/any x INSTANCE VI_1 BACKUP 150"},
		{line(instanceNotify("u", "VI_1", &n, "DELETED", 150)), "/del|/any x INSTANCE VI_1 DELETED 150"},
		{line(groupNotify("u", "G", &n, "MASTER")), "/m|/any x GROUP G MASTER 0"},
		{line(instanceNotify("u", "VI_1", &keepalived.Notify{}, "FAULT", 1)), ""},
	} {
		if got := strings.Join(tc.got, "|"); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
