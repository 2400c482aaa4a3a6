package vsmgr

import (
	"context"
	"os/exec"
	"syscall"
	"time"
)

// defaultScriptTimeout bounds a notify or quorum script. keepalived's
// notify_exec does not bound them at all; the manager does so that a
// script that hangs cannot pile up a process per transition while a real
// server flaps. 30 s is keepalived's own smtp_connect_timeout default, so
// a script that mails an alert (the common case) has the time keepalived
// itself would give the mail.
const defaultScriptTimeout = 30 * time.Second

// shutdownScriptTimeout bounds the omega scripts run at shutdown:
// keepalived gives them TIMER_HZ (1 s) before it reaps them
// (system_call_script with child_killed_thread in ipwrapper.c).
const shutdownScriptTimeout = time.Second

// killGrace is how long runShell waits for the script's output pipes to
// close after the kill (exec.Cmd.WaitDelay); none are attached, so this
// only bounds a pathological wait.
const killGrace = time.Second

// scriptRun is one queued script.
type scriptRun struct {
	cmd, kind string
	vs, rs    string
	stopping  bool
}

// launch starts the queued scripts, each on its own goroutine (keepalived
// forks each script and does not wait for it). Called with mu held and
// !shut, or by Shutdown before it waits.
func (m *Manager) launch(runs []scriptRun) {
	for _, r := range runs {
		timeout := m.scriptTimeout
		if r.stopping {
			timeout = shutdownScriptTimeout
		}
		m.log.Info("running script", "script", r.kind, "vs", r.vs, "rs", r.rs, "cmd", r.cmd)
		m.scripts.Add(1)
		go func() {
			defer m.scripts.Done()
			ctx, cancel := context.WithTimeout(m.scriptCtx, timeout)
			defer cancel()
			if err := m.run(ctx, r.cmd); err != nil {
				m.log.Warn("script failed", "script", r.kind, "vs", r.vs, "rs", r.rs, "cmd", r.cmd,
					"err", err, "timed_out", ctx.Err() != nil)
			}
		}()
	}
}

// runShell runs cmdline with /bin/sh -c, as keepalived runs a script that
// is not a plain executable (it execs the words of an executable one
// directly, which the shell does too). Standard input and output are
// /dev/null (keepalived's set_std_fd). The script gets its own process
// group, which is killed when ctx ends, so that its children go with it
// (keepalived: setpgid, then kill(-pid) on timeout).
func runShell(ctx context.Context, cmdline string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", cmdline)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = killGrace
	return cmd.Run()
}
