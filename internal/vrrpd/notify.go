package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golvs/internal/keepalived"
)

// killGrace bounds the wait for a killed script's process (exec.Cmd's
// WaitDelay): no pipes are attached, so only a pathological wait.
const killGrace = time.Second

// notifyJob is one script run.
type notifyJob struct {
	script *keepalived.Script
	extra  []string // appended to the script's own arguments
	what   string   // for the log: "notify_master", "notify", ...
	unit   string
}

// notifier runs the notify scripts: for each unit one goroutine at a
// time runs its queued scripts in order (keepalived forks each one and
// does not wait; running them in order keeps a MASTER script from racing
// the BACKUP one that follows), each bounded by the daemon's timeout.
// The goroutine exits when the queue is empty. Close waits for them.
type notifier struct {
	d      *Daemon
	ctx    context.Context // cancelled when Close gives up waiting: kills scripts
	cancel context.CancelFunc

	mu     sync.Mutex
	queues map[string][]notifyJob
	wg     sync.WaitGroup
}

func (n *notifier) init(d *Daemon) {
	n.d = d
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.queues = map[string][]notifyJob{}
}

// maxQueued bounds the scripts waiting per unit: with scripts that hang
// and an instance that flaps, the oldest are dropped (and logged) rather
// than kept without bound. 64 transitions is minutes of flapping.
const maxQueued = 64

// enqueue queues jobs of one unit.
func (n *notifier) enqueue(unit string, jobs ...notifyJob) {
	if len(jobs) == 0 {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	q, busy := n.queues[unit]
	q = append(q, jobs...)
	if drop := len(q) - maxQueued; drop > 0 {
		n.d.log.Warn("notify scripts queued too long: dropping the oldest", "unit", unit, "dropped", drop)
		q = q[drop:]
	}
	n.queues[unit] = q
	if busy {
		return // its goroutine runs
	}
	n.wg.Add(1)
	go n.drain(unit)
}

// drain runs unit's queue until it is empty.
func (n *notifier) drain(unit string) {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		q := n.queues[unit]
		if len(q) == 0 {
			delete(n.queues, unit)
			n.mu.Unlock()
			return
		}
		j := q[0]
		n.queues[unit] = q[1:]
		n.mu.Unlock()
		n.run(j)
	}
}

func (n *notifier) run(j notifyJob) {
	args := append(append([]string(nil), j.script.Args...), j.extra...)
	if len(args) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.d.notifyTimeout)
	defer cancel()
	n.d.log.Info("running notify script", "unit", j.unit, "script", j.what, "args", args)
	if err := n.d.runScript(ctx, args, j.script); err != nil {
		n.d.log.Warn("notify script failed", "unit", j.unit, "script", j.what, "args", args,
			"err", err, "timed_out", errors.Is(ctx.Err(), context.DeadlineExceeded))
	}
}

// wait waits for the queued scripts until ctx ends, then kills them.
func (n *notifier) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return fmt.Errorf("vrrpd: notify scripts killed: %w", ctx.Err())
	}
}

// instanceNotify returns the scripts keepalived runs when instance name
// enters st with priority prio (vrrp_notify.c, checked against
// keepalived 2.2.7): notify_master/_backup/_fault/_stop (or
// notify_deleted) with their own arguments, then notify with "INSTANCE
// name STATE prio" appended.
func instanceNotify(unit, name string, n *keepalived.Notify, state string, prio uint8) []notifyJob {
	var jobs []notifyJob
	specific := map[string]*keepalived.Script{
		"MASTER": n.Master, "BACKUP": n.Backup, "FAULT": n.Fault, "STOP": n.Stop, "DELETED": n.Deleted,
	}
	if s := specific[state]; s != nil {
		jobs = append(jobs, notifyJob{script: s, what: "notify_" + lower(state), unit: unit})
	}
	if n.Any != nil {
		jobs = append(jobs, notifyJob{script: n.Any, what: "notify", unit: unit,
			extra: []string{"INSTANCE", name, state, strconv.Itoa(int(prio))}})
	}
	return jobs
}

// groupNotify is instanceNotify for a sync group: keepalived 2.2.7 passes
// "GROUP name STATE 0" (a group has no priority; checked).
func groupNotify(unit, name string, n *keepalived.Notify, state string) []notifyJob {
	var jobs []notifyJob
	specific := map[string]*keepalived.Script{"MASTER": n.Master, "BACKUP": n.Backup, "FAULT": n.Fault, "STOP": n.Stop}
	if s := specific[state]; s != nil {
		jobs = append(jobs, notifyJob{script: s, what: "notify_" + lower(state), unit: unit})
	}
	if n.Any != nil {
		jobs = append(jobs, notifyJob{script: n.Any, what: "notify", unit: unit,
			extra: []string{"GROUP", name, state, "0"}})
	}
	return jobs
}

func lower(s string) string { return strings.ToLower(s) }

// runScript runs args (keepalived execs a script's words itself, without
// a shell) as the script's user, in its own process group with standard
// input and output on /dev/null; the group is killed when ctx ends.
// It fails when the script exits non-zero or cannot start.
func runScript(ctx context.Context, args []string, s *keepalived.Script) error {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	attr := &syscall.SysProcAttr{Setpgid: true}
	if s != nil && s.User != "" {
		cred, err := credential(s.User, s.Group)
		if err != nil {
			return err
		}
		if uint32(os.Geteuid()) != cred.Uid || uint32(os.Getegid()) != cred.Gid {
			attr.Credential = cred
		}
	}
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = killGrace
	return cmd.Run()
}

// credential resolves a script's user and group (the user's primary group
// when none is given, as keepalived's set_script_uid_gid).
func credential(name, group string) (*syscall.Credential, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gidStr := u.Gid
	if group != "" {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, err
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("group of %s: gid %q: %w", name, gidStr, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}
